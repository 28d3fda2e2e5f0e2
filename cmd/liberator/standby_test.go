package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/pipeline"
)

// busySource refuses to open, as a source whose slot or server_id another
// replica still holds, until it has been asked busy times; then it streams
// nothing until it is closed.
type busySource struct {
	busy  int32
	opens *atomic.Int32
	err   error // returned by Open while busy
	// opening, if not nil, makes Open slow: it is closed when Open
	// begins, and Open returns only when its ctx ends.
	opening chan struct{}
}

func (s *busySource) Open(ctx context.Context, _ []byte) error {
	if s.opening != nil {
		close(s.opening)
		<-ctx.Done()
		return fmt.Errorf("start replication: %w", ctx.Err())
	}
	if s.opens.Add(1) <= s.busy {
		return s.err
	}
	return nil
}

func (s *busySource) Read(ctx context.Context) (connectors.Batch, error) {
	<-ctx.Done()
	return connectors.Batch{}, ctx.Err()
}

func (s *busySource) Ack(context.Context, connectors.Position) error { return nil }
func (s *busySource) Close(context.Context) error                    { return nil }

func newTermPipeline(t *testing.T, busy int32, openErr error, opens *atomic.Int32) *pipeline.Pipeline {
	t.Helper()
	return newTermPipelineOf(t, func() *busySource { return &busySource{busy: busy, opens: opens, err: openErr} })
}

func newTermPipelineOf(t *testing.T, src func() *busySource) *pipeline.Pipeline {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv := httptest.NewServer(srfake.NewRegistry().Handler())
	t.Cleanup(srv.Close)
	cfg := &config.Config{
		Name:     "orders",
		Source:   config.SourceConfig{Kind: "postgres", Tables: []string{"s.a"}},
		Kafka:    kafka.Config{Brokers: c.ListenAddrs(), TopicPrefix: "t"},
		Registry: config.RegistryConfig{URL: srv.URL},
	}
	cfg.Defaults()
	cfg.ShutdownTimeout = 2 * time.Second
	reg, err := cfg.NewRegistry(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	return pipeline.New(cfg, pipeline.Deps{
		Source: func() (connectors.Source, error) { return src(), nil },
		Sink: func(m prometheus.Registerer) (*kafka.Sink, error) {
			return kafka.New(cfg.Kafka, log, kafka.WithMetrics(m))
		},
		Registry: reg,
		Log:      log,
	})
}

func TestANewActiveReplicaWaitsOutASourceStillHeldByTheOldOne(t *testing.T) {
	var opens atomic.Int32
	busy := fmt.Errorf("start replication from slot %q: %w", "liberator", connectors.ErrSourceBusy)
	pl := newTermPipeline(t, 2, busy, &opens)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pl.SetStandby(false)
	done := make(chan error, 1)
	go func() { done <- runTerm(ctx, pl, slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := pl.State()
		if st == "running" && opens.Load() == 3 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("runTerm ended while the source was busy: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not running after %d opens (state %q)", opens.Load(), st)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runTerm = %v after the shutdown, want nil", err)
	}
}

func TestANewActiveReplicaStopsOnAnyOtherErrorAtStart(t *testing.T) {
	var opens atomic.Int32
	refused := errors.New("password authentication failed")
	pl := newTermPipeline(t, 1, refused, &opens)
	pl.SetStandby(false)
	done := make(chan error, 1)
	go func() { done <- runTerm(context.Background(), pl, slog.New(slog.DiscardHandler)) }()
	select {
	case err := <-done:
		if !errors.Is(err, refused) {
			t.Errorf("runTerm = %v, want %v", err, refused)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runTerm did not end")
	}
	if n := opens.Load(); n != 1 {
		t.Errorf("the source was opened %d times, want 1", n)
	}
}

// A replica that becomes active as its standby partner is stopped, and is
// told to stop itself while its pipeline still starts (Kubernetes stops
// both pods of a Deployment), exits 0: a start cut short is no failure.
func TestANewActiveReplicaStoppedWhileItStartsEndsWithoutError(t *testing.T) {
	opening := make(chan struct{})
	pl := newTermPipelineOf(t, func() *busySource { return &busySource{opens: new(atomic.Int32), opening: opening} })
	pl.SetStandby(false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runTerm(ctx, pl, slog.New(slog.DiscardHandler)) }()
	select {
	case <-opening:
	case err := <-done:
		t.Fatalf("runTerm ended before the source was opened: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the source was not opened")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runTerm = %v after a shutdown during the start, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runTerm did not end")
	}
}
