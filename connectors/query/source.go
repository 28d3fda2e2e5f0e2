package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// DB is one database's side of query capture. The Source calls it from
// one goroutine at a time.
type DB interface {
	// Open connects.
	Open(ctx context.Context) error
	// Close releases the connections; it is safe after a failed Open.
	Close(ctx context.Context) error
	// Describe describes a plan's table, view or query as the catalog has
	// it now, keyed by Plan.Options.Key or else its primary key.
	Describe(ctx context.Context, p *Plan) (*connectors.Table, error)
	// BeginPoll begins a poll and returns, for each plan polled
	// incrementally, its horizon: the bound below which no row can still
	// be committed. Reads until EndPoll see rows as of BeginPoll or later.
	BeginPoll(ctx context.Context, plans []*Plan) ([]Bound, error)
	// Read reads one page: at most pg.Limit rows of pg.Plan after pg.After
	// (from the start when nil), below pg.Bound (no bound when nil),
	// ordered by the plan's order columns.
	Read(ctx context.Context, pg Page) ([]Row, error)
	// EndPoll ends the poll that BeginPoll began.
	EndPoll(ctx context.Context) error
}

// Observer is implemented by a DB whose horizon gets closer to the present
// the more often it looks at the database: the Source calls Observe
// between polls, ten times per poll interval (at most every second, at
// least 20ms apart).
type Observer interface {
	Observe(ctx context.Context) error
}

// Plan is how one table is read: its options, and what its description
// makes of them.
type Plan struct {
	// ID is the table's ID, "schema.name".
	ID string
	// Options are the table's entry of source.query.tables.
	Options TableOptions
	// Table is the table as last described.
	Table *connectors.Table
	// Order are the indexes into Table.Columns of the columns that order
	// the rows of an incremental read: the incrementing column; the
	// timestamp column and then the key; or the timestamp and then the
	// incrementing column.
	Order []int
	// SoftDelete is the index of the soft-delete column, or -1.
	SoftDelete int
}

// Incremental reports whether the plan is polled by a watermark.
func (p *Plan) Incremental() bool { return p.Options.Mode != Bulk }

// OrderOf returns the order columns of a read: the key for a full read,
// Order otherwise.
func (p *Plan) OrderOf(full bool) []int {
	if full {
		return p.Table.Key
	}
	return p.Order
}

// Bound is the horizon of an incremental read: only rows whose first order
// column is below Value (at most Value, when Inclusive) are read.
type Bound struct {
	// None says that no row is final yet: nothing is read.
	None bool
	// Value is in the DB's text form.
	Value     string
	Inclusive bool
}

// Page is one read.
type Page struct {
	Plan *Plan
	// Full is a read of the whole table in key order; otherwise the read
	// is in the plan's order, below Bound.
	Full  bool
	After []string
	Bound Bound
	Limit int
}

// Row is one row read: its values, aligned with Plan.Table.Columns, and its
// order columns in the DB's text form.
type Row struct {
	Values []any
	After  []string
	// Shown, when set, is After as a person reads it, for the row's
	// position header; After when nil.
	Shown []string
}

// Config configures a Source.
type Config struct {
	// Kind names the database in logs: postgres, mysql, mariadb.
	Kind string
	// Tables are the captured tables' IDs, in the config's order.
	Tables  []string
	Options Options
	// Canon turns a table name as the config writes it into its ID.
	Canon func(string) (string, error)
	// Snapshot is initial (default: tables are read from their first row)
	// or only (each table is read once, in full, then Read ends).
	Snapshot connectors.SnapshotMode
	// NewDB returns an unopened DB; Describe opens one of its own.
	NewDB func() DB
	// Check runs the preflight checks of query capture (Checker).
	Check  func(ctx context.Context) []connectors.Check
	Logger *slog.Logger
	// Memory bounds the bytes of one batch (connectors.Memory).
	Memory connectors.Memory
}

// Validate checks what the Source needs besides Options.Validate.
func (c Config) Validate() error {
	var errs []error
	if err := c.Options.Validate(c.Tables, c.Canon); err != nil {
		errs = append(errs, err)
	}
	switch c.Snapshot {
	case "", connectors.SnapshotInitial, connectors.SnapshotOnly:
	case connectors.SnapshotNever:
		errs = append(errs, errors.New("snapshot.mode: never is not available with source.capture: query (a poll reads every row past the table's watermark, and the first poll every row; use initial, or only to read each table once)"))
	default:
		errs = append(errs, fmt.Errorf("snapshot.mode: %q is not a mode (use initial or only)", c.Snapshot))
	}
	return errors.Join(errs...)
}

