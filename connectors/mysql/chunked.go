package mysql

// # Snapshots in chunks
//
// The initial snapshot reads every table in primary-key ranges, cut ahead
// of time by keyset pagination over the key (chunks.go) and read by
// snapshot.parallelism readers at once, each on its own connection.
//
// MySQL and MariaDB cannot export a read view to other connections, and one
// consistent-snapshot transaction per reader (or per table) would give each
// its own point in the binary log. Only FLUSH TABLES WITH READ LOCK could
// line them up for certain, at the price of blocking every write, and
// waiting for every long query, on the server; liberator never takes it.
// Instead the first reader's START TRANSACTION WITH CONSISTENT SNAPSHOT
// gives the position P exactly (see beginSnapshot), and every other reader
// opens its own consistent snapshot and reads the binlog position of its
// view (MariaDB: binlog_snapshot_file and _position; MySQL: the log status
// before and after, when they agree). A view at the same position as P saw
// the same committed transactions, since InnoDB and the binary log commit
// in one order: the reader shares P's view. A reader whose view landed
// later (a write committed in between) tries again a few times.
//
// Should one still land later, or when a snapshot resumes after a restart
// (its view is gone, and each chunk is then one SELECT in a view of its
// own), the result is still exact in the end. Every view is at P or later,
// and streaming starts at P once the last chunk is read. For every key,
// either no change was committed after P, and whichever chunk holds the
// key reads the row P had; or there was one, and the binary log from P
// replays the key's last change after every snapshot row (with
// binlog_row_image=FULL each event carries the whole row), so a compacted
// topic ends with the current row, or its tombstone; on the way it may show
// a row newer than P, then the older ones. Chunks are key ranges, not row
// counts, so ranges read at different moments still cover every key once.
// Chunks read while streaming are another matter: they interleave with the
// stream and need the watermarks of incremental.go.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// snapshots is the Source's snapshot state; Read's goroutine owns it, or
// the snapshot goroutine while an initial snapshot runs, except for
// progress and the request queue, which have locks of their own.
type snapshots struct {
	snapshot.Manager
	recorded *snapshot.PositionState // tables and state, as last recorded

	// Incremental snapshots (incremental.go).
	signal   tableName
	polled   time.Time
	pollCtx  context.Context
	pollStop context.CancelFunc
	pollFor  context.Context // the context pollCtx derives from
}

// initSnapshots reads the snapshot options; Open calls it before deciding
// where streaming starts.
func (s *Source) initSnapshots() error {
	sn := &s.snaps
	if err := sn.Init(s.cfg.Snapshots, s.cfg.Tables, canonicalName); err != nil {
		return err
	}
	sn.signal, _ = parseTableName(sn.Opts.SignalTable)
	return nil
}

// decorate returns p with the captured tables and the snapshot under way.
func (s *Source) decorate(p Position) Position {
	sn := &s.snaps
	// Tables only grow (AddTables), and a table found while streaming may
	// have been snapshotted by now, so State alone does not tell.
	if sn.recorded == nil || sn.recorded.Snapshot != sn.State || len(sn.recorded.Tables) != len(sn.Tables) {
		sn.recorded = &snapshot.PositionState{Tables: sn.Tables, Snapshot: sn.State}
	}
	p.State = sn.recorded
	return p
}

// resumeSnapshots picks up what a stored position says about snapshots: an
// unfinished initial snapshot is read on from where it stopped (resumed is
// true: Open has nothing more to do); an incremental one continues while
// streaming, and so do tables added to the config since.
func (s *Source) resumeSnapshots(ctx context.Context, from Position) (resumed bool, err error) {
	if s.snaps.Resume(from.State, s.cfg.Snapshot != connectors.SnapshotOnly, s.log) {
		s.log.Info("resuming the initial snapshot where it stopped; streaming follows from its position", "position", from.String())
		conn, err := s.snapshotConn(ctx)
		if err != nil {
			return false, err
		}
		s.startChunks(conn, false)
		return true, nil
	}
	return false, nil
}

// snapshotConn opens a connection for snapshot reads: REPEATABLE READ,
// UTC, no statement time limit, long network timeouts.
func (s *Source) snapshotConn(ctx context.Context) (*client.Conn, error) {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return nil, fmt.Errorf("begin snapshot: %w", err)
	}
	qs := slices.Clone(snapshotSession)
	// max_statement_time (MariaDB) and max_execution_time (MySQL) would
	// cut a long SELECT short; each server knows only its own.
	if s.cfg.Flavor == FlavorMariaDB {
		qs = append(qs, "SET SESSION max_statement_time = 0")
	} else {
		qs = append(qs, "SET SESSION max_execution_time = 0")
	}
	for _, q := range qs {
		if _, err := run(ctx, conn, q); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("begin snapshot: %w", connectors.MarkRetryable(err))
		}
	}
	return conn, nil
}

