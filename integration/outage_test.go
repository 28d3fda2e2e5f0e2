package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// outageCut is how long Kafka, or the registry, is gone.
const outageCut = 30 * time.Second

// outagePreload is how many rows the initial snapshot reads; the workload
// updates and deletes them too, so that a row deleted during an outage
// and left in its topic as a ghost would show.
const outagePreload = 2000

// outageEnv is a source database with the soak tables, Kafka that can be
// cut, a registry behind a switch that makes it answer 503, and liberator's
// config for them.
type outageEnv struct {
	src      *restartSource
	kafka    *harness.KafkaCluster
	cut      *harness.Cutter
	registry *schema.Registry // straight to the registry, for the checks
	down     atomic.Bool      // the registry answers 503
	refused  atomic.Int64     // requests answered 503
	cfg      string
}

func newOutageEnv(t *testing.T, ctx context.Context, open func(*testing.T, context.Context, int) *restartSource) *outageEnv {
	t.Helper()
	e := &outageEnv{cut: harness.NewCutter()}
	// Compaction off: the ledger check reads each topic's whole history.
	e.kafka = harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"),
		harness.KafkaClusterOptions(kfake.ListenFn(e.cut.Listen)))
	reg := harness.Registry(t)
	target, err := url.Parse(reg.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			e.refused.Add(1)
			http.Error(w, `{"error_code":50301,"message":"registry unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	e.registry, err = schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	e.src = open(t, ctx, outagePreload)
	e.cfg = soakConfig(t, e.src.kind, e.src.dsn, e.src.section, e.kafka.Brokers, front.URL, "shutdown_timeout: 5s\n")
	return e
}

// start starts liberator and waits until its initial snapshot is done
// and a position is stored.
func (e *outageEnv) start(t *testing.T) (*daemon, string) {
	t.Helper()
	d := startDaemon(t, "run", e.cfg)
	base := "http://" + d.adminAddr()
	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return d.exited() || err == nil && len(p.Tables) > 0 && !p.Running()
	}, time.Minute, 20*time.Millisecond, "the initial snapshot did not finish:\n%s", d.logTail())
	waitStoredPosition(t, d)
	return d, base
}

// requireLedger waits until the topic holds every change of the ledger,
// with a tombstone after each delete and nothing else; then, if
// compare, it requires the compacted topic to equal the table (rows
// written before a column was added lack it in the topic, so a test that
// adds one does not compare). The writer must be stopped.
func (e *outageEnv) requireLedger(t *testing.T, ctx context.Context, timeout time.Duration, compare bool) {
	t.Helper()
	ledger, err := e.src.readLedger(ctx)
	require.NoError(t, err)
	var rep *soakReport
	require.Eventually(t, func() bool {
		events, _, err := readSoakTopic(ctx, e.kafka.Brokers, e.registry, "soak.soak.items")
		if err != nil {
			return false
		}
		rep = checkSoakLedger(ledger, events, outagePreload, nil)
		return len(rep.problems) == 0
	}, timeout, 200*time.Millisecond, "the topic never held the ledger")
	if rep != nil && len(rep.problems) > 0 {
		t.Fatalf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
	}
	t.Logf("ledger: %d entries; %d upserts, %d deletes and %d keys checked; %d duplicates", len(ledger), rep.upsertsChecked, rep.deletesChecked, rep.keysChecked, rep.duplicates)
	if !compare {
		return
	}
	requireTopicsEqual(t, ctx, e.kafka.Brokers, e.registry, func(string) (rowSet, error) { return e.src.readTable(ctx) },
		func(string) string { return "soak.soak.items" }, []string{"soak.items"}, timeout)
}

// startOutageWriter starts w and returns a function that stops it and
// waits for it.
func startOutageWriter(t *testing.T, ctx context.Context, w *restartWriter) (halt func()) {
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, stop) }()
	return func() {
		t.Helper()
		close(stop)
		require.NoError(t, <-werr)
	}
}

// readyz returns the status code of GET /readyz, 0 if it cannot be had.
func readyz(base string) int {
	code, _, _ := get(base + "/readyz")
	return code
}

// notReadyWithin waits until /readyz answers 503 and returns how long
// that took.
func notReadyWithin(t *testing.T, d *daemon, base string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	require.Eventually(t, func() bool { return d.exited() || readyz(base) == http.StatusServiceUnavailable }, within, 20*time.Millisecond,
		"/readyz did not answer 503 within %s:\n%s", within, d.logTail())
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	return time.Since(began)
}

// holdOutage lets the outage last until until, checking all along that
// liberator stays up, stays not ready and stores no position.
func holdOutage(t *testing.T, d *daemon, base string, until time.Time) {
	t.Helper()
	pos := storedPosition(base)
	for time.Now().Before(until) {
		select {
		case <-d.done:
			t.Fatalf("liberator exited during the outage:\n%s", d.logTail())
		case <-time.After(100 * time.Millisecond):
		}
		if code := readyz(base); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz answered %d during the outage, want 503", code)
		}
		if p := storedPosition(base); p != pos {
			t.Fatalf("the stored position moved from %q to %q during the outage", pos, p)
		}
	}
}

// requireNoStartOver fails if the log shows a second initial snapshot, a
// new or dropped replication slot, or a stream started from the end of the
// binary log: after an outage liberator goes on from its stored position.
// initial says whether the log is of the first start, which does each of
// these once.
func requireNoStartOver(t *testing.T, d *daemon, initial bool) {
	t.Helper()
	b, err := os.ReadFile(d.log)
	require.NoError(t, err)
	log := string(b)
	allowed := 0
	if initial {
		allowed = 1
	}
	for _, m := range []string{"snapshot started", "snapshot reading", "created replication slot", "streaming from the end of the binary log"} {
		if n := strings.Count(log, `msg="`+m); n > allowed {
			t.Errorf("the log says %q %d times, want at most %d: liberator started over", m, n, allowed)
		}
	}
	for _, m := range []string{"dropped replication slot", "no position is stored"} {
		if strings.Contains(log, m) {
			t.Errorf("the log says %q: liberator started over", m)
		}
	}
}