// Source is query-based capture over a DB.
type Source struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	db    DB
	plans []*Plan

	// The reader goroutine hands batches to Read through out; err is set
	// before out is closed.
	out    chan connectors.Batch
	done   chan struct{}
	cancel context.CancelFunc
	err    error

	// requested are the tables of RequestSnapshot, read in full at the
	// next poll.
	requestMu sync.Mutex
	requested map[string]bool

	// The reader goroutine's state.
	pos        Position        // as of the last batch made
	lastCP     []byte          // the last checkpoint made, encoded
	rowBytes   map[*Plan]int64 // the mean size of a plan's rows, once read
	batchBytes int64
	polling    bool
	tasks      []*task
	next       time.Time // when the next poll is due
	pollTime   time.Time
}

// task is one table's read within a poll.
type task struct {
	plan  *Plan
	full  bool
	bound Bound
	after []string
	began time.Time // a full read: when its begin mark was sent
}

var (
	_ connectors.Source            = (*Source)(nil)
	_ connectors.Describer         = (*Source)(nil)
	_ connectors.Checker           = (*Source)(nil)
	_ connectors.SnapshotRequester = (*Source)(nil)
)

// RequestSnapshot reads the tables in full at the next poll, with
// reconcile: every read in full tombstones the keys its table no longer
// has, whether asked for or not. The request is not stored: a restart
// before the read forgets it.
func (s *Source) RequestSnapshot(_ context.Context, req connectors.SnapshotRequest) error {
	if s.cfg.Snapshot == connectors.SnapshotOnly {
		return fmt.Errorf("%w: snapshot.mode only reads each table once and ends", connectors.ErrSnapshotRefused)
	}
	var ids []string
	for _, t := range req.Tables {
		id, err := s.cfg.Canon(t)
		if err == nil && !slices.Contains(s.cfg.Tables, id) {
			err = fmt.Errorf("%s is not in source.tables", id)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", connectors.ErrSnapshotRefused, err)
		}
		ids = append(ids, id)
	}
	s.requestMu.Lock()
	defer s.requestMu.Unlock()
	if s.requested == nil {
		s.requested = map[string]bool{}
	}
	for _, id := range ids {
		s.requested[id] = true
	}
	return nil
}

// takeRequested returns and forgets the tables whose full read was asked
// for.
func (s *Source) takeRequested() map[string]bool {
	s.requestMu.Lock()
	defer s.requestMu.Unlock()
	r := s.requested
	s.requested = nil
	return r
}

// Check runs the connector's checks of query capture.
func (s *Source) Check(ctx context.Context) []connectors.Check {
	if s.cfg.Check == nil {
		return nil
	}
	return s.cfg.Check(ctx)
}

// New validates cfg and returns a Source. It does no I/O.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Snapshot == "" {
		cfg.Snapshot = connectors.SnapshotInitial
	}
	s := &Source{cfg: cfg, opts: cfg.Options.WithDefaults(), log: cfg.Logger.With("source", cfg.Kind, "capture", "query")}
	for _, id := range cfg.Tables {
		t, _ := cfg.Options.Lookup(id, cfg.Canon)
		s.plans = append(s.plans, &Plan{ID: id, Options: t, SoftDelete: -1})
	}
	return s, nil
}

// Describe describes every table, view and query, over a connection of its
// own. It may be called before Open.
func (s *Source) Describe(ctx context.Context) ([]*connectors.Table, error) {
	db := s.cfg.NewDB()
	if err := db.Open(ctx); err != nil {
		return nil, errors.Join(err, db.Close(context.WithoutCancel(ctx)))
	}
	defer db.Close(context.WithoutCancel(ctx))
	var out []*connectors.Table
	var errs []error
	for _, p := range s.plans {
		probe := &Plan{ID: p.ID, Options: p.Options, SoftDelete: -1}
		if err := s.describe(ctx, db, probe); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, probe.Table)
	}
	return out, errors.Join(errs...)
}

