package integration

import (
	"context"
	"strings"
	"testing"
	"time"
)

// pgFidelitySQL makes a table with a column of every type liberator maps,
// and rows of edge values: each type's extremes, NaN, infinities and
// negative zero, decimals at full precision, microsecond times, dates
// from year 1 to 9999, empty strings, arrays and bytes, unicode, a long
// (TOASTed) text, and NULL in every column.
const pgFidelitySQL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE fidelity (
	id      integer PRIMARY KEY,
	i2      smallint,
	i4      integer,
	i8      bigint,
	f4      real,
	f8      double precision,
	dec     numeric(38,10),
	dec0    numeric(20,0),
	free    numeric,
	flag    boolean,
	t       text,
	vc      varchar(10),
	ch      char(5),
	u       uuid,
	j       json,
	jb      jsonb,
	by      bytea,
	d       date,
	ts      timestamp,
	tstz    timestamptz,
	tm      time,
	ints    integer[],
	texts   text[],
	decs    numeric(10,2)[],
	feeling mood,
	pos     posint
);
INSERT INTO fidelity VALUES
(1, -32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity',
 '-9999999999999999999999999999.9999999999', '-99999999999999999999', '-123456789012345678901234567890.123456789012345678901234567890',
 false, '', '', '', '00000000-0000-0000-0000-000000000000', '{}', '[]', '\x',
 '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '00:00:00', '{}', '{}', '{}', 'sad', 1),
(2, 32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity',
 '9999999999999999999999999999.9999999999', '99999999999999999999', '0.000000000000000000000000000001',
 true, repeat('long text ', 20000), 'ÄéΩ漢字🙂ok!', 'ab', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
 '{"a": [1, 2.5, null],  "b": "\u00e9"}', '{"b": {"c": [true, false]}, "a": 1}', '\x00ff00',
 '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '24:00:00',
 '{2147483647,NULL,-2147483648}', '{"",NULL,"ü \"q\" ,{}"}', '{99999999.99,NULL,-0.01}', 'happy', 2147483647),
(3, 0, 0, 0, 'NaN', 'NaN', '0.0000000001', '0', 'NaN', true, 'ÄéΩ 漢字 🙂 tab	nl
 "quotes" \ backslash', 'x', 'abcde', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'null', '"s"', '\xdeadbeef',
 '1969-12-31', '1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999+00', '12:34:56.789012',
 '{0}', '{NULL}', '{0.00}', 'ok', 42),
(4, -1, -1, -1, '-0', '-0', '-0.0000000001', '-1', 'Infinity', false, 'x', 'y', 'z',
 '123e4567-e89b-12d3-a456-426614174000', '[1,2]', '{}', '\x00',
 '2038-01-19', '2038-01-19 03:14:08.000001', '2038-01-19 03:14:08.000001+00', '23:59:59.999999',
 '{1,2,3}', '{a,b}', '{1.5}', 'sad', 7),
(5, 1, 1, 1, 3.4028235e38, 1.7976931348623157e308, '1', '1', '-Infinity', true, 'y', 'z', 'q',
 '123e4567-e89b-12d3-a456-426614174001', '1', '2', '\x01',
 '1900-01-01', '1900-01-01 00:00:00.000001', '1900-01-01 00:00:00.000001+00', '00:00:00.000001',
 '{-1}', '{"x y"}', '{-99999999.99}', 'happy', 8),
(6, 2, 2, 2, 1.4e-45, 4.9e-324, '-1', '-1', '1e-20', false, 'z', 'w', 'r',
 '123e4567-e89b-12d3-a456-426614174002', '{"k": "v"}', '{"k": "v"}', '\x02',
 '2262-04-11', '2262-04-11 23:47:16.854775', '2262-04-11 23:47:16.854775+00', '00:00:01',
 '{}', '{}', '{}', 'ok', 9),
(7, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
`

// TestIntegrationPostgresTypeFidelity liberates a row of edge values per
// type through the snapshot, then the same rows through the stream, as
// inserts and as updates, and compares every decoded value with what
// PostgreSQL returns in its binary protocol.
func TestIntegrationPostgresTypeFidelity(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, pgFidelitySQL)
	const topic = "evo.public.fidelity"
	d := startDaemon(t, "run", e.config(t, []string{"public.fidelity"}, ""))
	// The snapshot.
	e.converges(t, ctx, topic, "public.fidelity", "id")

	// The stream: the same values inserted, then rows updated to each
	// other's values (and the long text left alone, so that it arrives as
	// an unchanged TOAST value), then the NULL row filled and a full row
	// emptied.
	cols := "i2, i4, i8, f4, f8, dec, dec0, free, flag, t, vc, ch, u, j, jb, by, d, ts, tstz, tm, ints, texts, decs, feeling, pos"
	e.exec(t, ctx, "INSERT INTO fidelity (id, "+cols+") SELECT id + 100, "+cols+" FROM fidelity")
	e.converges(t, ctx, topic, "public.fidelity", "id")
	noText := strings.Replace(cols, "t, ", "", 1)
	e.exec(t, ctx, "UPDATE fidelity f SET ("+noText+") = (SELECT "+noText+" FROM fidelity g WHERE g.id = (f.id % 7) + 1)")
	e.converges(t, ctx, topic, "public.fidelity", "id")
	e.exec(t, ctx, "UPDATE fidelity SET ("+cols+") = (SELECT "+cols+" FROM fidelity WHERE id = 2) WHERE id = 107")
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", strings.Count(cols, ",")+1), ", ")
	e.exec(t, ctx, "UPDATE fidelity SET ("+cols+") = ("+nulls+") WHERE id = 102")
	e.converges(t, ctx, topic, "public.fidelity", "id")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
