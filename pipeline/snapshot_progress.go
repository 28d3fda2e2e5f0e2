package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

const (
	// progressLogEvery is how often snapshot progress is logged when no
	// terminal shows it.
	progressLogEvery = 10 * time.Second
	// progressDrawEvery is how often a terminal's progress line is redrawn.
	progressDrawEvery = 500 * time.Millisecond
)

// Terminal is stderr when it is a terminal: log lines and a live snapshot
// progress line share it. Each write (a log line) clears the progress line
// first and draws it again after.
type Terminal struct {
	mu     sync.Mutex
	w      io.Writer
	status string
}

// NewTerminal returns a Terminal writing to w.
func NewTerminal(w io.Writer) *Terminal { return &Terminal{w: w} }

// Write writes log output above the progress line.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b bytes.Buffer
	if t.status != "" {
		b.WriteString("\r\x1b[K")
	}
	b.Write(p)
	if t.status != "" {
		b.WriteString(t.status)
	}
	if _, err := t.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// setStatus replaces the progress line; "" removes it.
func (t *Terminal) setStatus(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == t.status {
		return
	}
	t.status = s
	_, _ = io.WriteString(t.w, "\r\x1b[K"+s)
}

// ShowProgressOn draws snapshot progress on t instead of logging it
// periodically. Call it before Run; nil keeps the log lines.
func (p *Pipeline) ShowProgressOn(t *Terminal) { p.term = t }

// reportSnapshots shows the source's snapshot progress while a snapshot
// runs: a live line on a terminal, else a log line per table every
// progressLogEvery. It returns when ctx ends.
func (p *Pipeline) reportSnapshots(ctx context.Context, src connectors.Source) error {
	pr, ok := src.(connectors.SnapshotProgressReporter)
	if !ok {
		return nil
	}
	every := progressLogEvery
	if p.term != nil {
		every = progressDrawEvery
		defer p.term.setStatus("")
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
		if p.term != nil {
			p.term.setStatus(progressLine(prog, now))
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

// progressLine renders the tables being read in one line, or "" when none
// is.
func progressLine(prog connectors.SnapshotProgress, now time.Time) string {
	var parts []string
	done, total := 0, len(prog.Tables)
	for _, tp := range prog.Tables {
		if tp.Done {
			done++
			continue
		}
		if tp.Started.IsZero() {
			continue
		}
		s := fmt.Sprintf("%s %s", tp.Table, count(tp.Rows))
		if tp.Estimated > 0 {
			s += fmt.Sprintf("/%s (%d%%)", count(tp.Estimated), min(100, tp.Rows*100/tp.Estimated))
		}
		s += fmt.Sprintf(" %s rows/s", count(int64(tp.Rate(now))))
		if eta, ok := tp.ETA(now); ok {
			s += " ETA " + eta.Round(time.Second).String()
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("snapshot %d/%d tables done · %s", done, total, strings.Join(parts, " · "))
}

// count prints n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
