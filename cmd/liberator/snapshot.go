package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/admin"
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
func requestSnapshot(ctx context.Context, cfg *config.Config, addr string, req connectors.SnapshotRequest, stdout, stderr io.Writer) int {
	rep, err := admin.RequestSnapshot(ctx, cfg.HTTP.Listen, addr, cfg.HTTP.Token, req)
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
