package postgres

// # Snapshots
//
// The initial snapshot reads every table in primary-key chunks, several at
// once. When the slot is new, every reader imports the slot's exported
// snapshot (SET TRANSACTION SNAPSHOT) on a connection of its own, so all of
// them see the database exactly at the slot's consistent point C and
// streaming from C afterwards neither loses nor repeats a change.
//
// Progress (per table, the last key of the chunks that Kafka has
// acknowledged in order) travels in the Position, with LSN C, as the
// checkpoint of chunk ends. A snapshot interrupted half way resumes there:
// the remaining chunks are read from a newer state of the database than C,
// because the exported snapshot is gone. That is still exact once streamed:
// the slot has kept everything since C, and streaming starts at C only after
// the last chunk. For every key, either no change was committed after C, and
// then whichever chunk holds the key reads the same row C had; or there was
// one, and then the stream replays the key's last change after every
// snapshot row, so a compacted topic ends with the key's current state (or
// its tombstone). On the way the topic can show a newer row and then older
// ones; like any replay after a restart, that is at least once, not lost.
//
// Incremental snapshots, read while streaming, are in incremental.go.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// decorate records the captured tables and the snapshot under way in the
// pending batch's checkpoint. It is called just before a batch is handed to
// Read: every row read so far is in that batch or an earlier one, so the
// progress it records is covered.
func (s *Source) decorate() {
	s.pending.Reconcile = append(s.pending.Reconcile, s.snaps.TakeMarks()...)
	if p, ok := s.pending.Checkpoint.(Position); ok {
		p.Tables, p.Snapshot = s.snaps.Tables, s.snaps.State
		s.pending.Checkpoint = p
	}
}

// initialSnapshot reads the tables of the initial snapshot with parallel
// chunk readers, hands the rows to Read, and checkpoints the progress at
// every chunk end that completes a prefix of a table.
func (s *Source) initialSnapshot(ctx context.Context) error {
	sn := &s.snaps
	st := sn.State
	pos := Position{LSN: s.startAt}
	if st == nil {
		// Every table was read before a restart: only the last
		// checkpoint is missing.
		sn.Initial = false
		s.lastCP = s.startAt
		s.pending.Checkpoint = pos
		return s.flush(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parallel := sn.Opts.Parallelism
	at := time.Now().UTC()

	readers := make([]*pgx.Conn, parallel)
	defer func() {
		for _, c := range readers {
			if c != nil {
				_ = c.Close(context.WithoutCancel(ctx))
			}
		}
	}()
	for i := range readers {
		c, err := pgx.ConnectConfig(ctx, s.conn.Config())
		if err != nil {
			return connectors.MarkRetryable(fmt.Errorf("connect to postgres for the snapshot: %w", err))
		}
		readers[i] = c
	}
	exported := s.snapshotName != ""
	if exported {
		// The exported snapshot lives until the replication connection runs
		// its next command; every connection imports it before then.
		for _, c := range append([]*pgx.Conn{s.conn}, readers...) {
			if err := importSnapshot(ctx, c, s.snapshotName); err != nil {
				return err
			}
		}
		s.log.Info("snapshot started", "tables", len(st.Tables), "parallelism", parallel, "chunk_size", sn.Opts.ChunkSize)
		// The new slot's first position, before any row: once it is
		// stored, a restart resumes this snapshot instead of finding a
		// slot without a position.
		s.pending.Checkpoint = pos
		if err := s.flush(ctx); err != nil {
			return err
		}
	} else {
		s.log.Info("snapshot resumed: the remaining chunks are read from the current state; streaming from the consistent point replays every later change",
			"tables", len(st.Tables), "parallelism", parallel, "chunk_size", sn.Opts.ChunkSize)
	}
	for _, t := range st.Tables {
		if !t.Done {
			sn.Progress.Add(t.Table, false)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	tasks := make(chan snapshot.Chunk)
	out := make(chan snapshot.Rows, parallel)
	g.Go(func() error {
		defer close(tasks)
		return sn.Split(gctx, st, tasks, func(ctx context.Context, i int) (int64, snapshot.Boundary) {
			return s.splitTable(ctx, st.Tables[i].Table)
		})
	})
	var readersWG sync.WaitGroup
	for _, c := range readers {
		readersWG.Add(1)
		g.Go(func() error {
			defer readersWG.Done()
			for task := range tasks {
				if err := s.readChunk(gctx, c, st, task, pos, at, out); err != nil {
					return err
				}
			}
			return nil
		})
	}
	go func() {
		readersWG.Wait()
		close(out)
	}()

	err := s.emitChunks(ctx, st, out)
	if err != nil {
		cancel()
		for range out {
		}
	}
	err = errors.Join(err, g.Wait())
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return context.Canceled
		}
		return err
	}
	if exported {
		if _, err := s.conn.Exec(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("end snapshot: %w", err)
		}
		s.snapshotName = ""
	}
	sn.State, sn.Initial = nil, false
	s.lastCP = s.startAt
	s.pending.Checkpoint = pos
	return s.flush(ctx)
}

// importSnapshot begins a transaction in an exported snapshot.
func importSnapshot(ctx context.Context, c *pgx.Conn, name string) error {
	if _, err := c.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("begin snapshot: %w", err))
	}
	if _, err := c.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(name)); err != nil {
		return fmt.Errorf("set transaction snapshot: %w", err)
	}
	return nil
}

