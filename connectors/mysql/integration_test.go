package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

// testTimeout bounds each integration test's reads.
const testTimeout = 2 * time.Minute

// server is a MariaDB for one test, with a session for setup statements.
type server struct {
	*harness.MariaDBServer
	conn *client.Conn
}

func startMariaDB(t *testing.T, opts ...harness.MariaDBOption) *server {
	t.Helper()
	m := harness.MariaDB(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := m.Connect(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = conn.Execute("SET NAMES utf8mb4")
	require.NoError(t, err)
	return &server{MariaDBServer: m, conn: conn}
}

// exec runs statements on the server's setup session, in order.
func (s *server) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		_, err := s.conn.Execute(q)
		require.NoError(t, err, q)
	}
}

func (s *server) source(t *testing.T, mode connectors.SnapshotMode, tables ...string) *Source {
	t.Helper()
	src, err := New(Config{Flavor: FlavorMariaDB, DSN: s.DSN, Tables: tables, Snapshot: mode})
	require.NoError(t, err)
	return src
}

func open(t *testing.T, src *Source, resume []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, src.Open(ctx, resume))
	t.Cleanup(func() { require.NoError(t, src.Close(context.Background())) })
}

// readBatches reads until done says the batches read so far suffice.
func readBatches(t *testing.T, src *Source, done func([]connectors.Batch) bool) []connectors.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var batches []connectors.Batch
	for !done(batches) {
		b, err := src.Read(ctx)
		require.NoError(t, err)
		batches = append(batches, b)
	}
	return batches
}

func changesOf(batches []connectors.Batch) []connectors.Change {
	var out []connectors.Change
	for _, b := range batches {
		out = append(out, b.Changes...)
	}
	return out
}

// untilChanges reads until n changes and a checkpoint after them.
func untilChanges(n int) func([]connectors.Batch) bool {
	return func(bs []connectors.Batch) bool {
		return len(bs) > 0 && len(changesOf(bs)) >= n && bs[len(bs)-1].Checkpoint != nil
	}
}

// row maps column names to values of a change image.
func row(t *testing.T, c connectors.Change, image []any) map[string]any {
	t.Helper()
	require.Len(t, image, len(c.Table.Columns))
	m := map[string]any{}
	for i, col := range c.Table.Columns {
		m[col.Name] = image[i]
	}
	return m
}

const typesTable = `CREATE TABLE d.types (
	id INT PRIMARY KEY,
	ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
	mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
	dec1 DECIMAL(10,2), dec2 DECIMAL(65,30), dec3 DECIMAL(5,0),
	f FLOAT, d DOUBLE,
	c CHAR(5), vc VARCHAR(50), t TEXT, lt LONGTEXT,
	l1 VARCHAR(20) CHARACTER SET latin1, a1 VARCHAR(20) CHARACTER SET ascii,
	u3 VARCHAR(20) CHARACTER SET utf8mb3, vcbin VARCHAR(10) COLLATE utf8mb4_bin,
	b BINARY(4), vb VARBINARY(10), bl BLOB, cbin CHAR(3) CHARACTER SET binary,
	dt DATE, dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(3) NULL, tm TIME, tm6 TIME(6), y YEAR,
	j JSON, e ENUM('a','b','c'), s SET('x','y','z'), b1 BIT(1), b10 BIT(10), g GEOMETRY
) DEFAULT CHARSET = utf8mb4`

var longText = strings.Repeat("long ☃ text ", 10000)

