package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

const minimal = `
source:
  kind: postgres
  dsn: postgres://liberator:${TEST_PGPASSWORD}@127.0.0.1:5432/shop
  tables: [public.customers, orders]
kafka:
  brokers: [127.0.0.1:9092]
  topic_prefix: shop
registry:
  url: http://127.0.0.1:8081
`

func TestParseAppliesDefaultsAndInterpolates(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "s3cr:t")
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Source.DSN, "postgres://liberator:s3cr:t@127.0.0.1:5432/shop"; got != want {
		t.Errorf("dsn = %q, want %q", got, want)
	}
	got := []any{cfg.Name, cfg.Snapshot.Mode, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor, cfg.Kafka.OffsetsTopic, cfg.HTTP.Listen, cfg.ShutdownTimeout, cfg.CommitInterval}
	want := []any{"shop", connectors.SnapshotInitial, int32(1), int16(-1), "_liberator_offsets", "127.0.0.1:8080", 30 * time.Second, time.Second}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestParseReadsSecretsFromFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(strings.Replace(minimal, "${TEST_PGPASSWORD}", "${file:"+p+"}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.Source.DSN, ":from-file@") {
		t.Errorf("dsn = %q, want the file's content without its newline", cfg.Source.DSN)
	}
}

func TestParseRefuses(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name  string
		edit  func(string) string
		wants []string
	}{
		{"an unknown key", func(s string) string { return s + "kafak: {}\n" }, []string{
			"line 11: kafak: unknown key (allowed at the top level: commit_interval, delivery, errors, ha, http, kafka, log, mapping, mapping_salt, memory_limit, name, outbox, registry, schema, shutdown_timeout, snapshot, source, transaction_max_bytes)"}},
		{"an unknown key deep down", func(s string) string {
			return s + "mapping:\n  orders:\n    exlcude: [a]\nsnapshot:\n  chunk: 5\n"
		}, []string{
			"line 13: mapping.orders.exlcude: unknown key (allowed in mapping.orders: exclude, hash, include, key, mask, rename, salt, topic)",
			"line 15: snapshot.chunk: unknown key (allowed in snapshot: chunk_size, mode, parallelism, signal_table)"}},
		{"a value of the wrong type", func(s string) string { return s + "commit_interval: soon\n" }, []string{
			"line 11: cannot read !!str `soon` into a duration such as 500ms, 30s or 5m"}},
		{"an unset variable", func(s string) string { return strings.Replace(s, "TEST_PGPASSWORD", "TEST_UNSET_VARIABLE", 1) }, []string{"TEST_UNSET_VARIABLE is not set"}},
		{"a bad source kind", func(s string) string { return strings.Replace(s, "kind: postgres", "kind: oracle", 1) }, []string{`source.kind: "oracle"`}},
		{"every problem at once", func(s string) string {
			s = strings.Replace(s, "[public.customers, orders]", "[a.b.c]", 1)
			s = strings.Replace(s, "topic_prefix: shop", "topic_prefix: 'sh op'", 1)
			return strings.Replace(s, "http://127.0.0.1:8081", "127.0.0.1:8081", 1) + "snapshot: {mode: sometimes}\n"
		}, []string{`source.tables[0]: "a.b.c"`, `kafka.topic_prefix: "sh op"`, `registry.url: "127.0.0.1:8081"`, `snapshot.mode: "sometimes"`}},
		{"a bad slot name", func(s string) string {
			return s[:strings.Index(s, "kafka:")] + "  postgres: {slot: My-Slot}\n" + s[strings.Index(s, "kafka:"):]
		}, []string{`source.postgres.slot: "My-Slot"`}},
		{"a broker without a port", func(s string) string { return strings.Replace(s, "127.0.0.1:9092", "kafka", 1) }, []string{`kafka.brokers[0]: "kafka" is not host:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.edit(minimal)))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestAdminListenerOffLoopbackNeedsAToken(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name   string
		listen string
		token  string
		want   string // empty: the config loads
	}{
		{"the default loopback address needs no token", "", "", ""},
		{"127.0.0.1 needs no token", "127.0.0.1:8080", "", ""},
		{"any address of 127.0.0.0/8 needs no token", "127.1.2.3:8080", "", ""},
		{"::1 needs no token", "'[::1]:8080'", "", ""},
		{"localhost needs no token", "localhost:8080", "", ""},
		{"off needs no token", "off", "", ""},
		{"every interface needs a token", "0.0.0.0:8080", "", `http.listen: "0.0.0.0:8080" is not a loopback address and http.token is empty`},
		{"an empty host needs a token", "':8080'", "", `http.listen: ":8080" is not a loopback address and http.token is empty`},
		{"every IPv6 interface needs a token", "'[::]:8080'", "", `http.listen: "[::]:8080" is not a loopback address`},
		{"a host name needs a token", "admin.example.com:8080", "", `http.listen: "admin.example.com:8080" is not a loopback address`},
		{"a pod address needs a token", "10.1.2.3:8080", "", "set http.token"},
		{"every interface with a token loads", "0.0.0.0:8080", "s3cret", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := minimal
			if tt.listen != "" || tt.token != "" {
				s += "http:\n"
			}
			if tt.listen != "" {
				s += "  listen: " + tt.listen + "\n"
			}
			if tt.token != "" {
				s += "  token: " + tt.token + "\n"
			}
			_, err := Parse([]byte(s))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse refused the config: %v", err)
			case tt.want != "" && err == nil:
				t.Fatal("Parse accepted the config")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestConfigErrorsNeverShowAPassword(t *testing.T) {
	const pw = "s3cret-pw"
	t.Setenv("TEST_PGPASSWORD", pw)
	tests := []struct {
		name string
		edit func(string) string
		want string
	}{
		{"a registry URL that is not http(s)", func(s string) string {
			return strings.Replace(s, "http://127.0.0.1:8081", "ftp://reg:"+pw+"@127.0.0.1:8081", 1)
		}, `registry.url: "ftp://reg:xxxxx@127.0.0.1:8081"`},
		{"a PostgreSQL DSN with a bad port", func(s string) string { return strings.Replace(s, ":5432", ":port", 1) }, "source.dsn"},
		{"a MySQL DSN with a bad scheme", func(s string) string {
			s = strings.Replace(s, "kind: postgres", "kind: mysql", 1)
			s = strings.Replace(s, "postgres://", "mysqlx://", 1)
			return strings.Replace(s, "[public.customers, orders]", "[shop.customers]", 1)
		}, "mysqlx://liberator:xxxxx@127.0.0.1:5432/shop"},
		{"a MySQL DSN with a bad parameter", func(s string) string {
			s = strings.Replace(s, "kind: postgres", "kind: mysql", 1)
			s = strings.Replace(s, "postgres://", "mysql://", 1)
			s = strings.Replace(s, "/shop", "/shop?sslmode="+pw, 1)
			return strings.Replace(s, "[public.customers, orders]", "[shop.customers]", 1)
		}, "source.dsn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.edit(minimal)))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("error %q shows the password", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestLoadErrorsAreConfigErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if _, ok := err.(*Error); !ok {
		t.Fatalf("Load of a missing file returned %T, want *Error", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("source: {kind: mysql}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse(b)
	})
}