// splitTable tells Split a table's estimated row count and how to find
// where its chunks end: on the source's own connection, reading only keys.
func (s *Source) splitTable(ctx context.Context, table string) (int64, snapshot.Boundary) {
	tn, _ := parseTableName(table)
	rel := s.byName[tn]
	ks := newKeyset(tn, rel)
	keyOnly := &connectors.Table{Key: seqKey(len(rel.table.Key))}
	return estimateRows(ctx, s.conn, tn), func(ctx context.Context, lo []string, n int) ([]string, error) {
		rr := s.conn.PgConn().ExecParams(ctx, ks.boundaryQuery(lo != nil, n), keyParams(lo, nil), nil, nil, nil)
		var hi []string
		for rr.NextRow() {
			hi = keyText(keyOnly, rr.Values())
		}
		if _, err := rr.Close(); err != nil {
			return nil, connectors.MarkRetryable(fmt.Errorf("snapshot table %s: find chunk bounds: %w", tn, err))
		}
		return hi, nil
	}
}

// seqKey is [0, 1, ..., n-1]: the key positions of a row that holds only
// the key.
func seqKey(n int) []int {
	k := make([]int, n)
	for i := range k {
		k[i] = i
	}
	return k
}

// readChunk reads one key range and hands its rows over.
func (s *Source) readChunk(ctx context.Context, conn *pgx.Conn, st *snapshot.State, task snapshot.Chunk, pos Position, at time.Time, out chan<- snapshot.Rows) error {
	tn, _ := parseTableName(st.Tables[task.Table].Table)
	rel := s.byName[tn]
	ks := newKeyset(tn, rel)
	send := snapshot.NewSender(ctx, out, task, s.snaps.Opts.ChunkSize, snapshot.MessageBytes(s.cfg.Memory.ReadAheadBytes(), s.snaps.Opts.Parallelism))
	// The columns of rel.binary come in binary (binary.go).
	rr := conn.PgConn().ExecParams(ctx, ks.rangeQuery(task.Lo != nil, task.Hi != nil), keyParams(task.Lo, task.Hi), nil, nil, rel.formats)
	var slab connectors.RowSlab
	// Boxed once: a Position in each Change would be an allocation per row.
	var boxed connectors.Position = pos
	for rr.NextRow() {
		vals := rr.Values()
		row := slab.Row(len(rel.decoders))
		if err := rel.decodeText(row, vals, rel.binary, &slab); err != nil {
			rr.Close()
			return err
		}
		slab.Used(valueBytes(vals))
		if err := send.Add(connectors.Change{Op: connectors.OpRead, Table: rel.table, After: row, Pos: boxed, CommitTime: at}); err != nil {
			rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return connectors.MarkRetryable(fmt.Errorf("snapshot table %s: %w", tn, err))
	}
	return send.Done()
}

// emitChunks hands the readers' rows to Read in the order they arrive, and
// records a table's progress once the chunks before a chunk end are all
// read: checkpoints then move forward in the order Read returns them.
func (s *Source) emitChunks(ctx context.Context, st *snapshot.State, in <-chan snapshot.Rows) error {
	sn := &s.snaps
	front := snapshot.NewFrontier(&sn.Progress, s.log)
	// filled is the length the pending batch last reached: a new batch
	// starts at that capacity rather than growing to it by copying.
	filled := 0
	for m := range in {
		size := m.Bytes
		if len(s.pending.Changes) > 0 && (len(s.pending.Changes)+len(m.Changes) > maxBatch || s.pendingBytes+size > s.batchBytes) {
			// Keep the batch within its bounds: these rows start the next.
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
		if s.pending.Changes == nil {
			s.pending.Changes = make([]connectors.Change, 0, min(maxBatch, max(filled, len(m.Changes))))
		}
		s.pending.Changes = append(s.pending.Changes, m.Changes...)
		m.Release()
		filled = len(s.pending.Changes)
		s.pendingBytes += size
		front.AddRows(st, m.Chunk.Table, len(m.Changes))
		if !m.Done {
			if s.full() {
				if err := s.flush(ctx); err != nil {
					return err
				}
			}
			continue
		}
		var moved bool
		sn.State, moved = front.ChunkRead(sn.State, m.Chunk.Table, m.Chunk.Seq, m.Chunk.Hi)
		if moved {
			s.pending.Checkpoint = Position{LSN: s.startAt}
			if err := s.flush(ctx); err != nil {
				return err
			}
		} else if s.full() {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}
