package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/liberator-cdc/liberator/connectors"
)

// bigRows is the size of the table whose snapshot is interrupted: with
// chunks of bigChunk rows it takes a few seconds to read, long enough to be
// killed half way.
const (
	bigRows  = 100_000
	bigChunk = 500
	// writeRate caps the changes a second that the writers of big make.
	writeRate = 2000
)

// pgBigSQL makes public.big, with a composite key so that chunks compare
// row values, and fills it.
const pgBigSQL = `
CREATE TABLE big (
	region text,
	id     bigint,
	v      text,
	n      numeric(12,2),
	PRIMARY KEY (region, id)
);
INSERT INTO big SELECT (ARRAY['apac','eu','us'])[1 + g %% 3], g, md5(g::text), g / 100.0 FROM generate_series(1, %d) g;
ANALYZE big;
`

// pgAllTables are items, accounts and big, with their keys.
var pgAllTables = map[string][]string{"public.items": {"id"}, "public.accounts": {"region", "num"}, "public.big": {"region", "id"}}

// newPGSnapshotEnv is newPGEnv with public.big, and a config for the given
// tables and snapshot section.
func newPGSnapshotEnv(t *testing.T, ctx context.Context, tables []string, snapshot string) *pgEnv {
	t.Helper()
	e := newPGEnv(t, ctx, "")
	if _, err := e.conn.Exec(ctx, fmt.Sprintf(pgBigSQL, bigRows)); err != nil {
		t.Fatal(err)
	}
	e.cfgPath = e.config(t, tables, snapshot)
	return e
}

