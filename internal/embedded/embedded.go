// Package embedded runs an in-process Kafka broker (kfake) and schema
// registry (srfake) for kafka.brokers: [embedded] and registry.url:
// embedded. They are for trying liberator out and for development, never
// for production.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/liberator-cdc/liberator/config"
)

// Env holds the in-process broker and registry of embedded mode. They
// keep everything in memory: nothing survives a restart, so embedded mode is
// for trying liberator out, never for production.
type Env struct {
	cluster *kfake.Cluster
	srv     *http.Server
}

// Start starts what cfg asks for and points cfg at it.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Env, error) {
	e := &Env{}
	if len(cfg.Kafka.Brokers) == 1 && cfg.Kafka.Brokers[0] == config.Embedded {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "1000"}))
		if err != nil {
			return nil, fmt.Errorf("kafka.brokers: start embedded broker: %w", err)
		}
		e.cluster = c
		cfg.Kafka.Brokers = c.ListenAddrs()
		log.Warn("embedded Kafka broker started; it keeps nothing across restarts and is not for production", "brokers", c.ListenAddrs())
	}
	if cfg.Registry.URL == config.Embedded {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("registry.url: start embedded registry: %w", err)
		}
		e.srv = &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("embedded registry stopped", "error", err)
			}
		}()
		cfg.Registry.URL = "http://" + ln.Addr().String()
		log.Warn("embedded schema registry started; it keeps nothing across restarts and is not for production", "url", cfg.Registry.URL)
	}
	return e, nil
}

// Close stops the embedded broker and registry.
func (e *Env) Close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
}
