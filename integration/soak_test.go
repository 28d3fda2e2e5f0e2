package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// soakSize is how long the soak's workload runs and how often liberator is
// killed meanwhile.
type soakSize struct {
	name     string
	workload time.Duration
	// kills is how many times liberator is killed with SIGKILL and
	// restarted; the first snapshotKills of them aim at the initial
	// snapshot, as long as it lasts.
	kills, snapshotKills int
	// preload is how many rows soak.items has before liberator first
	// starts, for the initial snapshot to read.
	preload int
	// workers is how many connections write at once, each at most rate
	// transactions a second.
	workers, rate int
}

// soakSizeFromEnv reads LIBERATOR_SOAK: unset or "short" is the size CI
// runs with every integration test; "long" is make soak.
func soakSizeFromEnv(t *testing.T) soakSize {
	switch v := os.Getenv("LIBERATOR_SOAK"); v {
	case "", "short":
		return soakSize{name: "short", workload: 20 * time.Second, kills: 10, snapshotKills: 3, preload: 50_000, workers: 4, rate: 40}
	case "long":
		return soakSize{name: "long", workload: 90 * time.Second, kills: 50, snapshotKills: 10, preload: 200_000, workers: 4, rate: 40}
	default:
		t.Fatalf("LIBERATOR_SOAK=%q: use short (the default) or long", v)
		return soakSize{}
	}
}

// soakSeed is LIBERATOR_SOAK_SEED, to repeat a workload, or a new seed.
func soakSeed(t *testing.T) uint64 {
	if s := os.Getenv("LIBERATOR_SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LIBERATOR_SOAK_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// soakSource is one source database set up for the soak: soak.items,
// captured, with preloaded rows, and soak.ledger, not captured.
type soakSource struct {
	kind    string // source.kind
	dsn     string
	section string // lines for the source section of the config
	// connect opens a connection for a worker of the workload.
	connect func(ctx context.Context) (soakConn, error)
	// readTable reads soak.items in replayTopic's form.
	readTable func(ctx context.Context) (rowSet, error)
	// read reads any table keyed by id ("soak.t") in replayTopic's form.
	read func(ctx context.Context, table string) (rowSet, error)
	// readLedger reads soak.ledger.
	readLedger func(ctx context.Context) ([]soakEntry, error)
}

const pgSoakSQL = `
CREATE SCHEMA soak;
CREATE TABLE soak.items (id bigint PRIMARY KEY, version bigint NOT NULL, txn bigint NOT NULL, payload text);
CREATE TABLE soak.ledger (id bigint NOT NULL, version bigint NOT NULL, txn bigint NOT NULL, kind char(1) NOT NULL);
INSERT INTO soak.items SELECT g, 1, 0, md5(g::text) FROM generate_series(1, %d) g;
ANALYZE soak.items;
`

func openPGSoak(t *testing.T, ctx context.Context, preload int) *soakSource {
	t.Helper()
	pg := harness.Postgres(t)
	dsn, err := pg.CreateDatabase("shop")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, fmt.Sprintf(pgSoakSQL, preload))
	require.NoError(t, err)
	return &soakSource{
		kind: "postgres", dsn: dsn,
		section: "  postgres:\n    heartbeat_interval: 200ms",
		connect: func(ctx context.Context) (soakConn, error) {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return nil, err
			}
			return &pgSoakConn{conn: c}, nil
		},
		readTable: func(ctx context.Context) (rowSet, error) {
			return readTable(ctx, conn, "soak.items", []string{"id"})
		},
		read: func(ctx context.Context, table string) (rowSet, error) {
			return readTable(ctx, conn, table, []string{"id"})
		},
		readLedger: func(ctx context.Context) ([]soakEntry, error) {
			rows, _ := conn.Query(ctx, "SELECT id, version, txn, kind FROM soak.ledger")
			return pgx.CollectRows(rows, pgx.RowToStructByPos[soakEntry])
		},
	}
}

var mdbSoakSQL = []string{
	"SET NAMES utf8mb4",
	"CREATE DATABASE soak",
	"CREATE TABLE soak.items (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, txn BIGINT NOT NULL, payload TEXT) DEFAULT CHARSET = utf8mb4",
	"CREATE TABLE soak.ledger (id BIGINT NOT NULL, version BIGINT NOT NULL, txn BIGINT NOT NULL, kind CHAR(1) NOT NULL)",
	"INSERT INTO soak.items SELECT seq, 1, 0, MD5(seq) FROM soak.seq_1_to_%d",
	"ANALYZE TABLE soak.items",
}