// startChunks starts the snapshot goroutine, which reads s.snaps.State's
// tables in chunks and streams them to Read. conn is the snapshot's own
// connection, in text mode; with view, it is in the consistent snapshot
// that gave s.start, which the other readers try to share.
func (s *Source) startChunks(conn *client.Conn, view bool) {
	sn := &s.snaps
	if view {
		// A new view: every table is read.
		sn.StartInitial()
	}
	sn.Initial = true
	// The rows' position is where the snapshot is consistent with the log;
	// a resumed start's stored state and progress are not theirs.
	snap := &initialSnapshot{conn: conn, out: make(chan snapshotItem, 1), time: time.Now().UTC(), pos: s.start.inLog()}
	var gctx context.Context
	snap.g, gctx = errgroup.WithContext(s.ctx)
	snap.g.Go(func() error {
		defer close(snap.out)
		// A blocked read of the server's rows ends when the socket closes.
		stop := context.AfterFunc(gctx, func() { _ = conn.Conn.Conn.Close() })
		defer stop()
		return s.readChunks(gctx, snap, view)
	})
	s.snap = snap
}

// chunkTable is what the readers need of a table.
type chunkTable struct {
	tn    tableName
	state *tableState
	keys  keyset
	whole bool // the key cannot be chunked: one range
}

