// Package mysql is the MySQL and MariaDB source connector. It reads the
// configured tables once in a consistent snapshot, then follows the binary
// log as a replica does (go-mysql's BinlogSyncer), turning row events into
// changes.
//
// # What the server must provide
//
// Open refuses a server unless log_bin is on, binlog_format=ROW,
// binlog_row_image=FULL and binlog_row_metadata=FULL (MySQL 8.0.1+, MariaDB
// 10.5+), and on MySQL binlog_row_value_options is empty (no partial JSON).
// Each refusal names the variable, the value found and the fix, and wraps
// ErrServerConfig. Every table must exist (ErrTableNotFound), have a primary
// key (ErrNoPrimaryKey) and have only columns of the types below
// (connectors.ErrUnsupportedType), but for the columns that the mapping
// leaves out (Config.PublishedColumns), which are never decoded. The user
// needs SELECT on the tables, REPLICATION SLAVE and REPLICATION CLIENT
// (MariaDB: BINLOG MONITOR); on MySQL, BACKUP_ADMIN for the snapshot's
// position and lock.
//
// # Table shapes come from the binary log
//
// A row event is decoded with the metadata of the TABLE_MAP event before it:
// column names, types, signedness, character sets, ENUM and SET values,
// nullability and the primary key. Today's information_schema is never used
// to decode an old event (the mistake of go-mysql canal issue 318); it only
// supplies the spelling of a column's type (Column.SQLType) and, on MariaDB,
// which LONGTEXT columns are JSON (checked by json_valid). A table's
// *connectors.Table stays the same while its shape does, so events before an
// ALTER TABLE carry the old shape and events after it a new pointer.
//
// go-mysql reads the events; the row images of a captured table are read
// by this package (rowimage.go), straight from their bytes into neutral
// values, through the same conversions a snapshot's values go through.
// Compressed and partial-update events, and tables with MySQL's binary
// JSON or the temporal formats before MySQL 5.6, are left to go-mysql's
// RowsEvent decoding.
//
// # Positions
//
// A Position is a binlog file and offset plus, when the server has GTIDs,
// the GTID state at that point: on MariaDB always (the last GTID of each
// domain, as BINLOG_GTID_POS() computes it for a file and offset), on MySQL
// with gtid_mode=ON (the executed GTID set). Streaming resumes from the GTID
// state when there is one, which survives a fail-over to another server,
// and from the file and offset otherwise. A batch's Checkpoint is set only
// after a transaction's COMMIT or XID event (or after a DDL statement), so a
// resumed stream starts at a transaction's start. Ack only records the
// position: the server keeps its binary log by time or size, never by
// replica progress, so a pipeline that stays stopped longer than the
// server's binlog retention gets ErrBinlogLost: it streams from the end of
// the log and re-snapshots every table with reconcile (gap.go). ROLLBACK
// and XA are handled as the server does (xa.go).
//
// # Snapshot
//
// The snapshot takes a binlog position with a consistent-snapshot
// transaction, then reads every table in primary-key chunks with
// snapshot.parallelism readers, streamed binary-protocol SELECTs (rows are
// never held in memory beyond a batch), and emits connectors.OpRead
// changes. The readers share the position's read view when the server lets
// them (chunked.go says how, and why the result is exact when it does not).
// Chunk ends carry a checkpoint that records each table's progress with the
// position, so a snapshot that is interrupted resumes there. The last
// snapshot batch's checkpoint is the position alone, where streaming then
// begins. Tables are also snapshotted while streaming, with DBLog's
// watermarks in a signal table (incremental.go): on request, when a table
// is added to the config, and after the binary log at the stored position
// was purged.
//
//   - MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT records, together
//     with the transaction's read view, the binlog position of the last
//     transaction it sees (status binlog_snapshot_file and
//     binlog_snapshot_position). No lock is taken. BINLOG_GTID_POS() gives
//     the GTID state at that position.
//   - MySQL: the position is read from performance_schema.log_status before
//     and after START TRANSACTION WITH CONSISTENT SNAPSHOT; when both agree,
//     no transaction committed in between and the position is exact. After
//     three disagreeing tries the earlier position is used, and the changes
//     between the two are delivered again, which a compacted topic absorbs.
//     LOCK INSTANCE FOR BACKUP, when granted, keeps DDL out during the
//     snapshot; it does not block writes. FLUSH TABLES WITH READ LOCK is
//     never taken. This path cannot be tested here, where only MariaDB runs.
//
// As with mysqldump --single-transaction, DDL on a table a reader's view
// has read waits until the snapshot ends.
//
// # Types
//
// Values are handed over in the forms connectors.Kind defines:
//
//	TINYINT, SMALLINT, MEDIUMINT, INT        int32   (INT UNSIGNED: int64)
//	BIGINT                                   int64   (UNSIGNED: decimal(20,0) text)
//	DECIMAL(p,s)                             decimal text, exact
//	FLOAT, DOUBLE                            float32, float64
//	CHAR, VARCHAR, TEXT, ENUM                string, converted to UTF-8
//	SET                                      array of string
//	BINARY, VARBINARY, BLOB, BIT(n>1)        bytes (BINARY(n) padded to n)
//	BIT(1)                                   bool
//	DATE                                     date (not a calendar date: see below)
//	DATETIME                                 local-timestamp (the same)
//	TIMESTAMP                                timestamp (UTC; the same)
//	TIME                                     int64 microseconds, signed
//	YEAR                                     int32
//	JSON                                     JSON text
//	GEOMETRY and its subtypes                geometry: WKB and SRID
//	MariaDB UUID                             uuid, as MariaDB prints it
//	MariaDB INET4, INET6                     string, as MariaDB prints them
//
// Strings are converted from the column's character set: utf8mb4, utf8mb3,
// latin1 (MySQL's, that is Windows-1252), ascii, and the other sets
// golang.org/x/text reads (latin2, cp1251, gbk, sjis, euckr, ucs2, utf16,
// utf32 and more). A character column in the binary character set is bytes.
// MySQL JSON is compacted (no spaces after ':' and ','), so that the
// snapshot's text and the binlog's binary JSON agree; MariaDB JSON is the
// stored text. MariaDB's UUID, INET4 and INET6, which the binlog carries
// as BINARY(n), are recognised by their information_schema type and
// printed the way the server prints them.
//
// A DATE, DATETIME or TIMESTAMP that is not a calendar date (the zero date
// '0000-00-00', a date with a zero month or day, which MySQL accepts
// outside strict SQL modes, or a day past its month's end under
// ALLOW_INVALID_DATES) is a value below every real date that gives the text
// back: math.MinInt32 + YYYYMMDD days for a DATE, and math.MinInt64 +
// YYYYMMDD days + the time of day for the others (see zeroDate). DATE,
// DATETIME and TIMESTAMP columns stay nullable in the table description
// even when declared NOT NULL, unless they are key columns, as they were
// when zero dates were NULL.
//
// # Batches
//
// Read returns a batch at each commit. A transaction larger than 4096
// changes arrives in several batches; only the last carries a checkpoint,
// so a 1M-row transaction is never held in memory. Rows of tables that are
// not captured are not decoded; while only such tables change, a batch with
// no changes carries the checkpoint about once a second.
//
// Change.Pos is the file and offset where the change's transaction starts,
// Change.TxID its GTID (MySQL with gtid_mode OFF: its file:offset) and
// Change.CommitTime the time in the transaction's binlog header (MySQL:
// its original commit timestamp, in microseconds).
package mysql
