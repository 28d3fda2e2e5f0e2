// Package connectors defines the contract between a source connector and the
// rest of liberator: a Source yields Changes in commit order, described by
// neutral Table metadata, and learns through Ack which position Kafka has made
// durable.
//
// A connector knows its database's protocol and nothing of Kafka or Avro. It
// hands rows over as []any in the neutral value forms listed on Kind.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Op is what a Change did to its row. The values are the bytes written in the
// "op" header of every event.
type Op byte

const (
	// OpRead is a row read by a snapshot.
	OpRead Op = 'r'
	// OpCreate is an INSERT.
	OpCreate Op = 'c'
	// OpUpdate is an UPDATE.
	OpUpdate Op = 'u'
	// OpDelete is a DELETE. Its event is a tombstone.
	OpDelete Op = 'd'
	// OpMessage is a message that the database wrote into its log without
	// a row (a PostgreSQL logical decoding message). Its Change has no
	// Table and carries Message.
	OpMessage Op = 'm'
)

func (o Op) String() string { return string(rune(o)) }

// Change is one row-level change, in the commit order of its source.
type Change struct {
	Op Op
	// Table describes the row at the moment of the change. A source hands out
	// the same *Table pointer for as long as the table's shape is unchanged, so
	// that consumers may cache per pointer; a shape change yields a new pointer.
	Table *Table
	// After is the row after the change, aligned with Table.Columns. It is nil
	// for OpDelete. It never holds a placeholder for a value the source did
	// not send (such as an unchanged TOAST value): the source resolves those.
	After []any
	// Before holds at least the key columns of the row before the change,
	// aligned with Table.Columns (other entries may be nil). It is set for
	// OpDelete, and for OpUpdate when the update changed the key; nil otherwise.
	Before []any
	// Pos is the source position of the change (for PostgreSQL, the LSN of
	// the commit; for MySQL, the GTID or binlog file:offset of the event).
	// It is informative (the "pos" header); resumption uses Batch.Checkpoint.
	Pos Position
	// CommitTime is the commit time of the change's transaction; for a
	// snapshot read, the time of the snapshot.
	CommitTime time.Time
	// TxID identifies the transaction (a PostgreSQL xid, a MySQL GTID or xid).
	// It is empty for snapshot reads.
	TxID string
	// Message is set for OpMessage, and only then.
	Message *Message
}

// Message is a message written into the database's log, as PostgreSQL's
// pg_logical_emit_message(transactional, prefix, content) writes it. A
// source hands over only the messages of the prefixes it was configured
// with.
type Message struct {
	// Prefix is the message's prefix, which says what it is.
	Prefix string
	// Content is the message's body, as written.
	Content []byte
	// Transactional is true for a message written as part of its
	// transaction: it arrives between the transaction's changes, at its
	// place, and only if the transaction committed. A non-transactional
	// message arrives when it is written, whatever becomes of the
	// transaction that wrote it; it has no TxID.
	Transactional bool
}

// KeyChanged reports whether an update moved the row to a new primary key.
func (c *Change) KeyChanged() bool { return c.Op == OpUpdate && c.Before != nil }

// Batch is what Source.Read returns: changes in commit order, and the point
// from which a restart may resume once all of them are in Kafka.
type Batch struct {
	Changes []Change
	// Checkpoint, when non-nil, is a position from which a restarted source
	// resumes without losing any change of this or an earlier batch. It is
	// nil when the batch ends inside a transaction or inside a snapshot that
	// cannot be resumed at this point.
	Checkpoint Position
	// Reconcile marks where a re-snapshot with reconcile of a table begins
	// and ends (see ReconcileMark). Begin marks apply before the batch's
	// Changes, end marks after them.
	Reconcile []ReconcileMark
	// Tables are the tables the source began to capture since the last
	// batch while it runs (those that source.tables patterns take after
	// Open), described as their changes and snapshot rows will describe
	// them: with the same *Table for as long as the shape holds. They are
	// announced before the batch's Changes: their topics are created and
	// their schemas registered, so that a table's first change waits on
	// neither. A source hands them over as soon as it takes the tables,
	// in a batch of their own if need be (Tables alone, with no Changes
	// and a nil Checkpoint); the tables it captures from Open on are not
	// listed (see Describer).
	Tables []*Table
}

