package main

import (
	"context"
	"fmt"
	"time"
)

// pollSource is a source read by query capture (source.capture: query):
// streamTable polled every second in mode incrementing on column column.
// MariaDB reads behind a lag of 1s (source.query.lag), PostgreSQL behind
// the transactions still open.
type pollSource struct {
	source
	column string
}

func (s pollSource) configSection(table string) string {
	section := s.source.configSection(table) + fmt.Sprintf(`
  capture: query
  query:
    poll_interval: 1s
    lag: 1s
    tables:
      %s: {mode: incrementing, incrementing: %s}`, s.qualified(table), s.column)
	return section
}

// runPoll measures query capture: ROWS rows inserted while liberator is
// stopped, then the time from its start until Kafka has acknowledged them
// all (events_per_s, cpu_s, cpu_s_per_1m_rows); then, with liberator
// polling every second, the latency from a row's commit to a consumer at
// LATENCY_TPS single-row transactions (p50_ms, p99_ms).
func runPoll(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	ps := pollSource{source: s, column: "id"}
	if err := s.resetStream(ctx); err != nil {
		return measure{}, err
	}
	if pg, ok := s.(*pgSource); ok {
		// The benchmark's writers choose the ids: PostgreSQL's horizon
		// needs an incrementing column that the database assigns, as a
		// sequence does, while the row is written. MariaDB's lag does not.
		// An index on it serves the polls' keyset pages.
		ps.column = "seq"
		if err := pg.exec(ctx, "ALTER TABLE "+streamTable+" ADD COLUMN seq bigserial", "CREATE INDEX ON "+streamTable+" (seq)"); err != nil {
			return measure{}, err
		}
	}
	if err := s.insertRange(ctx, 1, e.rows, 1000); err != nil {
		return measure{}, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	st := &streaming{b: b}
	if err := createTopic(ctx, b.addr, s.topic(streamTable)); err != nil {
		b.stop()
		return measure{}, err
	}
	cfg, admin, err := e.writeConfig(ps, b.addr, streamTable, "initial")
	if err != nil {
		b.stop()
		return measure{}, err
	}
	if st.p, err = e.startLiberator(e.liberator, "run", cfg); err != nil {
		b.stop()
		return measure{}, err
	}
	st.admin = admin
	defer st.stop()
	if err := waitOffset(ctx, b.addr, s.topic(streamTable), e.rows, timeoutFor(e.rows), st.p); err != nil {
		return measure{}, err
	}
	elapsed := time.Since(st.p.started)
	cpu := st.p.cpu()
	lat, err := measureLatency(ctx, s, st, e.rows)
	if err != nil {
		return measure{}, err
	}
	m := newMeasure()
	m.Fields["events_per_s"] = rate(e.rows, elapsed)
	m.Fields["cpu_s"] = cpu
	m.Fields["cpu_s_per_1m_rows"] = cpu / float64(e.rows) * 1e6
	m.Fields["p50_ms"], m.Fields["p99_ms"] = lat.Fields["p50_ms"], lat.Fields["p99_ms"]
	m.Fields["achieved_tx_per_s"] = lat.Fields["achieved_tx_per_s"]
	m.Fields["peak_rss_mb"], _ = st.p.memMB("VmHWM")
	m.Notes["latency_method"] = latencyMethod
	m.Notes["poll_interval"] = "1s"
	return m, nil
}