// readChunks is the snapshot goroutine: it describes the tables, cuts them
// into chunks, reads them with parallel readers and hands the rows to Read,
// with a checkpoint whenever a table's read prefix grows.
func (s *Source) readChunks(ctx context.Context, snap *initialSnapshot, view bool) error {
	sn := &s.snaps
	send := func(it snapshotItem) error {
		select {
		case snap.out <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	st := sn.State
	if st == nil {
		return send(snapshotItem{final: true})
	}
	// Inside the view: a table altered after the view was taken fails the
	// reads ("Table definition has changed"), so this description matches
	// the rows read.
	tables := make([]chunkTable, len(st.Tables))
	for i, ts := range st.Tables {
		if ts.Done {
			continue
		}
		sn.Progress.Add(ts.Table, false)
		ct, err := s.chunkTable(ctx, snap.conn, ts.Table)
		if err != nil {
			return err
		}
		tables[i] = ct
		if err := send(snapshotItem{table: ct.state}); err != nil {
			return err
		}
	}
	parallel := sn.Opts.Parallelism
	conns := []*client.Conn{snap.conn}
	defer func() {
		for _, c := range conns[1:] {
			_ = c.Close()
		}
	}()
	shared := 1
	for len(conns) < parallel+1 {
		c, err := s.snapshotConn(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
		// The last connection cuts chunks; it needs no view.
		if view && len(conns) <= parallel {
			same, err := s.joinView(ctx, c)
			if err != nil {
				return err
			}
			if same {
				shared++
			}
		}
	}
	for _, c := range conns {
		if _, err := run(ctx, c, "SET character_set_results = NULL"); err != nil {
			return connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
		}
	}
	if view && shared < parallel {
		s.log.Warn("some snapshot readers see a later state than the snapshot's position; rows changed meanwhile are replayed by the stream",
			"readers", parallel, "in_the_same_view", shared)
	}
	s.log.Info("snapshot reading", "tables", len(st.Tables), "parallelism", parallel, "chunk_size", sn.Opts.ChunkSize, "position", s.start.String())

	g, gctx := errgroup.WithContext(ctx)
	for _, c := range conns[1:] {
		stop := context.AfterFunc(gctx, func() { _ = c.Conn.Conn.Close() })
		defer stop()
	}
	tasks := make(chan snapshot.Chunk)
	out := make(chan snapshot.Rows, parallel)
	g.Go(func() error {
		defer close(tasks)
		return sn.Split(gctx, st, tasks, func(ctx context.Context, i int) (int64, snapshot.Boundary) {
			return s.splitTable(ctx, conns[parallel], tables[i])
		})
	})
	var readers sync.WaitGroup
	for _, conn := range conns[:parallel] {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			for task := range tasks {
				if err := s.readChunk(gctx, conn, tables[task.Table], task, snap, out); err != nil {
					return err
				}
			}
			if _, err := run(gctx, conn, "COMMIT"); err != nil {
				return connectors.MarkRetryable(fmt.Errorf("end snapshot: %w", err))
			}
			return nil
		})
	}
	go func() {
		readers.Wait()
		close(out)
	}()
	err := s.emitChunks(ctx, st, out, send)
	if err != nil {
		// Stop the readers, then let them drain.
		g.Go(func() error { return err })
		for range out {
		}
	}
	if err := errors.Join(err, g.Wait()); err != nil {
		return err
	}
	if s.cfg.Flavor == FlavorMySQL {
		_, _ = run(ctx, snap.conn, "UNLOCK INSTANCE")
	}
	return send(snapshotItem{final: true})
}

// viewTries is how often a reader tries to open its consistent snapshot at
// the snapshot's position.
const viewTries = 20

// joinView opens a consistent snapshot on conn, trying until its binlog
// position is the snapshot's (same reports whether it got there). A view
// that stays later is used as it is.
func (s *Source) joinView(ctx context.Context, conn *client.Conn) (same bool, err error) {
	for try := 1; ; try++ {
		var at, before Position
		if s.cfg.Flavor == FlavorMySQL {
			if before, err = s.mysqlLogPosition(ctx, conn); err != nil {
				return false, connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
			}
		}
		if _, err := run(ctx, conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			return false, connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
		}
		if s.cfg.Flavor == FlavorMariaDB {
			rows, err := run(ctx, conn, "SHOW STATUS LIKE 'binlog_snapshot_%'")
			if err == nil {
				at, err = parseSnapshotStatus(rows)
			}
			if err != nil {
				return false, connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
			}
		} else {
			if at, err = s.mysqlLogPosition(ctx, conn); err != nil {
				return false, connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
			}
			if at != before {
				at = Position{} // unknown: a commit came in between
			}
		}
		if at.File == s.start.File && at.Offset == s.start.Offset {
			return true, nil
		}
		if try == viewTries {
			return false, nil
		}
		if _, err := run(ctx, conn, "ROLLBACK"); err != nil {
			return false, connectors.MarkRetryable(fmt.Errorf("snapshot: %w", err))
		}
	}
}

// chunkTable describes a table for the readers: its columns as
// information_schema has them now, and its keyset.
func (s *Source) chunkTable(ctx context.Context, conn *client.Conn, table string) (chunkTable, error) {
	tn, _ := parseTableName(table)
	ts, err := s.readKeyedTable(ctx, conn, tn)
	if err != nil {
		return chunkTable{}, fmt.Errorf("snapshot %s: %w", tn, err)
	}
	t, cols, err := ts.describe()
	if err != nil {
		return chunkTable{}, fmt.Errorf("snapshot %s: %w", tn, err)
	}
	ct := chunkTable{tn: tn, state: &tableState{table: t, cols: cols}}
	rows, err := run(ctx, conn, `SELECT COLUMN_NAME, COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, '')
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, tn.db, tn.name)
	if err != nil {
		return chunkTable{}, connectors.MarkRetryable(fmt.Errorf("snapshot %s: %w", tn, err))
	}
	charsets, collations := map[string]string{}, map[string]string{}
	for _, r := range rows {
		charsets[r[0]], collations[r[0]] = r[1], r[2]
	}
	ct.keys, err = newKeyset(tn, t, cols, charsets, collations)
	if errors.Is(err, errNotChunkable) {
		s.log.Warn("reading the table in one piece: its snapshot cannot resume half way", "table", tn.String(), "reason", err.Error())
		ct.whole = true
	} else if err != nil {
		return chunkTable{}, err
	}
	return ct, nil
}

// estimateRows reads a table's row count from information_schema.TABLES
// (an estimate for InnoDB), or -1.
func estimateRows(ctx context.Context, conn *client.Conn, tn tableName) int64 {
	rows, err := run(ctx, conn, `SELECT COALESCE(TABLE_ROWS, -1) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, tn.db, tn.name)
	if err != nil || len(rows) != 1 {
		return -1
	}
	n, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// splitTable tells Split a table's estimated row count and how to find
// where its chunks end, on conn. A table whose key cannot be read in
// ranges has no boundary: it is one chunk.
func (s *Source) splitTable(ctx context.Context, conn *client.Conn, ct chunkTable) (int64, snapshot.Boundary) {
	estimate := estimateRows(ctx, conn, ct.tn)
	if ct.whole {
		return estimate, nil
	}
	return estimate, func(ctx context.Context, lo []string, n int) ([]string, error) {
		return s.boundary(ctx, conn, ct, lo, n)
	}
}

// boundary returns the key of the n-th row after lo, or nil when fewer
// rows are left.
func (s *Source) boundary(ctx context.Context, conn *client.Conn, ct chunkTable, lo []string, n int) ([]string, error) {
	q := ct.keys.boundaryQuery(lo != nil, n)
	args, err := q.args(lo, nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", ct.tn, err)
	}
	keyOnly := &connectors.Table{Key: make([]int, len(ct.state.table.Key))}
	for i := range keyOnly.Key {
		keyOnly.Key[i] = i
		keyOnly.Columns = append(keyOnly.Columns, ct.state.table.Columns[ct.state.table.Key[i]])
	}
	var hi []string
	err = selectRows(ctx, conn, q.sql, args, func(row []gomysql.FieldValue) error {
		var err error
		hi, err = keyValues(keyOnly, row)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: find chunk bounds: %w", ct.tn, err)
	}
	return hi, nil
}

// selectRows runs a prepared SELECT and streams its binary-protocol rows to
// f. A lost connection is retryable, and so is a table altered or a column
// gone since it was described: the snapshot goes on from its last
// checkpoint with a new description.
func selectRows(ctx context.Context, conn *client.Conn, sql string, args []any, f func([]gomysql.FieldValue) error) error {
	stmt, err := conn.Prepare(sql)
	if err != nil {
		return classifySnapshotError(ctx, fmt.Errorf("prepare %q: %w", sql, err))
	}
	defer stmt.Close()
	var res gomysql.Result
	if err := stmt.ExecuteSelectStreaming(&res, f, nil, args...); err != nil {
		return classifySnapshotError(ctx, err)
	}
	return nil
}

func classifySnapshotError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch myErrorCode(err) {
	case 0, gomysql.ER_TABLE_DEF_CHANGED, gomysql.ER_BAD_FIELD_ERROR, gomysql.ER_NO_SUCH_TABLE:
		return connectors.MarkRetryable(err)
	}
	return err
}

// readChunk reads one key range and hands its rows over.
func (s *Source) readChunk(ctx context.Context, conn *client.Conn, ct chunkTable, task snapshot.Chunk, snap *initialSnapshot, out chan<- snapshot.Rows) error {
	q := ct.keys.rangeQuery(task.Lo != nil, task.Hi != nil)
	if ct.whole {
		q = query{sql: "SELECT " + ct.keys.columns + " FROM " + ct.keys.from}
	}
	args, err := q.args(task.Lo, task.Hi)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", ct.tn, err)
	}
	cols := ct.state.cols
	// Messages of a whole batch's rows become batches without a copy
	// (emitChunks).
	send := snapshot.NewSender(ctx, out, task, s.snaps.Opts.ChunkSize, snapshot.MessageBytes(s.cfg.Memory.ReadAheadBytes(), s.snaps.Opts.Parallelism)).
		MaxRows(maxBatch, s.snaps.Opts.ChunkSize)
	var slab connectors.RowSlab
	dec := newRowDecoder(cols, &slab)
	err = selectRowPackets(ctx, conn, q.sql, args, dec.setFields, func(p []byte, kept bool) error {
		after := slab.Row(len(cols))
		if err := dec.decode(p, kept, after); err != nil {
			return err
		}
		slab.Used(len(p))
		return send.Add(connectors.Change{Op: connectors.OpRead, Table: ct.state.table, After: after, Pos: snap.pos, CommitTime: snap.time})
	})
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", ct.tn, err)
	}
	return send.Done()
}

