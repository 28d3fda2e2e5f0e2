package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runEmbedded is embedded-<source>: `liberator run` on the snapshot table
// (ROWS rows) with kafka.brokers: [embedded] and registry.url: embedded,
// timed from the start of the process until the embedded broker has
// acknowledged every event; against the same run with a separate broker
// process (bench/kfakebroker) and the benchmark's registry. Then, with
// kafka.embedded.data_dir, the same first run (dd_*), and a restart from
// the data dir: the time from its start until its source is open at the
// stored position (restart_s), and that the restart snapshots nothing
// again.
//
// The embedded run's CPU is liberator's and the broker's together, in one
// process; the separate run's cpu is liberator's alone (broker_cpu_s is the
// broker process's).
func runEmbedded(ctx context.Context, e *env, s source) (measure, error) {
	if err := s.ensureSnapshotTable(ctx, e.rows); err != nil {
		return measure{}, err
	}
	m := newMeasure()

	sep, brokerCPU, err := embeddedSeparate(ctx, e, s)
	if err != nil {
		return measure{}, fmt.Errorf("with a separate broker: %w", err)
	}
	m.Fields["separate_s"] = sep.elapsed.Seconds()
	m.Fields["separate_events_per_s"] = rate(e.rows, sep.elapsed)
	m.Fields["separate_cpu_s"] = sep.cpu
	m.Fields["broker_cpu_s"] = brokerCPU

	emb, _, err := embeddedRun(ctx, e, s, "", false)
	if err != nil {
		return measure{}, fmt.Errorf("embedded: %w", err)
	}
	m.Fields["embedded_s"] = emb.elapsed.Seconds()
	m.Fields["events_per_s"] = rate(e.rows, emb.elapsed)
	m.Fields["ratio"] = sep.elapsed.Seconds() / emb.elapsed.Seconds()
	m.Fields["cpu_s"] = emb.cpu
	m.Fields["cpu_s_per_1m_rows"] = emb.cpu / float64(e.rows) * 1e6
	m.Fields["peak_rss_mb"] = emb.peakMB

	dir, err := os.MkdirTemp(e.dir, "embedded-data-*")
	if err != nil {
		return measure{}, err
	}
	defer os.RemoveAll(dir)
	dd, _, err := embeddedRun(ctx, e, s, dir, false)
	if err != nil {
		return measure{}, fmt.Errorf("embedded with a data dir: %w", err)
	}
	m.Fields["dd_embedded_s"] = dd.elapsed.Seconds()
	m.Fields["dd_cpu_s"] = dd.cpu
	m.Fields["dd_peak_rss_mb"] = dd.peakMB
	re, _, err := embeddedRun(ctx, e, s, dir, true)
	if err != nil {
		return measure{}, fmt.Errorf("restart from the data dir: %w", err)
	}
	m.Fields["restart_s"] = re.elapsed.Seconds()
	m.Fields["restart_peak_rss_mb"] = re.peakMB
	return m, nil
}

// embeddedSeparate runs `liberator run` against a fresh broker process
// until the broker has every event; it returns liberator's run and the
// broker's CPU seconds.
func embeddedSeparate(ctx context.Context, e *env, s source) (libRun, float64, error) {
	if err := s.resetSnapshot(ctx); err != nil {
		return libRun{}, 0, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return libRun{}, 0, err
	}
	defer b.stop()
	cfg, _, err := e.writeConfig(s, b.addr, snapshotTable, "initial")
	if err != nil {
		return libRun{}, 0, err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		return libRun{}, 0, err
	}
	defer p.kill()
	if err := waitOffset(ctx, b.addr, s.topic(snapshotTable), e.rows, timeoutFor(e.rows), p); err != nil {
		return libRun{}, 0, err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu()}
	r.peakMB, _ = p.memMB("VmHWM")
	bcpu := b.proc.cpu()
	if err := p.stop(time.Minute); err != nil {
		return libRun{}, 0, err
	}
	return r, bcpu, nil
}

// embeddedRun runs `liberator run` with the embedded broker and registry,
// and a data dir if dir is not empty. A first run (restart false) lasts
// until the broker has every event of the table; a restart, until
// liberator streams from a stored position, and it fails if the restart
// snapshotted again (the topic holds more than ROWS events).
func embeddedRun(ctx context.Context, e *env, s source, dir string, restart bool) (libRun, string, error) {
	if !restart {
		if err := s.resetSnapshot(ctx); err != nil {
			return libRun{}, "", err
		}
	}
	var extra []string
	if dir != "" {
		extra = append(extra, "  embedded:", "    data_dir: "+dir)
	}
	cfg, admin, err := e.writeEmbeddedConfig(s, extra...)
	if err != nil {
		return libRun{}, "", err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		return libRun{}, "", err
	}
	defer p.kill()
	brokers, err := embeddedBroker(ctx, p, admin)
	if err != nil {
		return libRun{}, "", err
	}
	if restart {
		if err := waitRunning(ctx, p, admin, timeoutFor(e.rows)); err != nil {
			return libRun{}, "", err
		}
	} else if err := waitOffset(ctx, brokers, s.topic(snapshotTable), e.rows, timeoutFor(e.rows), p); err != nil {
		return libRun{}, "", err
	}
	r := libRun{elapsed: time.Since(p.started), cpu: p.cpu()}
	r.peakMB, _ = p.memMB("VmHWM")
	if err := checkOffset(ctx, brokers, s.topic(snapshotTable), e.rows); err != nil {
		return libRun{}, "", err
	}
	if err := p.stop(time.Minute); err != nil {
		return libRun{}, "", err
	}
	return r, brokers, nil
}

// writeEmbeddedConfig is writeConfig with kafka.brokers: [embedded] and
// registry.url: embedded; extra are lines added to the kafka section.
func (e *env) writeEmbeddedConfig(s source, extra ...string) (path, admin string, err error) {
	path, admin, err = e.writeConfig(s, "embedded", snapshotTable, "initial")
	if err != nil {
		return "", "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	cfg := strings.Replace(string(b), "  url: "+e.reg.URL, "  url: embedded", 1)
	if len(extra) > 0 {
		kafka := "  topic_prefix: " + topicPrefix
		cfg = strings.Replace(cfg, kafka, kafka+"\n"+strings.Join(extra, "\n"), 1)
	}
	return path, admin, os.WriteFile(filepath.Clean(path), []byte(cfg), 0o600)
}

// waitRunning waits until liberator reports state running: its source is
// open.
func waitRunning(ctx context.Context, p *proc, admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := getStatus(qctx, admin)
		cancel()
		if err == nil && st.State == "running" {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("liberator exited before running (%v)\n%s", p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("liberator not running after %s (state %q)\n%s", timeout, st.State, p.logTail())
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// getEndpoints reads the brokers of liberator's /status.
func getEndpoints(ctx context.Context, admin string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Endpoints struct {
			Brokers []string `json:"brokers"`
		} `json:"endpoints"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st.Endpoints.Brokers, err
}

// embeddedBroker asks liberator's admin listener where its embedded broker
// listens.
func embeddedBroker(ctx context.Context, p *proc, admin string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := getEndpoints(qctx, admin)
		cancel()
		if err == nil && len(st) > 0 {
			return st[0], nil
		}
		if p.exited() {
			return "", fmt.Errorf("liberator exited before its admin listener answered (%v)\n%s", p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("liberator's admin listener did not name the embedded broker within a minute\n%s", p.logTail())
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
