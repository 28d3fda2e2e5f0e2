package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/connectors/mysql"
	"github.com/liberator-cdc/liberator/connectors/postgres"
	"github.com/liberator-cdc/liberator/internal/admin"
	"github.com/liberator-cdc/liberator/internal/console"
	"github.com/liberator-cdc/liberator/internal/embedded"
	"github.com/liberator-cdc/liberator/internal/ha"
	"github.com/liberator-cdc/liberator/pipeline"
)

// newSource builds the configured source connector. It does no I/O.
func newSource(cfg *config.Config, log *slog.Logger) (connectors.Source, error) {
	var src connectors.Source
	var err error
	query := cfg.Source.Capture == config.CaptureQuery
	switch cfg.Source.Kind {
	case "postgres":
		if query {
			src, err = postgres.NewQuery(cfg.Postgres(log), cfg.Source.Query)
		} else {
			src, err = postgres.New(cfg.Postgres(log))
		}
	case "mysql", "mariadb":
		if query {
			src, err = mysql.NewQuery(cfg.MySQL(log), cfg.Source.Query)
		} else {
			src, err = mysql.New(cfg.MySQL(log))
		}
	default:
		err = fmt.Errorf("source.kind: %q is not a source", cfg.Source.Kind)
	}
	if err != nil {
		return nil, &config.Error{Err: err}
	}
	return src, nil
}

// runPipeline runs the pipeline of cfg until ctx ends: the embedded broker
// and registry if the config asks for them, the admin listener, and the
// pipeline with its source, sink and registry.
func runPipeline(ctx context.Context, cfg *config.Config, log *slog.Logger, term *console.Terminal) error {
	env, err := embedded.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer env.Close()
	if env.StartsOver() {
		if err := startOver(ctx, cfg, log); err != nil {
			return err
		}
	}
	setMemoryLimit(cfg.Memory(), log)
	reg, err := cfg.NewRegistry(cfg.Registry.URL)
	if err != nil {
		return &config.Error{Err: fmt.Errorf("registry: %w", err)}
	}
	deps := pipeline.Deps{
		Source: func() (connectors.Source, error) { return newSource(cfg, log) },
		Sink: func(metrics prometheus.Registerer) (*kafka.Sink, error) {
			opts := []kafka.Option{kafka.WithMetrics(metrics), kafka.WithBufferedBytes(cfg.Memory().Producer)}
			if cfg.ExactlyOnce() {
				opts = append(opts, kafka.WithTransactions(kafka.TransactionalID(cfg.Name)))
			}
			s, err := kafka.New(cfg.Kafka, log, opts...)
			if err != nil {
				return nil, &config.Error{Err: err}
			}
			return s, nil
		},
		Registry: reg,
		Log:      log,
	}
	if term != nil {
		deps.Progress = term
	}
	pl := pipeline.New(cfg, deps)
	go paceGC(ctx, pl, gcStreamPace(cfg))
	if cfg.HTTP.Listen != "off" {
		_, stop, err := admin.Serve(ctx, admin.Config{
			Listen:    cfg.HTTP.Listen,
			Endpoints: admin.Endpoints{Brokers: cfg.Kafka.Brokers, Registry: cfg.Registry.URL},
			Pprof:     cfg.HTTP.Pprof,
			Token:     cfg.HTTP.Token,
			Log:       log,
		}, pl)
		if err != nil {
			return err
		}
		defer stop()
	}
	if !cfg.HA.Enabled() {
		return runUntilStopped(ctx, pl, log)
	}
	return runStandby(ctx, cfg, pl, log)
}

// runUntilStopped runs the pipeline until ctx ends. A stop while the
// pipeline still starts (SIGTERM before the source is open) has nothing
// to drain and ends without error, as a stop while streaming does.
func runUntilStopped(ctx context.Context, pl *pipeline.Pipeline, log *slog.Logger) error {
	err := pl.Run(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) && !errors.Is(err, pipeline.ErrDrainIncomplete) {
		log.Info("stopped while the pipeline was starting", "error", err)
		return nil
	}
	return err
}

// startOver discards what the source's server keeps for the stream of an
// earlier run (PostgreSQL: the replication slot; MySQL and MariaDB keep
// nothing) before a run whose embedded broker started empty. The Kafka that
// stream fed is gone with that run's process, so no position is stored for
// it, and a slot without a stored position is never taken on as it is
// (connectors.ErrStreamWithoutPosition): the run starts over instead, as a
// first run does, with a new slot and a snapshot of every table into the
// new, empty topics. Nothing is lost to a consumer of those topics; a slot
// that another process streams from is not dropped, and the run stops.
func startOver(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	src, err := newSource(cfg, log)
	if err != nil {
		return err
	}
	rs, ok := src.(connectors.Resetter)
	if !ok {
		return nil
	}
	why, hint := "kafka.brokers is [embedded] without kafka.embedded.data_dir", " (set kafka.embedded.data_dir to resume across restarts instead)"
	if cfg.Embedded.DataDir != "" {
		why, hint = "kafka.embedded.data_dir is new", ""
	}
	log.Warn(why+": the embedded broker starts empty, so this run starts over, as a first run does: a replication slot an earlier run left is dropped, and every table is snapshotted into new topics"+hint,
		"snapshot.mode", string(cfg.Snapshot.Mode))
	if _, err := rs.Reset(ctx); err != nil {
		return fmt.Errorf("%s, so this run starts over from an empty broker, but the source's stream from an earlier run cannot be discarded: %w", why, err)
	}
	return nil
}

