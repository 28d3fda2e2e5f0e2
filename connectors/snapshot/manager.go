package snapshot

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// Manager is a source's snapshot bookkeeping: the captured tables, the
// snapshot under way and its progress, the chunk of an incremental
// snapshot between its watermarks, and the tables asked for. The source's
// reading goroutine owns it, except for Progress and the request queue,
// which have locks of their own.
//
// Incremental snapshots follow DBLog's watermarks: a source writes a low
// watermark into its log, reads a chunk of rows, and writes a high
// watermark. Streamed changes between the two touch rows of the chunk;
// the rows they did not touch are emitted at the high watermark, the
// others are already in the stream with a newer state.
type Manager struct {
	Opts connectors.SnapshotOptions
	// Tables are the captured tables that snapshots read, recorded in
	// every checkpoint: those of SnapshotOptions.Never are not among them.
	// The slice is never modified once checkpoints share it.
	Tables []string
	// State is the snapshot under way, recorded in every checkpoint; nil
	// when none. It is replaced, never modified.
	State *State
	// Initial is true while State is an initial snapshot still to be read
	// before streaming.
	Initial  bool
	Progress Tracker
	// Window is the incremental snapshot's chunk between its watermarks,
	// nil when none.
	Window *Window

	runID string
	seq   uint64
	// marks are the reconcile marks not yet handed out with a batch, and
	// begun the tables whose begin mark was, since Open.
	marks []connectors.ReconcileMark
	begun map[string]bool

	mu       sync.Mutex
	captured map[string]bool              // Tables, guarded by mu
	never    map[string]bool              // Opts.Never, guarded by mu
	requests []connectors.SnapshotRequest // guarded by mu
}

// Window is a chunk of an incremental snapshot, from its low watermark to
// its high one.
type Window struct {
	// ID names the chunk in its watermarks.
	ID string
	// Index is the table's index in the snapshot state.
	Index int
	Table *connectors.Table
	Rows  [][]any
	// Last is the key of the last row, in the source's text form, when
	// the chunk is full; nil otherwise.
	Last []string
	// Full is true when the chunk holds chunk_size rows: more may follow.
	Full bool
	// Open is true once the low watermark has been streamed.
	Open bool

	keys    []string
	changed map[string]bool // keys streamed changes touched since the low watermark
}

// Init prepares the bookkeeping as a source opens: Opts become opts with
// their defaults, and Tables the configured tables by the names canonical
// gives them, but for those of opts.Never, which no snapshot reads.
// canonical turns a table name as written in the config or in a request
// into the one form that positions record ("schema.name"), or says why it
// is not a table name.
func (sn *Manager) Init(opts connectors.SnapshotOptions, tables []string, canonical func(string) (string, error)) error {
	sn.Opts = opts.WithDefaults()
	// Never nil, so that a position records an empty list when every
	// table is one no snapshot reads.
	sn.Tables = []string{}
	never := make(map[string]bool, len(opts.Never))
	for _, t := range opts.Never {
		name, err := canonical(t)
		if err != nil {
			return err
		}
		never[name] = true
	}
	captured := make(map[string]bool, len(tables))
	for _, t := range tables {
		name, err := canonical(t)
		if err != nil {
			return err
		}
		if never[name] || captured[name] {
			continue
		}
		sn.Tables = append(sn.Tables, name)
		captured[name] = true
	}
	sn.mu.Lock()
	sn.captured, sn.never = captured, never
	sn.mu.Unlock()
	return nil
}

// RequestTables is a source's RequestSnapshot (see
// connectors.SnapshotRequester): it checks the request and queues it for
// the reading goroutine, which takes it with TakeRequests. It refuses the
// request in snapshot mode only, which does not stream, and a table that
// canonical refuses or that is not captured; the error wraps
// connectors.ErrSnapshotRefused. It is safe to call from any goroutine
// after Init.
func (sn *Manager) RequestTables(req connectors.SnapshotRequest, mode connectors.SnapshotMode, canonical func(string) (string, error)) error {
	if mode == connectors.SnapshotOnly {
		return fmt.Errorf("%w: liberator snapshot does not stream; ask the daemon (liberator run)", connectors.ErrSnapshotRefused)
	}
	sn.mu.Lock()
	defer sn.mu.Unlock()
	names := make([]string, 0, len(req.Tables))
	for _, t := range req.Tables {
		name, err := canonical(t)
		if err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrSnapshotRefused, err)
		}
		if sn.never[name] {
			return fmt.Errorf("%w: %s is an outbox table: its rows are events, published as they were written, not state, and it is never snapshotted", connectors.ErrSnapshotRefused, name)
		}
		if !sn.captured[name] {
			return fmt.Errorf("%w: %s is not captured (add it to source.tables)", connectors.ErrSnapshotRefused, name)
		}
		names = append(names, name)
	}
	sn.requests = append(sn.requests, connectors.SnapshotRequest{Tables: names, Reconcile: req.Reconcile})
	return nil
}