// ReconcileMark brackets the re-snapshot of a table that a source takes
// after a gap in its log (a lost slot or binary log, a slot that moved
// ahead, a reset) or on request. Rows deleted during the gap left no
// change behind, so the sink cannot learn of them from the stream: at the
// end mark it tombstones every key that its topic still holds but that
// neither the re-snapshot nor the stream has written since the begin mark.
//
// A source emits a begin mark before the first row of the table's
// re-snapshot in each Open, and an end mark after its last row. It records
// the table's reconcile in its positions, so that a re-snapshot resumed
// after a restart ends with its end mark too.
type ReconcileMark struct {
	// Table is the table, "schema.name" as in the config.
	Table string
	// End is false for the begin mark, true for the end mark.
	End bool
	// Resume is set on a begin mark when the re-snapshot continues from a
	// stored position after a restart, rather than starting from the
	// table's first row: the sink then keeps the begin point it recorded
	// before the restart.
	Resume bool
}

// Position is a point in a source's change stream: an LSN, a binlog file and
// offset, a GTID set, or a snapshot's progress. Each connector has its own
// concrete type with a parser; the rest of liberator treats it as opaque.
type Position interface {
	// String is the human-readable form, used in logs and headers.
	String() string
	// Equal reports whether o is the same position.
	Equal(o Position) bool
	// Encode returns the persistent form that the connector's Open accepts
	// back as resume state.
	Encode() []byte
}

// Event is what the pipeline hands a sink: one record of an entity topic,
// its key and value already encoded. It knows nothing of the sink's wire
// format; the sink turns it into a record with headers.
type Event struct {
	Topic string
	Key   []byte
	// Value is nil for a tombstone.
	Value []byte
	// Op is the change's operation; OpDelete for every tombstone.
	Op Op
	// Pos, TxID and CommitTime are the change's (see Change).
	Pos        Position
	TxID       string
	CommitTime time.Time
	// Reconcile marks the tombstone of a key that a reconcile found gone
	// from its table.
	Reconcile bool
	// Headers are the event's own headers, after those every event has
	// (the op, the commit time, the position and the transaction): an
	// outbox event's id and type, for instance. Nil for entity events.
	Headers []Header
	// Timestamp, when not zero, is the record's timestamp in place of
	// CommitTime (an outbox's timestamp column).
	Timestamp time.Time
}

// Header is one header of an Event.
type Header struct {
	Key   string
	Value []byte
}

// Source is a change-data-capture source connector.
//
// The methods are called in this order: Open once, then Read repeatedly from
// one goroutine. Ack may be called from another goroutine concurrently with
// Read. Close is called once, after Read has returned for the last time;
// it discards changes that were read but never returned.
type Source interface {
	// Open connects, checks that the database can serve the configured
	// tables, and prepares to read. resume is the last Position.Encode that
	// Kafka acknowledged, or nil when there is none.
	Open(ctx context.Context, resume []byte) error
	// Read blocks until it has at least one change, a checkpoint or a newly
	// captured table (Batch.Tables) to report, and returns them. It returns io.EOF when the source is finished (after
	// a snapshot in snapshot-only mode). Batches are returned in order, and
	// a batch's slices are not reused by the source after Read returns,
	// unless the caller hands the batch back (Recycler).
	Read(ctx context.Context) (Batch, error)
	// Ack tells the source that every change up to and including the batch
	// whose Checkpoint is pos is durable in Kafka. Acks arrive in checkpoint
	// order. A source must not let its server discard anything past pos
	// before Ack (for PostgreSQL: confirmed_flush_lsn never passes pos).
	Ack(ctx context.Context, pos Position) error
	// Close releases the connections. It is safe to call after a failed Open.
	Close(ctx context.Context) error
}

// Identifier is implemented by sources that can name the stream they read,
// so that a stored position is never used against another server, database
// or slot. The pipeline stores the identity beside each position and
// refuses to resume from a position of another identity.
type Identifier interface {
	// Identity returns a stable, printable name of the stream: for
	// PostgreSQL, the system identifier, database and slot; for MySQL, the
	// server's UUID. It may connect; it is called before Open.
	Identity(ctx context.Context) (string, error)
}

// ErrStreamWithoutPosition is wrapped by Open's error when no position is
// stored but the server keeps a stream for this pipeline (a PostgreSQL slot
// of the configured name). Liberator did not create it in this run, so it
// cannot tell what was consumed from it: the offsets topic was deleted, the
// pipeline's name changed, or it moved to another Kafka cluster. Starting
// over would keep the rows deleted meanwhile in the topics for good; the
// way on is liberator reset, which re-snapshots with reconcile.
var ErrStreamWithoutPosition = errors.New("no position is stored, but the server keeps a stream for this pipeline")

// ErrGap is wrapped by Open's error when the server's stream has moved past
// the stored position (a PostgreSQL slot advanced by another consumer or an
// operator, or dropped and created again), so that the changes in between
// cannot be read. The message names both points and the choices.
var ErrGap = errors.New("the stream has moved past the stored position")