// runStandby runs pl only while this replica is the active one of
// ha.mode standby: between terms it holds no slot and no binlog
// connection. A term ends at once when Kafka's group coordinator takes the
// coordination partition away; the pipeline drains within
// shutdown_timeout.
func runStandby(ctx context.Context, cfg *config.Config, pl *pipeline.Pipeline, log *slog.Logger) error {
	opts, err := cfg.Kafka.ClientOptions()
	if err != nil {
		return &config.Error{Err: err}
	}
	return ha.Run(ctx, ha.Config{
		ClientOptions:  opts,
		Topic:          cfg.HA.Topic,
		Group:          ha.GroupName(cfg.Name),
		SessionTimeout: cfg.HA.SessionTimeout,
		StopTimeout:    cfg.ShutdownTimeout + 5*time.Second,
		Log:            log,
		OnRole:         func(active bool) { pl.SetStandby(!active) },
	}, func(ctx context.Context) error { return runTerm(ctx, pl, log) })
}

// runTerm runs the pipeline of a replica that has just become active. The
// replica it replaces may still hold the source (a PostgreSQL walsender
// that has not noticed its client died, a binlog connection with the same
// server_id): that is waited out with backoff, for as long as this replica
// stays active. A term that ends while the pipeline still starts (the
// replica became active as its partner stopped, and is stopped in turn)
// ends without error, as runUntilStopped does. Every other error ends
// the process, as without ha.
func runTerm(ctx context.Context, pl *pipeline.Pipeline, log *slog.Logger) error {
	const maxBackoff = 10 * time.Second
	backoff := 500 * time.Millisecond
	for {
		err := runUntilStopped(ctx, pl, log)
		if err == nil || ctx.Err() != nil || !errors.Is(err, connectors.ErrSourceBusy) {
			return err
		}
		log.Warn("ha: the replica this one replaces still holds the source; waiting for it to let go", "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		pl.SetStandby(false)
		backoff = min(2*backoff, maxBackoff)
	}
}

// setMemoryLimit makes memory_limit the Go runtime's soft memory limit, so
// that the garbage collector keeps the heap below it however fast garbage
// is made. GOMEMLIMIT, when set, wins: the runtime has read it already.
func setMemoryLimit(m config.Memory, log *slog.Logger) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.Info("GOMEMLIMIT is set; it is the Go runtime's memory limit instead of memory_limit", "GOMEMLIMIT", v, "memory_limit", config.ByteSize(m.Limit).String())
		return
	}
	debug.SetMemoryLimit(m.Limit)
}

// terminal returns a Terminal on stderr when it is a terminal, else nil.
func terminal() *console.Terminal { return console.Open(os.Stderr) }

// logOutput is where logs go: through the terminal, when there is one, so
// that they do not garble the progress line.
func logOutput(w io.Writer, term *console.Terminal) io.Writer {
	if term != nil {
		return term
	}
	return w
}

// The garbage collector's pace (GOGC). liberator allocates fast, and
// nearly everything it allocates lives only until Kafka acknowledges it:
// letting the heap grow to five times what is live (gcSlow) instead of
// twice (gcDefault) cuts the CPU per row of a snapshot by about a quarter,
// and of a MySQL or MariaDB binary log stream by about a fifth. While it
// streams PostgreSQL's log, the larger heap saves about a twentieth of the
// CPU per change and doubles the peak heap; that stream keeps Go's
// default. memory_limit bounds the heap either way.
const (
	gcSlow    = 400
	gcDefault = 100
)

// gcStreamPace is the collector's pace of cfg's source outside snapshots.
func gcStreamPace(cfg *config.Config) int {
	if cfg.Source.Kind == "postgres" && cfg.Source.Capture == config.CaptureLog {
		return gcDefault
	}
	return gcSlow
}

// gcPaceEvery is how often paceGC looks at the snapshot progress.
const gcPaceEvery = 100 * time.Millisecond

// paceGC sets the collector's pace to gcSlow while a snapshot of pl's
// source is under way, and to stream otherwise, until ctx ends. A GOGC
// variable in the environment wins: then it does nothing.
func paceGC(ctx context.Context, pl *pipeline.Pipeline, stream int) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		return
	}
	t := time.NewTicker(gcPaceEvery)
	defer t.Stop()
	pace := gcDefault
	for {
		want := stream
		if pl.SnapshotProgress().Running() {
			want = gcSlow
		}
		if want != pace {
			debug.SetGCPercent(want)
			pace = want
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
