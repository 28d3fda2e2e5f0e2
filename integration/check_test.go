package integration

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// runCheck runs `liberator check` and returns its exit code and output.
func runCheck(t *testing.T, cfg string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, "check", "--config", cfg)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String()
}

func checkConfig(kind, dsn, tables string, k *harness.KafkaCluster, reg *harness.RegistryServer) string {
	return fmt.Sprintf("source:\n  kind: %s\n  dsn: %s\n  tables: [%s]\nkafka:\n  brokers: [%s]\n  topic_prefix: chk\nregistry:\n  url: %s\n", kind, dsn, tables, k.Brokers[0], reg.URL)
}

// TestIntegrationCheckNamesPostgresMisconfiguration runs check against a
// server with wal_level=replica and a user without the REPLICATION attribute
// or SELECT on a table, then against a good setup.
func TestIntegrationCheckNamesPostgresMisconfiguration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, reg := harness.Kafka(t), harness.Registry(t)
	bad := harness.Postgres(t, harness.PostgresSetting("wal_level", "replica"))
	require.NoError(t, bad.Exec(ctx, `CREATE TABLE items (id int PRIMARY KEY); CREATE TABLE secret (id int PRIMARY KEY);
		CREATE TABLE nothing (id int PRIMARY KEY); ALTER TABLE nothing REPLICA IDENTITY NOTHING;
		CREATE ROLE app LOGIN; GRANT SELECT ON items, nothing TO app`))
	dsn := strings.Replace(bad.DSN, "postgres@", "app@", 1)
	code, out := runCheck(t, writeConfig(t, checkConfig("postgres", dsn, "public.items, public.secret, public.nothing, public.missing", k, reg)))
	require.Equal(t, 1, code, out)
	for _, want := range []string{
		"FAIL  wal_level is logical", "ALTER SYSTEM SET wal_level = logical",
		"FAIL  the user may replicate", `ALTER ROLE "app" WITH REPLICATION`,
		"FAIL  the user may read public.secret", `GRANT SELECT ON "public"."secret" TO "app"`,
		"REPLICA IDENTITY NOTHING", "table does not exist: public.missing",
		"FAIL  the publication can be created",
		"ok    Kafka is reachable", "ok    the schema registry is reachable",
	} {
		require.Contains(t, out, want)
	}

	good := harness.Postgres(t)
	require.NoError(t, good.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)"))
	code, out = runCheck(t, writeConfig(t, checkConfig("postgres", good.DSN, "public.items", k, reg)))
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ready")

	// run performs the same checks at start.
	d := startDaemon(t, "run", writeConfig(t, checkConfig("postgres", dsn, "public.items", k, reg)+"http:\n  listen: 127.0.0.1:0\n"))
	require.Equal(t, 1, d.wait(30*time.Second))
	require.True(t, d.logContains("wal_level is replica"), d.logTail())
}

// TestIntegrationCheckNamesMariaDBMisconfiguration runs check against a
// server with binlog_row_metadata=MINIMAL and a user without replication
// privileges.
func TestIntegrationCheckNamesMariaDBMisconfiguration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, reg := harness.Kafka(t), harness.Registry(t)
	m := harness.MariaDB(t, harness.MariaDBFlags("--binlog-row-metadata=MINIMAL"))
	for _, q := range []string{
		"CREATE DATABASE shop", "CREATE TABLE shop.items (id int PRIMARY KEY)",
		"CREATE USER 'app'@'127.0.0.1'", "GRANT SELECT ON shop.* TO 'app'@'127.0.0.1'",
	} {
		require.NoError(t, m.Exec(ctx, q))
	}
	dsn := strings.Replace(strings.TrimSuffix(m.DSN, "/"), "root@", "app@", 1)
	code, out := runCheck(t, writeConfig(t, checkConfig("mariadb", dsn, "shop.items", k, reg)))
	require.Equal(t, 1, code, out)
	for _, want := range []string{
		"binlog_row_metadata is MINIMAL", "FAIL  the user has REPLICATION SLAVE", "FAIL  the user has REPLICATION CLIENT",
		"ok    table shop.items exists",
	} {
		require.Contains(t, out, want)
	}
}

// TestIntegrationCheckExactlyOnce runs check with delivery: exactly_once
// while a pipeline of the same name runs: check says the principal may use
// transactions and that one cluster holds the offsets and the events, and
// its probe fences nothing.
func TestIntegrationCheckExactlyOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k, reg := harness.Kafka(t), harness.Registry(t)
	pg := harness.Postgres(t)
	require.NoError(t, pg.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, v text)"))
	cfg := writeConfig(t, checkConfig("postgres", pg.DSN, "public.items", k, reg)+"delivery: exactly_once\nhttp:\n  listen: 127.0.0.1:0\n")
	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	code, out := runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ok    the principal may use transactions (delivery: exactly_once)")
	require.Contains(t, out, "ok    the offsets topic and the event topics are on the same cluster")
	// The pipeline is not fenced: it goes on committing.
	require.NoError(t, pg.Exec(ctx, "INSERT INTO items VALUES (1, 'a')"))
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rows, err := replayTopic(ctx, k.Brokers, client, "chk.public.items")
		return err == nil && len(rows) == 1
	}, 30*time.Second, 20*time.Millisecond, "the pipeline did not commit the insert after check:\n%s", d.logTail())
	require.False(t, d.exited(), d.logTail())
	require.Equal(t, 0, d.stop(30*time.Second), d.logTail())
}
