// Command liberator turns database tables into entity event streams in
// compacted Kafka topics.
//
//	liberator run      --config FILE        stream changes (snapshot first if due)
//	liberator snapshot --config FILE        snapshot the tables, record where streaming begins, exit
//	liberator snapshot --config FILE --table T  ask the running daemon to snapshot T while streaming
//	liberator snapshot --config FILE --table T --reconcile  the same, then tombstone T's keys that are gone
//	liberator reset    --config FILE        start over after a lost or moved stream, with reconcile
//	liberator check    --config FILE        check that everything is ready
//	liberator tail     --config FILE TOPIC  print a topic's events as JSON lines
//	liberator version
//
// Exit codes: 0 success; 1 runtime failure; 2 bad usage or config; 3
// fenced: under delivery: exactly_once, another instance with the same
// name took over (kafka.FencedError).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/console"
	"github.com/liberator-cdc/liberator/internal/redact"
	"github.com/liberator-cdc/liberator/internal/tail"
)

// version is set with -ldflags "-X main.version=...".
var version = ""

const usage = `usage: liberator <command> [flags]

commands:
  run      --config FILE        stream changes to Kafka (snapshot first if due)
           [--cpuprofile OUT]   write a CPU profile of the run (also for snapshot)
  snapshot --config FILE        snapshot the tables, record where streaming begins, exit
           [--table T]...       instead ask the running daemon to snapshot T while it
           [--admin HOST:PORT]  streams (its admin listener; default http.listen)
           [--reconcile]        with --table: read T again from its first row, then
                                tombstone the keys its topic holds that T no longer has
  reset    --config FILE        drop the source's stream (PostgreSQL: the slot) and store
                                a position from which the next run streams from the
                                server's current point and re-snapshots every table with
                                reconcile; for a stream that was lost or moved
  check    --config FILE        check that the database, Kafka and the registry are ready (exit 0) or say what to fix (exit 1)
  tail     --config FILE TOPIC  print a topic's events as JSON lines [--follow]
  version                       print the version
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// ExitFenced is the exit code of a pipeline that another instance with the
// same name fenced (delivery: exactly_once). A supervisor should not
// restart it in a loop: the other instance is the one that runs.
const ExitFenced = 3

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("liberator "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML)")
	follow := fs.Bool("follow", false, "tail: keep reading new events")
	var tables tableList
	fs.Var(&tables, "table", "snapshot: ask the running daemon to snapshot this table while streaming (repeatable)")
	admin := fs.String("admin", "", "snapshot --table: the daemon's admin listener, host:port (default http.listen)")
	cpuprofile := fs.String("cpuprofile", "", "run, snapshot: write a CPU profile of the run to this file")
	reconcile := fs.Bool("reconcile", false, "snapshot --table: re-read the tables from the first row, then tombstone the keys they no longer hold")
	switch cmd {
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "liberator", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "run", "snapshot", "check", "tail", "reset":
	default:
		fmt.Fprintf(stderr, "liberator: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "liberator %s: --config FILE is required\n", cmd)
		return 2
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "liberator: %v\n", err)
		return 2
	}
	var term *console.Terminal
	if stderr == io.Writer(os.Stderr) {
		term = terminal()
	}
	// Nothing liberator says shows a password, a token or a salt: not its
	// logs, nor its messages, nor check's report. (tail's stdout is the
	// topic's data and is left as it is.)
	secrets := cfg.Secrets()
	stderr = secrets.Writer(stderr)
	log := newLogger(cfg.Log, secrets, logOutput(stderr, term))

	ctx, stop := signalContext(log)
	defer stop()
	switch cmd {
	case "check":
		if !printChecks(secrets.Writer(stdout), preflight(ctx, cfg, log)) {
			fmt.Fprintln(stderr, "liberator check: not ready; fix what FAIL says")
			return 1
		}
		fmt.Fprintln(stdout, "ready")
		return 0
	case "tail":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "liberator tail: name one TOPIC")
			return 2
		}
		if err := tail.Tail(ctx, cfg, tail.Options{Topic: fs.Arg(0), Follow: *follow}, stdout); err != nil {
			fmt.Fprintf(stderr, "liberator tail: %v\n", err)
			return 1
		}
		return 0
	case "reset":
		what, err := reset(ctx, cfg, log)
		if err != nil {
			fmt.Fprintf(stderr, "liberator reset: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "reset: %s\nthe next liberator run streams from the server's current point and re-snapshots every table, tombstoning the keys the tables no longer hold\n", what)
		return 0
	case "snapshot":
		if len(tables) > 0 {
			return requestSnapshot(ctx, cfg, *admin, connectors.SnapshotRequest{Tables: tables, Reconcile: *reconcile}, stdout, stderr)
		}
		if *reconcile {
			fmt.Fprintln(stderr, "liberator snapshot: --reconcile goes with --table T")
			return 2
		}
		cfg.Snapshot.Mode = connectors.SnapshotOnly
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "liberator: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "liberator: --cpuprofile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	err = runPipeline(ctx, cfg, log, term)
	var cerr *config.Error
	var fenced *kafka.FencedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &cerr):
		log.Error("bad config", "error", err)
		return 2
	case errors.As(err, &fenced):
		log.Error("liberator stopped: fenced", "error", err)
		return ExitFenced
	default:
		log.Error("liberator stopped", "error", err)
		return 1
	}
}

// signalContext is cancelled by the first SIGTERM or SIGINT, which starts a
// graceful drain. A second signal exits at once.
func signalContext(log *slog.Logger) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			log.Info("stopping: draining in-flight events (signal again to exit at once)", "signal", sig.String())
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			log.Warn("exiting at once", "signal", sig.String())
			os.Exit(1)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(ch); close(done); cancel() }
}

// newLogger returns the logger of c, writing to w, that scrubs secrets
// from every record.
func newLogger(c config.LogConfig, secrets redact.Secrets, w io.Writer) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: secrets.ReplaceAttr}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
