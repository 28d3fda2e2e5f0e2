package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyWriters is how many connections share the paced writes, so that
// one slow commit does not hold back the schedule.
const latencyWriters = 4

// latencyMethod says how latency-<source> measures, in its BENCH line.
//
// Each row's latency is the time from its INSERT's commit returning to the
// writer to a consumer in the benchmark process receiving the row's event
// from Kafka; both instants are read from the one monotonic clock of the
// benchmark process. The commit_ts header is not used for the headline
// figure because MariaDB's binlog timestamps are whole seconds; for
// PostgreSQL, whose commit time has microseconds, receive time minus the
// header is reported as well (hdr_p50_ms, hdr_p99_ms).
//
// The consumer's fetch is answered as soon as a record is acknowledged
// (kfake wakes waiting fetches on produce), so the figure is the
// acknowledgement latency plus one fetch round trip on loopback.
const latencyMethod = "commit_return_to_consumer_receive"

func runLatency(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	st, err := startStreaming(ctx, e, s, true)
	if err != nil {
		return measure{}, err
	}
	m, err := measureLatency(ctx, s, st, 0)
	st.stop()
	if err != nil || !e.baselines || !s.commitTSPrecise() {
		return m, err
	}
	return m, rawLatency(ctx, e, s, m)
}

// rawLatency adds the raw limit to a latency case: the same paced writes
// again, read this time by bare's pgoutput counter from a slot of its own
// while nothing else runs, which times each commit to the walsender's send
// and to its receipt (bare's -lags). Kafka is not involved. Only sources
// whose commit time is precise have it.
//
//	raw_send_p50_ms, raw_send_p99_ms  commit to the walsender's send
//	raw_p50_ms, raw_p99_ms            commit to the reader's receipt
//	raw_cpu_s                         the reader's CPU seconds
func rawLatency(ctx context.Context, e *env, s source, m measure) error {
	tps, n, warm := latencyPlan()
	args, err := s.markBare(ctx, 1)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		r   bareRun
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := e.runBare(rctx, append(args[0], "-count-only", "-lags", fmt.Sprint(warm)), "127.0.0.1:9", n)
		done <- result{r, err}
	}()
	// The rows before n are liberator's run's.
	if _, err := writePaced(ctx, s, n, n, tps, func(int64) {}); err != nil {
		return err
	}
	var res result
	select {
	case res = <-done:
	case <-time.After(timeoutFor(n)):
		cancel()
		res = <-done
	}
	if res.err != nil {
		return res.err
	}
	for k, f := range map[string]string{"send_p50_ms": "raw_send_p50_ms", "send_p99_ms": "raw_send_p99_ms", "recv_p50_ms": "raw_p50_ms", "recv_p99_ms": "raw_p99_ms"} {
		m.Fields[f] = res.r.report[k]
	}
	m.Fields["raw_cpu_s"] = res.r.cpu
	m.Notes["raw"] = "pgoutput-counted-commit-to-receipt"
	return nil
}