// emitChunks hands the readers' rows to Read in the order they arrive, and
// records a table's progress once the chunks before a chunk end are all
// read: checkpoints then move forward in the order Read returns them.
func (s *Source) emitChunks(ctx context.Context, st *snapshot.State, in <-chan snapshot.Rows, send func(snapshotItem) error) error {
	sn := &s.snaps
	front := snapshot.NewFrontier(&sn.Progress, s.log)
	var pending []connectors.Change
	var pendingBytes int64
	last := 0 // the number of changes of the last batch
	for m := range in {
		size := m.Bytes
		if len(pending) > 0 && (len(pending)+len(m.Changes) > maxBatch || pendingBytes+size > s.batchBytes) {
			if err := send(snapshotItem{changes: pending}); err != nil {
				return err
			}
			last, pending, pendingBytes = len(pending), nil, 0
		}
		switch {
		case pending == nil && (len(m.Changes) >= maxBatch || size >= s.batchBytes):
			// A message that fills a batch is the batch.
			pending = m.Changes
		case pending == nil:
			// Batches tend to be alike: start at the last one's size.
			pending = make([]connectors.Change, 0, min(max(last, 2*len(m.Changes)), maxBatch))
			fallthrough
		default:
			pending = append(pending, m.Changes...)
		}
		pendingBytes += size
		front.AddRows(st, m.Chunk.Table, len(m.Changes))
		moved := false
		if m.Done {
			sn.State, moved = front.ChunkRead(sn.State, m.Chunk.Table, m.Chunk.Seq, m.Chunk.Hi)
		}
		if moved || len(pending) >= maxBatch || pendingBytes >= s.batchBytes {
			it := snapshotItem{changes: pending}
			if moved {
				it.checkpoint = s.decorate(s.start)
			}
			if err := send(it); err != nil {
				return err
			}
			last, pending, pendingBytes = len(pending), nil, 0
		}
	}
	if len(pending) > 0 {
		return send(snapshotItem{changes: pending})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}