// TestIntegrationKafkaOutage cuts Kafka off for 30 s (every connection
// closed, new ones refused) a second after the initial snapshot, while a
// workload writes with a ledger. liberator must stay up, turn not ready
// within seconds, store no position during the cut, and catch up by itself
// afterwards, without a new snapshot or slot. Then Kafka is cut again and
// liberator stopped with SIGTERM: it must exit within shutdown_timeout plus
// the close grace, and after a restart with Kafka back the topic must hold
// every change of the ledger.
func TestIntegrationKafkaOutage(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T, context.Context, int) *restartSource
	}{{"postgres", openPGRestart}, {"mariadb", openMariaDBRestart}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testKafkaOutage(t, tc.open)
		})
	}
}

func testKafkaOutage(t *testing.T, open func(*testing.T, context.Context, int) *restartSource) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newOutageEnv(t, ctx, open)
	d, base := e.start(t)
	w := newRestartWriter(e.src, outagePreload)
	halt := startOutageWriter(t, ctx, w)

	// The cut, a second after the snapshot, under writes.
	soakPause(t, d, time.Second)
	e.cut.Cut()
	cutAt := time.Now()
	took := notReadyWithin(t, d, base, 10*time.Second)
	t.Logf("%s: not ready %s after the cut", e.src.kind, took.Round(10*time.Millisecond))
	holdOutage(t, d, base, cutAt.Add(outageCut))
	e.cut.Restore()
	restored := time.Now()
	waitReadyWithin(t, d, base, time.Minute)
	t.Logf("%s: ready again %s after Kafka came back", e.src.kind, time.Since(restored).Round(10*time.Millisecond))
	before := storedPosition(base)
	require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != before }, time.Minute, 20*time.Millisecond,
		"no position stored after Kafka came back:\n%s", d.logTail())
	halt()
	e.requireLedger(t, ctx, time.Minute, true)
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	requireNoStartOver(t, d, true)

	// SIGTERM during a second cut: a bounded drain, and nothing lost.
	halt = startOutageWriter(t, ctx, w)
	before = storedPosition(base)
	require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != before }, 30*time.Second, 20*time.Millisecond,
		"no position stored before the second cut:\n%s", d.logTail())
	e.cut.Cut()
	notReadyWithin(t, d, base, 10*time.Second)
	const shutdownTimeout, closeGrace = 5 * time.Second, 5 * time.Second
	termAt := time.Now()
	code := d.stop(shutdownTimeout + closeGrace + 10*time.Second)
	exit := time.Since(termAt)
	t.Logf("%s: SIGTERM with Kafka cut: exit code %d after %s (shutdown_timeout %s + close grace %s)", e.src.kind, code, exit.Round(10*time.Millisecond), shutdownTimeout, closeGrace)
	require.LessOrEqual(t, exit, shutdownTimeout+closeGrace+3*time.Second, "SIGTERM with Kafka cut took too long to end liberator")
	require.Equal(t, 1, code, "exit code after a drain that could not complete:\n%s", d.logTail())
	require.True(t, d.logContains("the drain did not complete"), "the log does not say that the drain was incomplete:\n%s", d.logTail())

	e.cut.Restore()
	d2, base2 := startDaemonAgain(t, e)
	before = storedPosition(base2)
	require.Eventually(t, func() bool { return d2.exited() || storedPosition(base2) != before }, time.Minute, 20*time.Millisecond,
		"no position stored after the restart:\n%s", d2.logTail())
	halt()
	e.requireLedger(t, ctx, time.Minute, true)
	requireNoStartOver(t, d2, false)
	t.Logf("%d transactions, %d changes committed", w.txn, w.changes)
	require.Equal(t, 0, d2.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// startDaemonAgain starts liberator after a stop and waits until it is
// ready.
func startDaemonAgain(t *testing.T, e *outageEnv) (*daemon, string) {
	t.Helper()
	d := startDaemon(t, "run", e.cfg)
	base := "http://" + d.adminAddr()
	waitReadyWithin(t, d, base, time.Minute)
	return d, base
}

// TestIntegrationRegistryOutage makes the registry answer 503 for 30 s
// while a column is added to the table under writes, so that liberator
// needs a new schema. It must retry with backoff, stay up, be not ready,
// and catch up once the registry answers again.
func TestIntegrationRegistryOutage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		open  func(*testing.T, context.Context, int) *restartSource
		alter string
	}{
		{"postgres", openPGRestart, "ALTER TABLE soak.items ADD COLUMN note text"},
		{"mariadb", openMariaDBRestart, "ALTER TABLE soak.items ADD COLUMN note TEXT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRegistryOutage(t, tc.open, tc.alter)
		})
	}
}

