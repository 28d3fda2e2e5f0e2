package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// embedded holds the in-process broker and registry of embedded mode. They
// keep everything in memory: nothing survives a restart, so embedded mode is
// for trying liberator out, never for production.
type embedded struct {
	cluster *kfake.Cluster
	srv     *http.Server
}

// startEmbedded starts what the config asks for and points the config at it.
func (p *Pipeline) startEmbedded(ctx context.Context) (*embedded, error) {
	e := &embedded{}
	if len(p.cfg.Kafka.Brokers) == 1 && p.cfg.Kafka.Brokers[0] == Embedded {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "1000"}))
		if err != nil {
			return nil, fmt.Errorf("kafka.brokers: start embedded broker: %w", err)
		}
		e.cluster = c
		p.cfg.Kafka.Brokers = c.ListenAddrs()
		p.log.Warn("embedded Kafka broker started; it keeps nothing across restarts and is not for production", "brokers", c.ListenAddrs())
	}
	if p.cfg.Registry.URL == Embedded {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("registry.url: start embedded registry: %w", err)
		}
		e.srv = &http.Server{Handler: srfake.New().Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.log.Error("embedded registry stopped", "error", err)
			}
		}()
		p.cfg.Registry.URL = "http://" + ln.Addr().String()
		p.log.Warn("embedded schema registry started; it keeps nothing across restarts and is not for production", "url", p.cfg.Registry.URL)
	}
	return e, nil
}

// Close stops the embedded broker and registry.
func (e *embedded) Close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
}