// typeRows inserts rows of edge values with ids base+1 to base+3 and
// returns the values each must arrive with.
func typeRows(t *testing.T, s *server, base int32) map[int32]map[string]any {
	t.Helper()
	s.exec(t, "SET time_zone = '+02:00'", "SET sql_mode = ''",
		fmt.Sprintf(`INSERT INTO d.types VALUES (%d,
	-128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
	-9223372036854775808, 18446744073709551615,
	-12345678.90, '12345678901234567890123456789012345.123456789012345678901234567890', 99999,
	1.2345678, -1.7976931348623157e308,
	'ab', 'héllo wörld 🎉', 'text', '%s',
	'café €', 'plain', 'ünï', 'Bin',
	X'0102', X'00FF', X'DEADBEEF', 'ab',
	'1969-12-31', '9999-12-31 23:59:59', '1000-01-01 00:00:00.000001', '2021-03-04 07:06:07.123',
	'-838:59:59', '12:34:56.789012', 2155,
	'{"b": [1, 2.5, "x"], "a": null}', 'c', 'x,z', b'1', b'1000000001', ST_GeomFromText('POINT(1 2)'))`, base+1, longText),
		fmt.Sprintf(`INSERT INTO d.types VALUES (%d,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, -0.000000000000000000000000000001, -1,
	0, 0,
	'', '', '', '',
	'', '', '', '',
	'', '', '', '',
	'0000-00-00', '0000-00-00 00:00:00', '2020-02-30 00:00:00', '0000-00-00 00:00:00',
	'00:00:00', '-00:00:00.5', 0,
	'[]', 'nope', '', b'0', b'0', NULL)`, base+2),
		fmt.Sprintf("INSERT INTO d.types (id) VALUES (%d)", base+3),
		"SET time_zone = DEFAULT", "SET sql_mode = DEFAULT")

	micros := func(tm time.Time) int64 { return tm.UnixMicro() }
	nulls := map[string]any{}
	for _, c := range []string{"ti", "tiu", "si", "siu", "mi", "miu", "i", "iu", "bi", "biu", "dec1", "dec2", "dec3",
		"f", "d", "c", "vc", "t", "lt", "l1", "a1", "u3", "vcbin", "b", "vb", "bl", "cbin", "dt", "dtm", "dtm6", "ts",
		"tm", "tm6", "y", "j", "e", "s", "b1", "b10", "g"} {
		nulls[c] = nil
	}
	nulls["id"] = base + 3
	return map[int32]map[string]any{
		base + 1: {
			"id": base + 1,
			"ti": int32(-128), "tiu": int32(255), "si": int32(-32768), "siu": int32(65535),
			"mi": int32(-8388608), "miu": int32(16777215), "i": int32(-2147483648), "iu": int64(4294967295),
			"bi": int64(-9223372036854775808), "biu": "18446744073709551615",
			"dec1": "-12345678.90", "dec2": "12345678901234567890123456789012345.123456789012345678901234567890", "dec3": "99999",
			"f": float32(1.2345678), "d": -1.7976931348623157e308,
			"c": "ab", "vc": "héllo wörld 🎉", "t": "text", "lt": longText,
			"l1": "café €", "a1": "plain", "u3": "ünï", "vcbin": "Bin",
			"b": []byte{1, 2, 0, 0}, "vb": []byte{0, 0xff}, "bl": []byte{0xde, 0xad, 0xbe, 0xef}, "cbin": []byte("ab\x00"),
			"dt":   int32(-1),
			"dtm":  micros(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)),
			"dtm6": micros(time.Date(1000, 1, 1, 0, 0, 0, 1000, time.UTC)),
			"ts":   micros(time.Date(2021, 3, 4, 5, 6, 7, 123e6, time.UTC)),
			"tm":   -int64(838*3600+59*60+59) * 1e6, "tm6": int64(12*3600+34*60+56)*1e6 + 789012,
			"y": int32(2155),
			"j": `{"b": [1, 2.5, "x"], "a": null}`, "e": "c", "s": []any{"x", "z"},
			"b1": true, "b10": []byte{0x02, 0x01},
			"g": connectors.Geometry{WKB: []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}},
		},
		base + 2: {
			"id": base + 2,
			"ti": int32(0), "tiu": int32(0), "si": int32(0), "siu": int32(0),
			"mi": int32(0), "miu": int32(0), "i": int32(0), "iu": int64(0), "bi": int64(0), "biu": "0",
			"dec1": "0.00", "dec2": "-0.000000000000000000000000000001", "dec3": "-1",
			"f": float32(0), "d": float64(0),
			"c": "", "vc": "", "t": "", "lt": "", "l1": "", "a1": "", "u3": "", "vcbin": "",
			"b": []byte{0, 0, 0, 0}, "vb": []byte{}, "bl": []byte{}, "cbin": []byte{0, 0, 0},
			// Zero dates: below every real date, and read back as
			// 0000-00-00 (see the README's zero-date rule).
			"dt": int32(math.MinInt32), "dtm": int64(math.MinInt64), "dtm6": int64(math.MinInt64), "ts": int64(math.MinInt64),
			"tm": int64(0), "tm6": int64(-500000), "y": int32(0),
			"j": "[]", "e": "", "s": []any{}, "b1": false, "b10": []byte{0, 0}, "g": nil,
		},
		base + 3: nulls,
	}
}

