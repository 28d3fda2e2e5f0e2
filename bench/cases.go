package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// timeoutFor bounds a phase that moves rows events.
func timeoutFor(rows int64) time.Duration {
	return 2*time.Minute + time.Duration(rows/5000)*time.Second
}

type supportAnswer struct {
	ok  bool
	why string
}

// supports caches env.liberatorSupports per source.
func (e *env) supports(ctx context.Context, s source) (bool, string) {
	if a, ok := e.supported[s.Name()]; ok {
		return a.ok, a.why
	}
	ok, why := e.liberatorSupports(ctx, s)
	e.supported[s.Name()] = supportAnswer{ok, why}
	return ok, why
}

// bareRun is the outcome of one run of the bare program.
type bareRun struct {
	elapsed time.Duration // from exec to exit
	cpu     float64
}

// runBare runs the bare program and checks that it handled rows rows.
func (e *env) runBare(ctx context.Context, args []string, brokerAddr string, rows int64) (bareRun, error) {
	args = append(args, "-brokers", brokerAddr, "-rows", fmt.Sprint(rows))
	if v := os.Getenv("KAFKA_LINGER"); v != "" {
		args = append(args, "-linger", v)
	}
	cmd := exec.CommandContext(ctx, e.bare, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	out, err := cmd.Output()
	elapsed := time.Since(start)
	if err != nil {
		return bareRun{}, fmt.Errorf("bare %s: %w\n%s", args[0], err, stderr.String())
	}
	var res struct {
		Events int64 `json:"events"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Events != rows {
		return bareRun{}, fmt.Errorf("bare %s: handled %d rows, want %d (%v): %s", args[0], res.Events, rows, err, out)
	}
	r := bareRun{elapsed: elapsed}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.cpu = tv(ru.Utime) + tv(ru.Stime)
	}
	return r, nil
}

func rate(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func skipped(why string) measure {
	m := newMeasure()
	m.Notes["skipped"] = why
	return m
}

// libRun is what one timed liberator phase measured.
type libRun struct {
	elapsed time.Duration
	cpu     float64
	peakMB  float64
}

// liberatorSnapshot runs `bin snapshot` on the snapshot table against a fresh
// broker and waits for it to exit 0.
func liberatorSnapshot(ctx context.Context, e *env, s source, bin string, extra ...string) (libRun, error) {
	if err := s.resetSnapshot(ctx); err != nil {
		return libRun{}, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return libRun{}, err
	}
	defer b.stop()
	cfg, _, err := e.writeConfig(s, b.addr, snapshotTable, "initial")
	if err != nil {
		return libRun{}, err
	}
	p, err := e.startLiberator(bin, "snapshot", cfg, extra...)
	if err != nil {
		return libRun{}, err
	}
	if err := p.wait(timeoutFor(e.rows)); err != nil {
		return libRun{}, err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu()}
	r.peakMB, _ = p.memMB("VmHWM")
	if err := checkOffset(ctx, b.addr, s.topic(snapshotTable), e.rows); err != nil {
		return libRun{}, err
	}
	return r, nil
}

func runSnapshot(ctx context.Context, e *env, s source) (measure, error) {
	if err := s.ensureSnapshotTable(ctx, e.rows); err != nil {
		return measure{}, err
	}
	m := newMeasure()
	// The raw read alone: COPY … TO STDOUT or a streamed SELECT, nothing
	// decoded, encoded or produced; no broker is needed. It runs first, so
	// that liberator and the bare pipeline both read a table whose pages
	// are as warm.
	rr, err := e.runBare(ctx, append(s.bareSnapshotArgs(), "-raw"), "127.0.0.1:9", e.rows)
	if err != nil {
		return measure{}, err
	}
	m.Fields["raw_events_per_s"] = rate(e.rows, rr.elapsed)
	if ok, why := e.supports(ctx, s); ok {
		r, err := liberatorSnapshot(ctx, e, s, e.liberator)
		if err != nil {
			return measure{}, err
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
		m.Fields["peak_rss_mb"] = r.peakMB
	} else {
		m.Notes["skipped"] = why
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	br, err := e.runBare(ctx, s.bareSnapshotArgs(), b.addr, e.rows)
	b.stop()
	if err != nil {
		return measure{}, err
	}
	m.Fields["bare_events_per_s"] = rate(e.rows, br.elapsed)
	m.Fields["bare_cpu_s"] = br.cpu
	if v, ok := m.Fields["events_per_s"]; ok {
		m.Fields["ratio"] = v / m.Fields["bare_events_per_s"]
		m.Fields["raw_ratio"] = v / m.Fields["raw_events_per_s"]
	}
	return m, nil
}

// drainSetup is a liberator that has been started once with snapshot mode
// never (so its slot or position exists) and stopped.
type drainSetup struct {
	b     *broker
	cfg   string
	admin string
}

func liberatorDrainSetup(ctx context.Context, e *env, s source, bin string, extra ...string) (*drainSetup, error) {
	return liberatorDrainSetupConfig(ctx, e, s, bin, nil, extra...)
}

// liberatorDrainSetupConfig is liberatorDrainSetup with more lines of
// config.
func liberatorDrainSetupConfig(ctx context.Context, e *env, s source, bin string, cfgLines []string, extra ...string) (*drainSetup, error) {
	b, err := e.startBroker(ctx)
	if err != nil {
		return nil, err
	}
	cfg, admin, err := e.writeConfig(s, b.addr, streamTable, "never", cfgLines...)
	if err != nil {
		b.stop()
		return nil, err
	}
	p, err := e.startLiberator(bin, "run", cfg, extra...)
	if err != nil {
		b.stop()
		return nil, err
	}
	err = waitStreaming(ctx, p, admin, 2*time.Minute, s.nudge)
	if serr := p.stop(time.Minute); err == nil {
		err = serr
	}
	if err != nil {
		b.stop()
		return nil, err
	}
	return &drainSetup{b: b, cfg: cfg, admin: admin}, nil
}

// drain starts liberator again and times it until Kafka has acknowledged
// rows events (committed them, when committed is true: delivery:
// exactly_once).
func (d *drainSetup) drain(ctx context.Context, e *env, s source, bin string, extra ...string) (libRun, error) {
	return d.drainUntil(ctx, e, s, bin, false, extra...)
}

func (d *drainSetup) drainUntil(ctx context.Context, e *env, s source, bin string, committed bool, extra ...string) (libRun, error) {
	defer d.b.stop()
	p, err := e.startLiberator(bin, "run", d.cfg, extra...)
	if err != nil {
		return libRun{}, err
	}
	wait := waitOffset
	if committed {
		wait = waitCommitted
	}
	if err := wait(ctx, d.b.addr, s.topic(streamTable), e.rows, timeoutFor(e.rows), p); err != nil {
		p.kill()
		return libRun{}, err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu()}
	r.peakMB, _ = p.memMB("VmHWM")
	if err := p.stop(time.Minute); err != nil {
		return libRun{}, err
	}
	return r, nil
}

func runDrain(ctx context.Context, e *env, s source) (measure, error) {
	if err := s.resetStream(ctx); err != nil {
		return measure{}, err
	}
	m := newMeasure()
	ok, why := e.supports(ctx, s)
	var d *drainSetup
	if ok {
		var err error
		if d, err = liberatorDrainSetup(ctx, e, s, e.liberator); err != nil {
			return measure{}, err
		}
	} else {
		m.Notes["skipped"] = why
	}
	drainArgs, readerArgs, err := s.markBare(ctx)
	if err == nil {
		err = s.insertRange(ctx, 1, e.rows, 1000)
	}
	if err != nil {
		if d != nil {
			d.b.stop()
		}
		return measure{}, err
	}
	if d != nil {
		r, err := d.drain(ctx, e, s, e.liberator)
		if err != nil {
			return measure{}, err
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
		m.Fields["peak_rss_mb"] = r.peakMB
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	br, err := e.runBare(ctx, drainArgs, b.addr, e.rows)
	b.stop()
	if err != nil {
		return measure{}, err
	}
	m.Fields["bare_events_per_s"] = rate(e.rows, br.elapsed)
	m.Fields["bare_cpu_s"] = br.cpu
	rr, err := e.runBare(ctx, readerArgs, "127.0.0.1:9", e.rows)
	if err != nil {
		return measure{}, err
	}
	m.Fields["reader_events_per_s"] = rate(e.rows, rr.elapsed)
	if v, ok := m.Fields["events_per_s"]; ok {
		m.Fields["ratio"] = v / m.Fields["bare_events_per_s"]
	}
	return m, nil
}

// runDrainEOS is drain-<source>-eos: the drain of runDrain by liberator
// with delivery: exactly_once, timed until Kafka has committed the last
// event, and, in the same run, by liberator with at_least_once, timed
// until Kafka has acknowledged it. ratio is exactly once's rate over at
// least once's.
func runDrainEOS(ctx context.Context, e *env, s source) (measure, error) {
	m := newMeasure()
	if ok, why := e.supports(ctx, s); !ok {
		m.Notes["skipped"] = why
		return m, nil
	}
	for _, mode := range []struct {
		prefix string
		lines  []string
	}{
		{"alo_", nil},
		{"", []string{"delivery: exactly_once"}},
	} {
		if err := s.resetStream(ctx); err != nil {
			return measure{}, err
		}
		d, err := liberatorDrainSetupConfig(ctx, e, s, e.liberator, mode.lines)
		if err != nil {
			return measure{}, err
		}
		if err := s.insertRange(ctx, 1, e.rows, 1000); err != nil {
			d.b.stop()
			return measure{}, err
		}
		r, err := d.drainUntil(ctx, e, s, e.liberator, mode.lines != nil)
		if err != nil {
			return measure{}, err
		}
		m.Fields[mode.prefix+"events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields[mode.prefix+"cpu_s"] = r.cpu
		m.Fields[mode.prefix+"peak_rss_mb"] = r.peakMB
	}
	m.Fields["ratio"] = m.Fields["events_per_s"] / m.Fields["alo_events_per_s"]
	return m, nil
}

// streaming is a liberator streaming streamTable with snapshot mode never.
type streaming struct {
	b     *broker
	p     *proc
	admin string
}

func startStreaming(ctx context.Context, e *env, s source, precreate bool) (*streaming, error) {
	if err := s.resetStream(ctx); err != nil {
		return nil, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return nil, err
	}
	if precreate {
		if err := createTopic(ctx, b.addr, s.topic(streamTable)); err != nil {
			b.stop()
			return nil, err
		}
	}
	cfg, admin, err := e.writeConfig(s, b.addr, streamTable, "never")
	if err != nil {
		b.stop()
		return nil, err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		b.stop()
		return nil, err
	}
	st := &streaming{b: b, p: p, admin: admin}
	if err := waitStreaming(ctx, p, admin, 2*time.Minute, s.nudge); err != nil {
		st.stop()
		return nil, err
	}
	return st, nil
}

func (st *streaming) stop() error {
	defer st.b.stop()
	return st.p.stop(time.Minute)
}

// runBigRow streams one transaction of BIGROW_ROWS rows of about 1 MB
// with memory_limit BIGROW_MEMORY_LIMIT, and measures the throughput from
// the commit until Kafka has acknowledged the last row, the peak RSS and
// the CPU time.
func runBigRow(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	rows := envInt("BIGROW_ROWS", 2000)
	limit := os.Getenv("BIGROW_MEMORY_LIMIT")
	if limit == "" {
		limit = "256MB"
	}
	if err := s.resetBigRows(ctx); err != nil {
		return measure{}, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	defer b.stop()
	cfg, admin, err := e.writeConfig(s, b.addr, bigRowTable, "never", "memory_limit: "+limit)
	if err != nil {
		return measure{}, err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		return measure{}, err
	}
	if err := waitStreaming(ctx, p, admin, 2*time.Minute, s.nudge); err != nil {
		p.kill()
		return measure{}, err
	}
	before, _ := p.memMB("VmRSS")
	cpu0 := p.cpu()
	began := time.Now()
	if err := s.insertBigRows(ctx, rows); err != nil {
		p.kill()
		return measure{}, err
	}
	committed := time.Now()
	if err := waitOffset(ctx, b.addr, s.topic(bigRowTable), rows, timeoutFor(rows*500), p); err != nil {
		p.kill()
		return measure{}, err
	}
	elapsed := time.Since(committed)
	m := newMeasure()
	m.Fields["mb_per_s"] = float64(rows*bigRowBytes) / 1e6 / elapsed.Seconds()
	m.Fields["events_per_s"] = rate(rows, elapsed)
	m.Fields["cpu_s"] = p.cpu() - cpu0
	m.Fields["peak_rss_mb"], _ = p.memMB("VmHWM")
	m.Fields["rss_before_mb"] = before
	m.Fields["insert_s"] = committed.Sub(began).Seconds()
	m.Notes["memory_limit"] = limit
	m.Notes["row_bytes"] = strconv.Itoa(bigRowBytes)
	m.Notes["rows"] = strconv.FormatInt(rows, 10)
	return m, p.stop(time.Minute)
}

func runIdle(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	st, err := startStreaming(ctx, e, s, false)
	if err != nil {
		return measure{}, err
	}
	cpu0 := st.p.cpu()
	select {
	case <-time.After(time.Duration(envInt("IDLE_SECONDS", 10)) * time.Second):
	case <-ctx.Done():
		st.stop()
		return measure{}, ctx.Err()
	}
	m := newMeasure()
	m.Fields["rss_mb"], _ = st.p.memMB("VmRSS")
	m.Fields["peak_rss_mb"], _ = st.p.memMB("VmHWM")
	m.Fields["cpu_s"] = st.p.cpu() - cpu0
	return m, st.stop()
}

// profileCase runs the liberator side of a snapshot or drain case once more,
// with the pipeline in-process under the CPU profiler, and returns where the
// profile is.
func profileCase(ctx context.Context, e *env, s source, kind, name string) (string, measure, error) {
	m := newMeasure()
	if ok, _ := e.supports(ctx, s); !ok {
		return "", m, nil
	}
	path := filepath.Join(e.root, "bench", "results", name+".pprof")
	extra := []string{"--cpuprofile", path}
	switch kind {
	case "snapshot":
		if err := s.ensureSnapshotTable(ctx, e.rows); err != nil {
			return "", m, err
		}
		r, err := liberatorSnapshot(ctx, e, s, e.liberator, extra...)
		if err != nil {
			return "", m, err
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
	case "drain":
		if err := s.resetStream(ctx); err != nil {
			return "", m, err
		}
		d, err := liberatorDrainSetup(ctx, e, s, e.liberator, extra...)
		if err != nil {
			return "", m, err
		}
		if err := s.insertRange(ctx, 1, e.rows, 1000); err != nil {
			d.b.stop()
			return "", m, err
		}
		r, err := d.drain(ctx, e, s, e.liberator, extra...)
		if err != nil {
			return "", m, err
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
	case "outbox":
		om, err := outboxCase(ctx, e, s, extra...)
		if err != nil {
			return "", m, err
		}
		if _, skipped := om.Notes["skipped"]; skipped {
			return "", m, nil
		}
		m = om
	default:
		return "", m, errors.New("no profile for " + kind)
	}
	if _, err := os.Stat(path); err != nil {
		return "", m, err
	}
	return path, m, nil
}
