package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/kafka"
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

// pgRangesSQL makes a table of the values at the ends of what PostgreSQL
// and Avro hold: PostgreSQL's first and last dates and timestamps, the
// last timestamp that timestamp-micros holds, the infinities, and numerics
// whose scale is above their precision or below zero. Rows 3 to 5 hold a
// timestamp that int64 microseconds cannot count (PostgreSQL's own last
// one, and the microsecond that would read as infinity): bad rows.
const pgRangesSQL = `
CREATE TABLE ranges (
	id    integer PRIMARY KEY,
	ts    timestamp,
	tstz  timestamptz,
	d     date,
	small numeric(2,5),
	neg   numeric(3,-2)
);
INSERT INTO ranges VALUES
(1, '4714-11-24 00:00:00 BC', '4714-11-24 00:00:00+00 BC', '4714-11-24 BC', 0.00099, 99900),
(2, '294247-01-10 04:00:54.775806', '294247-01-10 04:00:54.775806+00', '5874897-12-31', -0.00099, -99900),
(3, '294276-12-31 23:59:59.999999', NULL, NULL, NULL, NULL),
(4, NULL, '294276-12-31 23:59:59.999999+00', NULL, NULL, NULL),
(5, '294247-01-10 04:00:54.775807', NULL, NULL, NULL, NULL),
(6, 'infinity', '-infinity', 'infinity', 0, 0),
(7, NULL, NULL, NULL, NULL, NULL);
`

// pgRangesExpected is what the good rows of ranges must read as, computed
// by PostgreSQL itself: microseconds and days since 1970 as exact numerics
// (the infinities as the extremes the README documents), decimals as text.
const pgRangesExpected = `
SELECT id::text,
	CASE WHEN ts IS NULL THEN 'NULL' WHEN ts = 'infinity' THEN '9223372036854775807' WHEN ts = '-infinity' THEN '-9223372036854775808'
		ELSE (extract(epoch FROM ts) * 1000000)::numeric(30,0)::text END,
	CASE WHEN tstz IS NULL THEN 'NULL' WHEN tstz = 'infinity' THEN '9223372036854775807' WHEN tstz = '-infinity' THEN '-9223372036854775808'
		ELSE (extract(epoch FROM tstz) * 1000000)::numeric(30,0)::text END,
	CASE WHEN d IS NULL THEN 'NULL' WHEN d = 'infinity' THEN '2147483647' WHEN d = '-infinity' THEN '-2147483648'
		ELSE (d - date '1970-01-01')::text END,
	coalesce(small::text, 'NULL'), coalesce(neg::text, 'NULL')
FROM ranges WHERE id = ANY($1)`