func TestIntegrationSnapshotAndStreamCarryEveryTypeAlike(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", typesTable)
	want := typeRows(t, s, 0)

	src := s.source(t, connectors.SnapshotInitial, "d.types")
	open(t, src, nil)
	snap := readBatches(t, src, func(bs []connectors.Batch) bool { return len(bs) > 0 && bs[len(bs)-1].Checkpoint != nil })
	changes := changesOf(snap)
	require.Len(t, changes, 3)
	for _, c := range changes {
		require.Equal(t, connectors.OpRead, c.Op)
		require.Empty(t, c.TxID)
	}

	for k, v := range typeRows(t, s, 10) {
		want[k] = v
	}
	stream := changesOf(readBatches(t, src, untilChanges(3)))
	require.Len(t, stream, 3)
	for _, c := range stream {
		require.Equal(t, connectors.OpCreate, c.Op)
		require.NotEmpty(t, c.TxID)
		require.Same(t, changes[0].Table, c.Table, "the binlog's table map gives the snapshot's shape, so the *Table is the same")
	}

	for _, c := range append(changes, stream...) {
		got := row(t, c, c.After)
		id := got["id"].(int32)
		if diff := cmp.Diff(want[id], got); diff != "" {
			t.Errorf("row %d (%s) differs (-want +got):\n%s", id, c.Op, diff)
		}
	}

	cols := map[string]connectors.Column{}
	for _, c := range changes[0].Table.Columns {
		cols[c.Name] = c
	}
	require.Equal(t, connectors.Type{Kind: connectors.KindDecimal, Precision: 65, Scale: 30}, cols["dec2"].Type)
	require.Equal(t, connectors.KindJSON, cols["j"].Type.Kind, "MariaDB's JSON is LONGTEXT checked by json_valid")
	require.Equal(t, "bigint(20) unsigned", cols["biu"].SQLType)
	require.False(t, cols["id"].Nullable)
	require.Equal(t, []int{0}, changes[0].Table.Key)
}

func TestIntegrationUpdatesCarryTheOldKeyOnlyWhenTheKeyChanges(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d",
		"CREATE TABLE d.t (a INT, b VARCHAR(10), v TEXT, PRIMARY KEY (b, a))",
		"INSERT INTO d.t VALUES (1, 'x', 'one')")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)

	s.exec(t,
		"UPDATE d.t SET v = 'uno' WHERE a = 1",
		"UPDATE d.t SET a = 2 WHERE a = 1",
		"DELETE FROM d.t WHERE a = 2")
	changes := changesOf(readBatches(t, src, untilChanges(3)))
	require.Len(t, changes, 3)

	require.Equal(t, connectors.OpUpdate, changes[0].Op)
	require.Nil(t, changes[0].Before, "an update that keeps the key has no before image")
	require.False(t, changes[0].KeyChanged())
	require.Equal(t, []any{int32(1), "x", "uno"}, changes[0].After)

	require.Equal(t, connectors.OpUpdate, changes[1].Op)
	require.True(t, changes[1].KeyChanged())
	require.Equal(t, []any{int32(1), "x", "uno"}, changes[1].Before)
	require.Equal(t, []any{int32(2), "x", "uno"}, changes[1].After)
	require.Equal(t, []int{1, 0}, changes[1].Table.Key, "key order is the primary key's, not the columns'")

	require.Equal(t, connectors.OpDelete, changes[2].Op)
	require.Nil(t, changes[2].After)
	require.Equal(t, []any{int32(2), "x", "uno"}, changes[2].Before)
}

