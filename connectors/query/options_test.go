package query

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// canon is PostgreSQL's: a bare name is in schema public.
func canon(s string) (string, error) {
	schema, table, err := connectors.ParseTableName(s, "public", false)
	if err != nil {
		return "", err
	}
	return connectors.TableID(schema, table), nil
}

func TestOptionsValidate(t *testing.T) {
	tables := []string{"public.customers", "orders"}
	ok := map[string]TableOptions{
		"customers":     {Mode: TimestampIncrementing, Timestamp: "updated_at", Incrementing: "id"},
		"public.orders": {Mode: Incrementing, Incrementing: "id"},
	}
	for _, tc := range []struct {
		name string
		opts Options
		says []string // each error's text, in order; none for a valid config
	}{
		{name: "entries in any spelling of the table name are valid", opts: Options{Tables: ok}},
		{name: "a table without an entry is named with the modes to choose from", opts: Options{Tables: map[string]TableOptions{"customers": ok["customers"]}},
			says: []string{"source.query.tables: public.orders has no entry (give it a mode"}},
		{name: "an entry for a table that is not captured is refused", opts: Options{Tables: with(ok, "public.other", TableOptions{Mode: Bulk})},
			says: []string{"source.query.tables.public.other: public.other is not in source.tables"}},
		{name: "each mode names the column it lacks", opts: Options{Tables: map[string]TableOptions{
			"customers": {Mode: Timestamp}, "orders": {Mode: Incrementing},
		}}, says: []string{"source.query.tables.customers.timestamp: is empty", "source.query.tables.orders.incrementing: is empty"}},
		{name: "an unknown mode is named with the modes", opts: Options{Tables: with(ok, "public.orders", TableOptions{Mode: "append"})},
			says: []string{`source.query.tables.public.orders.mode: "append" is not a mode (use bulk, incrementing, timestamp or timestamp+incrementing)`}},
		{name: "a query needs a key", opts: Options{Tables: with(ok, "public.orders", TableOptions{Mode: Bulk, Query: "SELECT 1 AS id"})},
			says: []string{"source.query.tables.public.orders.key: is empty (a query has no primary key"}},
		{name: "every is for bulk alone", opts: Options{Tables: with(ok, "public.orders", TableOptions{Mode: Incrementing, Incrementing: "id", Every: time.Minute})},
			says: []string{"source.query.tables.public.orders.every: only mode bulk takes every"}},
		{name: "bounds are named by their keys", opts: Options{Tables: ok, PageSize: -1, ReconcileEvery: -time.Second, Lag: -time.Second},
			says: []string{"source.query.page_size: -1 is out of range", "source.query.reconcile_every: -1s must not be negative", "source.query.lag: -1s must not be negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate(tables, canon)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tc.says) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tc.says), err)
			}
			for i, s := range tc.says {
				if !strings.HasPrefix(got[i], s) {
					t.Errorf("error %d is %q, want it to begin %q", i, got[i], s)
				}
			}
		})
	}
}

func with(m map[string]TableOptions, k string, v TableOptions) map[string]TableOptions {
	out := map[string]TableOptions{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func TestPositionRoundTrips(t *testing.T) {
	p := Position{Tables: map[string]Watermark{
		"public.customers": {After: []string{"2026-01-02 03:04:05.123456+00", "42"}, Full: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)},
		"public.orders":    {After: []string{"7"}},
		"public.accounts":  {},
	}}
	got, err := ParsePosition(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(p, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	if !p.Equal(got) {
		t.Error("a parsed position is not Equal to the one encoded")
	}
	if want := "public.accounts public.customers>(2026-01-02 03:04:05.123456+00,42) public.orders>(7)"; p.String() != want {
		t.Errorf("String is %q, want %q", p.String(), want)
	}
}

func TestParsePositionRefusesALogPosition(t *testing.T) {
	_, err := ParsePosition([]byte(`{"lsn":"0/16B3748"}`))
	if err == nil || !strings.Contains(err.Error(), "was it stored by log capture?") {
		t.Fatalf("got %v, want an error that says the position may be log capture's", err)
	}
}

func FuzzParsePosition(f *testing.F) {
	f.Add([]byte(`{"tables":{"public.t":{"after":["1"]}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePosition(b)
		if err != nil {
			return
		}
		q, err := ParsePosition(p.Encode())
		if err != nil {
			t.Fatalf("a parsed position does not parse again: %v", err)
		}
		if !p.Equal(q) {
			t.Fatal("a parsed position changes when encoded and parsed again")
		}
	})
}
