package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	// report is the JSON line bare printed.
	report map[string]float64
}

// runBare runs the bare program and checks that it handled rows rows.
func (e *env) runBare(ctx context.Context, args []string, brokerAddr string, rows int64) (bareRun, error) {
	args = append(args, "-brokers", brokerAddr, "-rows", fmt.Sprint(rows), "-compression", e.compression)
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
	var res map[string]float64
	if err := json.Unmarshal(out, &res); err != nil || int64(res["events"]) != rows {
		return bareRun{}, fmt.Errorf("bare %s: handled %d rows, want %d (%v): %s", args[0], int64(res["events"]), rows, err, out)
	}
	r := bareRun{elapsed: elapsed, report: res}
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
	// srvCPU is the database server's CPU seconds over the run, when
	// measured (srvOK).
	srvCPU float64
	srvOK  bool
	// brokerCPU is the broker process's CPU seconds over the run.
	brokerCPU float64
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
	srv0, srvErr := s.serverCPU()
	brk0 := b.proc.cpu()
	p, err := e.startLiberator(bin, "snapshot", cfg, extra...)
	if err != nil {
		return libRun{}, err
	}
	if err := p.wait(timeoutFor(e.rows)); err != nil {
		return libRun{}, err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu(), brokerCPU: b.proc.cpu() - brk0}
	if srv1, err := s.serverCPU(); srvErr == nil && err == nil {
		r.srvCPU, r.srvOK = srv1-srv0, true
	}
	r.peakMB, _ = p.memMB("VmHWM")
	if err := checkOffset(ctx, b.addr, s.topic(snapshotTable), e.rows); err != nil {
		return libRun{}, err
	}
	return r, nil
}

// Field prefixes of the runs a snapshot or drain case compares liberator
// (no prefix) with.
const (
	// barePrefix is the bare pipeline on one goroutine.
	barePrefix = "bare_"
	// pipelinedPrefix is the bare pipeline that reads and decodes on one
	// goroutine, and encodes and produces on another.
	pipelinedPrefix = "pipelined_"
	// readerPrefix is the bare reader that decodes every column, drains
	// only.
	readerPrefix = "reader_"
	// rawPrefix is the raw limit: reading without decoding.
	rawPrefix = "raw_"
)

// bareVariant runs the bare program once with args, against a fresh broker
// when it produces, and stores its rate and CPU, and the database server's
// CPU over the run (the log-streaming thread's when stream is true, the
// whole server's otherwise), in m's fields under prefix.
func (e *env) bareVariant(ctx context.Context, s source, m measure, prefix string, args []string, produce, stream bool) error {
	addr := "127.0.0.1:9" // nothing listens: the run must not produce
	var b *broker
	if produce {
		var err error
		if b, err = e.startBroker(ctx); err != nil {
			return err
		}
		defer b.stop()
		addr = b.addr
	}
	var meter *streamMeter
	if stream {
		meter = meterStream(ctx, s)
	}
	srv0, srvErr := s.serverCPU()
	var brk0 float64
	if b != nil {
		brk0 = b.proc.cpu()
	}
	r, err := e.runBare(ctx, args, addr, e.rows)
	if b != nil {
		m.Fields[prefix+"broker_cpu_s"] = b.proc.cpu() - brk0
	}
	if srv1, err := s.serverCPU(); srvErr == nil && err == nil {
		// For a drain, the whole server's CPU is a check on the thread's:
		// it holds it, and the server's background work besides.
		f := prefix + "srv_cpu_s"
		if stream {
			f = prefix + "srv_all_cpu_s"
		}
		m.Fields[f] = srv1 - srv0
	}
	if stream {
		stopMeter(meter, m.Fields, prefix+"srv_cpu_s")
	}
	if err != nil {
		return err
	}
	m.Fields[prefix+"events_per_s"] = rate(e.rows, r.elapsed)
	m.Fields[prefix+"cpu_s"] = r.cpu
	return nil
}

// rawLabels name the raw limit of each source and case kind.
var rawLabels = map[string]string{
	"snapshot-postgres": "copy-binary",
	"snapshot-mariadb":  "select-raw-packets",
	"drain-postgres":    "pgoutput-counted",
	"drain-mariadb":     "binlog-parsed",
}

