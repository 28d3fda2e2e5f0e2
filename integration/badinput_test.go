package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/internal/harness"
)

// TestIntegrationRefusesBadInput checks that bad input ends with a message
// that names the problem and the right exit code, and starts nothing.
func TestIntegrationRefusesBadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := harness.Postgres(t)
	k := harness.Kafka(t)
	reg := harness.Registry(t)
	if err := pg.Exec(ctx, "CREATE TABLE nokey (a int, b text); CREATE TABLE ok (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	config := func(dsn, tables, extra string) string {
		return fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [%s]
kafka:
  brokers: [%s]
  topic_prefix: bad
registry:
  url: %s
http:
  listen: 127.0.0.1:0
%s`, dsn, tables, k.Brokers[0], reg.URL, extra)
	}
	tests := []struct {
		name string
		cfg  string
		code int
		says string
	}{
		{"an unknown key is a config error", config(pg.DSN, "public.ok", "kafak: {}"), 2, "kafak: unknown key (allowed at the top level: "},
		{"an invalid value names its key", config(pg.DSN, "public.ok", "snapshot: {mode: sometimes}"), 2, `snapshot.mode: "sometimes" is not a mode`},
		{"a table without a primary key is named", config(pg.DSN, "public.ok, public.nokey", ""), 1, "table has no primary key: public.nokey"},
		{"a missing table is named", config(pg.DSN, "public.nothere", ""), 1, "table does not exist: public.nothere"},
		{"an unreachable database fails at start", config(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port), "public.ok", ""), 1, "connect to postgres"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, "run", writeConfig(t, tt.cfg))
			if code := d.wait(30 * time.Second); code != tt.code {
				t.Errorf("exit code %d, want %d; log:\n%s", code, tt.code, d.logTail())
			}
			if !d.logContains(tt.says) {
				t.Errorf("log does not say %q:\n%s", tt.says, d.logTail())
			}
			if !d.exited() {
				t.Error("still running")
			}
		})
	}
}
