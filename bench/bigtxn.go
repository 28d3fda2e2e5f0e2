package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// runBigTxn streams one transaction of ROWS rows (inserted by one
// statement) and measures liberator's peak RSS, its CPU time, the time
// from the statement's start and from its commit to the first event Kafka
// acknowledges (first_event_s, first_event_after_commit_s), and the rate
// from the commit to the last. For PostgreSQL it runs twice, without and
// with source.postgres.streaming (fields stream_*), and reports the
// walsender's own spill to disk and streamed bytes
// (pg_stat_replication_slots: server_spill_mb, server_stream_mb).
func runBigTxn(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	m := newMeasure()
	if err := bigTxnOnce(ctx, e, s, m, ""); err != nil {
		return measure{}, err
	}
	if pg, ok := s.(*pgSource); ok {
		if err := pg.waitSlotsIdle(ctx, time.Minute); err != nil {
			return measure{}, err
		}
		if err := bigTxnOnce(ctx, e, streamingPG{pg}, m, "stream_"); err != nil {
			return measure{}, err
		}
	}
	return m, nil
}

// streamingPG is a PostgreSQL source whose config turns streaming on.
type streamingPG struct{ *pgSource }

func (s streamingPG) configSection(table string) string {
	return s.pgSource.configSection(table) + "\n  postgres:\n    streaming: true"
}

func bigTxnOnce(ctx context.Context, e *env, s source, m measure, prefix string) error {
	st, err := startStreaming(ctx, e, s, false)
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			st.stop()
		}
	}()
	before, _ := st.p.memMB("VmRSS")
	cpu0 := st.p.cpu()
	topic := s.topic(streamTable)

	// The first event is awaited while the statement runs.
	first := make(chan time.Time, 1)
	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	go func() {
		if waitOffset(wctx, st.b.addr, topic, 1, timeoutFor(e.rows), nil) == nil {
			first <- time.Now()
		}
	}()
	began := time.Now()
	if err := s.insertRange(ctx, 1, e.rows, e.rows); err != nil {
		return err
	}
	committed := time.Now()
	if err := waitOffset(ctx, st.b.addr, topic, e.rows, timeoutFor(e.rows), st.p); err != nil {
		return err
	}
	last := time.Now()
	var firstAt time.Time
	select {
	case firstAt = <-first:
	case <-time.After(10 * time.Second):
		firstAt = last
	}
	m.Fields[prefix+"events_per_s"] = rate(e.rows, last.Sub(committed))
	m.Fields[prefix+"cpu_s"] = st.p.cpu() - cpu0
	m.Fields[prefix+"peak_rss_mb"], _ = st.p.memMB("VmHWM")
	m.Fields[prefix+"rss_before_mb"] = before
	m.Fields[prefix+"insert_s"] = committed.Sub(began).Seconds()
	m.Fields[prefix+"first_event_s"] = firstAt.Sub(began).Seconds()
	m.Fields[prefix+"first_event_after_commit_s"] = max(0, firstAt.Sub(committed).Seconds())
	m.Fields[prefix+"last_event_s"] = last.Sub(began).Seconds()
	if pg, ok := pgOf(s); ok {
		spill, streamed, err := pg.slotBytes(ctx)
		if err != nil {
			return err
		}
		m.Fields[prefix+"server_spill_mb"] = float64(spill) / 1e6
		m.Fields[prefix+"server_stream_mb"] = float64(streamed) / 1e6
	}
	stopped = true
	return st.stop()
}

func pgOf(s source) (*pgSource, bool) {
	switch s := s.(type) {
	case *pgSource:
		return s, true
	case streamingPG:
		return s.pgSource, true
	}
	return nil, false
}

// slotBytes is what the server's logical decoding spilled to disk and
// streamed, over every slot (a run starts with its slots new).
func (s *pgSource) slotBytes(ctx context.Context) (spill, streamed int64, err error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(spill_bytes), 0)::bigint, coalesce(sum(stream_bytes), 0)::bigint FROM pg_stat_replication_slots`).Scan(&spill, &streamed)
	return spill, streamed, err
}

// waitSlotsIdle waits until no walsender holds a slot: one that has just
// sent a large transaction can outlive its client's exit by a moment.
func (s *pgSource) waitSlotsIdle(ctx context.Context, timeout time.Duration) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(timeout)
	for {
		var active int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE active`).Scan(&active); err != nil {
			return err
		}
		if active == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d replication slots still active after %s", active, timeout)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
