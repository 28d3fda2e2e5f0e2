// Package admin is liberator's admin listener: liveness, readiness, a
// status page and its JSON, Prometheus metrics, snapshot requests, and
// optionally pprof. It reports on a running pipeline through the Pipeline
// interface.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/redact"
	"github.com/liberator-cdc/liberator/pipeline"
)

// The pipeline is what the listener shows.
var _ Pipeline = (*pipeline.Pipeline)(nil)

// Pipeline is what the admin listener reports on and controls.
type Pipeline interface {
	// State is the pipeline's state (starting, running, draining,
	// stopped) and the last position stored.
	State() (state, position string)
	// Role is active, or standby while another replica runs the pipeline
	// (ha.mode standby).
	Role() string
	// Lag is the source's lag.
	Lag() connectors.Lag
	// Metrics is the pipeline's Prometheus registry.
	Metrics() *prometheus.Registry
	// RequestSnapshot queues an incremental snapshot. It returns an error
	// wrapping pipeline.ErrNotOpen while no source is open,
	// pipeline.ErrNoSnapshots when the source cannot snapshot while
	// streaming, and connectors.ErrSnapshotRefused for a request it
	// refuses.
	RequestSnapshot(ctx context.Context, req connectors.SnapshotRequest) error
	// SnapshotProgress is the source's snapshot progress.
	SnapshotProgress() connectors.SnapshotProgress
}

// Config says where the listener listens and what it shows.
type Config struct {
	// Listen is host:port.
	Listen string
	// Endpoints are where events go, for /status.
	Endpoints Endpoints
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Token, when not empty, is required as "Authorization: Bearer
	// <token>" by every mutating request (POST /snapshot). Read-only
	// requests need none.
	Token string
	// Log is where the listener logs.
	Log *slog.Logger
}

// Endpoints is what the admin listener's /status reports about where
// events go, so that the tail command can find an embedded broker.
type Endpoints struct {
	Brokers  []string `json:"brokers"`
	Registry string   `json:"registry"`
}

// StatusReport is the JSON of /status.
type StatusReport struct {
	State string `json:"state"`
	// Role is active, or standby (ha.mode standby).
	Role     string `json:"role"`
	Position string `json:"position"`
	// Events counts acknowledged events by table and operation.
	Events    map[string]map[string]int64 `json:"events"`
	LagBytes  int64                       `json:"lag_bytes"`
	LagSecs   float64                     `json:"lag_seconds"`
	Endpoints Endpoints                   `json:"endpoints"`
}

// Report is the status of p, as /status shows it. A password in the
// registry URL is shown as xxxxx.
func Report(p Pipeline, ep Endpoints) StatusReport {
	ep.Registry = redact.URL(ep.Registry)
	state, pos := p.State()
	r := StatusReport{State: state, Role: p.Role(), Position: pos, Events: map[string]map[string]int64{}, Endpoints: ep}
	lag := p.Lag()
	r.LagBytes = lag.Bytes
	if !lag.LastCommit.IsZero() {
		r.LagSecs = time.Since(lag.LastCommit).Seconds()
	}
	families, _ := p.Metrics().Gather()
	for _, f := range families {
		if f.GetName() != "liberator_events_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var table, op string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "table":
					table = l.GetValue()
				case "op":
					op = l.GetValue()
				}
			}
			if r.Events[table] == nil {
				r.Events[table] = map[string]int64{}
			}
			r.Events[table][op] = int64(m.GetCounter().GetValue())
		}
	}
	return r
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>liberator</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em 1em;text-align:right}th:first-child,td:first-child{text-align:left}</style></head>
<body><h1>liberator</h1>
<p>State: <b>{{.State}}</b> · role: <b>{{.Role}}</b> · stored position: <code>{{.Position}}</code> · lag: {{.LagBytes}} bytes, {{printf "%.1f" .LagSecs}} s</p>
<table><tr><th>table</th><th>snapshot reads</th><th>inserts</th><th>updates</th><th>deletes</th></tr>
{{range .Tables}}<tr><td>{{.Name}}</td><td>{{index .Ops "r"}}</td><td>{{index .Ops "c"}}</td><td>{{index .Ops "u"}}</td><td>{{index .Ops "d"}}</td></tr>
{{end}}</table>
<p>Kafka: {{range .Endpoints.Brokers}}<code>{{.}}</code> {{end}}· registry: <code>{{.Endpoints.Registry}}</code></p>
<p><a href="/metrics">metrics</a> · <a href="/status">status JSON</a></p></body></html>
`))

// Serve starts the admin listener: /healthz (liveness), /readyz (ready
// once snapshotting or streaming, and while standing by), /metrics (Prometheus), /status (JSON),
// / (a status page), the snapshot endpoints and, if asked, /debug/pprof/.
// It returns the address it listens on and a function that stops it.
func Serve(ctx context.Context, cfg Config, p Pipeline) (addr string, stop func(), err error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if st, _ := p.State(); st != "running" && p.Role() != pipeline.RoleStandby {
			http.Error(w, "not ready: "+st, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.Metrics(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Report(p, cfg.Endpoints))
	})
	registerSnapshots(mux, p, cfg.Log)
	if cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		r := Report(p, cfg.Endpoints)
		type row struct {
			Name string
			Ops  map[string]int64
		}
		page := struct {
			StatusReport
			Tables []row
		}{StatusReport: r}
		for name, ops := range r.Events {
			page.Tables = append(page.Tables, row{name, ops})
		}
		sort.Slice(page.Tables, func(i, j int) bool { return page.Tables[i].Name < page.Tables[j].Name })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = statusPage.Execute(w, page)
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return "", nil, fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{Handler: requireToken(cfg.Token, mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("admin listener stopped", "error", err)
		}
	}()
	cfg.Log.Info("admin listener started", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}
