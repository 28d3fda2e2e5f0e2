package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Endpoints is what the admin listener's /status reports about where
// events go, so that the tail command can find an embedded broker.
type Endpoints struct {
	Brokers  []string `json:"brokers"`
	Registry string   `json:"registry"`
}

// serveAdmin starts the admin listener on http.listen: /healthz, /readyz and
// /status. It returns a function that stops it.
func (p *Pipeline) serveAdmin(ctx context.Context) (stop func(), err error) {
	if p.cfg.HTTP.Listen == "off" {
		return func() {}, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if st := p.status.Snapshot().State; st != "running" {
			http.Error(w, "not ready: "+st, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(struct {
			Snapshot
			Endpoints Endpoints `json:"endpoints"`
		}{p.status.Snapshot(), Endpoints{Brokers: p.cfg.Kafka.Brokers, Registry: p.cfg.Registry.URL}})
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