// TestIntegrationPostgresValueRanges liberates the values at the ends of
// each type's range through the snapshot and then the stream, under
// errors.on_bad_row: dead_letter. The rows whose values Avro can hold are
// published exactly, as an independent Avro decoder reads them; the rows
// with a timestamp that int64 microseconds cannot count are dead letters
// that name the column and hold the value as PostgreSQL prints it, and are
// never published with a wrapped value.
func TestIntegrationPostgresValueRanges(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, pgRangesSQL)
	const topic, letters = "evo.public.ranges", "evo.dead_letter"
	d := startDaemon(t, "run", e.config(t, []string{"public.ranges"}, "errors:\n  on_bad_row: dead_letter"))

	expected := func(ids []int) map[int][]string {
		rows, err := e.conn.Query(ctx, pgRangesExpected, ids)
		require.NoError(t, err)
		out := map[int][]string{}
		for rows.Next() {
			var r [6]string
			require.NoError(t, rows.Scan(&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]))
			id, _ := strconv.Atoi(r[0])
			for i := 4; i < 6; i++ {
				if r[i] != "NULL" {
					q, ok := new(big.Rat).SetString(r[i])
					require.True(t, ok, "numeric %q", r[i])
					r[i] = q.RatString()
				}
			}
			out[id] = r[1:]
		}
		require.NoError(t, rows.Err())
		return out
	}
	// published reads the topic with the registry's schemas, each value in
	// the units of expected.
	published := func() (map[int][]string, error) {
		recs, err := readRecords(ctx, e.kafka.Brokers, topic)
		if err != nil {
			return nil, err
		}
		out := map[int][]string{}
		for _, r := range recs {
			k, err := e.client.Decode(ctx, r.Key)
			if err != nil {
				return nil, err
			}
			v, err := e.client.Decode(ctx, r.Value)
			if err != nil {
				return nil, err
			}
			id := k.(map[string]any)["id"].(int)
			rec := v.(map[string]any)
			var row []string
			for _, f := range []string{"ts", "tstz", "d", "small", "neg"} {
				switch x := unwrapUnion(rec[f]).(type) {
				case nil:
					row = append(row, "NULL")
				case time.Time:
					if f == "d" {
						row = append(row, strconv.FormatInt(x.Unix()/86400, 10))
					} else {
						row = append(row, strconv.FormatInt(x.UnixMicro(), 10))
					}
				case *big.Rat:
					row = append(row, x.RatString())
				default:
					return nil, fmt.Errorf("field %s of id %d is %T", f, id, x)
				}
			}
			out[id] = row
		}
		return out, nil
	}
	deadLetters := func() (map[int]kafka.DeadLetter, error) {
		recs, err := readRecords(ctx, e.kafka.Brokers, letters)
		if err != nil {
			return nil, err
		}
		out := map[int]kafka.DeadLetter{}
		for _, r := range recs {
			var dl kafka.DeadLetter
			if err := json.Unmarshal(r.Value, &dl); err != nil {
				return nil, err
			}
			var key struct{ ID int }
			if err := json.Unmarshal(r.Key, &key); err != nil {
				return nil, err
			}
			out[key.ID] = dl
		}
		return out, nil
	}
	check := func(good, bad []int) {
		t.Helper()
		want := expected(good)
		require.Len(t, want, len(good))
		got, dls := map[int][]string{}, map[int]kafka.DeadLetter{}
		require.Eventually(t, func() bool {
			g, err1 := published()
			l, err2 := deadLetters()
			if err1 == nil && err2 == nil {
				got, dls = g, l
			}
			// Every row is either published or a dead letter.
			return d.exited() || err1 == nil && err2 == nil && len(got)+len(dls) >= len(good)+len(bad)
		}, time.Minute, 100*time.Millisecond)
		require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("published rows differ from PostgreSQL's values (-want +got):\n%s", diff)
		}
		require.ElementsMatch(t, bad, slices.Collect(maps.Keys(dls)), "ids in the dead-letter topic")
		for _, id := range bad {
			column, text := "ts", `"294276-12-31 23:59:59.999999"`
			switch id % 100 {
			case 4:
				column, text = "tstz", `"294276-12-31 23:59:59.999999+00"`
			case 5:
				text = `"294247-01-10 04:00:54.775807"`
			}
			dl := dls[id]
			require.Equal(t, column, dl.Column, "dead letter %d", id)
			require.Equal(t, kafka.ReasonEncode, dl.Reason, "dead letter %d", id)
			require.Contains(t, dl.Error, "outside the range of an Avro", "dead letter %d", id)
			var row map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(dl.Row, &row))
			require.Equal(t, text, string(row[column]), "dead letter %d keeps the value as PostgreSQL prints it", id)
		}
	}
	// The snapshot.
	check([]int{1, 2, 6, 7}, []int{3, 4, 5})
	// The stream.
	e.exec(t, ctx, "INSERT INTO ranges SELECT id + 100, ts, tstz, d, small, neg FROM ranges")
	check([]int{1, 2, 6, 7, 101, 102, 106, 107}, []int{3, 4, 5, 103, 104, 105})
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
