package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/postgres"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// evoPG is a PostgreSQL database with the given tables, Kafka and a
// registry, for tests that change tables under liberator.
type evoPG struct {
	pg     *harness.PostgresServer
	kafka  *harness.KafkaCluster
	reg    *harness.RegistryServer
	dsn    string
	conn   *pgx.Conn
	client *schema.Registry
}

func newEvoPG(t *testing.T, ctx context.Context, schemaSQL string) *evoPG {
	t.Helper()
	e := &evoPG{pg: harness.Postgres(t), kafka: harness.Kafka(t), reg: harness.Registry(t)}
	var err error
	if e.dsn, err = e.pg.CreateDatabase("app"); err != nil {
		t.Fatal(err)
	}
	// Tables change shape under these tests: describe every statement
	// rather than cache a plan whose result type goes stale.
	pcfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	if e.conn, err = pgx.ConnectConfig(ctx, pcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	e.exec(t, ctx, schemaSQL)
	if e.client, err = schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL}); err != nil {
		t.Fatal(err)
	}
	return e
}

// config writes a config for the tables, with topic prefix evo; extra is
// appended at the top level.
func (e *evoPG) config(t *testing.T, tables []string, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [%s]
kafka:
  brokers: [%s]
  topic_prefix: evo
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
%s
`, e.dsn, strings.Join(tables, ", "), strings.Join(e.kafka.Brokers, ","), e.reg.URL, extra))
}

func (e *evoPG) exec(t *testing.T, ctx context.Context, sql string, args ...any) {
	t.Helper()
	if _, err := e.conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (e *evoPG) lsn(t *testing.T, ctx context.Context) pglogrepl.LSN {
	t.Helper()
	var s string
	if err := e.conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	l, err := pglogrepl.ParseLSN(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (e *evoPG) converges(t *testing.T, ctx context.Context, topic, table string, key ...string) {
	t.Helper()
	requireConverges(t, ctx, e.kafka.Brokers, e.client, e.conn, func(string) string { return topic }, map[string][]string{table: key}, 90*time.Second)
}

// TestIntegrationPostgresSchemaEvolution changes a table in the stream in
// every compatible way: columns added with constant defaults and without,
// a column dropped, a column renamed, a type widened. Each change gives a
// new version of the value subject, the key subject keeps its one version,
// the topic keeps equal to the table, and a downstream reader on the
// latest schema reads every older event, with the SQL defaults.
func TestIntegrationPostgresSchemaEvolution(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, `
CREATE TABLE evo (id bigint PRIMARY KEY, a integer NOT NULL, b text, price numeric(10,2));
INSERT INTO evo SELECT g, g, 'b' || g, g / 4.0 FROM generate_series(1, 20) g;`)
	const topic = "evo.public.evo"
	d := startDaemon(t, "run", e.config(t, []string{"public.evo"}, ""))
	e.converges(t, ctx, topic, "public.evo", "id")

	// Columns with constant defaults: PostgreSQL fills the existing rows
	// with them without a WAL record, so their events in the topic are the
	// old ones. A reader on the new schema sees the defaults there, which
	// are what the table holds.
	e.exec(t, ctx, `ALTER TABLE evo ADD COLUMN c integer NOT NULL DEFAULT 7, ADD COLUMN note text DEFAULT 'n/a', ADD COLUMN d numeric(6,2) NOT NULL DEFAULT 1.25, ADD COLUMN e text`)
	e.exec(t, ctx, `INSERT INTO evo (id, a) VALUES (21, 21)`)
	requireRows(t, ctx, "a reader on the latest schema", func() rowSet {
		rows, err := readTable(ctx, e.conn, "public.evo", []string{"id"})
		require.NoError(t, err)
		return rows
	}, func() (rowSet, error) { return replayLatest(ctx, e.kafka.Brokers, e.client, topic) })
	if filled := requireLatestReadsEveryEvent(t, ctx, e.kafka.Brokers, e.client, topic); filled < 20 {
		t.Errorf("%d events lacked a field of the latest schema, want the 20 written before the change", filled)
	}

	steps := []struct{ name, sql string }{
		{"drop a column", `ALTER TABLE evo DROP COLUMN b; UPDATE evo SET a = a`},
		{"rename a column", `ALTER TABLE evo RENAME COLUMN note TO remark; UPDATE evo SET a = a`},
		{"widen integer to bigint", `ALTER TABLE evo ALTER COLUMN a TYPE bigint; UPDATE evo SET a = a + 1`},
		{"widen a decimal's precision", `ALTER TABLE evo ALTER COLUMN price TYPE numeric(12,2); UPDATE evo SET price = price * 2`},
		{"make a column nullable", `ALTER TABLE evo ALTER COLUMN c DROP NOT NULL; UPDATE evo SET c = NULL WHERE id % 2 = 0`},
	}
	for _, s := range steps {
		e.exec(t, ctx, s.sql)
		e.converges(t, ctx, topic, "public.evo", "id")
	}
	if got := subjectVersions(t, ctx, e.client, topic+"-value"); len(got) != 2+len(steps) {
		t.Errorf("value subject versions %v, want %d: one per change", got, 2+len(steps))
	}
	if got := subjectVersions(t, ctx, e.client, topic+"-key"); len(got) != 1 {
		t.Errorf("key subject versions %v, want one", got)
	}
	// Whatever compaction left of the older versions reads with the latest.
	requireLatestReadsEveryEvent(t, ctx, e.kafka.Brokers, e.client, topic)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}

// TestIntegrationPostgresIncompatibleChange changes a column's type so
// that the new value schema cannot read the old one. Under
// schema.on_incompatible: fail liberator exits 1 naming the table, the
// column and why, and stores no position past the change, so a restart
// stops at the same change. Under new_topic the table moves to
// <topic>.v2 and, after a key change, .v3, and a restart stays there.
func TestIntegrationPostgresIncompatibleChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, `
CREATE TABLE evo (id bigint PRIMARY KEY, a integer NOT NULL, b text NOT NULL);
INSERT INTO evo SELECT g, g, 'b' || g FROM generate_series(1, 10) g;`)
	const topic = "evo.public.evo"
	failing := e.config(t, []string{"public.evo"}, "")
	d := startDaemon(t, "run", failing)
	e.converges(t, ctx, topic, "public.evo", "id")

	e.exec(t, ctx, `ALTER TABLE evo ALTER COLUMN a TYPE text USING 'n' || a`)
	before := e.lsn(t, ctx)
	e.exec(t, ctx, `INSERT INTO evo VALUES (11, 'eleven', 'b11')`)
	// (The log's text format escapes quotes.)
	says := []string{"table public.evo changed incompatibly (columns a)", "evo.public.evo-value", "under BACKWARD", "is string in the new schema, which cannot read int of version 1"}
	waitExit(t, d, 1, says...)
	stored, err := postgres.ParsePosition(offsetsTopicPosition(t, ctx, e.kafka.Brokers, "evo"))
	if err != nil {
		t.Fatal(err)
	}
	if stored.LSN > before {
		t.Fatalf("stored position %s is past %s, where the incompatible change begins", stored.LSN, before)
	}

	// The change was not skipped: a restart meets it again.
	waitExit(t, startDaemon(t, "run", failing), 1, says...)

	moving := e.config(t, []string{"public.evo"}, "schema: {on_incompatible: new_topic}")
	d = startDaemon(t, "run", moving)
	waitLog(t, d, "publishing it to a new topic")
	// The new topic starts with the change that did not fit the old one.
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, topic+".v2", func() rowSet {
		rows, err := readTable(ctx, e.conn, "public.evo WHERE id = 11", []string{"id"})
		require.NoError(t, err)
		return rows
	})
	e.exec(t, ctx, `UPDATE evo SET b = b || '!'`)
	e.converges(t, ctx, topic+".v2", "public.evo", "id")

	// A key change is incompatible too: the new key gets its own topic.
	e.exec(t, ctx, `ALTER TABLE evo DROP CONSTRAINT evo_pkey, ADD PRIMARY KEY (id, b); UPDATE evo SET a = a || '.'`)
	e.converges(t, ctx, topic+".v3", "public.evo", "id", "b")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}

	// A restart goes on with .v3, the highest version in the registry.
	d = startDaemon(t, "run", moving)
	e.exec(t, ctx, `INSERT INTO evo VALUES (12, 'twelve', 'b12')`)
	e.converges(t, ctx, topic+".v3", "public.evo", "id", "b")
	subjects, err := e.client.Subjects(ctx, topic)
	require.NoError(t, err)
	require.Equal(t, []string{topic + "-key", topic + "-value", topic + ".v2-key", topic + ".v2-value", topic + ".v3-key", topic + ".v3-value"}, subjects)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