// Resetter is implemented by sources that can start over after their
// stream was lost or moved: liberator reset.
type Resetter interface {
	// Reset discards what the server keeps for the stream (PostgreSQL: the
	// replication slot) and returns the position to store in its place.
	// Opened from that position, the source streams from the server's
	// current point and re-snapshots every table with reconcile.
	Reset(ctx context.Context) (Position, error)
}

// Table describes one captured table at one moment in its history.
type Table struct {
	// Schema is the PostgreSQL schema or the MySQL database.
	Schema string
	// Name is the table name.
	Name string
	// Columns are the table's columns in their ordinal order.
	Columns []Column
	// Key holds the indexes into Columns of the primary-key columns, in key
	// order. It is never empty for a captured table.
	Key []int
}

// ID is "schema.name", the form used in config and messages, with a
// part that holds a dot, a quote or a backtick quoted (see TableID).
func (t *Table) ID() string { return TableID(t.Schema, t.Name) }

// Column is one column of a Table.
type Column struct {
	Name string
	Type Type
	// Nullable is false for NOT NULL columns (and key columns).
	Nullable bool
	// SQLType is the database's own spelling of the type, as in
	// "numeric(12,2)" or "int(10) unsigned"; it is recorded in the schema's
	// field doc and in error messages.
	SQLType string
	// Default is the neutral value form (see Kind) of a constant SQL
	// default, nil if the column has none or its default is not a constant
	// (a function call such as now(), a sequence, an expression). Schema
	// derivation makes it the Avro field's default, so that adding a column
	// with a default is a compatible schema change.
	Default any
}

// Type is a column's neutral type.
type Type struct {
	Kind Kind
	// Precision and Scale are set for KindDecimal.
	Precision, Scale int
	// Elem is the element type of a KindArray.
	Elem *Type
}

// Kind is a neutral column type. Each kind has exactly one Go value form,
// which a source must produce in Change.After and Change.Before. A nil value
// is SQL NULL, for every kind; a BadValue is a value the form cannot hold.
type Kind uint8

const (
	KindInvalid Kind = iota
	// KindBool values are bool.
	KindBool
	// KindInt32 values are int32.
	KindInt32
	// KindInt64 values are int64.
	KindInt64
	// KindFloat32 values are float32 (NaN and infinities allowed).
	KindFloat32
	// KindFloat64 values are float64 (NaN and infinities allowed).
	KindFloat64
	// KindDecimal values are string: plain decimal text with an optional
	// sign and fraction, no exponent ("-12.30", "7"). The value must fit
	// Type.Precision and Type.Scale exactly; nothing is rounded. A source
	// hands over a value that has no such form (PostgreSQL's NaN) as its
	// text all the same, so that the encoder refuses it as a bad row that
	// names the column rather than the source failing to read on.
	KindDecimal
	// KindString values are string (valid UTF-8).
	KindString
	// KindUUID values are string in the canonical 8-4-4-4-12 form.
	KindUUID
	// KindJSON values are string holding JSON text.
	KindJSON
	// KindBytes values are []byte.
	KindBytes
	// KindDate values are int32 days since 1970-01-01 (negative before).
	KindDate
	// KindTimestamp values are int64 microseconds since the Unix epoch, UTC
	// (an instant: PostgreSQL timestamptz, MySQL TIMESTAMP).
	KindTimestamp
	// KindLocalTimestamp values are int64 microseconds since 1970-01-01
	// 00:00 of the wall clock, with no time zone (timestamp, DATETIME).
	KindLocalTimestamp
	// KindTime values are int64 microseconds since midnight (0 to 24h).
	KindTime
	// KindArray values are []any whose elements have the form of Type.Elem
	// (nil for a NULL element).
	KindArray
	// KindGeometry values are Geometry: the shape as OGC well-known binary
	// and its spatial reference system id.
	KindGeometry
)

var kindNames = [...]string{"invalid", "bool", "int32", "int64", "float32", "float64", "decimal", "string", "uuid", "json", "bytes", "date", "timestamp", "local-timestamp", "time", "array", "geometry"}

