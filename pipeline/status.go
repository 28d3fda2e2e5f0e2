package pipeline

import (
	"sync"
	"sync/atomic"

	"github.com/liberator-cdc/liberator/connectors"
)

// Status is what a running pipeline reports about itself.
type Status struct {
	mu       sync.Mutex
	state    string
	position string

	events  [4]atomic.Int64 // by op: r, c, u, d
	retries atomic.Int64
}

func newStatus() *Status { return &Status{state: "starting"} }

func opIndex(op connectors.Op) int {
	switch op {
	case connectors.OpRead:
		return 0
	case connectors.OpCreate:
		return 1
	case connectors.OpUpdate:
		return 2
	}
	return 3
}

func (s *Status) count(op connectors.Op) { s.events[opIndex(op)].Add(1) }

func (s *Status) setState(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *Status) setPosition(pos string) {
	s.mu.Lock()
	s.position = pos
	s.mu.Unlock()
}

// Snapshot is a copy of a Status at one moment.
type Snapshot struct {
	State    string           `json:"state"`
	Position string           `json:"position"`
	Events   map[string]int64 `json:"events"`
	Retries  int64            `json:"retries"`
}

// Snapshot returns the current status.
func (s *Status) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{
		State:    s.state,
		Position: s.position,
		Events: map[string]int64{
			"r": s.events[0].Load(), "c": s.events[1].Load(), "u": s.events[2].Load(), "d": s.events[3].Load(),
		},
		Retries: s.retries.Load(),
	}
}

// Status returns the pipeline's live status.
func (p *Pipeline) Status() *Status { return p.status }
