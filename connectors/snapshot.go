package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"
)

// DefaultChunkSize is the number of rows a snapshot reads in one chunk when
// SnapshotOptions.ChunkSize is zero.
const DefaultChunkSize = 8192

// SnapshotOptions are the snapshot section's keys that tune how tables are
// read. The zero value means the defaults.
type SnapshotOptions struct {
	// Parallelism is how many chunks of the initial snapshot are read at
	// once, each on its own database connection. Default: the number of
	// CPU cores. Incremental snapshots (while streaming) read one chunk at
	// a time whatever this says.
	Parallelism int `yaml:"parallelism"`
	// ChunkSize is how many rows one chunk holds. A chunk is the unit of
	// progress: a snapshot that is interrupted starts again after the last
	// chunk Kafka acknowledged. Default DefaultChunkSize (8192).
	ChunkSize int `yaml:"chunk_size"`
	// SignalTable is the table, as database.table, in which a MySQL or
	// MariaDB source writes the watermarks of incremental snapshots. It is
	// created if missing. Default "liberator.signal". PostgreSQL writes its
	// watermarks with pg_logical_emit_message and ignores this key.
	SignalTable string `yaml:"signal_table"`
}

// WithDefaults returns o with zero fields set to their defaults.
func (o SnapshotOptions) WithDefaults() SnapshotOptions {
	if o.Parallelism == 0 {
		o.Parallelism = runtime.NumCPU()
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.SignalTable == "" {
		o.SignalTable = "liberator.signal"
	}
	return o
}

// Validate reports every bad value, each naming its key.
func (o SnapshotOptions) Validate() error {
	var errs []error
	if o.Parallelism < 0 || o.Parallelism > 256 {
		errs = append(errs, fmt.Errorf("snapshot.parallelism: %d is out of range (use 1 to 256, or leave it out for the number of cores)", o.Parallelism))
	}
	if o.ChunkSize < 0 || o.ChunkSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("snapshot.chunk_size: %d is out of range (use 1 to 1000000, or leave it out for %d)", o.ChunkSize, DefaultChunkSize))
	}
	return errors.Join(errs...)
}

// SnapshotProgress is what a source reports about the snapshots it is
// taking or has taken since it opened.
type SnapshotProgress struct {
	// Tables are the tables of the current snapshots (and of the finished
	// ones since Open), in the order they are read.
	Tables []TableProgress `json:"tables"`
}

// Running reports whether some table's snapshot has not finished.
func (p SnapshotProgress) Running() bool {
	for _, t := range p.Tables {
		if !t.Done {
			return true
		}
	}
	return false
}

// TableProgress is one table's snapshot progress.
type TableProgress struct {
	// Table is "schema.name".
	Table string `json:"table"`
	// Incremental is true for a snapshot read while streaming (watermarks),
	// false for the initial snapshot read before streaming.
	Incremental bool `json:"incremental"`
	// Rows counts the rows read since the source opened; a resumed
	// snapshot counts from zero.
	Rows int64 `json:"rows"`
	// Estimated is the table's row count from the database's statistics
	// (PostgreSQL pg_class.reltuples, MySQL information_schema.TABLES), or
	// -1 when the statistics have none.
	Estimated int64 `json:"estimated"`
	// Started is when this source began reading the table; zero while it
	// waits its turn.
	Started time.Time `json:"started"`
	// Finished is when the last chunk was read; zero until then.
	Finished time.Time `json:"finished"`
	// Done is true once every chunk has been read.
	Done bool `json:"done"`
}

// Rate is the rows read per second since Started (until Finished, once
// done), or 0 before the first row.
func (t TableProgress) Rate(now time.Time) float64 {
	if t.Started.IsZero() || t.Rows == 0 {
		return 0
	}
	end := now
	if !t.Finished.IsZero() {
		end = t.Finished
	}
	secs := end.Sub(t.Started).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(t.Rows) / secs
}

// ETA is the estimated time left, from the estimate and the rate; ok is
// false when either is unknown or the table is done. A table that has
// outgrown its estimate reports zero.
func (t TableProgress) ETA(now time.Time) (d time.Duration, ok bool) {
	rate := t.Rate(now)
	if t.Done || t.Estimated < 0 || rate <= 0 {
		return 0, false
	}
	left := t.Estimated - t.Rows
	if left <= 0 {
		return 0, true
	}
	return time.Duration(float64(left) / rate * float64(time.Second)), true
}

// SnapshotProgressReporter is implemented by sources that report snapshot
// progress. SnapshotProgress may be called from any goroutine, at any time
// after Open.
type SnapshotProgressReporter interface {
	SnapshotProgress() SnapshotProgress
}

// SnapshotRequester is implemented by sources that can snapshot tables
// while streaming (incremental snapshots with watermarks).
type SnapshotRequester interface {
	// RequestSnapshot queues tables for an incremental snapshot. It returns
	// at once; the rows follow in the stream, and the request is durable
	// from the first position stored after it. A table already being
	// snapshotted is not queued twice, unless the request asks for a
	// reconcile. It returns an error wrapping ErrSnapshotRefused when a
	// table is not captured or the source is not streaming. It may be
	// called from any goroutine after Open.
	RequestSnapshot(ctx context.Context, req SnapshotRequest) error
}

