package connectors

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
	// Never are captured tables, by their names in the config, whose rows
	// are never read by a snapshot, initial, incremental or reconciling:
	// outbox tables, whose rows are events that were published (or
	// deleted) as they were written, not state. They are streamed like the
	// others. The config fills it from the outbox section; it is no key of
	// its own.
	Never []string `yaml:"-"`
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
