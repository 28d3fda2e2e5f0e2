package pipeline

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// TestAPipelineRunsAgainAfterStandingByFromItsStoredPosition runs one
// pipeline for two terms as ha.mode standby does: active, standby, active
// again. Between the terms it reports itself a ready standby; the second
// term opens a new source at the position the first one stored.
func TestAPipelineRunsAgainAfterStandingByFromItsStoredPosition(t *testing.T) {
	e := newLoopEnv(t)
	var sources [2]*fakeSource
	sources[0], sources[1] = newFakeSource(), newFakeSource()
	var term atomic.Int32
	p := New(e.cfg, Deps{
		Source: func() (connectors.Source, error) { return sources[term.Load()], nil },
		Sink: func(m prometheus.Registerer) (*kafka.Sink, error) {
			return kafka.New(e.cfg.Kafka, slog.New(slog.DiscardHandler), kafka.WithMetrics(m))
		},
		Registry: e.reg,
		Log:      slog.New(slog.DiscardHandler),
	})
	runTerm := func(t *testing.T, src *fakeSource, pos int) {
		t.Helper()
		p.SetStandby(false)
		if got := gauge(p.metrics.haActive); got != 1 {
			t.Errorf("liberator_ha_active = %v while active, want 1", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		a := table("a")
		src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, int64(pos), "x", pos)}, Checkpoint: fakePos(pos)}
		waitFor(t, "the position acked", func() bool { return src.lastAck() == fakePos(pos) })
		waitFor(t, "state running", func() bool { st, _ := p.State(); return st == "running" })
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		case <-time.After(e.cfg.ShutdownTimeout + 5*time.Second):
			t.Fatal("Run did not return")
		}
		p.SetStandby(true)
	}

	runTerm(t, sources[0], 1)
	if st, _ := p.State(); st != "standby" || p.Role() != RoleStandby {
		t.Errorf("between terms: state %q, role %q; want standby, standby", st, p.Role())
	}
	if got := gauge(p.metrics.haActive); got != 0 {
		t.Errorf("liberator_ha_active = %v on a standby, want 0", got)
	}
	if got := gauge(p.metrics.ready); got != 1 {
		t.Errorf("liberator_ready = %v on a standby, want 1", got)
	}

	term.Store(1)
	runTerm(t, sources[1], 2)
	sources[1].mu.Lock()
	resume := string(sources[1].resume)
	sources[1].mu.Unlock()
	if resume != "fake:1" {
		t.Errorf("the second term opened its source at %q, want fake:1, the position the first stored", resume)
	}
	if got := e.stored(t); got != "fake:2" {
		t.Errorf("stored position = %q, want fake:2", got)
	}
}