// SnapshotRequest asks for an incremental snapshot.
type SnapshotRequest struct {
	// Tables are "schema.name" as in the config.
	Tables []string
	// Reconcile re-reads the tables from their first row and then
	// tombstones the keys that their topics hold but the tables no longer
	// do (see ReconcileMark).
	Reconcile bool
}

// ErrSnapshotRefused is wrapped by RequestSnapshot's errors for a request
// that cannot be served as asked: a table that is not captured, or a source
// that is not streaming (snapshot mode only).
var ErrSnapshotRefused = errors.New("snapshot request refused")

// SnapshotTracker keeps the progress a source reports through
// SnapshotProgressReporter. Its methods may be called from any goroutine.
// The zero value is ready to use.
type SnapshotTracker struct {
	mu     sync.Mutex
	tables []TableProgress
}

// Add registers a table that waits for its snapshot. A table registered
// before starts over if its last snapshot had finished.
func (p *SnapshotTracker) Add(table string, incremental bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		if p.tables[i].Done {
			p.tables[i] = TableProgress{Table: table, Incremental: incremental, Estimated: -1}
		}
		return
	}
	p.tables = append(p.tables, TableProgress{Table: table, Incremental: incremental, Estimated: -1})
}

func (p *SnapshotTracker) find(table string) int {
	return slices.IndexFunc(p.tables, func(t TableProgress) bool { return t.Table == table })
}

// Restart registers a table whose snapshot starts over from its first row.
func (p *SnapshotTracker) Restart(table string, incremental bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := TableProgress{Table: table, Incremental: incremental, Estimated: -1}
	if i := p.find(table); i >= 0 {
		p.tables[i] = tp
		return
	}
	p.tables = append(p.tables, tp)
}

// Start marks a registered table as being read, with its estimated row
// count (-1 when unknown). A table already started keeps its start.
func (p *SnapshotTracker) Start(table string, estimated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 && p.tables[i].Started.IsZero() {
		p.tables[i].Started = time.Now()
		p.tables[i].Estimated = estimated
	}
}

// Started reports whether a table is being read or was read.
func (p *SnapshotTracker) Started(table string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	return i >= 0 && !p.tables[i].Started.IsZero()
}

// AddRows counts rows read from a table.
func (p *SnapshotTracker) AddRows(table string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		p.tables[i].Rows += int64(n)
	}
}

// Finish marks a table's snapshot as done and returns its progress.
func (p *SnapshotTracker) Finish(table string) TableProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	if i < 0 {
		return TableProgress{Table: table}
	}
	p.tables[i].Done = true
	p.tables[i].Finished = time.Now()
	return p.tables[i]
}

// Progress returns a copy of the progress.
func (p *SnapshotTracker) Progress() SnapshotProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return SnapshotProgress{Tables: slices.Clone(p.tables)}
}

// ChunkFrontier follows the chunks of an initial snapshot that readers
// read in parallel and in any order. A table's progress moves past a
// chunk only once every chunk before it is read too, so the checkpoints
// a source returns move forward in order.
type ChunkFrontier struct {
	progress *SnapshotTracker
	log      *slog.Logger
	tables   map[int]*chunkFront
}

type chunkFront struct {
	next int              // the first chunk not yet read
	read map[int][]string // the last keys of chunks read ahead of next
	rows int
	took time.Time
}

// NewChunkFrontier returns a frontier that counts rows in progress and
// logs each table it finishes.
func NewChunkFrontier(progress *SnapshotTracker, log *slog.Logger) *ChunkFrontier {
	return &ChunkFrontier{progress: progress, log: log, tables: map[int]*chunkFront{}}
}

func (f *ChunkFrontier) front(i int) *chunkFront {
	fr := f.tables[i]
	if fr == nil {
		fr = &chunkFront{read: map[int][]string{}, took: time.Now()}
		f.tables[i] = fr
	}
	return fr
}

// AddRows counts n rows read of table i of st.
func (f *ChunkFrontier) AddRows(st *SnapshotState, i, n int) {
	f.front(i).rows += n
	f.progress.AddRows(st.Tables[i].Table, n)
}

// ChunkRead records chunk seq of table i, whose last key is hi (nil for
// the table's last chunk), as read. It returns st advanced past every
// chunk now read without a gap before it, and whether it moved.
func (f *ChunkFrontier) ChunkRead(st *SnapshotState, i, seq int, hi []string) (*SnapshotState, bool) {
	fr := f.front(i)
	fr.read[seq] = hi
	moved := false
	for {
		last, ok := fr.read[fr.next]
		if !ok {
			return st, moved
		}
		delete(fr.read, fr.next)
		fr.next++
		moved = true
		st = st.Advanced(i, last, last == nil)
		if last == nil {
			table := st.Tables[i].Table
			p := f.progress.Finish(table)
			f.log.Info("snapshot of table read", "table", table, "rows", fr.rows, "took", time.Since(fr.took).Round(time.Millisecond),
				"rows_per_second", int64(p.Rate(time.Now())))
		}
	}
}
