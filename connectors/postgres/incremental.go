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
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// watermarkPrefix is the logical decoding message prefix of watermarks.
const watermarkPrefix = "liberator"

// RequestSnapshot queues tables for an incremental snapshot while
// streaming. See connectors.SnapshotRequester.
func (s *Source) RequestSnapshot(_ context.Context, req connectors.SnapshotRequest) error {
	return s.snaps.RequestTables(req, s.cfg.Snapshot, canonicalName)
}

var _ connectors.SnapshotRequester = (*Source)(nil)

// pollSnapshots starts the next chunk of an incremental snapshot when none
// is between its watermarks. The stream calls it about every second and
// right after a chunk ends.
func (s *Source) pollSnapshots(ctx context.Context) error {
	sn := &s.snaps
	sn.TakeRequests(s.log)
	i, ok := sn.NextChunk()
	if !ok {
		return nil
	}
	ts := sn.State.Tables[i]
	tn, _ := parseTableName(ts.Table)
	rel := s.byName[tn]
	sn.StartTable(i, func() int64 { return estimateRows(ctx, s.conn, tn) }, s.log)
	w := sn.NewWindow(i, rel.table)
	if err := s.watermark(ctx, "low", w.ID); err != nil {
		return err
	}
	n := sn.Opts.ChunkSize
	rr := s.conn.PgConn().ExecParams(ctx, newKeyset(tn, rel).pageQuery(ts.After != nil, n), keyParams(ts.After, nil), nil, nil, nil)
	var slab connectors.RowSlab
	for rr.NextRow() {
		vals := rr.Values()
		row, err := rel.decodeValues(vals, &slab)
		if err != nil {
			rr.Close()
			return err
		}
		w.Add(row)
		if len(w.Rows) == n {
			w.Last = keyText(rel.table, vals)
		}
	}
	if _, err := rr.Close(); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("incremental snapshot of %s: read chunk: %w", tn, err))
	}
	// A chunk of fewer rows is the table's last.
	w.Full = len(w.Rows) == n
	sn.Window = w
	return s.watermark(ctx, "high", w.ID)
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
	w := s.snaps.Window
	if w == nil || id != w.ID {
		return nil
	}
	switch kind {
	case "low":
		w.Opened()
	case "high":
		return s.closeWindow(ctx, w)
	}
	return nil
}

// noteChange records, while a chunk's window is open, the keys of its
// table that a streamed change touches.
func (s *Source) noteChange(ch *connectors.Change) {
	if w := s.snaps.Window; w != nil && ch.Table != nil {
		w.Touch(ch.Table, ch.Before, ch.After)
	}
}

// closeWindow emits the chunk's rows that no streamed change touched, as
// snapshot reads at the high watermark's place in the stream, moves the
// table's progress on, and starts the next chunk. A window whose low
// watermark was never streamed cannot happen; its chunk is read again
// rather than trusted.
func (s *Source) closeWindow(ctx context.Context, w *snapshot.Window) error {
	if !w.Open {
		s.snaps.CloseWindow(s.log)
		return s.pollSnapshots(ctx)
	}
	for _, row := range s.snaps.CloseWindow(s.log) {
		c := connectors.Change{Op: connectors.OpRead, Table: w.Table, After: row, Pos: s.txPos, CommitTime: s.txTime}
		s.pending.Changes = append(s.pending.Changes, c)
		s.pendingBytes += c.Size()
		s.pending.Checkpoint = nil
		if s.full() {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	s.pending.Checkpoint = nil
	return s.pollSnapshots(ctx)
}
