package config

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func withTables(tables string) string {
	return strings.Replace(minimal, "  tables: [public.customers, orders]\n", tables, 1)
}

func TestPatternsGoToTheSourceAndNamedTablesStayCaptured(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(withTables(`  tables: [public.customers, 'shop.*', '/billing\.inv_\d+/']
  tables_exclude: [shop.tmp_*]
  tables_poll_interval: 250ms
mapping:
  shop.orders: {topic: orders}
  public.customers: {exclude: [email]}
`)))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"public.customers", "shop.orders"}, cfg.Captured()); d != "" {
		t.Errorf("Captured (-want +got):\n%s", d)
	}
	pg := cfg.Postgres(slog.Default())
	if d := cmp.Diff([]string{"public.customers"}, pg.Tables); d != "" {
		t.Errorf("postgres Tables (-want +got):\n%s", d)
	}
	if pg.PatternPoll != 250*time.Millisecond {
		t.Errorf("PatternPoll = %v, want 250ms", pg.PatternPoll)
	}
	for _, c := range []struct {
		schema, table string
		want          bool
	}{{"shop", "orders", true}, {"shop", "tmp_1", false}, {"billing", "inv_7", true}, {"billing", "inv_x", false}, {"public", "customers", false}} {
		if got := pg.Patterns.Match(c.schema, c.table); got != c.want {
			t.Errorf("patterns match %s.%s: %v, want %v", c.schema, c.table, got, c.want)
		}
	}
}

func TestTablesPollIntervalDefaultsToASecond(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(withTables("  tables: ['shop.*']\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.TablesPollInterval != time.Second {
		t.Errorf("source.tables_poll_interval = %v, want 1s", cfg.Source.TablesPollInterval)
	}
}

func TestBadPatternsAreNamedByTheirKey(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct{ name, tables, want string }{
		{"a bad regular expression", "  tables: ['/shop\\.(/']\n", "source.tables[0]: \"/shop\\\\.(/\" is not a regular expression"},
		{"a bad glob", "  tables: [orders, 'shop.[a-']\n", "source.tables[1]: \"shop.[a-\" is not a glob"},
		{"a bad exclude", "  tables: ['shop.*']\n  tables_exclude: ['/(/']\n", "source.tables_exclude[0]:"},
		{"an exclude without a pattern to narrow", "  tables: [orders]\n  tables_exclude: [shop.tmp]\n", "source.tables_exclude: is set but source.tables has no pattern"},
		{"patterns under query capture", "  tables: ['shop.*']\n  capture: query\n", "source.tables[0]: \"shop.*\" is a pattern, which source.capture: query does not take"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(withTables(tt.tables)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
