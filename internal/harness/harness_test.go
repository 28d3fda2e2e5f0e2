package harness

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func pgSelectOne(ctx context.Context, t *testing.T, p *PostgresServer) {
	t.Helper()
	conn, err := p.Connect(ctx)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
	require.Equal(t, 1, one)
}

func TestIntegrationHarnessPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := time.Now()
	p, err := StartPostgres(PostgresSetting("max_connections", "50"))
	require.NoError(t, err)
	t.Logf("PostgreSQL started in %s on port %d", time.Since(start).Round(time.Millisecond), p.Port)
	t.Cleanup(func() { _ = p.Close() })

	pgSelectOne(ctx, t, p)

	conn, err := p.Connect(ctx)
	require.NoError(t, err)
	for setting, want := range map[string]string{
		"wal_level":             "logical",
		"max_replication_slots": "10",
		"max_wal_senders":       "10",
		"fsync":                 "off",
		"max_connections":       "50",
	} {
		var got string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got))
		require.Equal(t, want, got, setting)
	}
	require.NoError(t, conn.Close(ctx))

	dsn, err := p.CreateDatabase("Mixed Case")
	require.NoError(t, err)
	require.Contains(t, dsn, "/Mixed%20Case?sslmode=disable")
	require.NoError(t, p.Exec(ctx, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)"))
	require.NoError(t, p.Exec(ctx, "INSERT INTO t VALUES ($1)", 2))

	start = time.Now()
	require.NoError(t, p.Stop())
	require.Error(t, p.Exec(ctx, "SELECT 1"), "a stopped server accepts connections")
	require.NoError(t, p.Stop(), "stopping a stopped server")
	require.NoError(t, p.Start())
	t.Logf("PostgreSQL restarted in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, p.Start(), "starting a running server")
	pgSelectOne(ctx, t, p)

	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "closing twice")
	_, err = os.Stat(p.Dir)
	require.ErrorIs(t, err, os.ErrNotExist, "Close leaves the temp dir behind")
	require.Error(t, p.Start(), "starting a closed server")
}

func TestIntegrationHarnessPostgresHelper(t *testing.T) {
	p := Postgres(t)
	pgSelectOne(context.Background(), t, p)
	t.Logf("log: %s", p.LogPath)
}

func TestIntegrationHarnessPostgresMissingBinaries(t *testing.T) {
	t.Setenv("LIBERATOR_PG_BINDIR", "/nonexistent")
	_, err := StartPostgres()
	require.ErrorContains(t, err, "LIBERATOR_PG_BINDIR=/nonexistent does not hold initdb")
}

func TestIntegrationHarnessPostgresStartFailureShowsLog(t *testing.T) {
	_, err := StartPostgres(PostgresSetting("no_such_setting", "1"))
	require.Error(t, err)
	require.Contains(t, err.Error(), `unrecognized configuration parameter "no_such_setting"`, "the error carries the log's tail")
}

func mariadbVariable(ctx context.Context, t *testing.T, m *MariaDBServer, name string) string {
	t.Helper()
	conn, err := m.Connect(ctx)
	require.NoError(t, err)
	defer conn.Close()
	res, err := conn.Execute("SELECT @@GLOBAL." + name)
	require.NoError(t, err)
	defer res.Close()
	v, err := res.GetString(0, 0)
	require.NoError(t, err)
	return v
}

