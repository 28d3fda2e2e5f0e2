package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/pipeline"
)

// tableList is a repeatable --table flag.
type tableList []string

func (t *tableList) String() string { return strings.Join(*t, ",") }

func (t *tableList) Set(v string) error {
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*t = append(*t, name)
		}
	}
	return nil
}

// requestSnapshot asks the running daemon to snapshot tables while it
// streams.
func requestSnapshot(ctx context.Context, cfg *pipeline.Config, admin string, req connectors.SnapshotRequest, stdout, stderr io.Writer) int {
	rep, err := pipeline.RequestSnapshot(ctx, cfg, admin, req)
	if err != nil {
		fmt.Fprintf(stderr, "liberator snapshot: %v\n", err)
		return 1
	}
	kind := "an incremental snapshot"
	if req.Reconcile {
		kind = "an incremental snapshot with reconcile"
	}
	fmt.Fprintf(stdout, "queued for %s: %s (follow it on the daemon's /snapshot)\n", kind, strings.Join(rep.Queued, ", "))
	return 0
}

// terminal returns a Terminal on w if w is a terminal, else nil.
func terminal(w io.Writer) *pipeline.Terminal {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return pipeline.NewTerminal(w)
}

// logOutput is where logs go: through the terminal, when there is one, so
// that they do not garble the progress line.
func logOutput(w io.Writer, term *pipeline.Terminal) io.Writer {
	if term != nil {
		return term
	}
	return w
}
