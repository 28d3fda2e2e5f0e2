package mysql

// # Incremental snapshots
//
// A table is read while streaming with the watermark algorithm of DBLog
// (Andreakis and Papapanagiotou, Netflix, 2019), one chunk at a time:
//
//  1. write a low watermark: the row of this pipeline (its server_id) in the
//     signal table (snapshot.signal_table, created if missing) gets the
//     mark "low ID", in a transaction of its own;
//  2. read the chunk: WHERE key > last ORDER BY key LIMIT chunk_size, and
//     keep its rows in memory (one chunk at most);
//  3. write a high watermark, "high ID".
//
// The binary log goes on meanwhile. Between the two watermarks' row
// events, every key of the table that a streamed change touches is dropped
// from the chunk, since the stream carries a state at least as new; at the
// high watermark the rows left are emitted as snapshot reads, at that point
// of the stream, and the table's progress moves into the checkpoint of the
// watermark's transaction. InnoDB makes a transaction visible to other
// sessions as it commits, in binary log order with binlog group commit, so
// the chunk sees every transaction logged before the low watermark and none
// logged after the high one. Reading the stream pauses while a chunk is
// read (Read runs the steps), so the chunk is in memory before its low
// watermark can arrive. Watermark ids carry a random id of the Source:
// those of an earlier run, replayed after a restart, are ignored.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// pollEvery is how often a streaming Read looks for snapshot work while
// waiting for events.
const pollEvery = time.Second

// incremental is the connection and the table descriptions of incremental
// snapshots, kept from one chunk to the next.
type incremental struct {
	conn   *client.Conn
	tables map[string]chunkTable
}

// RequestSnapshot queues tables for an incremental snapshot while
// streaming. See connectors.SnapshotRequester.
func (s *Source) RequestSnapshot(_ context.Context, req connectors.SnapshotRequest) error {
	return s.snaps.RequestTables(req, s.cfg.Snapshot, canonicalName)
}

var (
	_ connectors.SnapshotRequester        = (*Source)(nil)
	_ connectors.SnapshotProgressReporter = (*Source)(nil)
)

// SnapshotProgress reports the progress of the snapshots taken since Open,
// with estimates from information_schema.TABLES.TABLE_ROWS.
func (s *Source) SnapshotProgress() connectors.SnapshotProgress {
	return s.snaps.Progress.Progress()
}

// nextEvent waits for the next binlog event, starting snapshot chunks
// while it waits.
func (s *Source) nextEvent(ctx context.Context) (*replication.BinlogEvent, error) {
	sn := &s.snaps
	for {
		if err := s.discoverTables(ctx); err != nil {
			return nil, err
		}
		if err := s.pollSnapshots(ctx, false); err != nil {
			return nil, err
		}
		// One timer per poll interval, not per event.
		if sn.pollCtx == nil || sn.pollFor != ctx || sn.pollCtx.Err() != nil {
			if sn.pollStop != nil {
				sn.pollStop()
			}
			sn.pollFor = ctx
			sn.pollCtx, sn.pollStop = context.WithTimeout(ctx, pollEvery)
		}
		ev, err := s.stream.GetEvent(sn.pollCtx)
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if ev != nil {
			s.events.give(ev.Event)
		}
		return ev, err
	}
}

// pollSnapshots starts the next chunk of an incremental snapshot when none
// is between its watermarks: every pollEvery, or at once when forced
// (right after a chunk ends).
func (s *Source) pollSnapshots(ctx context.Context, force bool) error {
	sn := &s.snaps
	if !force && time.Since(sn.polled) < pollEvery {
		return nil
	}
	sn.polled = time.Now()
	sn.TakeRequests(s.log)
	for {
		i, ok := sn.NextChunk()
		if !ok {
			return nil
		}
		ts := sn.State.Tables[i]
		ct, err := s.incrementalTable(ctx, ts.Table)
		if err != nil {
			return err
		}
		if ct.whole {
			s.log.Error("cannot snapshot this table while streaming: its primary key cannot be read in chunks; its rows are not read again",
				"table", ts.Table)
			sn.SkipTable(i)
			continue
		}
		return s.readIncrementalChunk(ctx, i, ts, ct)
	}
}

