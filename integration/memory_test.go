package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/internal/harness"
)

// Sizes of the big-row tests: rows of 1 MiB (32,768 copies of an MD5 in
// hex), above Kafka's default record limit, so kafka.max_message_bytes is
// raised to 2 MiB; a snapshot of bigSnapshotRows of them and then one
// transaction of bigTxRows more, against memory_limit bigRowLimit.
const (
	bigRowRepeat    = 32_768
	bigRowBytes     = 32 * bigRowRepeat
	bigSnapshotRows = 120
	bigTxRows       = 250
	bigRowLimit     = 64_000_000 // memory_limit: 64MB
)

// bigRowSource is a database holding the table public.docs or big.docs,
// (id, body), and how to add rows to it.
type bigRowSource struct {
	section string // the config's source section
	topic   string
	// insert adds the rows from..to in one transaction.
	insert func(t *testing.T, ctx context.Context, from, to int)
}

// TestIntegrationPostgresBigRowsStayWithinMemoryLimit snapshots a table of
// 1 MB rows and streams one transaction of a few hundred more with
// memory_limit 64MB: every row arrives, and the daemon's peak RSS stays
// under twice the limit.
func TestIntegrationPostgresBigRowsStayWithinMemoryLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg := harness.Postgres(t)
	dsn, err := pg.CreateDatabase("big")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "CREATE TABLE docs (id bigint PRIMARY KEY, body text NOT NULL)")
	require.NoError(t, err)
	runBigRows(t, ctx, bigRowSource{
		section: fmt.Sprintf("  kind: postgres\n  dsn: %s\n  tables: [public.docs]", dsn),
		topic:   "big.public.docs",
		insert: func(t *testing.T, ctx context.Context, from, to int) {
			_, err := conn.Exec(ctx, "INSERT INTO docs SELECT g, repeat(md5(g::text), $3) FROM generate_series($1::bigint, $2::bigint) g", from, to, bigRowRepeat)
			require.NoError(t, err)
		},
	})
}

// TestIntegrationMariaDBBigRowsStayWithinMemoryLimit is the MariaDB twin of
// TestIntegrationPostgresBigRowsStayWithinMemoryLimit.
func TestIntegrationMariaDBBigRowsStayWithinMemoryLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := harness.MariaDB(t)
	require.NoError(t, db.Exec(ctx, "CREATE DATABASE big"))
	require.NoError(t, db.Exec(ctx, "CREATE TABLE big.docs (id BIGINT PRIMARY KEY, body LONGTEXT NOT NULL)"))
	runBigRows(t, ctx, bigRowSource{
		section: fmt.Sprintf("  kind: mariadb\n  dsn: %s\n  tables: [big.docs]\n  mysql:\n    server_id: 78", db.DSN),
		topic:   "big.big.docs",
		insert: func(t *testing.T, ctx context.Context, from, to int) {
			require.NoError(t, db.Exec(ctx, fmt.Sprintf("INSERT INTO big.docs SELECT seq, REPEAT(MD5(seq), %d) FROM big.seq_%d_to_%d", bigRowRepeat, from, to)))
		},
	})
}

func runBigRows(t *testing.T, ctx context.Context, src bigRowSource) {
	// kfake compacts the whole log of a compacted topic at every cleaner
	// pass: at the harness's 100 ms, a log of hundreds of 1 MB records
	// keeps the test busy copying it. Nothing here needs compaction.
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
	reg := harness.Registry(t)
	src.insert(t, ctx, 1, bigSnapshotRows)
	cfg := writeConfig(t, fmt.Sprintf(`
source:
%s
kafka:
  brokers: [%s]
  topic_prefix: big
  max_message_bytes: 2097152
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
memory_limit: %d
`, src.section, strings.Join(k.Brokers, ","), reg.URL, bigRowLimit))
	began := time.Now()
	d := startDaemon(t, "run", cfg)
	waitEndOffset(t, ctx, k.Brokers, src.topic, bigSnapshotRows, d)
	t.Logf("snapshot of %d rows of %d bytes: %s", bigSnapshotRows, bigRowBytes, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	src.insert(t, ctx, bigSnapshotRows+1, bigSnapshotRows+bigTxRows)
	waitEndOffset(t, ctx, k.Brokers, src.topic, bigSnapshotRows+bigTxRows, d)
	t.Logf("transaction of %d rows: %s", bigTxRows, time.Since(began).Round(time.Millisecond))
	peak := vmHWM(t, d.cmd.Process.Pid)
	require.Equal(t, 0, d.stop(30*time.Second))

	recs, err := readRecords(ctx, k.Brokers, src.topic)
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, r := range recs {
		if len(r.Value) < bigRowBytes {
			t.Errorf("a record at offset %d holds %d bytes, less than the row's %d", r.Offset, len(r.Value), bigRowBytes)
		}
		keys[string(r.Key)] = true
	}
	require.Len(t, keys, bigSnapshotRows+bigTxRows, "distinct keys in %s", src.topic)
	t.Logf("peak RSS %.1f MB with memory_limit %d MB", float64(peak)/1e6, bigRowLimit/1_000_000)
	if peak > 2*bigRowLimit {
		t.Errorf("peak RSS %.1f MB is more than twice memory_limit (%d MB)", float64(peak)/1e6, bigRowLimit/1_000_000)
	}
}

// waitEndOffset waits until topic holds n records (or the daemon exits).
func waitEndOffset(t *testing.T, ctx context.Context, brokers []string, topic string, n int64, d *daemon) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var last int64
	require.Eventually(t, func() bool {
		require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil || ends.Error() != nil {
			return false
		}
		last = 0
		ends.Each(func(o kadm.ListedOffset) { last += o.Offset })
		return last >= n
	}, 2*time.Minute, 50*time.Millisecond, "topic %s never held %d records", topic, n)
}

// vmHWM is the peak resident set of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
