package postgres

// # Incremental snapshots
//
// A table is read while streaming with the watermark algorithm of DBLog
// (Andreakis and Papapanagiotou, Netflix, 2019), one chunk at a time:
//
//  1. write a low watermark: pg_logical_emit_message(true, 'liberator',
//     'low ID'), a transactional message that reaches the stream at its
//     commit;
//  2. read the chunk: WHERE key > last ORDER BY key LIMIT chunk_size, and
//     keep its rows in memory (one chunk at most);
//  3. write a high watermark, 'high ID'.
//
// The stream goes on meanwhile. Between the two watermarks, every key of the
// table that a streamed change touches is dropped from the chunk, because
// the stream carries a state at least as new. At the high watermark the
// rows left are emitted, in the stream, as snapshot reads, and the table's
// progress (the chunk's last key) moves into the checkpoint that follows.
// A change committed after the high watermark is newer than the chunk and
// follows it. The stream is paused while a chunk is read (steps 1 to 3 run
// in the reader goroutine), so the chunk is in memory before its low
// watermark can arrive.
//
// Watermark ids carry a random id of the Source, so watermarks of an
// earlier run (replayed after a restart from an older position) or of
// another pipeline are ignored.
//
// One caveat is PostgreSQL's own: a transaction becomes visible to other
// sessions slightly after its commit record is written. A transaction whose
// commit record precedes the low watermark but which is still becoming
// visible when the chunk is read would have its change streamed before the
// window and missing from the chunk, which would then carry the older row.
// The chunk is read only after the low watermark's own commit has returned
// to liberator, so that transaction would have to stall between writing
// its commit record and becoming visible for longer than a round trip to the
// server; a later change of the row repairs it.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// watermarkPrefix is the logical decoding message prefix of watermarks.
const watermarkPrefix = "liberator"

// chunk is an incremental snapshot's chunk, between its watermarks.
type chunk struct {
	id    string
	index int // into the snapshot state's tables
	tn    tableName
	rel   *relation
	rows  [][]any
	keys  []string
	last  []string // the text key of the last row; nil for no rows
	full  bool     // chunk_size rows were read: more may follow
	open  bool     // the low watermark has been streamed
	// changed holds the keys of the table that streamed changes touched
	// since the low watermark.
	changed map[string]bool
}

// RequestSnapshot queues tables for an incremental snapshot while
// streaming. See connectors.SnapshotRequester.
func (s *Source) RequestSnapshot(_ context.Context, tables []string) error {
	if s.cfg.Snapshot == connectors.SnapshotOnly {
		return fmt.Errorf("%w: liberator snapshot does not stream; ask the daemon (liberator run)", connectors.ErrSnapshotRefused)
	}
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		tn, err := parseTableName(t)
		if err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrSnapshotRefused, err)
		}
		if !s.want[tn] {
			return fmt.Errorf("%w: %s is not captured (add it to source.tables)", connectors.ErrSnapshotRefused, tn)
		}
		names = append(names, tn.String())
	}
	s.snaps.mu.Lock()
	s.snaps.requests = append(s.snaps.requests, names...)
	s.snaps.mu.Unlock()
	return nil
}

var _ connectors.SnapshotRequester = (*Source)(nil)

// takeRequests moves requested tables into the snapshot state.
func (s *Source) takeRequests() {
	sn := &s.snaps
	sn.mu.Lock()
	reqs := sn.requests
	sn.requests = nil
	sn.mu.Unlock()
	for _, t := range reqs {
		if sn.state != nil && slices.ContainsFunc(sn.state.Tables, func(ts TableSnapshot) bool { return ts.Table == t && !ts.Done }) {
			continue
		}
		sn.state = sn.state.with(t)
		sn.progress.Add(t, true)
		s.log.Info("incremental snapshot requested", "table", t)
	}
}