func runSnapshot(ctx context.Context, e *env, s source) (measure, error) {
	if err := s.ensureSnapshotTable(ctx, e.rows); err != nil {
		return measure{}, err
	}
	m := newMeasure()
	m.Notes["compression"] = e.compression
	m.Notes["raw"] = rawLabels["snapshot-"+s.Name()]
	m.Notes["srv_cpu"] = "whole-server"
	// The raw read alone: COPY … TO STDOUT or a streamed SELECT, nothing
	// decoded, encoded or produced; no broker is needed. It runs first, so
	// that liberator and the bare pipelines all read a table whose pages
	// are as warm.
	if e.baselines {
		if err := e.bareVariant(ctx, s, m, rawPrefix, append(s.bareSnapshotArgs(), "-raw"), false, false); err != nil {
			return measure{}, err
		}
	}
	if ok, why := e.supports(ctx, s); ok {
		r, err := liberatorSnapshot(ctx, e, s, e.liberator)
		if err != nil {
			return measure{}, err
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
		m.Fields["broker_cpu_s"] = r.brokerCPU
		m.Fields["peak_rss_mb"] = r.peakMB
		if r.srvOK {
			m.Fields["srv_cpu_s"] = r.srvCPU
		}
	} else {
		m.Notes["skipped"] = why
	}
	if e.baselines {
		if err := e.bareVariant(ctx, s, m, barePrefix, s.bareSnapshotArgs(), true, false); err != nil {
			return measure{}, err
		}
		if err := e.bareVariant(ctx, s, m, pipelinedPrefix, append(s.bareSnapshotArgs(), "-pipelined"), true, false); err != nil {
			return measure{}, err
		}
	}
	derive(m, e.rows)
	return m, nil
}

// derive adds to m's fields the CPU seconds per million events of every
// run, and liberator's ratios to each: rate over rate (ratio_bare,
// ratio_pipelined, raw_ratio, reader_ratio; above 1 liberator is faster)
// and CPU over CPU (cpu_ratio_*; below 1 liberator spends less).
func derive(m measure, rows int64) {
	for _, p := range []string{"", barePrefix, pipelinedPrefix, readerPrefix, rawPrefix} {
		for _, f := range []string{"cpu_s", "srv_cpu_s", "srv_all_cpu_s", "broker_cpu_s"} {
			if v, ok := m.Fields[p+f]; ok {
				m.Fields[p+f+"_per_1m"] = v * 1e6 / float64(rows)
			}
		}
	}
	// The machine's bound at liberator's CPU per event: every core busy
	// with liberator, the database server and the broker, nothing else.
	srv, ok := m.Fields["srv_all_cpu_s"]
	if !ok {
		srv, ok = m.Fields["srv_cpu_s"]
	}
	if brk, bok := m.Fields["broker_cpu_s"]; ok && bok && m.Fields["cpu_s"] > 0 {
		all := m.Fields["cpu_s"] + srv + brk
		m.Fields["machine_events_per_s"] = float64(runtime.NumCPU()) * float64(rows) / all
		m.Fields["machine_ratio"] = m.Fields["events_per_s"] / m.Fields["machine_events_per_s"]
	}
	ratios := []struct{ name, cpuName, prefix string }{
		{"ratio_bare", "cpu_ratio_bare", barePrefix},
		{"ratio_pipelined", "cpu_ratio_pipelined", pipelinedPrefix},
		{"reader_ratio", "cpu_ratio_reader", readerPrefix},
		{"raw_ratio", "cpu_ratio_raw", rawPrefix},
	}
	for _, r := range ratios {
		if v, w := m.Fields["events_per_s"], m.Fields[r.prefix+"events_per_s"]; v > 0 && w > 0 {
			m.Fields[r.name] = v / w
		}
		if v, w := m.Fields["cpu_s"], m.Fields[r.prefix+"cpu_s"]; v > 0 && w > 0 {
			m.Fields[r.cpuName] = v / w
		}
	}
}

// drainSetup is a liberator that has been started once with snapshot mode
// never (so its slot or position exists) and stopped.
type drainSetup struct {
	b     *broker
	cfg   string
	admin string
	// meter, when set, follows the server's log-streaming thread during
	// the drain; it is stopped once Kafka has every event, before
	// liberator stops.
	meter *streamMeter
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
	brk0 := d.b.proc.cpu()
	p, err := e.startLiberator(bin, "run", d.cfg, extra...)
	if err != nil {
		return libRun{}, err
	}
	wait := waitOffset
	if committed {
		wait = waitCommitted
	}
	err = wait(ctx, d.b.addr, s.topic(streamTable), e.rows, timeoutFor(e.rows), p)
	var srv map[string]float64
	if d.meter != nil {
		srv = map[string]float64{}
		stopMeter(d.meter, srv, "srv_cpu_s")
	}
	if err != nil {
		p.kill()
		return libRun{}, err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu(), brokerCPU: d.b.proc.cpu() - brk0}
	r.srvCPU, r.srvOK = srv["srv_cpu_s"]
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
	m.Notes["compression"] = e.compression
	m.Notes["raw"] = rawLabels["drain-"+s.Name()]
	m.Notes["srv_cpu"] = map[string]string{"postgres": "walsender", "mariadb": "binlog-dump-thread"}[s.Name()]
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
	variants := []struct {
		prefix  string
		flag    string
		produce bool
	}{
		{barePrefix, "", true},
		{pipelinedPrefix, "-pipelined", true},
		{readerPrefix, "-reader-only", false},
		{rawPrefix, "-count-only", false},
	}
	if !e.baselines {
		variants = nil
	}
	args, err := s.markBare(ctx, len(variants))
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
		d.meter = meterStream(ctx, s)
		srv0, srvErr := s.serverCPU()
		r, err := d.drain(ctx, e, s, e.liberator)
		if err != nil {
			return measure{}, err
		}
		if srv1, err := s.serverCPU(); srvErr == nil && err == nil {
			m.Fields["srv_all_cpu_s"] = srv1 - srv0
		}
		m.Fields["events_per_s"] = rate(e.rows, r.elapsed)
		m.Fields["cpu_s"] = r.cpu
		m.Fields["broker_cpu_s"] = r.brokerCPU
		m.Fields["peak_rss_mb"] = r.peakMB
		if r.srvOK {
			m.Fields["srv_cpu_s"] = r.srvCPU
		}
	}
	for i, v := range variants {
		a := args[i]
		if v.flag != "" {
			a = append(a, v.flag)
		}
		if err := e.bareVariant(ctx, s, m, v.prefix, a, v.produce, true); err != nil {
			return measure{}, err
		}
	}
	derive(m, e.rows)
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