func TestIntegrationEventsBeforeAnAlterKeepTheOldShape(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, a VARCHAR(10))")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)

	// Everything happens before the first Read, so that today's schema is
	// the last one while the first events are decoded.
	s.exec(t,
		"INSERT INTO d.t VALUES (1, 'one')",
		"INSERT INTO d.t VALUES (2, 'two')",
		"ALTER TABLE d.t ADD COLUMN n INT NOT NULL DEFAULT 7",
		"INSERT INTO d.t VALUES (3, 'three', 3)",
		"ALTER TABLE d.t DROP COLUMN a",
		"INSERT INTO d.t VALUES (4, 4)",
		"ALTER TABLE d.t ADD COLUMN a VARCHAR(10) AFTER id",
		"INSERT INTO d.t VALUES (5, 'five', 5)")
	changes := changesOf(readBatches(t, src, untilChanges(5)))
	require.Len(t, changes, 5)

	names := func(c connectors.Change) []string {
		var out []string
		for _, col := range c.Table.Columns {
			out = append(out, col.Name+" "+col.SQLType)
		}
		return out
	}
	require.Equal(t, []string{"id int(11)", "a varchar(10)"}, names(changes[0]))
	require.Equal(t, []any{int32(1), "one"}, changes[0].After)
	require.Same(t, changes[0].Table, changes[1].Table, "an unchanged shape keeps its *Table")
	require.Equal(t, []any{int32(2), "two"}, changes[1].After)

	require.Equal(t, []string{"id int(11)", "a varchar(10)", "n int(11)"}, names(changes[2]))
	require.Equal(t, []any{int32(3), "three", int32(3)}, changes[2].After)
	require.NotSame(t, changes[1].Table, changes[2].Table)

	require.Equal(t, []string{"id int(11)", "n int(11)"}, names(changes[3]))
	require.Equal(t, []any{int32(4), int32(4)}, changes[3].After)

	require.Equal(t, []string{"id int(11)", "a varchar(10)", "n int(11)"}, names(changes[4]))
	require.Equal(t, []any{int32(5), "five", int32(5)}, changes[4].After)
	require.NotSame(t, changes[2].Table, changes[4].Table, "a shape that returns is a new *Table")
}

func TestIntegrationOpenRefusesMinimalRowMetadata(t *testing.T) {
	s := startMariaDB(t, harness.MariaDBFlags("--binlog-row-metadata=MINIMAL", "--binlog-row-image=NOBLOB"))
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotInitial, "d.t")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := src.Open(ctx, nil)
	require.ErrorIs(t, err, ErrServerConfig)
	require.False(t, connectors.IsRetryable(err))
	require.ErrorContains(t, err, "binlog_row_metadata is MINIMAL; liberator needs FULL")
	require.ErrorContains(t, err, "set binlog_row_metadata=FULL")
	require.ErrorContains(t, err, "binlog_row_image is NOBLOB; liberator needs FULL")
	require.NoError(t, src.Close(ctx))
}

