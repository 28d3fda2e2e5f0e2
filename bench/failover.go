package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// runFailover measures ha.mode standby: two liberator processes on the
// same config, one active and one standby, while rows are inserted at a
// steady pace; the active one is killed with SIGKILL, and the figure is
// the time from the kill to the next event Kafka acknowledges
// (failover_s, the median of FAILOVER_KILLS kills, alternating which
// process dies; max_failover_s the slowest). ha.session_timeout is
// liberator's default unless FAILOVER_SESSION_TIMEOUT (a Go duration, at
// least the broker's 6s minimum) says otherwise.
func runFailover(ctx context.Context, e *env, s source) (measure, error) {
	return failover(ctx, e, s, false)
}

// runFailoverEOS is failover-<source>-eos: runFailover under delivery:
// exactly_once, where the figure is the time from the kill to the first
// event the standby commits: the topic's last stable offset passes the end
// of the log at the kill, the marker that aborts the killed process's open
// transaction, and a committed record.
func runFailoverEOS(ctx context.Context, e *env, s source) (measure, error) {
	return failover(ctx, e, s, true)
}

func failover(ctx context.Context, e *env, s source, eos bool) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	kills := int(envInt("FAILOVER_KILLS", 3))
	session := os.Getenv("FAILOVER_SESSION_TIMEOUT")
	if session == "" {
		session = "10s"
	}
	sessionD, err := time.ParseDuration(session)
	if err != nil {
		return measure{}, fmt.Errorf("FAILOVER_SESSION_TIMEOUT=%q: %w", session, err)
	}
	if err := s.resetStream(ctx); err != nil {
		return measure{}, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	defer b.stop()
	haYAML := fmt.Sprintf("ha:\n  mode: standby\n  session_timeout: %s", session)
	if eos {
		haYAML += "\ndelivery: exactly_once"
	}
	type replica struct {
		p     *proc
		admin string
	}
	start := func() (*replica, error) {
		cfg, admin, err := e.writeConfig(s, b.addr, streamTable, "never", haYAML)
		if err != nil {
			return nil, err
		}
		p, err := e.startLiberator(e.liberator, "run", cfg)
		if err != nil {
			return nil, err
		}
		return &replica{p: p, admin: admin}, nil
	}
	role := func(r *replica) string {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := getStatus(qctx, r.admin)
		if err != nil {
			return ""
		}
		return st.Role
	}
	waitRole := func(r *replica, want string, timeout time.Duration) error {
		deadline := time.Now().Add(timeout)
		for role(r) != want {
			if r.p.exited() {
				return fmt.Errorf("liberator exited (%v)\n%s", r.p.err, r.p.logTail())
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("liberator is not %s after %s\n%s", want, timeout, r.p.logTail())
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	active, err := start()
	if err != nil {
		return measure{}, err
	}
	defer func() { active.p.kill() }()
	if err := waitStreaming(ctx, active.p, active.admin, 2*time.Minute, s.nudge); err != nil {
		return measure{}, err
	}
	standby, err := start()
	if err != nil {
		return measure{}, err
	}
	defer func() {
		if standby != nil {
			standby.p.kill()
		}
	}()
	if err := waitRole(standby, "standby", time.Minute); err != nil {
		return measure{}, err
	}

	// A steady workload: 10 rows a transaction, every 10 ms.
	wctx, stopWriting := context.WithCancel(ctx)
	written := make(chan error, 1)
	go func() {
		next := int64(1)
		for wctx.Err() == nil {
			if err := s.insertRange(wctx, next, 10, 10); err != nil && wctx.Err() == nil {
				written <- err
				return
			}
			next += 10
			select {
			case <-time.After(10 * time.Millisecond):
			case <-wctx.Done():
			}
		}
		written <- nil
	}()
	defer func() { stopWriting(); <-written }()

	cl, adm, err := newAdmin(b.addr)
	if err != nil {
		return measure{}, err
	}
	defer cl.Close()
	topic := s.topic(streamTable)
	var took []time.Duration
	for i := range kills {
		// The stream moves before each kill.
		at, err := endOffset(ctx, adm, topic)
		if err != nil {
			return measure{}, err
		}
		if err := waitOffset(ctx, b.addr, topic, at+100, time.Minute, active.p); err != nil {
			return measure{}, err
		}
		active.p.kill()
		killed := time.Now()
		acked, err := endOffset(ctx, adm, topic)
		if err != nil {
			return measure{}, err
		}
		if eos {
			err = waitStableOffset(ctx, adm, topic, acked+2, sessionD+2*time.Minute, standby.p)
		} else {
			err = waitOffset(ctx, b.addr, topic, acked+1, sessionD+2*time.Minute, standby.p)
		}
		if err != nil {
			return measure{}, fmt.Errorf("kill %d: %w", i+1, err)
		}
		took = append(took, time.Since(killed))
		// The killed process comes back as the standby.
		active, standby = standby, nil
		if standby, err = start(); err != nil {
			return measure{}, err
		}
		if err := waitRole(standby, "standby", time.Minute); err != nil {
			return measure{}, err
		}
	}
	m := newMeasure()
	secs := make([]float64, len(took))
	for i, d := range took {
		secs[i] = d.Seconds()
	}
	slices.Sort(secs)
	m.Fields["failover_s"] = secs[len(secs)/2]
	m.Fields["max_failover_s"] = secs[len(secs)-1]
	m.Fields["min_failover_s"] = secs[0]
	m.Fields["session_timeout_s"] = sessionD.Seconds()
	m.Fields["kills"] = float64(kills)
	return m, nil
}

// waitStableOffset polls the last stable offset of partition 0 of topic (what
// a read_committed consumer reads up to) every 10 ms until it reaches
// want. It fails early if p exits.
func waitStableOffset(ctx context.Context, adm *kadm.Client, topic string, want int64, timeout time.Duration, p *proc) error {
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lso, err := adm.ListCommittedOffsets(qctx, topic)
		cancel()
		if err == nil {
			if o, ok := lso.Lookup(topic, 0); ok && o.Err == nil {
				last = o.Offset
				if last >= want {
					return nil
				}
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited with the last stable offset of %s at %d, not %d (%v)\n%s", p.name(), topic, last, want, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the last stable offset of %s is %d, not %d, after %s", topic, last, want, timeout)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
