package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// mdbBigSQL makes shop.big, with a composite key whose first column is
// latin1 text (chunk bounds then travel as raw latin1 bytes), and fills it.
var mdbBigSQL = []string{
	`CREATE TABLE shop.big (
	region  VARCHAR(10) CHARACTER SET latin1,
	id      BIGINT,
	v       VARCHAR(40),
	balance DECIMAL(12,2),
	PRIMARY KEY (region, id)
) DEFAULT CHARSET = utf8mb4`,
	fmt.Sprintf(`INSERT INTO shop.big SELECT ELT(1 + seq %% 4, 'apac', 'eu', 'us', 'zé'), seq, MD5(seq), seq / 100 FROM shop.seq_1_to_%d`, bigRows),
	`ANALYZE TABLE shop.big`,
}

// mdbAllTables are items, accounts and big, with their keys.
var mdbAllTables = map[string][]string{"shop.items": {"id"}, "shop.accounts": {"region", "num"}, "shop.big": {"region", "id"}}

// newMariaDBSnapshotEnv is newMariaDBEnv with shop.big and a config for
// the given tables and snapshot section.
func newMariaDBSnapshotEnv(t *testing.T, ctx context.Context, tables []string, snapshot string) *mdbEnv {
	t.Helper()
	e := newMariaDBEnv(t, ctx)
	for _, q := range mdbBigSQL {
		if _, err := e.conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.cfgPath = e.config(t, tables, snapshot)
	return e
}

func (e *mdbEnv) config(t *testing.T, tables []string, snapshot string) string {
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: mariadb
  dsn: %s
  tables: [%s]
  mysql:
    server_id: 77
snapshot:
%s
kafka:
  brokers: [%s]
  topic_prefix: mdb
registry:
  url: %s
http:
  listen: 127.0.0.1:0
# Positions follow the acknowledged rows closely: a daemon killed
# mid-snapshot resumes near where Kafka stopped.
commit_interval: 10ms
`, e.db.DSN, strings.Join(tables, ", "), snapshot, strings.Join(e.kafka.Brokers, ","), e.reg.URL))
}

// requireTablesConverge waits until the topic of each table equals the
// table.
func (e *mdbEnv) requireTablesConverge(t *testing.T, ctx context.Context, tables ...string) {
	t.Helper()
	const timeout = 3 * time.Minute
	start := time.Now()
	for {
		var last string
		for _, table := range tables {
			want, err := readMariaDBTable(e.conn, table, mdbAllTables[table])
			if err != nil {
				t.Fatalf("read table %s: %v", table, err)
			}
			got, err := replayTopic(ctx, e.kafka.Brokers, e.client, "mdb."+table)
			if err != nil {
				last += fmt.Sprintf("replay %s: %v\n", table, err)
				continue
			}
			if d := cmp.Diff(want, got); d != "" {
				last += fmt.Sprintf("table %s differs from its topic (-table +topic):\n%s\n", table, truncate(d, 6000))
			}
		}
		if last == "" {
			t.Logf("topics equal to the tables after %s of checking", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("topics did not converge to the tables within %s:\n%s", timeout, last)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// mdbBigWriter changes shop.big at random until stopped, like bigWriter.
type mdbBigWriter struct {
	stop chan struct{}
	wg   sync.WaitGroup
	err  error
	n    int
}

func startMariaDBBigWriter(t *testing.T, ctx context.Context, e *mdbEnv, seed uint64) *mdbBigWriter {
	t.Helper()
	conn, err := e.db.Connect(ctx)
	require.NoError(t, err)
	_, err = conn.Execute("SET NAMES utf8mb4")
	require.NoError(t, err)
	w := &mdbBigWriter{stop: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	regions := []string{"apac", "eu", "us", "zé", "aa", "zz"}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer conn.Close()
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
			region := regions[rng.IntN(4)]
			id := 1 + rng.Int64N(bigRows+bigRows/10)
			var err error
			switch op := rng.IntN(10); {
			case op < 4:
				_, err = conn.Execute(`UPDATE shop.big SET v = ?, balance = ? WHERE region = ? AND id = ?`,
					fmt.Sprint("u", rng.Int()), fmt.Sprintf("%d.%02d", rng.IntN(1e6), rng.IntN(100)), region, id)
			case op < 6:
				_, err = conn.Execute(`INSERT IGNORE INTO shop.big VALUES (?, ?, ?, NULL)`, regions[rng.IntN(len(regions))], id, fmt.Sprint("i", rng.Int()))
			case op < 8:
				_, err = conn.Execute(`DELETE FROM shop.big WHERE region = ? AND id = ?`, region, id)
			default:
				_, err = conn.Execute(`UPDATE IGNORE shop.big SET id = ?, region = ? WHERE region = ? AND id = ?`,
					rng.Int64N(bigRows*2), regions[rng.IntN(len(regions))], region, id)
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

func (w *mdbBigWriter) halt(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	require.NoError(t, w.err, "writer of shop.big")
	t.Logf("%d changes written to shop.big", w.n)
}

// TestIntegrationMariaDBSnapshotKilledMidwayResumes kills `liberator run`
// with SIGKILL in the middle of a chunked, parallel initial snapshot while
// the tables are written, restarts it, and finds that it continues from the
// stored chunk and that the topics end equal to the tables.
func TestIntegrationMariaDBSnapshotKilledMidwayResumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"shop.items", "shop.accounts", "shop.big"}
	e := newMariaDBSnapshotEnv(t, ctx, tables, fmt.Sprintf("  chunk_size: %d\n  parallelism: 2", bigChunk))
	w := newMariaDBWorkload(21)
	w.run(t, e.conn, 100)

	d := startDaemon(t, "run", e.cfgPath)
	bw := startMariaDBBigWriter(t, ctx, e, 21)
	killMidSnapshot(t, d, e.kafka.Cluster, "shop.big")
	w.run(t, e.conn, 100)

	d = startDaemon(t, "run", e.cfgPath)
	w.run(t, e.conn, 100)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	requireResumed(t, d, "shop.big")
	require.Equal(t, 0, d.stop(30*time.Second))
	// Resumed or not, a snapshot read's pos header is the binlog position
	// its snapshot is consistent with, without the stored progress.
	reads := 0
	for _, r := range topicRecords(t, ctx, e.kafka.Brokers, "mdb.shop.big") {
		if header(r, "op") == "r" {
			reads++
			require.Regexp(t, `^[^ ]+:\d+( gtid=\S+)?$`, header(r, "pos"), "a snapshot read's pos header")
		}
	}
	require.NotZero(t, reads)
}

// TestIntegrationMariaDBSnapshotJobResumesThenRun is the Kubernetes Job
// retried: `liberator snapshot` is killed half way, the retry resumes and
// exits 0, and `liberator run` then streams from the snapshot's position;
// with writes throughout, the topics end equal to the tables.
func TestIntegrationMariaDBSnapshotJobResumesThenRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"shop.items", "shop.accounts", "shop.big"}
	e := newMariaDBSnapshotEnv(t, ctx, tables, fmt.Sprintf("  chunk_size: %d\n  parallelism: 2", bigChunk))
	w := newMariaDBWorkload(22)
	w.run(t, e.conn, 100)

	bw := startMariaDBBigWriter(t, ctx, e, 22)
	job := startDaemon(t, "snapshot", e.cfgPath)
	killMidSnapshot(t, job, e.kafka.Cluster, "shop.big")
	w.run(t, e.conn, 50)

	retry := startDaemon(t, "snapshot", e.cfgPath)
	if code := retry.wait(2 * time.Minute); code != 0 {
		t.Fatalf("the retried Job exited %d, want 0:\n%s", code, retry.logTail())
	}
	requireResumed(t, retry, "shop.big")
	w.run(t, e.conn, 50) // between the Job and the daemon

	d := startDaemon(t, "run", e.cfgPath)
	w.run(t, e.conn, 100)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationMariaDBIncrementalSnapshotOnDemand streams shop.big
// without an initial snapshot, then `liberator snapshot --table shop.big`
// asks the daemon for an incremental snapshot with watermarks in the signal
// table, while the table is written; the topic ends equal to the table.
func TestIntegrationMariaDBIncrementalSnapshotOnDemand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"shop.big"}
	e := newMariaDBSnapshotEnv(t, ctx, tables, "  mode: never\n  chunk_size: 2000\n  signal_table: ops.liberator_signal")
	d := startDaemon(t, "run", e.cfgPath)
	addr := d.adminAddr()
	waitReady(t, d)
	bw := startMariaDBBigWriter(t, ctx, e, 23)

	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", e.cfgPath, "--admin", addr, "--table", "shop.big").CombinedOutput()
	require.NoError(t, err, "liberator snapshot --table: %s", out)
	base := "http://" + addr
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Done && p.Tables[0].Incremental
	}, 2*time.Minute, 50*time.Millisecond, "the incremental snapshot did not finish:\n%s", d.logTail())
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	res, err := e.conn.Execute("SELECT mark FROM ops.liberator_signal WHERE server_id = 77")
	require.NoError(t, err)
	require.Equal(t, 1, res.RowNumber(), "the signal table has the pipeline's row")
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationMariaDBTableAddedToConfig streams items and accounts, then
// restarts the daemon with shop.big added to the config while big is being
// written: big is snapshotted incrementally, and every topic ends equal to
// its table.
func TestIntegrationMariaDBTableAddedToConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := newMariaDBSnapshotEnv(t, ctx, []string{"shop.items", "shop.accounts"}, "  chunk_size: 2000")
	w := newMariaDBWorkload(24)
	w.run(t, e.conn, 100)
	d := startDaemon(t, "run", e.cfgPath)
	w.run(t, e.conn, 100)
	e.requireTablesConverge(t, ctx, "shop.items", "shop.accounts")
	require.Equal(t, 0, d.stop(30*time.Second))

	all := []string{"shop.items", "shop.accounts", "shop.big"}
	bw := startMariaDBBigWriter(t, ctx, e, 24)
	w.run(t, e.conn, 50)
	d = startDaemon(t, "run", e.config(t, all, "  chunk_size: 2000"))
	w.run(t, e.conn, 100)
	base := "http://" + d.adminAddr()
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Table == "shop.big" && p.Tables[0].Done
	}, 2*time.Minute, 50*time.Millisecond, "the added table's snapshot did not finish:\n%s", d.logTail())
	require.True(t, d.logContains("tables added to the config"), "no word of the added table:\n%s", d.logTail())
	bw.halt(t)
	e.requireTablesConverge(t, ctx, all...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationMariaDBBinlogLostSnapshotsAgain purges the binary log
// that a stopped daemon's position points into, while rows are inserted,
// updated and deleted; the restarted daemon warns, streams from the end of
// the log and snapshots every table again with reconcile, and the topics
// end equal to the tables: the rows deleted while the log was lost get
// their tombstones.
func TestIntegrationMariaDBBinlogLostSnapshotsAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	tables := []string{"shop.big"}
	e := newMariaDBSnapshotEnv(t, ctx, tables, "  chunk_size: 5000")
	d := startDaemon(t, "run", e.cfgPath)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))

	for _, q := range []string{
		"UPDATE shop.big SET v = 'changed while the log was purged' WHERE id % 7 = 0",
		"INSERT INTO shop.big SELECT 'zz', seq, 'new while the log was purged', NULL FROM shop.seq_1_to_1000",
		"DELETE FROM shop.big WHERE id % 11 = 0",
		"FLUSH BINARY LOGS",
	} {
		_, err := e.conn.Execute(q)
		require.NoError(t, err, q)
	}
	purgeBinaryLogs(t, e.conn)

	d = startDaemon(t, "run", e.cfgPath)
	base := "http://" + d.adminAddr()
	waitReady(t, d)
	bw := startMariaDBBigWriter(t, ctx, e, 25)
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Done
	}, 2*time.Minute, 50*time.Millisecond, "the snapshot after the lost binary log did not finish:\n%s", d.logTail())
	require.True(t, d.logContains("binary log position lost"), "no warning about the lost position:\n%s", d.logTail())
	require.Eventually(t, func() bool { return d.logContains("re-snapshot with reconcile done") }, time.Minute, 50*time.Millisecond)
	bw.halt(t)
	e.requireTablesConverge(t, ctx, tables...)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// purgeBinaryLogs purges every binary log but the current one. The server
// keeps a file that a replica connection still reads (the stopped daemon's
// may linger a moment), so it tries until only one is left.
func purgeBinaryLogs(t *testing.T, conn *client.Conn) {
	t.Helper()
	res, err := conn.Execute("SHOW MASTER STATUS")
	require.NoError(t, err)
	file, err := res.GetString(0, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		if _, err := conn.Execute("PURGE BINARY LOGS TO '" + file + "'"); err != nil {
			return false
		}
		logs, err := conn.Execute("SHOW BINARY LOGS")
		return err == nil && logs.RowNumber() == 1
	}, 30*time.Second, 50*time.Millisecond, "the old binary logs were not purged")
}
