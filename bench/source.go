package main

import "context"

// Tables of the benchmark. Both have the shape
// items(id bigint pk, account int, name text, amount numeric(12,2), note text, created timestamptz, flag boolean),
// about 200 bytes a row.
const (
	// snapshotTable holds ROWS rows, loaded once, for the snapshot cases.
	snapshotTable = "items"
	// streamTable is re-created empty before every streaming case.
	streamTable = "stream_items"
	// bigRowTable is bigrows(id bigint pk, body text), re-created empty
	// before every bigrow case; its rows are bigRowBytes each.
	bigRowTable = "bigrows"
)

// bigRowRepeat copies of a 32-character MD5 make a row's body: 1,000,000
// bytes, within the default kafka.max_message_bytes (1,048,588).
const (
	bigRowRepeat = 31_250
	bigRowBytes  = 32 * bigRowRepeat
)

// source is one database under test.
type source interface {
	// Name is postgres or mariadb.
	Name() string
	Close() error
	// qualified is table as written in source.tables.
	qualified(table string) string
	// configSection is the body of the config's source section (indented
	// two spaces) for table.
	configSection(table string) string
	// topic is the topic liberator writes table's events to.
	topic(table string) string

	// ensureSnapshotTable loads snapshotTable with rows rows the first time.
	ensureSnapshotTable(ctx context.Context, rows int64) error
	// resetSnapshot removes what an earlier snapshot left behind (slots).
	resetSnapshot(ctx context.Context) error
	// bareSnapshotArgs are the bare program's arguments for a snapshot.
	bareSnapshotArgs() []string

	// resetStream re-creates streamTable empty and removes slots and
	// publications of earlier runs.
	resetStream(ctx context.Context) error
	// markBare records, before changes are written, where each of n bare
	// drains starts, and returns their arguments (a slot, or a binlog
	// position and server id, of their own).
	markBare(ctx context.Context, n int) ([][]string, error)
	// insertRange inserts ids from..from+n-1 into streamTable in
	// transactions of perTx rows.
	insertRange(ctx context.Context, from, n, perTx int64) error
	// newWriter opens a connection that inserts one row per transaction.
	newWriter(ctx context.Context) (insert func(id int64) error, close func(), err error)
	// resetBigRows re-creates bigRowTable empty and removes slots and
	// publications of earlier runs.
	resetBigRows(ctx context.Context) error
	// insertBigRows inserts ids 1..n into bigRowTable in one transaction.
	insertBigRows(ctx context.Context, n int64) error
	// nudge writes something the captured table does not see, for a
	// source that stores a position only once its log moves.
	nudge(ctx context.Context) error
	// serverCPU is the CPU seconds the whole database server has used so
	// far.
	serverCPU() (float64, error)
	// streamMeter starts following the CPU time of the threads that stream
	// the log to readers that connect from now on.
	streamMeter(ctx context.Context) (*streamMeter, error)
	// commitTSPrecise reports whether the commit_ts header of this source's
	// events has sub-millisecond precision.
	commitTSPrecise() bool
}