func TestIntegrationOpenNamesMissingTablesAndKeys(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.nokey (a INT)", "CREATE TABLE d.ok (id INT PRIMARY KEY, s VARCHAR(3) CHARACTER SET dec8)")
	src := s.source(t, connectors.SnapshotInitial, "d.missing", "d.nokey", "d.ok")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	err := src.Open(ctx, nil)
	require.ErrorIs(t, err, ErrTableNotFound)
	require.ErrorIs(t, err, ErrNoPrimaryKey)
	require.ErrorIs(t, err, connectors.ErrUnsupportedType)
	require.ErrorContains(t, err, "table not found: d.missing")
	require.ErrorContains(t, err, "table has no primary key: d.nokey")
	require.ErrorContains(t, err, "d.ok.s is varchar(3) CHARACTER SET dec8")
	require.NoError(t, src.Close(ctx))
}

func TestIntegrationResumeFromAnAckedPositionLosesNothing(t *testing.T) {
	for _, fileOnly := range []bool{false, true} {
		name := "by GTID"
		if fileOnly {
			name = "by file and offset"
		}
		t.Run(name, func(t *testing.T) {
			s := startMariaDB(t)
			s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "CREATE TABLE d.other (id INT PRIMARY KEY)",
				"INSERT INTO d.t VALUES (1)")
			src := s.source(t, connectors.SnapshotInitial, "d.t")
			open(t, src, nil)
			insert := func(from, to int) {
				for i := from; i <= to; i++ {
					s.exec(t, fmt.Sprintf("INSERT INTO d.t VALUES (%d)", i), fmt.Sprintf("INSERT INTO d.other VALUES (%d)", i))
				}
			}
			// The snapshot (id 1), then the stream up to id 5: the checkpoint
			// that ends this read is the one after id 5, as the pipeline would
			// acknowledge it once Kafka has it.
			require.Len(t, changesOf(readBatches(t, src, untilChanges(1))), 1)
			insert(2, 5)
			first := readBatches(t, src, untilChanges(4))
			require.Len(t, changesOf(first), 4)
			acked := first[len(first)-1].Checkpoint
			insert(6, 10)
			require.Len(t, changesOf(readBatches(t, src, untilChanges(5))), 5)
			require.NotNil(t, acked)
			require.NoError(t, src.Ack(context.Background(), acked))
			require.Equal(t, acked, src.Acked())
			require.NoError(t, src.Close(context.Background()))

			resume := acked.(Position)
			require.NotEmpty(t, resume.GTID, "MariaDB positions carry the GTID state")
			if fileOnly {
				resume.GTID = ""
			}
			for i := 11; i <= 12; i++ {
				s.exec(t, fmt.Sprintf("INSERT INTO d.t VALUES (%d)", i))
			}
			again := s.source(t, connectors.SnapshotInitial, "d.t")
			open(t, again, resume.Encode())
			var ids []int32
			for _, c := range changesOf(readBatches(t, again, untilChanges(7))) {
				require.Equal(t, connectors.OpCreate, c.Op, "a resumed source takes no snapshot")
				ids = append(ids, c.After[0].(int32))
			}
			require.Equal(t, []int32{6, 7, 8, 9, 10, 11, 12}, ids)
		})
	}
}