func testRegistryOutage(t *testing.T, open func(*testing.T, context.Context, int) *restartSource, alter string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newOutageEnv(t, ctx, open)
	d, base := e.start(t)
	w := newRestartWriter(e.src, outagePreload)
	halt := startOutageWriter(t, ctx, w)
	soakPause(t, d, time.Second)

	e.down.Store(true)
	downAt := time.Now()
	c, err := e.src.connect(ctx)
	require.NoError(t, err)
	require.NoError(t, c.begin(ctx))
	require.NoError(t, c.exec(ctx, alter))
	require.NoError(t, c.commit(ctx))
	c.close()
	took := notReadyWithin(t, d, base, 10*time.Second)
	t.Logf("%s: not ready %s after the column was added", e.src.kind, took.Round(10*time.Millisecond))
	holdOutage(t, d, base, downAt.Add(outageCut))
	refused := e.refused.Load()
	e.down.Store(false)
	restored := time.Now()
	// With backoff the retries are few: 250 ms doubling to 30 s.
	t.Logf("%s: the registry refused %d requests in %s", e.src.kind, refused, outageCut)
	require.GreaterOrEqual(t, refused, int64(3), "liberator did not retry")
	require.Less(t, refused, int64(200), "liberator retried without backoff")
	require.True(t, d.logContains("pipeline failed; retrying"), "the log does not say that liberator retries")

	waitReadyWithin(t, d, base, time.Minute)
	t.Logf("%s: ready again %s after the registry answered", e.src.kind, time.Since(restored).Round(10*time.Millisecond))
	before := storedPosition(base)
	require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != before }, time.Minute, 20*time.Millisecond,
		"no position stored after the registry came back:\n%s", d.logTail())
	halt()
	e.requireLedger(t, ctx, time.Minute, false)
	requireNoStartOver(t, d, true)
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// waitReadyWithin waits until /readyz answers 200.
func waitReadyWithin(t *testing.T, d *daemon, base string, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return d.exited() || readyz(base) == http.StatusOK }, within, 20*time.Millisecond,
		"/readyz did not answer 200 within %s:\n%s", within, d.logTail())
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
}
