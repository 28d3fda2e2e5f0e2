package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

func TestRunIsNotReadyWhileKafkaIsUnreachableAndAcksNothingItDidNotAcknowledge(t *testing.T) {
	defer func(d time.Duration) { stallAfter = d }(stallAfter)
	stallAfter = 300 * time.Millisecond
	cut := harness.NewCutter()
	e := newLoopEnv(t, kfake.ListenFn(cut.Listen))
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	if st, _ := e.p.State(); st != "running" {
		t.Fatalf("state = %q before the outage, want running", st)
	}

	cut.Cut()
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "y", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "the pipeline to leave running", func() bool { st, _ := e.p.State(); return st != "running" })
	if got := gauge(e.p.metrics.ready); got != 0 {
		t.Errorf("liberator_ready = %v during the outage, want 0", got)
	}
	if got := gauge(e.p.metrics.retrying); got != 1 {
		t.Errorf("liberator_retrying = %v during the outage, want 1", got)
	}
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v during the outage, want fake:1", got)
	}

	cut.Restore()
	waitFor(t, "position 2 acked once Kafka is back", func() bool { return src.lastAck() == fakePos(2) })
	waitFor(t, "the pipeline to run again", func() bool { st, _ := e.p.State(); return st == "running" })
	if got := gauge(e.p.metrics.ready); got != 1 {
		t.Errorf("liberator_ready = %v after the outage, want 1", got)
	}
	if got := gauge(e.p.metrics.retrying); got != 0 {
		t.Errorf("liberator_retrying = %v after the outage, want 0", got)
	}
	var keys []string
	for _, r := range e.records(t, "t.s.a") {
		keys = append(keys, string(r.Key))
	}
	if len(keys) < 2 {
		t.Errorf("topic t.s.a has %d records after the outage, want both rows", len(keys))
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunIsNotReadyWhileIdleAndKafkaIsUnreachable(t *testing.T) {
	defer func(s, e, o time.Duration) { stallAfter, probeEvery, probeTimeout = s, e, o }(stallAfter, probeEvery, probeTimeout)
	stallAfter, probeEvery, probeTimeout = 300*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond
	cut := harness.NewCutter()
	e := newLoopEnv(t, kfake.ListenFn(cut.Listen))
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	waitFor(t, "the pipeline to run", func() bool { st, _ := e.p.State(); return st == "running" })

	// Nothing is in flight: only a probe can see that Kafka is gone.
	cut.Cut()
	waitFor(t, "the idle pipeline to be stalled", func() bool { st, _ := e.p.State(); return st == "stalled" })
	if got := gauge(e.p.metrics.ready); got != 0 {
		t.Errorf("liberator_ready = %v while Kafka is unreachable, want 0", got)
	}
	if got := gauge(e.p.metrics.retrying); got != 1 {
		t.Errorf("liberator_retrying = %v while Kafka is unreachable, want 1", got)
	}

	// A batch read during the outage keeps it not ready, and is not
	// acknowledged to the source.
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "y", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "batch 2 to be read", func() bool { return len(src.batches) == 0 })
	if st, _ := e.p.State(); st != "stalled" {
		t.Errorf("state = %q with Kafka unreachable and a batch waiting, want stalled", st)
	}
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v during the outage, want fake:1", got)
	}

	cut.Restore()
	waitFor(t, "position 2 acked once Kafka is back", func() bool { return src.lastAck() == fakePos(2) })
	waitFor(t, "the pipeline to run again", func() bool { st, _ := e.p.State(); return st == "running" })
	if got := gauge(e.p.metrics.ready); got != 1 {
		t.Errorf("liberator_ready = %v after the outage, want 1", got)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// stateSource is a fakeSource that records the pipeline's state at each
// Read: the moment a run begins to read.
type stateSource struct {
	*fakeSource
	e      *loopEnv
	mu     sync.Mutex
	states []string
}

func (s *stateSource) Read(ctx context.Context) (connectors.Batch, error) {
	st, _ := s.e.p.State()
	s.mu.Lock()
	s.states = append(s.states, st)
	s.mu.Unlock()
	return s.fakeSource.Read(ctx)
}

func (s *stateSource) readStates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.states)
}

func TestRunAfterAFailureIsNotReadyUntilItWorks(t *testing.T) {
	defer func(e time.Duration) { probeEvery = e }(probeEvery)
	probeEvery = 50 * time.Millisecond
	e := newLoopEnv(t)
	// The registry answers 503 while down is set.
	var down atomic.Bool
	target, err := url.Parse(e.cfg.Registry.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"error_code":50301,"message":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	if e.reg, err = e.cfg.NewRegistry(front.URL); err != nil {
		t.Fatal(err)
	}
	src := &stateSource{fakeSource: newFakeSource(), e: e}
	stop, _, _ := e.run(t, src)
	a := table("a")

	// A change needs the registry, which fails: the run starts over, and
	// the next one reads while still retrying, not ready.
	down.Store(true)
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "a second run to read", func() bool { return len(src.readStates()) >= 2 })
	if got := src.readStates()[1]; got != "retrying" {
		t.Errorf("state when the run after a failure reads = %q, want retrying", got)
	}
	if got := gauge(e.p.metrics.ready); got != 0 {
		t.Errorf("liberator_ready = %v when the run after a failure reads, want 0", got)
	}

	// Once a batch is acknowledged, it is ready.
	down.Store(false)
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "y", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "position 2 acked", func() bool { return src.lastAck() == fakePos(2) })
	waitFor(t, "the pipeline to run again", func() bool { st, _ := e.p.State(); return st == "running" })
	if got := gauge(e.p.metrics.ready); got != 1 {
		t.Errorf("liberator_ready = %v after a batch was acknowledged, want 1", got)
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// gauge reads the value of g.
func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
