package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liberator-cdc/liberator/connectors"
)

// Errors of RequestSnapshot, for errors.Is.
var (
	// ErrNotOpen is returned while no source is open.
	ErrNotOpen = errors.New("the source is not open yet; try again")
	// ErrNoSnapshots is returned when the source cannot snapshot tables
	// while streaming.
	ErrNoSnapshots = errors.New("this source cannot snapshot tables while streaming")
)

// State returns the pipeline's state and the last position stored. The
// states are starting, running, stalled (Kafka has not acknowledged
// events for longer than stallAfter, or does not answer a probe),
// draining, retrying (waiting to start again after a retryable error, or
// started again but not yet acknowledged by Kafka), stopped, and standby
// (ha.mode standby, another replica is active). Only running and standby
// are ready.
func (p *Pipeline) State() (state, position string) { return p.status.State() }

// Lag is the running source's lag; Bytes is -1 when unknown.
func (p *Pipeline) Lag() connectors.Lag { return p.lag() }

// Metrics is the pipeline's Prometheus registry: its own metrics, the
// producer's, the Go runtime's and the process's.
func (p *Pipeline) Metrics() *prometheus.Registry { return p.metrics.reg }

// RequestSnapshot asks the running source for an incremental snapshot.
func (p *Pipeline) RequestSnapshot(ctx context.Context, req connectors.SnapshotRequest) error {
	if p.Role() == RoleStandby {
		return fmt.Errorf("%w: this replica is a standby (ha.mode standby); ask the active one", ErrNotOpen)
	}
	src, _ := p.source.Load().(connectors.Source)
	if src == nil {
		return ErrNotOpen
	}
	r, ok := src.(connectors.SnapshotRequester)
	if !ok {
		return ErrNoSnapshots
	}
	if err := r.RequestSnapshot(ctx, req); err != nil {
		return fmt.Errorf("request a snapshot of %v: %w", req.Tables, err)
	}
	return nil
}

// SnapshotProgress returns the running source's snapshot progress: empty
// when the source reports none.
func (p *Pipeline) SnapshotProgress() connectors.SnapshotProgress {
	if pr, ok := p.source.Load().(connectors.SnapshotProgressReporter); ok && pr != nil {
		return pr.SnapshotProgress()
	}
	return connectors.SnapshotProgress{}
}

// Role is the replica's role under ha.mode standby: active or standby.
// Without ha it is always active.
func (p *Pipeline) Role() string { return p.status.Role() }

// SetStandby makes the pipeline report itself a standby (state standby,
// role standby, ready, liberator_ha_active 0) while it does not run, or
// the active replica (liberator_ha_active 1) about to run. A pipeline
// that becomes active starts as at first: the source's checks and the
// tables' description run again, and a failure of the first attempt is
// reported rather than retried.
func (p *Pipeline) SetStandby(standby bool) {
	p.status.mu.Lock()
	if standby {
		p.status.role, p.status.state = RoleStandby, "standby"
	} else {
		p.status.role, p.status.state = RoleActive, "starting"
	}
	p.status.mu.Unlock()
	if standby {
		p.metrics.haActive.Set(0)
		p.metrics.ready.Set(1)
		p.metrics.retrying.Set(0)
	} else {
		p.started.Store(false)
		p.metrics.haActive.Set(1)
		p.metrics.ready.Set(0)
	}
}

// The roles of Role.
const (
	RoleActive  = "active"
	RoleStandby = "standby"
)

// Status is the pipeline's state, role and last stored position, for the
// admin listener. Counters live in the metrics.
type Status struct {
	mu       sync.Mutex
	state    string
	role     string
	position string
}

func newStatus() *Status { return &Status{state: "starting", role: RoleActive} }

// Role returns the replica's role: active or standby.
func (s *Status) Role() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

func (s *Status) setState(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// swapState sets the state to st if it is from, and reports whether it did.
func (s *Status) swapState(from, st string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != from {
		return false
	}
	s.state = st
	return true
}

func (s *Status) setPosition(pos string) {
	s.mu.Lock()
	s.position = pos
	s.mu.Unlock()
}

// State returns the pipeline's state (starting, running, draining,
// stopped) and the last position stored.
func (s *Status) State() (state, position string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.position
}