// AddTables captures tables found while streaming (a new table that a
// pattern takes) and queues them for an incremental snapshot, so that
// their rows written before the source captured them are read. Tables
// already captured are left alone. Only the reading goroutine calls it.
func (sn *Manager) AddTables(tables []string, log *slog.Logger) {
	sn.mu.Lock()
	var added []string
	for _, t := range tables {
		if sn.captured[t] || sn.never[t] {
			continue
		}
		sn.captured[t] = true
		added = append(added, t)
	}
	sn.mu.Unlock()
	if len(added) == 0 {
		return
	}
	// A new slice: checkpoints handed out share the old one.
	sn.Tables = append(slices.Clip(sn.Tables), added...)
	sn.State = sn.State.With(added...)
	for _, t := range added {
		sn.Progress.Add(t, true)
	}
	log.Debug("tables added to the captured tables", "tables", added)
}

// StartInitial queues every captured table for an initial snapshot, read
// from its first row before streaming.
func (sn *Manager) StartInitial() {
	sn.State = (*State)(nil).Reconcile(sn.Tables, true)
	sn.Initial = true
}

// Resume takes up the snapshots that a stored position records (stored
// is nil when it records none). An initial snapshot that did not finish is
// read on before streaming, from where it stopped: Resume makes it State,
// sets Initial and returns true. Otherwise an incremental snapshot under
// way goes on while streaming, and so, with addTables, do the captured
// tables that stored does not list, which were added to the config since.
func (sn *Manager) Resume(stored *PositionState, addTables bool, log *slog.Logger) (initial bool) {
	if stored == nil {
		return false
	}
	if st := stored.Snapshot; st != nil && st.Initial {
		sn.State = st.Reconcile(sn.Tables, true)
		sn.Initial = true
		return true
	}
	sn.State = stored.Snapshot.Reconcile(sn.Tables, false)
	if addTables && stored.Tables != nil {
		var added []string
		for _, t := range sn.Tables {
			if !slices.Contains(stored.Tables, t) {
				added = append(added, t)
			}
		}
		if len(added) > 0 {
			sn.State = sn.State.With(added...)
			log.Info("tables added to the config; snapshotting them while streaming", "tables", added)
		}
	}
	if sn.State != nil {
		for _, t := range sn.State.Tables {
			sn.Progress.Add(t.Table, true)
		}
	}
	return false
}

// TakeRequests moves the requested tables into State. A table already
// under way keeps its progress, unless the request asks for a reconcile:
// then it starts over.
func (sn *Manager) TakeRequests(log *slog.Logger) {
	sn.mu.Lock()
	reqs := sn.requests
	sn.requests = nil
	sn.mu.Unlock()
	for _, req := range reqs {
		if req.Reconcile {
			sn.Reconcile(req.Tables...)
			log.Info("incremental snapshot with reconcile requested", "tables", req.Tables)
			continue
		}
		for _, t := range req.Tables {
			if sn.State != nil && slices.ContainsFunc(sn.State.Tables, func(ts TableState) bool { return ts.Table == t && !ts.Done }) {
				continue
			}
			sn.State = sn.State.With(t)
			sn.Progress.Add(t, true)
			log.Info("incremental snapshot requested", "table", t)
		}
	}
}

// Reconcile queues tables for an incremental re-snapshot with reconcile,
// from their first row.
func (sn *Manager) Reconcile(tables ...string) {
	sn.State = sn.State.WithReconcile(tables...)
	for _, t := range tables {
		delete(sn.begun, t)
		sn.Progress.Restart(t, true)
	}
}

// TakeMarks returns the reconcile marks due, and forgets them. A source
// calls it as it hands a batch to Read, after the batch's last change:
// begin marks were queued before the rows they precede were read, and end
// marks after the last row was added.
func (sn *Manager) TakeMarks() []connectors.ReconcileMark {
	m := sn.marks
	sn.marks = nil
	return m
}