// config writes a config for the env's servers.
func (e *pgEnv) config(t *testing.T, tables []string, snapshot string) string {
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [%s]
  postgres:
    heartbeat_interval: 200ms
snapshot:
%s
kafka:
  brokers: [%s]
  topic_prefix: shop
registry:
  url: %s
http:
  listen: 127.0.0.1:0
# Positions follow the acknowledged rows closely: a daemon killed
# mid-snapshot resumes near where Kafka stopped.
commit_interval: 10ms
`, e.dsn, strings.Join(tables, ", "), snapshot, strings.Join(e.kafka.Brokers, ","), e.reg.URL))
}

func (e *pgEnv) requireTablesConverge(t *testing.T, ctx context.Context, tables ...string) {
	t.Helper()
	want := map[string][]string{}
	for _, tb := range tables {
		want[tb] = pgAllTables[tb]
	}
	start := time.Now()
	requireConverges(t, ctx, e.kafka.Brokers, e.client, e.conn, func(table string) string { return "shop." + table }, want, 3*time.Minute)
	t.Logf("topics equal to the tables after %s of checking", time.Since(start).Round(time.Millisecond))
}

// bigWriter changes public.big at random until stopped: updates, inserts
// before, among and after the existing keys, deletes, and key changes that
// move a row to a range not read yet or already read.
type bigWriter struct {
	stop chan struct{}
	wg   sync.WaitGroup
	err  error
	n    int
}

func startBigWriter(t *testing.T, ctx context.Context, dsn string, seed uint64) *bigWriter {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	w := &bigWriter{stop: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	regions := []string{"apac", "eu", "us", "aa", "zz"}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close(context.WithoutCancel(ctx))
		// At most writeRate changes a second: enough to land in every
		// window of a snapshot, not so many that the test only measures how
		// fast liberator catches up.
		pace := time.NewTicker(time.Second / writeRate)
		defer pace.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-pace.C:
			}
			region := regions[rng.IntN(3)]
			id := 1 + rng.Int64N(bigRows+bigRows/10)
			var err error
			switch op := rng.IntN(10); {
			case op < 4:
				_, err = conn.Exec(ctx, `UPDATE big SET v = $3, n = $4::numeric WHERE region = $1 AND id = $2`, region, id, fmt.Sprint("u", rng.Int()), fmt.Sprintf("%d.%02d", rng.IntN(1e6), rng.IntN(100)))
			case op < 6:
				_, err = conn.Exec(ctx, `INSERT INTO big VALUES ($1, $2, $3, NULL) ON CONFLICT DO NOTHING`, regions[rng.IntN(len(regions))], id, fmt.Sprint("i", rng.Int()))
			case op < 8:
				_, err = conn.Exec(ctx, `DELETE FROM big WHERE region = $1 AND id = $2`, region, id)
			default:
				to := rng.Int64N(bigRows * 2)
				_, err = conn.Exec(ctx, `UPDATE big SET id = $3, region = $4 WHERE region = $1 AND id = $2 AND NOT EXISTS (SELECT 1 FROM big WHERE region = $4 AND id = $3)`,
					region, id, to, regions[rng.IntN(len(regions))])
			}
			if err != nil {
				w.err = err
				return
			}
			w.n++
		}
	}()
	return w
}

// halt stops the writer and fails the test if it failed.
func (w *bigWriter) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	require.NoError(t, w.err, "writer of public.big")
	t.Logf("%d changes written to public.big", w.n)
}

// waitReady waits until the daemon's source is open (/readyz).
func waitReady(t *testing.T, d *daemon) {
	t.Helper()
	addr := d.adminAddr()
	require.Eventually(t, func() bool {
		code, _, err := get("http://" + addr + "/readyz")
		return err == nil && code == 200
	}, 30*time.Second, 20*time.Millisecond, "the daemon never got ready:\n%s", d.logTail())
}

// snapshotProgress reads the daemon's GET /snapshot.
func snapshotProgress(base string) (connectors.SnapshotProgress, error) {
	var p connectors.SnapshotProgress
	code, body, err := get(base + "/snapshot")
	if err != nil {
		return p, err
	}
	if code != 200 {
		return p, fmt.Errorf("GET /snapshot: %d %s", code, body)
	}
	return p, json.Unmarshal([]byte(body), &p)
}

// storedPosition reads the daemon's /status position.
func storedPosition(base string) string {
	_, body, err := get(base + "/status")
	if err != nil {
		return ""
	}
	var st struct {
		Position string `json:"position"`
	}
	_ = json.Unmarshal([]byte(body), &st)
	return st.Position
}

// killMidSnapshot waits until Kafka has acknowledged at least half of
// table (of bigRows rows) and the daemon has stored a position inside the
// snapshot of table, then kills it with SIGKILL. From that moment until
// the kill, the broker refuses every produce request: a fast snapshot
// cannot finish, and store its final position, between the check and the
// kill.
func killMidSnapshot(t *testing.T, d *daemon, cluster *kfake.Cluster, table string) {
	t.Helper()
	var frozen atomic.Bool
	cluster.Control(func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if frozen.Load() && req.Key() == int16(kmsg.Produce) {
			return nil, errors.New("frozen while the daemon is killed"), true
		}
		return nil, nil, false
	})
	base := "http://" + d.adminAddr()
	metric := regexp.MustCompile(`liberator_events_total\{op="r",table="` + regexp.QuoteMeta(table) + `"\} (\d+)`)
	var pos string
	require.Eventually(t, func() bool {
		_, body, err := get(base + "/metrics")
		if err != nil {
			return false
		}
		m := metric.FindStringSubmatch(body)
		if m == nil {
			return false
		}
		if n, _ := strconv.Atoi(m[1]); n < bigRows/2 {
			return false
		}
		pos = storedPosition(base)
		if !strings.Contains(pos, "initial snapshot") || !strings.Contains(pos, table+" read up to") {
			return false
		}
		frozen.Store(true)
		return true
	}, 60*time.Second, 5*time.Millisecond, "Kafka never acknowledged half of %s with a position inside its snapshot stored:\n%s", table, d.logTail())
	d.kill()
	frozen.Store(false)
	t.Logf("killed with the stored position inside the initial snapshot: %s", pos)
}

// requireResumed checks that a restarted daemon resumed the snapshot and
// read only part of table.
func requireResumed(t *testing.T, d *daemon, table string) {
	t.Helper()
	require.True(t, d.logContains("resuming the initial snapshot"), "the restart did not resume the snapshot:\n%s", d.logTail())
	b, _ := os.ReadFile(d.log)
	m := regexp.MustCompile(`msg="snapshot of table read" (?:source=\w+ )?table=` + regexp.QuoteMeta(table) + ` rows=(\d+)`).FindSubmatch(b)
	require.NotNil(t, m, "the restart did not finish %s:\n%s", table, d.logTail())
	n, _ := strconv.Atoi(string(m[1]))
	require.Less(t, n, bigRows*8/10, "the restart read %d rows of %s, nearly all of them: it started over", n, table)
	t.Logf("the restart read %d of about %d rows of %s", n, bigRows, table)
}

// TestIntegrationPostgresSnapshotKilledMidwayResumes kills `liberator run`
// with SIGKILL in the middle of a chunked, parallel initial snapshot while
// the tables are written, restarts it, and finds that it continues from the
// stored chunk and that the topics end equal to the tables.
func TestIntegrationPostgresSnapshotKilledMidwayResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"public.items", "public.accounts", "public.big"}
	e := newPGSnapshotEnv(t, ctx, tables, fmt.Sprintf("  chunk_size: %d\n  parallelism: 2", bigChunk))
	w := newWorkload(11)
	w.run(t, ctx, e.conn, 100)

	d := startDaemon(t, "run", e.cfgPath)
	bw := startBigWriter(t, ctx, e.dsn, 11)
	killMidSnapshot(t, d, e.kafka.Cluster, "public.big")
	w.run(t, ctx, e.conn, 100)

	d = startDaemon(t, "run", e.cfgPath)
	w.run(t, ctx, e.conn, 100)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	requireResumed(t, d, "public.big")
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationPostgresSnapshotJobResumesThenRun is the Kubernetes Job
// retried: `liberator snapshot` is killed half way, the retry resumes and
// exits 0, and `liberator run` then streams from the snapshot's consistent
// point; with writes throughout, the topics end equal to the tables.
func TestIntegrationPostgresSnapshotJobResumesThenRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"public.items", "public.accounts", "public.big"}
	e := newPGSnapshotEnv(t, ctx, tables, fmt.Sprintf("  chunk_size: %d\n  parallelism: 2", bigChunk))
	w := newWorkload(12)
	w.run(t, ctx, e.conn, 100)

	bw := startBigWriter(t, ctx, e.dsn, 12)
	job := startDaemon(t, "snapshot", e.cfgPath)
	killMidSnapshot(t, job, e.kafka.Cluster, "public.big")
	w.run(t, ctx, e.conn, 50)

	retry := startDaemon(t, "snapshot", e.cfgPath)
	if code := retry.wait(2 * time.Minute); code != 0 {
		t.Fatalf("the retried Job exited %d, want 0:\n%s", code, retry.logTail())
	}
	requireResumed(t, retry, "public.big")
	w.run(t, ctx, e.conn, 50) // between the Job and the daemon

	d := startDaemon(t, "run", e.cfgPath)
	w.run(t, ctx, e.conn, 100)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationPostgresIncrementalSnapshotOnDemand streams public.big
// without an initial snapshot (snapshot.mode never), so its existing rows
// are not in the topic; `liberator snapshot --table public.big` asks the
// daemon for an incremental snapshot, which runs while the table is
// written, and the topic ends equal to the table.
func TestIntegrationPostgresIncrementalSnapshotOnDemand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"public.big"}
	e := newPGSnapshotEnv(t, ctx, tables, "  mode: never\n  chunk_size: 2000")
	d := startDaemon(t, "run", e.cfgPath)
	addr := d.adminAddr()
	waitReady(t, d)
	bw := startBigWriter(t, ctx, e.dsn, 13)

	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", e.cfgPath, "--admin", addr, "--table", "public.items").CombinedOutput()
	require.Error(t, err, "a table that is not captured was accepted: %s", out)
	require.Contains(t, string(out), "not captured")

	out, err = exec.CommandContext(ctx, binary, "snapshot", "--config", e.cfgPath, "--admin", addr, "--table", "public.big").CombinedOutput()
	require.NoError(t, err, "liberator snapshot --table: %s", out)
	require.Contains(t, string(out), "queued")
	base := "http://" + addr
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Done && p.Tables[0].Incremental
	}, 2*time.Minute, 50*time.Millisecond, "the incremental snapshot did not finish:\n%s", d.logTail())
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationPostgresTableAddedToConfig streams items and accounts,
// then restarts the daemon with public.big added to the config while big is
// being written: big is snapshotted incrementally, and every topic ends
// equal to its table.
func TestIntegrationPostgresTableAddedToConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := newPGSnapshotEnv(t, ctx, []string{"public.items", "public.accounts"}, "  chunk_size: 2000")
	w := newWorkload(14)
	w.run(t, ctx, e.conn, 100)
	d := startDaemon(t, "run", e.cfgPath)
	w.run(t, ctx, e.conn, 100)
	e.requireTablesConverge(t, ctx, "public.items", "public.accounts")
	require.Equal(t, 0, d.stop(30*time.Second))

	all := []string{"public.items", "public.accounts", "public.big"}
	bw := startBigWriter(t, ctx, e.dsn, 14)
	w.run(t, ctx, e.conn, 50)
	d = startDaemon(t, "run", e.config(t, all, "  chunk_size: 2000"))
	w.run(t, ctx, e.conn, 100)
	base := "http://" + d.adminAddr()
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Table == "public.big" && p.Tables[0].Done
	}, 2*time.Minute, 50*time.Millisecond, "the added table's snapshot did not finish:\n%s", d.logTail())
	require.True(t, d.logContains("tables added to the config"), "no word of the added table:\n%s", d.logTail())
	bw.halt(t)
	e.requireTablesConverge(t, ctx, all...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationPostgresSlotLostSnapshotsAgain drops the slot of a
// stopped daemon and inserts, updates and deletes rows meanwhile; the
// restarted daemon warns, makes a new slot and snapshots every table with
// reconcile while streaming, and the topics end equal to the tables: the
// rows deleted while no slot existed get their tombstones.
func TestIntegrationPostgresSlotLostSnapshotsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"public.big"}
	e := newPGSnapshotEnv(t, ctx, tables, "  chunk_size: 5000")
	d := startDaemon(t, "run", e.cfgPath)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))

	_, err := e.conn.Exec(ctx, "SELECT pg_drop_replication_slot('liberator')")
	require.NoError(t, err)
	_, err = e.conn.Exec(ctx, `UPDATE big SET v = 'changed while the slot was gone' WHERE id % 7 = 0;
		INSERT INTO big SELECT 'zz', g, 'new while the slot was gone', NULL FROM generate_series(1, 1000) g;
		DELETE FROM big WHERE id % 11 = 0`)
	require.NoError(t, err)

	d = startDaemon(t, "run", e.cfgPath)
	base := "http://" + d.adminAddr()
	waitReady(t, d)
	bw := startBigWriter(t, ctx, e.dsn, 15)
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Done
	}, 2*time.Minute, 50*time.Millisecond, "the snapshot after the lost slot did not finish:\n%s", d.logTail())
	require.True(t, d.logContains("replication slot lost"), "no warning about the lost slot:\n%s", d.logTail())
	require.Eventually(t, func() bool { return d.logContains("re-snapshot with reconcile done") }, time.Minute, 50*time.Millisecond)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))
}
