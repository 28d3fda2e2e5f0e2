package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Endpoints is what the admin listener's /status reports about where
// events go, so that the tail command can find an embedded broker.
type Endpoints struct {
	Brokers  []string `json:"brokers"`
	Registry string   `json:"registry"`
}

// StatusReport is the JSON of /status.
type StatusReport struct {
	State    string `json:"state"`
	Position string `json:"position"`
	// Events counts acknowledged events by table and operation.
	Events    map[string]map[string]int64 `json:"events"`
	LagBytes  int64                       `json:"lag_bytes"`
	LagSecs   float64                     `json:"lag_seconds"`
	Endpoints Endpoints                   `json:"endpoints"`
}

func (p *Pipeline) report() StatusReport {
	state, pos := p.status.State()
	r := StatusReport{State: state, Position: pos, Events: map[string]map[string]int64{},
		Endpoints: Endpoints{Brokers: p.cfg.Kafka.Brokers, Registry: p.cfg.Registry.URL}}
	lag := p.lag()
	r.LagBytes = lag.Bytes
	if !lag.LastCommit.IsZero() {
		r.LagSecs = time.Since(lag.LastCommit).Seconds()
	}
	families, _ := p.metrics.reg.Gather()
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
<p>State: <b>{{.State}}</b> · stored position: <code>{{.Position}}</code> · lag: {{.LagBytes}} bytes, {{printf "%.1f" .LagSecs}} s</p>
<table><tr><th>table</th><th>snapshot reads</th><th>inserts</th><th>updates</th><th>deletes</th></tr>
{{range .Tables}}<tr><td>{{.Name}}</td><td>{{index .Ops "r"}}</td><td>{{index .Ops "c"}}</td><td>{{index .Ops "u"}}</td><td>{{index .Ops "d"}}</td></tr>
{{end}}</table>
<p>Kafka: {{range .Endpoints.Brokers}}<code>{{.}}</code> {{end}}· registry: <code>{{.Endpoints.Registry}}</code></p>
<p><a href="/metrics">metrics</a> · <a href="/status">status JSON</a></p></body></html>
`))

// serveAdmin starts the admin listener on http.listen: /healthz (liveness),
// /readyz (ready once snapshotting or streaming), /metrics (Prometheus),
// /status (JSON) and / (a status page). It returns a function that stops
// it.
func (p *Pipeline) serveAdmin(ctx context.Context) (stop func(), err error) {
	if p.cfg.HTTP.Listen == "off" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if st, _ := p.status.State(); st != "running" {
			http.Error(w, "not ready: "+st, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.report())
	})
	p.registerSnapshotAdmin(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		r := p.report()
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
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", p.cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("admin listener stopped", "error", err)
		}
	}()
	p.log.Info("admin listener started", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
