package pipeline

import (
	"sync"
)

// Status is the pipeline's state and last stored position, for the admin
// listener. Counters live in the metrics.
type Status struct {
	mu       sync.Mutex
	state    string
	position string
}

func newStatus() *Status { return &Status{state: "starting"} }

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

// State returns the pipeline's state (starting, running, draining,
// stopped) and the last position stored.
func (s *Status) State() (state, position string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.position
}