func openMariaDBSoak(t *testing.T, ctx context.Context, preload int) *soakSource {
	t.Helper()
	db := harness.MariaDB(t)
	conn, err := db.Connect(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	for _, q := range mdbSoakSQL {
		if strings.Contains(q, "%d") {
			q = fmt.Sprintf(q, preload)
		}
		_, err := conn.Execute(q)
		require.NoError(t, err, q)
	}
	return &soakSource{
		kind: "mariadb", dsn: db.DSN,
		section: "  mysql:\n    server_id: 77",
		connect: func(ctx context.Context) (soakConn, error) {
			c, err := db.Connect(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := c.Execute("SET NAMES utf8mb4"); err != nil {
				return nil, errors.Join(err, c.Close())
			}
			return &mdbSoakConn{conn: c}, nil
		},
		readTable: func(context.Context) (rowSet, error) {
			return readMariaDBTable(conn, "soak.items", []string{"id"})
		},
		read: func(_ context.Context, table string) (rowSet, error) {
			return readMariaDBTable(conn, table, []string{"id"})
		},
		readLedger: func(context.Context) ([]soakEntry, error) {
			return readMariaDBLedger(conn)
		},
	}
}

// soakInSnapshot reports whether a stored position (PostgreSQL's
// "pg:LSN;{json}" or MySQL's URL-encoded form with the same JSON in state)
// is inside the initial snapshot.
func soakInSnapshot(stored []byte) bool {
	s, err := url.QueryUnescape(string(stored))
	if err != nil {
		s = string(stored)
	}
	return strings.Contains(s, `"initial":true`)
}

// soakSources are the databases a soak runs against, each with the
// function that opens it.
var soakSources = []struct {
	name string
	open func(*testing.T, context.Context, int) *soakSource
}{
	{"postgres", openPGSoak},
	{"mariadb", openMariaDBSoak},
}

// TestIntegrationSoak runs a workload of inserts, updates, key changes and
// deletes on several connections, with transactions of one to five changes,
// now and then one of a few hundred, and some rolled back on purpose; every
// committed change is also written, in the same transaction, to a ledger
// table that liberator does not capture. Meanwhile liberator is killed with
// SIGKILL again and again, first while it takes the initial snapshot, then
// while it streams, and restarted each time. In the end the topic, read
// whole with compaction off, must hold every change of the ledger in commit
// order (at least once) and nothing else, and its compacted view must equal
// the table.
//
// LIBERATOR_SOAK=long (make soak) runs it longer with more kills;
// LIBERATOR_SOAK_SEED repeats a workload.
func TestIntegrationSoak(t *testing.T) {
	size := soakSizeFromEnv(t)
	for _, src := range soakSources {
		t.Run(src.name, func(t *testing.T) { runSoak(t, size, src.open) })
	}
}

func runSoak(t *testing.T, size soakSize, open func(*testing.T, context.Context, int) *soakSource) {
	ctx, cancel := context.WithTimeout(context.Background(), size.workload+10*time.Minute)
	defer cancel()
	seed := soakSeed(t)
	t.Logf("%s soak, seed %d (LIBERATOR_SOAK_SEED repeats the workload)", size.name, seed)

	// kfake compacts every log.cleaner.backoff.ms; at an hour it never
	// does during the test, so the checks see every event ever written.
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
	reg := harness.Registry(t)
	src := open(t, ctx, size.preload)
	cfg := soakConfig(t, src.kind, src.dsn, src.section, k.Brokers, reg.URL, "snapshot:\n  chunk_size: 500\n  parallelism: 2\n")
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)

	// While frozen, the broker refuses every produce request: a kill aimed
	// at the snapshot then lands before the snapshot can finish and store
	// its last position.
	var frozen atomic.Bool
	k.Cluster.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		k.Cluster.KeepControl()
		if frozen.Load() && req.Key() == int16(kmsg.Produce) {
			return nil, errors.New("frozen while the daemon is killed"), true
		}
		return nil, nil, false
	})

	// Kills start once a first position is stored: a daemon killed before
	// that starts over, which is another scenario.
	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	stored := offsetsTopicPosition(t, ctx, k.Brokers, "soak")
	wl, err := startSoakWorkload(ctx, src.connect, seed, size.workers, size.preload, size.rate)
	require.NoError(t, err)
	workloadEnd := time.Now().Add(size.workload)

	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	mean := size.workload / time.Duration(size.kills)
	var midSnapshot, midStream int
	for i := range size.kills {
		if soakInSnapshot(stored) && i < size.snapshotKills {
			// Kill at the first position stored after a short random
			// pause, most likely one inside the snapshot.
			soakPause(t, d, time.Duration(rng.Int64N(int64(50*time.Millisecond))))
			waitStoredPosition(t, d)
			frozen.Store(true)
		} else {
			// The fault injection: a random moment of the stream.
			soakPause(t, d, time.Duration(float64(mean)*(0.2+1.6*rng.Float64())))
		}
		d.kill()
		frozen.Store(false)
		stored = offsetsTopicPosition(t, ctx, k.Brokers, "soak")
		if soakInSnapshot(stored) {
			midSnapshot++
		} else {
			midStream++
		}
		d = startDaemon(t, "run", cfg)
	}
	if left := time.Until(workloadEnd); left > 0 {
		soakPause(t, d, left)
	}
	if errs := wl.halt(); len(errs) > 0 {
		t.Fatalf("workload: %v", errors.Join(errs...))
	}
	figs := wl.figures()

	t.Logf("workload of %s on %d connections: %d transactions committed (%d of a few hundred changes), %d rolled back, %d changes",
		size.workload, size.workers, figs.committed, figs.bigTxns, figs.rolledBack, figs.changes)
	t.Logf("%d kills: %d with the stored position inside the initial snapshot, %d while streaming",
		size.kills, midSnapshot, midStream)

	// The checks run as subtests, so that a topic that never converges to
	// the table is still checked against the ledger, which says more.
	t.Run("the compacted topic equals the table", func(t *testing.T) {
		start := time.Now()
		requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
			func(string) string { return "soak.soak.items" }, []string{"soak.items"}, 3*time.Minute)
		rows, err := src.readTable(ctx)
		require.NoError(t, err)
		t.Logf("caught up %s after the workload; the table has %d rows", time.Since(start).Round(time.Millisecond), len(rows))
	})
	t.Run("the topic holds every change of the ledger in order", func(t *testing.T) {
		ledger, err := src.readLedger(ctx)
		require.NoError(t, err)
		require.Equal(t, figs.changes, len(ledger), "the ledger has %d rows; the workload committed %d changes", len(ledger), figs.changes)
		events, records, err := readSoakTopic(ctx, k.Brokers, client, "soak.soak.items")
		require.NoError(t, err)
		rep := checkSoakLedger(ledger, events, size.preload, figs.rolledBackTxns)
		t.Logf("checked %d ledger upserts, %d deletes against their tombstones, the order of %d keys; the topic has %d records, %d of them duplicates",
			rep.upsertsChecked, rep.deletesChecked, rep.keysChecked, records, rep.duplicates)
		if len(rep.problems) > 0 {
			shown := rep.problems[:min(len(rep.problems), 30)]
			t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(shown, "\n"))
		}
	})
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// waitStoredPosition waits until the daemon has stored a position since it
// started.
func waitStoredPosition(t *testing.T, d *daemon) {
	t.Helper()
	base := "http://" + d.adminAddr()
	require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != "" }, time.Minute, 5*time.Millisecond,
		"liberator stored no position:\n%s", d.logTail())
	if d.exited() {
		t.Fatalf("liberator exited by itself:\n%s", d.logTail())
	}
}

// soakPause lets the daemon run for pause, and fails the test if it exits
// by itself meanwhile.
func soakPause(t *testing.T, d *daemon, pause time.Duration) {
	t.Helper()
	select {
	case <-time.After(pause):
	case <-d.done:
		t.Fatalf("liberator exited by itself:\n%s", d.logTail())
	}
}

// readMariaDBLedger reads the soak ledger of a MariaDB server.
func readMariaDBLedger(conn *client.Conn) ([]soakEntry, error) {
	res, err := conn.Execute("SELECT id, version, txn, kind FROM soak.ledger")
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out := make([]soakEntry, res.RowNumber())
	for i := range out {
		e := &out[i]
		var errs [4]error
		e.ID, errs[0] = res.GetInt(i, 0)
		e.Version, errs[1] = res.GetInt(i, 1)
		e.Txn, errs[2] = res.GetInt(i, 2)
		e.Kind, errs[3] = res.GetString(i, 3)
		if err := errors.Join(errs[:]...); err != nil {
			return nil, err
		}
	}
	return out, nil
}
