package config

import (
	"strings"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/connectors/query"
)

const queryTables = `  capture: query
  query:
    poll_interval: 1s
    tables:
      customers: {mode: timestamp+incrementing, timestamp: updated_at, incrementing: id}
      public.orders: {mode: incrementing, incrementing: id}
`

func TestQueryCaptureLoads(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(strings.Replace(minimal, "tables: [public.customers, orders]\n", "tables: [public.customers, orders]\n"+queryTables, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Capture != CaptureQuery || cfg.Source.Query.PollInterval != time.Second {
		t.Errorf("source.capture = %q, poll_interval = %s", cfg.Source.Capture, cfg.Source.Query.PollInterval)
	}
	if got := cfg.Source.Query.Tables["public.orders"].Mode; got != query.Incrementing {
		t.Errorf("mode of public.orders = %q", got)
	}
	cfg, err = Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Capture != CaptureLog {
		t.Errorf("source.capture defaults to %q, want log", cfg.Source.Capture)
	}
}

func TestQueryCaptureKeysAreValidatedByName(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	for _, tt := range []struct {
		name, section, want string
	}{
		{"an unknown capture", "  capture: trigger\n", `source.capture: "trigger" is not a capture (use log or query)`},
		{"query tables under log capture", strings.Replace(queryTables, "capture: query", "capture: log", 1), "source.query.tables: is set but source.capture is log"},
		{"an unknown key of a table's entry", strings.Replace(queryTables, "incrementing: id}\n", "incrementing: id, column: x}\n", 1),
			"source.query.tables.customers.column: unknown key (allowed in source.query.tables.customers: every, incrementing, key, mode, query, timestamp)"},
		{"a table without an entry", strings.Replace(queryTables, "      public.orders: {mode: incrementing, incrementing: id}\n", "", 1), "source.query.tables: public.orders has no entry"},
		{"snapshot mode never", queryTables + "snapshot: {mode: never}\n", "snapshot.mode: never is not available with source.capture: query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(minimal, "tables: [public.customers, orders]\n", "tables: [public.customers, orders]\n"+tt.section, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error that says %q", err, tt.want)
			}
		})
	}
}