// Geometry is the value form of KindGeometry.
type Geometry struct {
	// WKB is the shape in OGC well-known binary, never nil.
	WKB []byte
	// SRID is the spatial reference system id; 0 when the geometry has
	// none (MySQL's default, the Cartesian plane with no units).
	SRID int32
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// BadValue stands in a row for a value that a source read but that the
// value form of its column's kind cannot hold: a PostgreSQL timestamp after
// 294247-01-10, which int64 microseconds since 1970 cannot count, or a
// multi-dimensional array. A source hands it over in place of the value, in
// a column of any kind (an array element too), so that the encoder refuses
// the row as a bad row that names the column (errors.on_bad_row): the value
// is never wrapped, truncated or clamped, and the source reads on.
type BadValue struct {
	// Text is the value as the database prints it.
	Text string
	// Reason says why the kind cannot hold it, as "outside the range of an
	// Avro timestamp-micros (...)"; the encoder's error reads "<kind> value
	// <Text> is <Reason>".
	Reason string
}

func (v BadValue) String() string { return fmt.Sprintf("%q (%s)", v.Text, v.Reason) }

// ErrUnsupportedType is wrapped by errors about a column type that liberator
// cannot carry.
var ErrUnsupportedType = errors.New("unsupported column type")

// ErrSourceBusy is wrapped by a source's error when another client holds
// the stream this source needs: a PostgreSQL replication slot active for
// another process, or a MySQL binlog connection displaced by another with
// the same server_id. It is not retryable in itself (two pipelines
// configured alike would displace each other for ever); a standby that
// has just become active (ha.mode standby) retries it with backoff while
// the replica it replaces lets go.
var ErrSourceBusy = errors.New("another client streams from the source with this pipeline's slot or replica id")

// RetryableError marks an error after which the same operation may succeed
// when tried again, such as a lost connection. The daemon retries those with
// backoff and exits on every other error.
type RetryableError struct{ Err error }

func (e *RetryableError) Error() string { return e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// MarkRetryable wraps err so that IsRetryable reports true. It returns nil
// for a nil err.
func MarkRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &RetryableError{Err: err}
}

// IsRetryable reports whether err, or an error it wraps, is marked retryable.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// SnapshotMode says when a source reads its tables' existing rows.
type SnapshotMode string

const (
	// SnapshotInitial reads the tables once, when there is no resume
	// position, then streams. It is the default.
	SnapshotInitial SnapshotMode = "initial"
	// SnapshotNever only streams, from the current end of the log when there
	// is no resume position.
	SnapshotNever SnapshotMode = "never"
	// SnapshotOnly reads the tables, records where streaming must begin, and
	// ends (Read returns io.EOF).
	SnapshotOnly SnapshotMode = "only"
)

// Valid reports whether m is one of the defined modes.
func (m SnapshotMode) Valid() bool {
	return m == SnapshotInitial || m == SnapshotNever || m == SnapshotOnly
}

// Lag is how far a source is behind its database.
type Lag struct {
	// Bytes is the distance from the position Kafka has acknowledged to the
	// end of the database's log (WAL bytes, or binlog bytes when both are in
	// one file), or -1 when unknown.
	Bytes int64
	// LastCommit is the commit time of the newest transaction seen, zero
	// before the first.
	LastCommit time.Time
}

// LagReporter is implemented by sources that know their lag. It may be
// called from any goroutine.
type LagReporter interface {
	Lag() Lag
}

// Describer is implemented by sources that can describe their configured
// tables as they are now, before Open and without changing anything, so
// that liberator checks its entity mapping against them at start rather
// than when a table's first change arrives. Describe opens its own
// connection and may run concurrently with nothing else of the source.
type Describer interface {
	Describe(ctx context.Context) ([]*Table, error)
}

// Recycler is a Source that takes back the batches its caller is done
// with, to fill their Changes slice again rather than allocate one per
// batch. The caller hands a batch back with Recycle once nothing refers to
// its Changes any more: every change encoded, none of them kept. The rows
// the changes point to are not reused. Recycle is called from the
// goroutine that calls Read, and ignores a batch the source did not lend.
type Recycler interface {
	Recycle(b Batch)
}

// Check is one preflight check and its outcome.
type Check struct {
	// Name says what was checked, as in "wal_level is logical".
	Name string
	// Err is nil when the check passed; otherwise it says what is wrong and
	// how to fix it.
	Err error
	// Warning marks an Err that does not stop liberator from running, but
	// costs something or would under other settings: a poll without an
	// index, what log capture would need from a user that only reads.
	Warning bool
}

// Checker is implemented by sources that can check, without changing
// anything, that the database can serve them: settings, privileges, tables.
// Check reports every problem, not only the first. Open runs the same checks
// implicitly.
type Checker interface {
	Check(ctx context.Context) []Check
}

// NetworkLost reports whether err is what a cut connection produces at the
// network level, whatever the database: the peer closed it (EOF), reset or
// refused it, the pipe broke, or the network failed or timed out. A
// connector adds its own server's error codes for a restart.
func NetworkLost(err error) bool {
	var netErr net.Error
	return errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr)
}