// measureLatency writes single-row transactions of ids after from into
// streamTable at LATENCY_TPS for LATENCY_SECONDS, while st runs, and
// measures each row's latency from its commit to a consumer (see
// latencyMethod).
func measureLatency(ctx context.Context, s source, st *streaming, from int64) (measure, error) {
	tps, n, warm := latencyPlan()
	topic := s.topic(streamTable)

	base := time.Now()
	commitAt := make([]int64, n+1) // ns since base
	recvAt := make([]int64, n+1)
	hdrLat := make([]int64, n+1) // receive wall time minus commit_ts, ns

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(st.b.addr),
		// The topic holds one event for each of the rows before from.
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(from)}}),
	)
	if err != nil {
		return measure{}, err
	}
	defer cl.Close()
	cctx, cancelConsume := context.WithCancel(ctx)
	defer cancelConsume()
	consumed := make(chan error, 1)
	go func() {
		got := int64(0)
		for got < n {
			fs := cl.PollFetches(cctx)
			if cctx.Err() != nil {
				consumed <- fmt.Errorf("consumer received %d of %d events", got, n)
				return
			}
			now := time.Now()
			at := int64(now.Sub(base))
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Key) < 6 {
					return
				}
				id, k := binary.Varint(r.Key[5:])
				id -= from
				if k <= 0 || id < 1 || id > n || recvAt[id] != 0 {
					return
				}
				recvAt[id] = at
				got++
				for _, h := range r.Headers {
					if h.Key == "commit_ts" {
						if ts, err := time.Parse("2006-01-02T15:04:05.999999Z", string(h.Value)); err == nil {
							hdrLat[id] = int64(now.Sub(ts))
						}
					}
				}
			})
		}
		consumed <- nil
	}()

	cpu0 := st.p.cpu()
	achieved, err := writePaced(ctx, s, from, n, tps, func(id int64) { commitAt[id] = int64(time.Since(base)) })
	if err != nil {
		return measure{}, err
	}
	select {
	case err := <-consumed:
		if err != nil {
			return measure{}, err
		}
	case <-time.After(timeoutFor(n)):
		cancelConsume()
		return measure{}, <-consumed
	}

	lat := make([]float64, 0, n-warm)
	hdr := make([]float64, 0, n-warm)
	for id := warm + 1; id <= n; id++ {
		lat = append(lat, float64(recvAt[id]-commitAt[id])/1e6)
		hdr = append(hdr, float64(hdrLat[id])/1e6)
	}
	m := newMeasure()
	m.Fields["p50_ms"], m.Fields["p99_ms"] = percentile(lat, 0.50), percentile(lat, 0.99)
	if s.commitTSPrecise() {
		m.Fields["hdr_p50_ms"], m.Fields["hdr_p99_ms"] = percentile(hdr, 0.50), percentile(hdr, 0.99)
	}
	m.Fields["achieved_tx_per_s"] = achieved
	m.Fields["cpu_s"] = st.p.cpu() - cpu0
	m.Fields["peak_rss_mb"], _ = st.p.memMB("VmHWM")
	m.Notes["latency_method"] = latencyMethod
	return m, nil
}

// latencyPlan reads LATENCY_TPS and LATENCY_SECONDS: the rate, the number
// of rows written at it, and how many of the first are not counted (those
// of the first 2 s).
func latencyPlan() (tps, n, warm int64) {
	tps = envInt("LATENCY_TPS", 2000)
	secs := envInt("LATENCY_SECONDS", 20)
	if secs > 2 {
		warm = 2 * tps
	}
	return tps, tps * secs, warm
}

// writePaced inserts the rows of ids from+1 … from+n into streamTable in
// single-row transactions at tps a second, spread over latencyWriters
// connections, and calls committed with each id (1 … n) as its commit
// returns. It returns the rate achieved.
func writePaced(ctx context.Context, s source, from, n, tps int64, committed func(id int64)) (float64, error) {
	ids := make(chan int64, n)
	var wg sync.WaitGroup
	errs := make([]error, latencyWriters)
	for w := range latencyWriters {
		insert, closeConn, err := s.newWriter(ctx)
		if err != nil {
			close(ids)
			wg.Wait()
			return 0, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer closeConn()
			for id := range ids {
				if errs[w] != nil {
					continue
				}
				if err := insert(from + id); err != nil {
					errs[w] = err
					continue
				}
				committed(id)
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(tps)
	for i := int64(1); i <= n; i++ {
		if d := time.Until(start.Add(time.Duration(i-1) * interval)); d > 0 {
			time.Sleep(d)
		}
		ids <- i
	}
	close(ids)
	wg.Wait()
	return rate(n, time.Since(start)), errors.Join(errs...)
}

// percentile returns the q-quantile of v (nearest rank); it sorts v.
func percentile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	sort.Float64s(v)
	return v[int(q*float64(len(v)-1)+0.5)]
}