// pollSnapshots starts the next chunk of an incremental snapshot when none
// is between its watermarks. The stream calls it about every second and
// right after a chunk ends.
func (s *Source) pollSnapshots(ctx context.Context) error {
	sn := &s.snaps
	s.takeRequests()
	if sn.chunk != nil || sn.state == nil || sn.initial {
		return nil
	}
	i := slices.IndexFunc(sn.state.Tables, func(ts TableSnapshot) bool { return !ts.Done })
	if i < 0 {
		sn.state = nil
		return nil
	}
	ts := sn.state.Tables[i]
	tn, _ := parseTableName(ts.Table)
	rel := s.byName[tn]
	if !sn.progress.Started(ts.Table) {
		sn.progress.Add(ts.Table, true)
		sn.progress.Start(ts.Table, estimateRows(ctx, s.conn, tn))
		s.log.Info("incremental snapshot of table started", "table", ts.Table, "resumed", ts.After != nil)
	}
	if sn.runID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		sn.runID = hex.EncodeToString(b[:])
	}
	sn.seq++
	c := &chunk{id: fmt.Sprintf("%s-%d", sn.runID, sn.seq), index: i, tn: tn, rel: rel}
	if err := s.watermark(ctx, "low", c.id); err != nil {
		return err
	}
	n := sn.opts.ChunkSize
	rr := s.conn.PgConn().ExecParams(ctx, newKeyset(tn, rel.table).pageQuery(ts.After != nil, n), keyParams(ts.After, nil), nil, nil, nil)
	for rr.NextRow() {
		vals := rr.Values()
		row, err := rel.decodeValues(vals)
		if err != nil {
			rr.Close()
			return err
		}
		c.rows = append(c.rows, row)
		c.keys = append(c.keys, keyString(rel.table, row))
		if len(c.rows) == n {
			c.last = keyText(rel.table, vals)
		}
	}
	if _, err := rr.Close(); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("incremental snapshot of %s: read chunk: %w", tn, err))
	}
	// A chunk of fewer rows is the table's last.
	c.full = len(c.rows) == n
	sn.chunk = c
	return s.watermark(ctx, "high", c.id)
}

// watermark writes a watermark into the WAL, in a transaction of its own.
func (s *Source) watermark(ctx context.Context, kind, id string) error {
	if _, err := s.conn.Exec(ctx, "SELECT pg_logical_emit_message(true, '"+watermarkPrefix+"', $1::text)", kind+" "+id); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("incremental snapshot: write %s watermark: %w", kind, err))
	}
	return nil
}

// handleWatermark opens or closes the window of the current chunk when
// its watermark is streamed. Other watermarks are ignored.
func (s *Source) handleWatermark(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	kind, id, _ := strings.Cut(string(m.Content), " ")
	c := s.snaps.chunk
	if c == nil || id != c.id {
		return nil
	}
	switch kind {
	case "low":
		c.open = true
		c.changed = map[string]bool{}
	case "high":
		return s.closeWindow(ctx, c)
	}
	return nil
}

// noteChange records, while a chunk's window is open, the keys of its
// table that a streamed change touches.
func (s *Source) noteChange(ch *connectors.Change) {
	c := s.snaps.chunk
	if c == nil || !c.open || ch.Table.Name != c.tn.name || ch.Table.Schema != c.tn.schema {
		return
	}
	if ch.Before != nil {
		c.changed[keyString(ch.Table, ch.Before)] = true
	}
	if ch.After != nil {
		c.changed[keyString(ch.Table, ch.After)] = true
	}
}

// closeWindow emits the chunk's rows that no streamed change touched, as
// snapshot reads at the high watermark's place in the stream, and moves the
// table's progress on.
func (s *Source) closeWindow(ctx context.Context, c *chunk) error {
	sn := &s.snaps
	sn.chunk = nil
	if !c.open {
		// The high watermark without the low one cannot happen; read the
		// chunk again rather than trust it.
		return s.pollSnapshots(ctx)
	}
	kept := 0
	for i, row := range c.rows {
		if c.changed[c.keys[i]] {
			continue
		}
		s.pending.Changes = append(s.pending.Changes, connectors.Change{
			Op: connectors.OpRead, Table: c.rel.table, After: row, Pos: s.txPos, CommitTime: s.txTime,
		})
		kept++
	}
	s.pending.Checkpoint = nil
	table := sn.state.Tables[c.index].Table
	sn.progress.AddRows(table, len(c.rows))
	sn.state = sn.state.advanced(c.index, c.last, !c.full)
	if !c.full {
		p := sn.progress.Finish(table)
		s.log.Info("incremental snapshot of table read", "table", table, "rows", p.Rows,
			"took", p.Finished.Sub(p.Started).Round(time.Millisecond))
	}
	if sn.state.done() {
		sn.state = nil
	}
	s.log.Debug("incremental snapshot chunk", "table", table, "rows", len(c.rows), "emitted", kept, "changed_in_window", len(c.changed))
	if len(s.pending.Changes) >= maxBatch {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return s.pollSnapshots(ctx)
}