// describe reads a plan's table and works out its order and soft-delete
// columns. A description of the same shape keeps the old *Table.
func (s *Source) describe(ctx context.Context, db DB, p *Plan) error {
	t, err := db.Describe(ctx, p)
	if err != nil {
		return err
	}
	if p.Table != nil && connectors.SameShape(p.Table, t) {
		return nil
	}
	key := "source.query.tables." + p.ID
	col := func(name, what string, kinds ...connectors.Kind) (int, error) {
		i := slices.IndexFunc(t.Columns, func(c connectors.Column) bool { return c.Name == name })
		if i < 0 {
			names := make([]string, len(t.Columns))
			for j, c := range t.Columns {
				names[j] = c.Name
			}
			return -1, fmt.Errorf("%s.%s: %q is not a column of %s (its columns: %s)", key, what, name, p.ID, strings.Join(names, ", "))
		}
		c := t.Columns[i]
		if !slices.Contains(kinds, c.Type.Kind) && !(c.Type.Kind == connectors.KindDecimal && c.Type.Scale == 0 && slices.Contains(kinds, connectors.KindInt64)) {
			return -1, fmt.Errorf("%s.%s: column %q of %s is %s, which cannot be a%s column", key, what, name, p.ID, c.SQLType, map[string]string{"timestamp": " timestamp", "incrementing": "n incrementing"}[what])
		}
		return i, nil
	}
	var order []int
	var errs []error
	tsKinds := []connectors.Kind{connectors.KindTimestamp, connectors.KindLocalTimestamp, connectors.KindDate}
	idKinds := []connectors.Kind{connectors.KindInt32, connectors.KindInt64}
	switch p.Options.Mode {
	case Incrementing:
		i, err := col(p.Options.Incrementing, "incrementing", idKinds...)
		errs = append(errs, err)
		order = []int{i}
	case Timestamp:
		i, err := col(p.Options.Timestamp, "timestamp", tsKinds...)
		errs = append(errs, err)
		order = append([]int{i}, t.Key...)
	case TimestampIncrementing:
		i, err := col(p.Options.Timestamp, "timestamp", tsKinds...)
		j, err2 := col(p.Options.Incrementing, "incrementing", idKinds...)
		errs = append(errs, err, err2)
		order = []int{i, j}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.Table, p.Order = t, order
	p.SoftDelete = -1
	if c := s.opts.SoftDelete.Column; c != "" {
		p.SoftDelete = slices.IndexFunc(t.Columns, func(col connectors.Column) bool { return col.Name == c })
	}
	return nil
}

// Open connects, describes every table and takes up the watermarks of
// resume.
func (s *Source) Open(ctx context.Context, resume []byte) error {
	s.pos = Position{Tables: map[string]Watermark{}}
	if resume != nil {
		p, err := ParsePosition(resume)
		if err != nil {
			return err
		}
		s.pos = p
	}
	s.db = s.cfg.NewDB()
	if err := s.db.Open(ctx); err != nil {
		return err
	}
	var errs []error
	for _, p := range s.plans {
		errs = append(errs, s.describe(ctx, s.db, p))
		if p.SoftDelete < 0 && s.opts.SoftDelete.Column != "" {
			s.log.Info("table has no soft-delete column: only the reconcile finds its deleted rows", "table", p.ID, "column", s.opts.SoftDelete.Column)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.lastCP = s.pos.Encode()
	s.rowBytes = map[*Plan]int64{}
	s.batchBytes = s.cfg.Memory.BatchBytes(queuedBatches)
	s.log.Info("query capture opened", "tables", len(s.plans), "poll_interval", s.opts.PollInterval, "position", s.pos.String())
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.out = make(chan connectors.Batch, queuedBatches)
	s.done = make(chan struct{})
	go s.run(rctx)
	return nil
}

// queuedBatches is how many batches the reader reads ahead of Read: the
// next page is read while the pipeline encodes and produces the last.
const queuedBatches = 2

// Read returns the next batch: one per page read. Every batch's checkpoint
// holds the watermarks of the rows in it and before it.
func (s *Source) Read(ctx context.Context) (connectors.Batch, error) {
	select {
	case b, ok := <-s.out:
		if !ok {
			return connectors.Batch{}, s.err
		}
		return b, nil
	case <-ctx.Done():
		return connectors.Batch{}, ctx.Err()
	}
}

// run is the reader goroutine: it polls the tables every poll interval and
// hands Read a batch per page.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	for {
		b, err := s.poll(ctx)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(err, io.EOF) {
				err = context.Canceled
			}
			s.err = err
			close(s.out)
			return
		}
		select {
		case s.out <- b:
		case <-ctx.Done():
			s.err = context.Canceled
			close(s.out)
			return
		}
	}
}

