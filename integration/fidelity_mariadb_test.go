package integration

import (
	"context"
	"fmt"
	"math"
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

// mdbEdgeTables hold the values that have no ordinary Avro form: dates that
// are not calendar dates (in key columns, NOT NULL columns and nullable
// ones), MariaDB's UUID, INET4 and INET6 at their extremes, and geometries
// with and without an SRID. Zero dates need a permissive sql_mode in the
// session that writes them.
var mdbEdgeTables = []string{
	"CREATE DATABASE fid",
	"SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
	`CREATE TABLE fid.zero (
	d   DATE NOT NULL, dt DATETIME(6) NOT NULL, id INT NOT NULL,
	dn  DATE NULL, dtn DATETIME NULL, ts TIMESTAMP(6) NULL DEFAULT NULL,
	tsn TIMESTAMP NOT NULL DEFAULT '0000-00-00 00:00:00',
	PRIMARY KEY (d, dt, id))`,
	`INSERT INTO fid.zero VALUES
('0000-00-00', '0000-00-00 00:00:00', 1, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00'),
('0001-00-00', '0000-00-00 14:02:10.5', 2, '2020-05-00', '9999-12-00 23:59:59', NULL, '1970-01-01 00:00:01'),
('2021-02-30', '2021-02-30 01:02:03.000004', 3, '1000-01-01', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999999', '2038-01-19 03:14:07'),
('9999-12-31', '9999-12-31 23:59:59.999999', 4, NULL, NULL, '1970-01-01 00:00:01', '0000-00-00 00:00:00'),
('1970-01-01', '1970-01-01 00:00:00', 5, '0000-01-01', '0000-12-31 23:59:59', '1970-01-01 00:00:01', DEFAULT)`,
	`CREATE TABLE fid.native (
	u UUID NOT NULL PRIMARY KEY, u2 UUID NULL, a INET4 NULL, b INET6 NULL,
	g GEOMETRY NULL, p POINT REF_SYSTEM_ID = 4326 NULL)`,
	`INSERT INTO fid.native VALUES
('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0.0.0.0', '::', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(1 2)', 4326)),
('ffffffff-ffff-ffff-ffff-ffffffffffff', '00000000-0000-0000-0000-000000000000', '255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', ST_GeomFromText('LINESTRING(0 0, 1 1)', 3857), NULL),
('6ccd780c-baba-1026-9564-5b8c656024db', '123e4567-e89b-42d3-a456-426614174000', '1.2.3.4', '::ffff:1.2.3.4', ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))', 2147483647), ST_GeomFromText('POINT(-180 -90)', 4326)),
('123e4567-e89b-42d3-a456-426614174000', '01890a5d-ac96-774b-bcce-b302099a8057', '10.0.0.255', '::1.2.3.4', NULL, NULL),
('01890a5d-ac96-774b-bcce-b302099a8057', '6ccd780c-baba-1026-9564-5b8c656024db', NULL, '1:0:2:3:4:5:6:7', ST_GeomFromText('GEOMETRYCOLLECTION EMPTY'), NULL),
('00000000-0000-0000-0000-000000000001', NULL, '127.0.0.1', '2001:db8::1:0:0:1', NULL, NULL),
('fe000000-0000-0000-0000-000000000000', NULL, NULL, '::1', NULL, NULL),
('00000000-0000-6000-8000-000000000000', NULL, NULL, 'fe80::1', NULL, NULL)`,
}

// mdbEdgeKinds say how the edge tables' columns are read back.
var mdbEdgeKinds = map[string]string{
	"d": "zdate", "dn": "zdate", "dt": "zdatetime", "dtn": "zdatetime", "ts": "zdatetime", "tsn": "zdatetime",
	"g": "geometry", "p": "geometry",
}

// zeroDateValue is the README's rule, written again here: a date that is
// not a calendar date is math.MinInt32 + YYYYMMDD days (a DATE), or
// math.MinInt64 + YYYYMMDD days + the time of day in microseconds (a
// DATETIME or TIMESTAMP), decoded as hamba decodes its logical type.
func zeroDateValue(kind, s string) (any, error) {
	var y, m, d, h, mi int64
	var sec float64
	if _, err := fmt.Sscanf(s[:10], "%4d-%2d-%2d", &y, &m, &d); err != nil {
		return nil, fmt.Errorf("date %q: %w", s, err)
	}
	if len(s) > 10 {
		if _, err := fmt.Sscanf(s[11:], "%d:%d:%f", &h, &mi, &sec); err != nil {
			return nil, fmt.Errorf("datetime %q: %w", s, err)
		}
	}
	calendar := m >= 1 && d >= 1 && time.Date(int(y), time.Month(m), int(d), 0, 0, 0, 0, time.UTC).Day() == int(d)
	if calendar {
		layout := "2006-01-02"
		if kind == "zdatetime" {
			layout = "2006-01-02 15:04:05.999999"
		}
		return time.Parse(layout, s)
	}
	ymd := y*10000 + m*100 + d
	if kind == "zdate" {
		return time.Unix((math.MinInt32+ymd)*86400, 0).UTC(), nil
	}
	us := int64(math.MinInt64) + ymd*86_400_000_000 + (h*3600+mi*60)*1_000_000 + int64(math.Round(sec*1e6))
	secs := us / 1_000_000
	return time.Unix(secs, (us-secs*1_000_000)*1000).UTC(), nil
}

// TestIntegrationMariaDBEdgeValues liberates zero dates (in the key too),
// UUID, INET4, INET6 and geometries with their SRID through a snapshot read
// in chunks of two rows and through the binlog, and compares every decoded
// value with what MariaDB returns.
func TestIntegrationMariaDBEdgeValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, mdbEdgeKinds, mdbEdgeTables...)
	d := startDaemon(t, "run", e.config(t, []string{"fid.zero", "fid.native"}, "snapshot:\n  chunk_size: 2"))
	// The snapshot.
	e.converges(t, ctx, "evo.fid.zero", "fid.zero", "d", "dt", "id")
	e.converges(t, ctx, "evo.fid.native", "fid.native", "u")

	// The binlog: the rows again under new keys, then every row updated
	// to another's values, then a key changed.
	e.exec(t, "INSERT INTO fid.zero SELECT d, dt, id + 100, dn, dtn, ts, tsn FROM fid.zero",
		"INSERT INTO fid.native SELECT UUID(), u, a, b, g, p FROM fid.native")
	e.converges(t, ctx, "evo.fid.zero", "fid.zero", "d", "dt", "id")
	e.converges(t, ctx, "evo.fid.native", "fid.native", "u")
	e.exec(t, "UPDATE fid.zero f JOIN fid.zero g ON g.id = MOD(f.id, 5) + 1 SET f.dn = g.dn, f.dtn = g.dtn, f.ts = g.ts, f.tsn = g.tsn",
		"UPDATE fid.native n JOIN fid.native m ON m.u2 = n.u SET n.a = m.b IS NULL, n.b = m.b, n.g = m.g, n.p = m.p",
		"UPDATE fid.zero SET d = '0000-00-00', dt = '0000-00-00 00:00:00.000001' WHERE id = 104",
		"UPDATE fid.native SET u = '00000000-0000-0000-0000-000000000002' WHERE u = 'ffffffff-ffff-ffff-ffff-ffffffffffff'")
	e.converges(t, ctx, "evo.fid.zero", "fid.zero", "d", "dt", "id")
	e.converges(t, ctx, "evo.fid.native", "fid.native", "u")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