// begin queues table i's begin mark once per Open, if it is reconciled.
func (sn *Manager) begin(i int) {
	ts := sn.State.Tables[i]
	if !ts.Reconcile || sn.begun[ts.Table] {
		return
	}
	if sn.begun == nil {
		sn.begun = map[string]bool{}
	}
	sn.begun[ts.Table] = true
	sn.marks = append(sn.marks, connectors.ReconcileMark{Table: ts.Table, Resume: ts.After != nil})
}

// NextChunk returns the index in State of the table whose next chunk is
// due, or false when none is: a chunk is between its watermarks, no
// incremental snapshot is under way, or every table is read (State then
// becomes nil).
func (sn *Manager) NextChunk() (int, bool) {
	if sn.Window != nil || sn.State == nil || sn.Initial {
		return 0, false
	}
	i := slices.IndexFunc(sn.State.Tables, func(ts TableState) bool { return !ts.Done })
	if i < 0 {
		sn.State = nil
		return 0, false
	}
	return i, true
}

// StartTable records the start of table i's incremental snapshot, once,
// with estimate's count of its rows.
func (sn *Manager) StartTable(i int, estimate func() int64, log *slog.Logger) {
	sn.begin(i)
	ts := sn.State.Tables[i]
	if sn.Progress.Started(ts.Table) {
		return
	}
	sn.Progress.Add(ts.Table, true)
	sn.Progress.Start(ts.Table, estimate())
	log.Info("incremental snapshot of table started", "table", ts.Table, "resumed", ts.After != nil)
}

// SkipTable marks table i read without reading it. A reconciled table
// that is skipped gets no end mark, so nothing is tombstoned for it.
func (sn *Manager) SkipTable(i int) {
	sn.State = sn.State.Advanced(i, nil, true)
	sn.Progress.Finish(sn.State.Tables[i].Table)
}

// NewWindow returns the window of the next chunk of table i, described by
// t, with an ID no other chunk of this process has.
func (sn *Manager) NewWindow(i int, t *connectors.Table) *Window {
	if sn.runID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		sn.runID = hex.EncodeToString(b[:])
	}
	sn.seq++
	return &Window{ID: fmt.Sprintf("%s-%d", sn.runID, sn.seq), Index: i, Table: t}
}

// Add appends a row the chunk read.
func (w *Window) Add(row []any) {
	w.Rows = append(w.Rows, row)
	w.keys = append(w.keys, RowKey(w.Table, row))
}

// Opened records that the low watermark was streamed.
func (w *Window) Opened() {
	w.Open = true
	w.changed = map[string]bool{}
}

// Touch records the keys of a streamed change of table t, while the window
// is open and t is the chunk's table.
func (w *Window) Touch(t *connectors.Table, before, after []any) {
	if !w.Open || t.Name != w.Table.Name || t.Schema != w.Table.Schema {
		return
	}
	if before != nil {
		w.changed[RowKey(t, before)] = true
	}
	if after != nil {
		w.changed[RowKey(t, after)] = true
	}
}

// CloseWindow ends Window at its high watermark: it returns the rows no
// streamed change touched, to be emitted as snapshot reads at the
// watermark's place in the stream, and moves the table's progress on. A
// window whose low watermark was never streamed returns no rows and
// leaves the progress, so that the chunk is read again.
func (sn *Manager) CloseWindow(log *slog.Logger) [][]any {
	w := sn.Window
	sn.Window = nil
	if w == nil || !w.Open {
		return nil
	}
	kept := make([][]any, 0, len(w.Rows))
	for i, row := range w.Rows {
		if !w.changed[w.keys[i]] {
			kept = append(kept, row)
		}
	}
	ts := sn.State.Tables[w.Index]
	table := ts.Table
	sn.Progress.AddRows(table, len(w.Rows))
	sn.State = sn.State.Advanced(w.Index, w.Last, !w.Full)
	if !w.Full {
		if ts.Reconcile {
			sn.marks = append(sn.marks, connectors.ReconcileMark{Table: table, End: true})
			delete(sn.begun, table)
		}
		p := sn.Progress.Finish(table)
		log.Info("incremental snapshot of table read", "table", table, "rows", p.Rows,
			"took", p.Finished.Sub(p.Started).Round(time.Millisecond))
	}
	if sn.State.Done() {
		sn.State = nil
	}
	log.Debug("incremental snapshot chunk", "table", table, "rows", len(w.Rows), "emitted", len(kept), "changed_in_window", len(w.changed))
	return kept
}
