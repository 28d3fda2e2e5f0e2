package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReadsTheOutboxSection(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	t.Setenv("ENV_NAME", "prod")
	cfg, err := Parse([]byte(minimal + `outbox:
  - table: outbox
    topic: "${ENV_NAME}.${aggregate_type}.events"
  - message_prefix: liberator.outbox
    infer_schema: true
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Outbox[0].Topic, "prod.${aggregate_type}.events"; got != want {
		t.Errorf("routing template %q, want %q: the environment is read, the event's fields are left", got, want)
	}
	if got := cfg.Outbox[0].AggregateID; got != "aggregateid" {
		t.Errorf("a table's aggregate_id defaults to %q, want Debezium's aggregateid", got)
	}
	if got := cfg.Outbox[1].AggregateID; got != "aggregate_id" {
		t.Errorf("a message's aggregate_id defaults to %q, want aggregate_id", got)
	}
	if got := cfg.Outbox[1].Topic; got != "shop.${aggregate_type}" {
		t.Errorf("default topic %q, want shop.${aggregate_type}", got)
	}
	pg := cfg.Postgres(nil)
	if d := cmp.Diff([]string{"public.customers", "orders", "outbox"}, pg.Tables); d != "" {
		t.Errorf("the source reads the outbox table too (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"public.outbox"}, pg.Snapshots.Never); d != "" {
		t.Errorf("tables never snapshotted (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"liberator.outbox"}, pg.Messages); d != "" {
		t.Errorf("message prefixes (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"public.customers", "public.orders"}, cfg.Captured()); d != "" {
		t.Errorf("entity tables (-want +got):\n%s", d)
	}
}

func TestParseRefusesAMessageOutboxOfMySQL(t *testing.T) {
	doc := strings.Replace(minimal, "kind: postgres", "kind: mariadb", 1)
	doc = strings.Replace(doc, "postgres://liberator:${TEST_PGPASSWORD}@127.0.0.1:5432/shop", "mysql://root@127.0.0.1:3306/", 1)
	doc = strings.Replace(doc, "[public.customers, orders]", "[shop.orders]", 1)
	_, err := Parse([]byte(doc + "outbox:\n  - message_prefix: liberator.outbox\n"))
	if err == nil || !strings.Contains(err.Error(), "outbox[0].message_prefix: messages are PostgreSQL's") {
		t.Errorf("got %v", err)
	}
}
