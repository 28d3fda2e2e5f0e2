package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// runOutage measures how liberator catches up after Kafka was gone: it
// streams, the broker is cut off (every connection closed, new ones
// refused), OUTAGE_ROWS rows are inserted during the cut, which lasts
// OUTAGE_SECONDS in all, and then Kafka is back. The figures are the time
// from Kafka's return to the last event acknowledged (catch_up_s) and its
// rate (events_per_s), the CPU liberator used meanwhile (cpu_s), how long
// it took to turn not ready once the idle pipeline lost Kafka
// (not_ready_s), and to be ready again after Kafka's return (ready_s).
// The catch-up includes whatever is left of the retry backoff when Kafka
// returns: first_ack_s is the time to the first event acknowledged, and
// drain_events_per_s the rate from there to the last.
func runOutage(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	rows := min(envInt("OUTAGE_ROWS", 100_000), e.rows)
	cutFor := time.Duration(envInt("OUTAGE_SECONDS", 30)) * time.Second
	st, err := startStreaming(ctx, e, s, false)
	if err != nil {
		return measure{}, err
	}
	m, err := outage(ctx, e, s, st, rows, cutFor)
	if serr := st.stop(); err == nil && serr != nil {
		err = serr
	}
	return m, err
}

func outage(ctx context.Context, e *env, s source, st *streaming, rows int64, cutFor time.Duration) (measure, error) {
	m := newMeasure()
	if err := st.b.proc.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return m, fmt.Errorf("cut kafka: %w", err)
	}
	cutAt := time.Now()
	if err := waitState(ctx, st, func(state string) bool { return state != "running" }, time.Minute); err != nil {
		return m, fmt.Errorf("liberator stayed ready with Kafka cut: %w", err)
	}
	m.Fields["not_ready_s"] = time.Since(cutAt).Seconds()
	if err := s.insertRange(ctx, 1, rows, 1000); err != nil {
		return m, err
	}
	if wrote := time.Since(cutAt); wrote > cutFor {
		m.Notes["cut_lasted"] = wrote.Round(time.Second).String() // the inserts outlasted OUTAGE_SECONDS
	}
	select {
	case <-time.After(time.Until(cutAt.Add(cutFor))):
	case <-ctx.Done():
		return m, ctx.Err()
	}
	if st.p.exited() {
		return m, fmt.Errorf("liberator exited during the cut (%v)\n%s", st.p.err, st.p.logTail())
	}
	cpu0 := st.p.cpu()
	if err := st.b.proc.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		return m, fmt.Errorf("restore kafka: %w", err)
	}
	back := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan float64, 1)
	go func() {
		defer close(ready)
		if waitState(rctx, st, func(state string) bool { return state == "running" }, timeoutFor(rows)) == nil {
			ready <- time.Since(back).Seconds()
		}
	}()
	if err := waitOffset(ctx, st.b.addr, s.topic(streamTable), 1, timeoutFor(rows), st.p); err != nil {
		return m, err
	}
	first := time.Since(back)
	if err := waitOffset(ctx, st.b.addr, s.topic(streamTable), rows, timeoutFor(rows), st.p); err != nil {
		return m, err
	}
	took := time.Since(back)
	m.Fields["cpu_s"] = st.p.cpu() - cpu0
	m.Fields["catch_up_s"] = took.Seconds()
	m.Fields["events_per_s"] = rate(rows, took)
	m.Fields["first_ack_s"] = first.Seconds()
	m.Fields["drain_events_per_s"] = rate(rows, took-first)
	m.Fields["rows"] = float64(rows)
	m.Fields["cut_s"] = cutFor.Seconds()
	select {
	case r, ok := <-ready:
		if ok {
			m.Fields["ready_s"] = r
		}
	case <-time.After(30 * time.Second):
		m.Notes["ready"] = "not_ready_30s_after_catching_up"
	}
	return m, nil
}

// waitState polls liberator's /status until its state satisfies ok.
func waitState(ctx context.Context, st *streaming, ok func(string) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := getStatus(qctx, st.admin)
		cancel()
		if err == nil {
			if last = s.State; ok(last) {
				return nil
			}
		}
		if st.p.exited() {
			return fmt.Errorf("liberator exited (%v)\n%s", st.p.err, st.p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("state %q after %s", last, timeout)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
