// Command inproc runs liberator's pipeline in-process under the CPU
// profiler, for the benchmark's PROFILE=1 runs. It takes the same command
// line as liberator's run and snapshot commands, so the benchmark drives it
// exactly as it drives the real binary, and writes the profile when the
// pipeline returns (at the end of a snapshot, or after SIGTERM).
//
//	inproc run      --config FILE --cpuprofile OUT
//	inproc snapshot --config FILE --cpuprofile OUT
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/pipeline"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "run" && os.Args[1] != "snapshot") {
		fmt.Fprintln(os.Stderr, "usage: inproc run|snapshot --config FILE --cpuprofile OUT")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("inproc", flag.ExitOnError)
	config := fs.String("config", "", "liberator config file")
	out := fs.String("cpuprofile", "", "where to write the CPU profile")
	_ = fs.Parse(os.Args[2:])

	cfg, err := pipeline.Load(*config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inproc:", err)
		os.Exit(2)
	}
	if os.Args[1] == "snapshot" {
		cfg.Snapshot.Mode = connectors.SnapshotOnly
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inproc:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "inproc:", err)
		os.Exit(1)
	}
	err = pipeline.New(cfg, log).Run(ctx)
	pprof.StopCPUProfile()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "inproc:", err)
		os.Exit(1)
	}
}