// incrementalTable returns the description and connection of a table of
// an incremental snapshot, and makes sure the signal table exists.
func (s *Source) incrementalTable(ctx context.Context, table string) (chunkTable, error) {
	inc := &s.inc
	if inc.conn == nil {
		conn, err := s.snapshotConn(ctx)
		if err != nil {
			return chunkTable{}, err
		}
		inc.conn = conn
		if err := s.ensureSignalTable(ctx, conn); err != nil {
			return chunkTable{}, err
		}
		if _, err := run(ctx, conn, "SET character_set_results = NULL"); err != nil {
			return chunkTable{}, connectors.MarkRetryable(fmt.Errorf("incremental snapshot: %w", err))
		}
	}
	if ct, ok := inc.tables[table]; ok {
		return ct, nil
	}
	ct, err := s.chunkTable(ctx, inc.conn, table)
	if err != nil {
		return chunkTable{}, err
	}
	if inc.tables == nil {
		inc.tables = map[string]chunkTable{}
	}
	inc.tables[table] = ct
	// The chunk's rows carry the stream's *Table when the shapes agree.
	if cur := s.st.tables()[ct.tn]; cur != nil && connectors.SameShape(cur.table, ct.state.table) {
		ct.state = &tableState{table: cur.table, cols: ct.state.cols}
		inc.tables[table] = ct
	} else {
		s.st.tables()[ct.tn] = ct.state
	}
	return ct, nil
}

// ensureSignalTable creates the signal table if it is missing.
func (s *Source) ensureSignalTable(ctx context.Context, conn *client.Conn) error {
	sig := s.snaps.signal
	stmts := []string{
		"CREATE DATABASE IF NOT EXISTS " + quoteIdent(sig.db),
		"CREATE TABLE IF NOT EXISTS " + quoteIdent(sig.db) + "." + quoteIdent(sig.name) +
			" (server_id INT UNSIGNED NOT NULL PRIMARY KEY, mark VARCHAR(64) NOT NULL) COMMENT 'liberator: incremental snapshot watermarks'",
	}
	for _, q := range stmts {
		if _, err := run(ctx, conn, q); err != nil {
			if myErrorCode(err) == 0 {
				return connectors.MarkRetryable(fmt.Errorf("incremental snapshot: %w", err))
			}
			return fmt.Errorf("snapshot.signal_table: create %s: %w (create it yourself: CREATE TABLE %s (server_id INT UNSIGNED NOT NULL PRIMARY KEY, mark VARCHAR(64) NOT NULL), and grant liberator INSERT and UPDATE on it)",
				sig, err, sig)
		}
	}
	return nil
}

// watermark writes a watermark: this pipeline's row of the signal table.
func (s *Source) watermark(ctx context.Context, kind, id string) error {
	sig := s.snaps.signal
	_, err := run(ctx, s.inc.conn, "INSERT INTO "+quoteIdent(sig.db)+"."+quoteIdent(sig.name)+
		" (server_id, mark) VALUES (?, ?) ON DUPLICATE KEY UPDATE mark = VALUES(mark)", s.cfg.ServerID, kind+" "+id)
	if err != nil {
		if myErrorCode(err) == 0 {
			err = connectors.MarkRetryable(err)
		}
		return fmt.Errorf("incremental snapshot: write %s watermark in snapshot.signal_table %s: %w", kind, sig, err)
	}
	return nil
}