func TestIntegrationSnapshotOnlyEndsAfterItsCheckpoint(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO d.t SELECT seq, CONCAT('row ', seq) FROM d.seq_1_to_10000",
		"CREATE TABLE d.empty (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotOnly, "d.t", "d.empty")
	open(t, src, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var batches []connectors.Batch
	for {
		b, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		batches = append(batches, b)
	}
	require.Len(t, changesOf(batches), 10000)
	for i, b := range batches {
		require.LessOrEqual(t, len(b.Changes), maxBatch)
		if i == len(batches)-1 {
			require.NotNil(t, b.Checkpoint, "the last batch has a checkpoint")
			require.Nil(t, b.Checkpoint.(Position).State.Snapshot, "the last checkpoint ends the snapshot")
		} else if b.Checkpoint != nil {
			st := b.Checkpoint.(Position).State
			require.True(t, st != nil && st.Snapshot != nil && st.Snapshot.Initial, "a checkpoint at a chunk end records the snapshot's progress")
		}
	}
	cp := batches[len(batches)-1].Checkpoint.(Position)
	require.Equal(t, FlavorMariaDB, cp.Flavor)
	require.NotEmpty(t, cp.File)
	_, err := src.Read(ctx)
	require.ErrorIs(t, err, io.EOF, "Read stays at EOF")

	again := s.source(t, connectors.SnapshotOnly, "d.t", "d.empty")
	open(t, again, cp.Encode())
	_, err = again.Read(ctx)
	require.ErrorIs(t, err, io.EOF, "a snapshot-only source with a position has nothing to do")
}

func TestIntegrationHugeTransactionsArriveInBoundedBatches(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	s.exec(t, "INSERT INTO d.t SELECT seq, 'x' FROM d.seq_1_to_10000")
	batches := readBatches(t, src, untilChanges(10000))
	require.Empty(t, batches[0].Changes, "the first batch announces where streaming starts")
	require.NotNil(t, batches[0].Checkpoint, "the first batch announces where streaming starts")
	batches = batches[1:]
	require.Len(t, changesOf(batches), 10000)
	require.Greater(t, len(batches), 2)
	tx := batches[0].Changes[0].TxID
	for i, b := range batches {
		require.LessOrEqual(t, len(b.Changes), maxBatch)
		require.Equal(t, i == len(batches)-1, b.Checkpoint != nil, "a checkpoint only at the commit")
		for _, c := range b.Changes {
			require.Equal(t, tx, c.TxID)
		}
	}
}

func TestIntegrationUncapturedTablesOnlyMoveTheCheckpoint(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "CREATE TABLE d.other (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	s.exec(t, "INSERT INTO d.other SELECT seq FROM d.seq_1_to_100")
	var cp Position
	readBatches(t, src, func(bs []connectors.Batch) bool {
		if len(bs) == 0 {
			return false
		}
		b := bs[len(bs)-1]
		require.Empty(t, b.Changes)
		if b.Checkpoint != nil {
			cp = b.Checkpoint.(Position)
		}
		return cp.GTID == "0-1-4"
	})
}

func TestIntegrationCloseStopsASnapshotMidway(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO d.t SELECT seq, 'x' FROM d.seq_1_to_50000")
	src := s.source(t, connectors.SnapshotInitial, "d.t")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	require.NoError(t, src.Open(ctx, nil))
	b, err := src.Read(ctx)
	require.NoError(t, err)
	require.Len(t, b.Changes, maxBatch)
	require.Nil(t, b.Checkpoint)
	// The snapshot goroutine is now blocked handing over its next batch;
	// goleak in TestMain checks that Close ends it.
	require.NoError(t, src.Close(ctx))
	require.NoError(t, src.Close(ctx), "closing twice")
}

func TestIntegrationReadHonoursItsContext(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	start, err := src.Read(context.Background())
	require.NoError(t, err)
	require.NotNil(t, start.Checkpoint, "the first batch announces where streaming starts")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = src.Read(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The source is still usable.
	s.exec(t, "INSERT INTO d.t VALUES (1)")
	require.Len(t, changesOf(readBatches(t, src, untilChanges(1))), 1)
}

func TestIntegrationALostServerIsARetryableError(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	s.exec(t, "INSERT INTO d.t VALUES (1)")
	batches := readBatches(t, src, untilChanges(1))
	acked := batches[len(batches)-1].Checkpoint
	require.NoError(t, src.Ack(context.Background(), acked))

	_ = s.conn.Close()
	require.NoError(t, s.Stop())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := src.Read(ctx)
	require.Error(t, err)
	require.True(t, connectors.IsRetryable(err), "error %v is not retryable", err)

	require.NoError(t, s.Start())
	s.conn, err = s.Connect(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.conn.Close() })
	s.exec(t, "INSERT INTO d.t VALUES (2)")
	again := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, again, acked.Encode())
	changes := changesOf(readBatches(t, again, untilChanges(1)))
	require.Equal(t, []any{int32(2)}, changes[0].After)
}