func TestIntegrationHarnessMariaDB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	start := time.Now()
	m, err := StartMariaDB()
	require.NoError(t, err)
	t.Logf("MariaDB started in %s on port %d", time.Since(start).Round(time.Millisecond), m.Port)
	t.Cleanup(func() { _ = m.Close() })

	require.Equal(t, "mysql://root@127.0.0.1:"+strings.TrimPrefix(m.Addr, "127.0.0.1:")+"/", m.DSN)
	for name, want := range map[string]string{
		"log_bin":             "1",
		"binlog_format":       "ROW",
		"binlog_row_image":    "FULL",
		"binlog_row_metadata": "FULL",
		"server_id":           "1",
		"skip_name_resolve":   "1",
		"bind_address":        "127.0.0.1",
		"gtid_strict_mode":    "0",
	} {
		require.Equal(t, want, mariadbVariable(ctx, t, m, name), name)
	}
	require.NoError(t, m.Exec(ctx, "CREATE DATABASE d"))
	require.NoError(t, m.Exec(ctx, "CREATE TABLE d.t (id int PRIMARY KEY)"))
	require.NoError(t, m.Exec(ctx, "INSERT INTO d.t VALUES (?)", 1))
	require.NoError(t, m.Exec(ctx, "INSERT INTO d.t SELECT seq FROM d.seq_2_to_10"))

	start = time.Now()
	require.NoError(t, m.Stop())
	require.Error(t, m.Exec(ctx, "SELECT 1"), "a stopped server accepts connections")
	require.NoError(t, m.Stop(), "stopping a stopped server")
	t.Logf("MariaDB stopped in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, m.Start())
	t.Logf("MariaDB restarted in %s", time.Since(start).Round(time.Millisecond))
	require.NoError(t, m.Start(), "starting a running server")
	require.Equal(t, "10", countRows(ctx, t, m), "rows survive a restart")

	require.NoError(t, m.Close())
	require.NoError(t, m.Close(), "closing twice")
	_, err = os.Stat(m.Dir)
	require.ErrorIs(t, err, os.ErrNotExist, "Close leaves the temp dir behind")
	require.Error(t, m.Start(), "starting a closed server")
}

func countRows(ctx context.Context, t *testing.T, m *MariaDBServer) string {
	t.Helper()
	conn, err := m.Connect(ctx)
	require.NoError(t, err)
	defer conn.Close()
	res, err := conn.Execute("SELECT COUNT(*) FROM d.t")
	require.NoError(t, err)
	defer res.Close()
	v, err := res.GetString(0, 0)
	require.NoError(t, err)
	return v
}

func TestIntegrationHarnessMariaDBFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m := MariaDB(t, MariaDBFlags("--binlog-row-metadata=MINIMAL", "--gtid-strict-mode"))
	require.Equal(t, "MINIMAL", mariadbVariable(ctx, t, m, "binlog_row_metadata"))
	require.Equal(t, "1", mariadbVariable(ctx, t, m, "gtid_strict_mode"))
	require.NoError(t, m.Stop())
	require.NoError(t, m.Start())
	require.Equal(t, "MINIMAL", mariadbVariable(ctx, t, m, "binlog_row_metadata"), "flags survive a restart")
}

func TestIntegrationHarnessMariaDBStartFailureShowsLog(t *testing.T) {
	_, err := StartMariaDB(MariaDBFlags("--no-such-flag"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "no-such-flag", "the error carries the log's tail")
}

func TestIntegrationHarnessKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for round := range 2 { // a second cluster stands in for a restart
		k := Kafka(t)
		require.Len(t, k.Brokers, 1)
		cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("t"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		require.NoError(t, cl.Ping(ctx))

		adm := kadm.NewClient(cl)
		resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "t")
		require.NoError(t, err)
		require.NoError(t, resp.Err)
		cfgs, err := adm.DescribeBrokerConfigs(ctx)
		require.NoError(t, err)
		var backoff string
		for _, rc := range cfgs {
			for _, c := range rc.Configs {
				if c.Key == "log.cleaner.backoff.ms" {
					backoff = c.MaybeValue()
				}
			}
		}
		require.Equal(t, "100", backoff)

		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}).FirstErr())
		fs := cl.PollFetches(ctx)
		require.NoError(t, fs.Err())
		recs := fs.Records()
		require.Len(t, recs, 1, "round %d", round)
		require.Equal(t, "v", string(recs[0].Value))
		cl.Close()

		k.Close()
		k.Close() // twice is fine
	}
}

func TestIntegrationHarnessRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	r := Registry(t)
	cl, err := sr.NewClient(sr.URLs(r.URL))
	require.NoError(t, err)
	ss, err := cl.CreateSchema(ctx, "t-value", sr.Schema{Schema: `{"type":"string"}`})
	require.NoError(t, err)
	got, err := cl.SchemaByID(ctx, ss.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"string"}`, got.Schema)
	r.Close()
	r.Close()
	_, err = cl.SchemaByID(ctx, ss.ID)
	require.Error(t, err, "a closed registry answers")
}

func TestIntegrationHarnessFreePort(t *testing.T) {
	p, err := FreePort()
	require.NoError(t, err)
	require.Positive(t, p)
}