// readIncrementalChunk writes the low watermark, reads the next chunk of
// table i and writes the high watermark.
func (s *Source) readIncrementalChunk(ctx context.Context, i int, ts snapshot.TableState, ct chunkTable) error {
	sn := &s.snaps
	sn.StartTable(i, func() int64 { return estimateRows(ctx, s.inc.conn, ct.tn) }, s.log)
	w := sn.NewWindow(i, ct.state.table)
	if err := s.watermark(ctx, "low", w.ID); err != nil {
		return err
	}
	n := sn.Opts.ChunkSize
	q := ct.keys.pageQuery(ts.After != nil, n)
	args, err := q.args(ts.After, nil)
	if err != nil {
		return fmt.Errorf("incremental snapshot of %s: %w", ct.tn, err)
	}
	cols := ct.state.cols
	err = selectRows(ctx, s.inc.conn, q.sql, args, func(row []gomysql.FieldValue) error {
		after := make([]any, len(cols))
		for i := range cols {
			v, err := cols[i].fromSnapshot(&row[i])
			if err != nil {
				return fmt.Errorf("column %s (%s): %w", cols[i].Name, cols[i].SQLType, err)
			}
			after[i] = v
		}
		w.Add(after)
		if len(w.Rows) == n {
			var err error
			w.Last, err = keyValues(w.Table, row)
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("incremental snapshot of %s: %w", ct.tn, err)
	}
	// A chunk of fewer rows is the table's last.
	w.Full = len(w.Rows) == n
	sn.Window = w
	return s.watermark(ctx, "high", w.ID)
}

// isSignal reports whether a table map is of the signal table.
func (sn *snapshots) isSignal(t *replication.TableMapEvent) bool {
	return t != nil && string(t.Table) == sn.signal.name && string(t.Schema) == sn.signal.db
}

// handleSignal reads the marks of a rows event of the signal table and
// opens or closes the current chunk's window.
func (s *Source) handleSignal(e *replication.RowsEvent) {
	w := s.snaps.Window
	if w == nil {
		return
	}
	var images [][]any
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		images = e.Rows
	case replication.EnumRowsEventTypeUpdate:
		for i := 1; i < len(e.Rows); i += 2 {
			images = append(images, e.Rows[i])
		}
	}
	for _, row := range images {
		if len(row) < 2 {
			continue
		}
		var mark string
		switch v := row[1].(type) {
		case string:
			mark = v
		case []byte:
			mark = string(v)
		}
		kind, id, _ := strings.Cut(mark, " ")
		if id != w.ID {
			continue
		}
		switch kind {
		case "low":
			w.Opened()
		case "high":
			s.closeWindow(w)
		}
	}
}

// noteChange records, while a chunk's window is open, the keys of its
// table that a streamed change touches.
func (s *Source) noteChange(t *connectors.Table, after, before []any) {
	if w := s.snaps.Window; w != nil {
		w.Touch(t, before, after)
	}
}

// closeWindow emits the chunk's rows that no streamed change touched, as
// snapshot reads in the watermark's transaction, and moves the table's
// progress on. The next chunk starts on the next poll, which is forced. A
// window whose low watermark was never streamed cannot happen; its chunk
// is read again rather than trusted.
func (s *Source) closeWindow(w *snapshot.Window) {
	st := &s.st
	s.snaps.polled = time.Time{}
	if !w.Open {
		s.snaps.CloseWindow(s.log)
		return
	}
	table := s.snaps.State.Tables[w.Index].Table
	for _, row := range s.snaps.CloseWindow(s.log) {
		st.add(connectors.Change{Op: connectors.OpRead, Table: w.Table, After: row, Pos: st.txPos, CommitTime: st.txTime})
	}
	st.txChanged = true
	if !w.Full {
		delete(s.inc.tables, table)
	}
}

// readStreamOrRecover reads the binary log; when the server no longer has
// it at the stored position, it streams from the end of the log instead
// and re-snapshots every table with reconcile while streaming, so that the
// rows deleted in the gap are tombstoned too. With snapshot.mode never
// there is no re-snapshot, and a lost binary log is an error.
func (s *Source) readStreamOrRecover(ctx context.Context) (connectors.Batch, error) {
	b, err := s.readStream(ctx)
	if err == nil || !errors.Is(err, ErrBinlogLost) {
		return b, err
	}
	if s.cfg.Snapshot == connectors.SnapshotNever {
		return connectors.Batch{}, fmt.Errorf("%w; the changes since %s cannot be read, and snapshot.mode is never, so liberator does not re-snapshot: "+
			"set snapshot.mode: initial to stream from the end of the binary log and snapshot every table again with reconcile, "+
			"or run liberator reset --config FILE to start over", err, s.start)
	}
	var pos Position
	perr := s.metaRun(ctx, func(c *client.Conn) error {
		var err error
		pos, err = currentPosition(ctx, c, s.cfg.Flavor, s.setup.gtid)
		return err
	})
	if perr != nil {
		return connectors.Batch{}, errors.Join(err, connectors.MarkRetryable(perr))
	}
	s.log.Warn("binary log position lost: changes since the stored position cannot be read; streaming from the end of the binary log and snapshotting every table again with reconcile, which tombstones the rows deleted meanwhile",
		"position", s.start.String(), "error", err, "from", pos.String(), "tables", s.snaps.Tables)
	s.closeSyncer()
	s.stream = nil
	s.st = streamState{byName: s.st.byName, slices: s.st.slices}
	s.start = pos
	s.snaps.Window = nil
	s.snaps.Reconcile(s.snaps.Tables...)
	return connectors.Batch{Checkpoint: s.decorate(pos)}, nil
}

// closeIncremental closes the incremental snapshots' connection.
func (s *Source) closeIncremental() error {
	if s.snaps.pollStop != nil {
		s.snaps.pollStop()
	}
	if s.inc.conn == nil {
		return nil
	}
	return s.inc.conn.Close()
}
