package pipeline

import (
	"context"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

const (
	// progressLogEvery is how often snapshot progress is logged when no
	// display shows it.
	progressLogEvery = 10 * time.Second
	// progressDrawEvery is how often a display's progress is redrawn.
	progressDrawEvery = 500 * time.Millisecond
)

// ProgressDisplay shows snapshot progress live, such as a terminal's
// status line.
type ProgressDisplay interface {
	// ShowProgress shows prog; a progress with no table being read
	// clears the display.
	ShowProgress(prog connectors.SnapshotProgress)
}

// reportSnapshots shows the source's snapshot progress while a snapshot
// runs: a live line on a terminal, else a log line per table every
// progressLogEvery. It returns when ctx ends.
func (p *Pipeline) reportSnapshots(ctx context.Context, src connectors.Source) error {
	pr, ok := src.(connectors.SnapshotProgressReporter)
	if !ok {
		return nil
	}
	every := progressLogEvery
	display := p.deps.Progress
	if display != nil {
		every = progressDrawEvery
		defer display.ShowProgress(connectors.SnapshotProgress{})
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		prog := pr.SnapshotProgress()
		now := time.Now()
		if display != nil {
			display.ShowProgress(prog)
			continue
		}
		for _, tp := range prog.Tables {
			if tp.Done || tp.Started.IsZero() {
				continue
			}
			args := []any{"table", tp.Table, "incremental", tp.Incremental, "rows", tp.Rows, "estimated", tp.Estimated,
				"rows_per_second", int64(tp.Rate(now))}
			if eta, ok := tp.ETA(now); ok {
				args = append(args, "eta", eta.Round(time.Second).String())
			}
			p.log.Info("snapshot progress", args...)
		}
	}
}