// poll polls until it has a batch to hand over.
func (s *Source) poll(ctx context.Context) (connectors.Batch, error) {
	for {
		if len(s.tasks) == 0 {
			if s.polling {
				s.polling = false
				if err := s.db.EndPoll(ctx); err != nil {
					return connectors.Batch{}, err
				}
				if b, ok := s.checkpoint(); ok {
					return b, nil
				}
			}
			if s.finished() {
				return connectors.Batch{}, io.EOF
			}
			if err := s.wait(ctx); err != nil {
				return connectors.Batch{}, err
			}
			if err := s.beginPoll(ctx); err != nil {
				return connectors.Batch{}, err
			}
			continue
		}
		b, err := s.readPage(ctx)
		if err != nil {
			return connectors.Batch{}, err
		}
		if len(b.Changes) > 0 || len(b.Reconcile) > 0 {
			return b, nil
		}
		if b, ok := s.checkpoint(); ok {
			return b, nil
		}
	}
}

// wait waits until the next poll is due, observing the database
// meanwhile if the DB is an Observer.
func (s *Source) wait(ctx context.Context) error {
	obs, _ := s.db.(Observer)
	every := min(max(s.opts.PollInterval/10, 20*time.Millisecond), time.Second)
	for {
		wait := time.Until(s.next)
		if wait <= 0 {
			return nil
		}
		if obs != nil {
			wait = min(wait, every)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		if obs != nil && time.Until(s.next) > 0 {
			if err := obs.Observe(ctx); err != nil {
				return err
			}
		}
	}
}

// finished reports whether snapshot mode only has read every table.
func (s *Source) finished() bool {
	if s.cfg.Snapshot != connectors.SnapshotOnly {
		return false
	}
	for _, p := range s.plans {
		if !s.pos.Tables[p.ID].Done {
			return false
		}
	}
	return true
}

// beginPoll describes the tables again (a changed table gets a new
// *Table, whose schemas the pipeline checks), decides which are read in
// full, and asks the DB for the horizons of the others.
func (s *Source) beginPoll(ctx context.Context) error {
	now := time.Now()
	s.next = now.Add(s.opts.PollInterval)
	s.pollTime = now.UTC()
	var incremental []*Plan
	var tasks []*task
	requested := s.takeRequested()
	for _, p := range s.plans {
		if err := s.describe(ctx, s.db, p); err != nil {
			return err
		}
		w := s.pos.Tables[p.ID]
		switch {
		case s.cfg.Snapshot == connectors.SnapshotOnly:
			if !w.Done {
				tasks = append(tasks, &task{plan: p, full: true})
			}
		case !p.Incremental():
			every := p.Options.Every
			if every == 0 {
				every = s.opts.PollInterval
			}
			if requested[p.ID] || w.Full.IsZero() || now.Sub(w.Full) >= every {
				tasks = append(tasks, &task{plan: p, full: true})
			}
		case requested[p.ID] || (s.opts.ReconcileEvery > 0 && !w.Full.IsZero() && now.Sub(w.Full) >= s.opts.ReconcileEvery):
			tasks = append(tasks, &task{plan: p, full: true})
		default:
			if w.Full.IsZero() {
				// The first read of a table is the reconcile's baseline:
				// nothing can be missing from a topic it fills.
				w.Full = now
				s.pos.Tables[p.ID] = w
			}
			incremental = append(incremental, p)
			tasks = append(tasks, &task{plan: p, after: slices.Clone(w.After)})
		}
	}
	bounds, err := s.db.BeginPoll(ctx, incremental)
	if err != nil {
		return err
	}
	s.polling = true
	i := 0
	for _, t := range tasks {
		if !t.full {
			t.bound = bounds[i]
			i++
			if t.bound.None {
				continue
			}
		}
		s.tasks = append(s.tasks, t)
	}
	return nil
}

// readPage reads the next page of the first task and turns its rows into
// changes.
func (s *Source) readPage(ctx context.Context) (connectors.Batch, error) {
	t := s.tasks[0]
	p := t.plan
	var b connectors.Batch
	if t.full && t.began.IsZero() {
		t.began = time.Now()
		b.Reconcile = append(b.Reconcile, connectors.ReconcileMark{Table: p.Table.ID()})
		s.log.Debug("full read begins", "table", p.ID)
	}
	limit := s.pageLimit(p)
	rows, err := s.db.Read(ctx, Page{Plan: p, Full: t.full, After: t.after, Bound: t.bound, Limit: limit})
	if err != nil {
		return b, fmt.Errorf("poll table %s: %w", p.ID, err)
	}
	op := connectors.OpUpdate
	switch {
	case t.full:
		op = connectors.OpRead
	case p.Options.Mode == Incrementing:
		op = connectors.OpCreate
	}
	b.Changes = make([]connectors.Change, 0, len(rows))
	for _, r := range rows {
		shown := r.Shown
		if shown == nil {
			shown = r.After
		}
		c := connectors.Change{Op: op, Table: p.Table, After: r.Values, Pos: RowPosition{Table: p.ID, After: shown}, CommitTime: s.commitTime(p, t.full, r.Values)}
		if p.SoftDelete >= 0 && deleted(r.Values[p.SoftDelete]) {
			c.Op, c.Before, c.After = connectors.OpDelete, r.Values, nil
		}
		b.Changes = append(b.Changes, c)
		t.after = r.After
	}
	if len(b.Changes) > 0 {
		var size int64
		for i := range b.Changes {
			size += b.Changes[i].Size()
		}
		s.rowBytes[p] = size / int64(len(b.Changes))
	}
	w := s.pos.Tables[p.ID]
	if !t.full && len(rows) > 0 {
		w.After = slices.Clone(t.after)
	}
	if len(rows) < limit {
		s.tasks = s.tasks[1:]
		if t.full {
			b.Reconcile = append(b.Reconcile, connectors.ReconcileMark{Table: p.Table.ID(), End: true})
			w.Full = t.began
			if s.cfg.Snapshot == connectors.SnapshotOnly {
				w.Done = true
			}
			s.log.Debug("full read done", "table", p.ID, "took", time.Since(t.began).Round(time.Millisecond))
		}
	}
	s.pos.Tables[p.ID] = w
	b.Checkpoint = s.pos.clone()
	s.lastCP = s.pos.Encode()
	return b, nil
}

// firstPage is the rows of a plan's first page, before the size of its
// rows is known.
const firstPage = 64

// pageLimit is how many rows the next page of p reads: page_size, or fewer
// when so many rows of p's mean size would pass a batch's share of the
// source's memory (connectors.Memory).
func (s *Source) pageLimit(p *Plan) int {
	size, ok := s.rowBytes[p]
	if !ok {
		return min(s.opts.PageSize, firstPage)
	}
	return int(min(max(s.batchBytes/max(size, 1), 1), int64(s.opts.PageSize)))
}

// checkpoint returns a batch of the current position alone, when it moved
// since the last batch.
func (s *Source) checkpoint() (connectors.Batch, bool) {
	enc := s.pos.Encode()
	if string(enc) == string(s.lastCP) {
		return connectors.Batch{}, false
	}
	s.lastCP = enc
	return connectors.Batch{Checkpoint: s.pos.clone()}, true
}

// commitTime is a row's time: its timestamp column in the timestamp
// modes, else the poll's time.
func (s *Source) commitTime(p *Plan, full bool, row []any) time.Time {
	if full || (p.Options.Mode != Timestamp && p.Options.Mode != TimestampIncrementing) {
		return s.pollTime
	}
	switch v := row[p.Order[0]].(type) {
	case int64:
		return time.UnixMicro(v).UTC()
	case int32:
		return time.UnixMicro(int64(v) * 86_400_000_000).UTC()
	}
	return s.pollTime
}

// deleted reports whether a soft-delete column's value marks its row
// deleted: not NULL, and not false.
func deleted(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	return v != nil
}

// Ack does nothing: the database keeps nothing for query capture, and the
// watermarks live in the offsets topic.
func (s *Source) Ack(context.Context, connectors.Position) error { return nil }

// Close stops the reader and closes the connections. Batches not yet
// returned by Read are dropped; they are read again after a restart,
// since their watermarks were never stored.
func (s *Source) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.db == nil {
		return nil
	}
	return s.db.Close(ctx)
}

// LogCaptureChecks turns the checks of a connector's log capture into what
// the check of its query capture reports: each failure as a warning of
// what log capture would need, or one line saying that it would work too.
func LogCaptureChecks(checks []connectors.Check) []connectors.Check {
	var out []connectors.Check
	for _, c := range checks {
		if c.Err != nil {
			out = append(out, connectors.Check{Name: "log capture (source.capture: log) would need: " + c.Name, Err: c.Err, Warning: true})
		}
	}
	if len(out) == 0 {
		out = append(out, connectors.Check{Name: "log capture (source.capture: log) would work too, and sees every change and every delete at once"})
	}
	return out
}
