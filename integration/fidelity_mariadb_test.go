package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// mdbFidelityColumns are the columns of fid.fidelity after id, one per
// type liberator maps.
const mdbFidelityColumns = "ti, tiu, si, siu, mi, miu, i, iu, bi, biu, dc, dc0, f, db, b1, b64, ch, vc, lat, tx, lt, bin, vb, bl, d, dt, ts, tm, yr, js, en, st, geo"

// mdbFidelity makes the table and fills it with rows of edge values: each
// type's extremes, negative zero, decimals at full precision, microsecond
// times, dates from year 1000 to 9999, TIME's whole range, empty strings,
// sets and bytes, unicode in utf8mb4 and latin1, a long text, and NULL in
// every column. MariaDB has no NaN or infinities.
var mdbFidelity = []string{
	"CREATE DATABASE fid",
	`CREATE TABLE fid.fidelity (
	id   INT PRIMARY KEY,
	ti   TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
	i    INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
	dc   DECIMAL(65,30), dc0 DECIMAL(20,0),
	f    FLOAT, db DOUBLE,
	b1   BIT(1), b64 BIT(64),
	ch   CHAR(5), vc VARCHAR(20), lat VARCHAR(20) CHARACTER SET latin1, tx TEXT, lt LONGTEXT,
	bin  BINARY(4), vb VARBINARY(10), bl BLOB,
	d    DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), yr YEAR,
	js   JSON, en ENUM('sad', 'ok', 'happy'), st SET('a', 'b', 'c'), geo GEOMETRY
) DEFAULT CHARSET = utf8mb4`,
	`INSERT INTO fid.fidelity VALUES
(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
 '-99999999999999999999999999999999999.999999999999999999999999999999', '-99999999999999999999',
 -3.40282e38, -1.7976931348623157e308, b'0', b'0', '', '', '', '', '', '', '', '',
 '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.000000', 1901,
 '{}', 'sad', '', ST_GeomFromText('POINT(1 2)')),
(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
 '99999999999999999999999999999999999.999999999999999999999999999999', '99999999999999999999',
 3.40282e38, 1.7976931348623157e308, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
 'abcde', 'ÄéΩ漢字🙂 "q" \\ x', 'ÄéÿüßÆ€‰', REPEAT('text ', 10000), REPEAT('long text ', 30000),
 'ab', x'00ff00', x'deadbeef00',
 '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
 '[1, 2.5, null, "\\u00e9"]', 'happy', 'a,b,c', ST_GeomFromText('LINESTRING(0 0, 1 1, 2 1)')),
(3, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
 '0.000000000000000000000000000001', '0', -0.0, -0.0, b'1', b'101',
 'a', 'tab	nl
end', 'x', 'y', 'z', x'00', x'', x'',
 '1969-12-31', '1969-12-31 23:59:59.999999', '2001-02-03 04:05:06.000007', '-00:00:00.000001', 2000,
 '"ü"', 'ok', 'b', ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))')),
(4, -1, 128, -1, 32768, -1, 8388608, -1, 2147483648, -1, 9223372036854775808,
 '-0.000000000000000000000000000001', '-1', 1.17549e-38, 4.9e-324, b'0', b'1000000000000000000000000000000000000000000000000000000000000000',
 'z', '', '', '', '', x'01020304', x'01', x'01',
 '2038-01-20', '2038-01-20 00:00:00.000001', '2000-02-29 12:00:00.500000', '12:34:56.789012', 1970,
 'null', 'sad', 'a,c', ST_GeomFromText('MULTIPOINT(0 0, 1 1)')),
(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
}

// mdbFidelityKinds say how fid.fidelity's columns are read back.
var mdbFidelityKinds = map[string]string{
	"biu": "unsigned-decimal", "dc": "decimal", "dc0": "decimal", "f": "float", "db": "double",
	"b1": "bool", "b64": "bytes", "bin": "bytes", "vb": "bytes", "bl": "bytes",
	"d": "date", "dt": "time", "ts": "time", "tm": "micros", "st": "set", "geo": "geometry",
}

// TestIntegrationMariaDBTypeFidelity liberates a row of edge values per
// type through the snapshot, then the same rows through the binlog, as
// inserts and as updates, and compares every decoded value with what
// MariaDB returns in its binary protocol.
func TestIntegrationMariaDBTypeFidelity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, mdbFidelityKinds, mdbFidelity...)
	const topic = "evo.fid.fidelity"
	d := startDaemon(t, "run", e.config(t, []string{"fid.fidelity"}, ""))
	// The snapshot.
	e.converges(t, ctx, topic, "fid.fidelity", "id")

	// The binlog: the same values inserted, then every row updated to
	// another's values, then the NULL row filled and a full row emptied.
	cols := mdbFidelityColumns
	e.exec(t, "INSERT INTO fid.fidelity (id, "+cols+") SELECT id + 100, "+cols+" FROM fid.fidelity")
	e.converges(t, ctx, topic, "fid.fidelity", "id")
	var sets []string
	for _, c := range strings.Split(cols, ", ") {
		sets = append(sets, "f."+c+" = g."+c)
	}
	e.exec(t, "UPDATE fid.fidelity f JOIN fid.fidelity g ON g.id = MOD(f.id, 5) + 1 SET "+strings.Join(sets, ", "))
	e.converges(t, ctx, topic, "fid.fidelity", "id")
	var toNull []string
	for _, c := range strings.Split(cols, ", ") {
		toNull = append(toNull, c+" = NULL")
	}
	e.exec(t, "UPDATE fid.fidelity SET "+strings.Join(toNull, ", ")+" WHERE id = 102")
	e.converges(t, ctx, topic, "fid.fidelity", "id")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
