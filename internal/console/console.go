// Package console draws on the terminal that liberator runs in: log lines
// with a live snapshot progress line below them.
package console

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/liberator-cdc/liberator/connectors"
)

// Open returns a Terminal on f if f is a terminal, else nil. A character
// device that is not a terminal, such as /dev/null, is not one.
func Open(f *os.File) *Terminal {
	if f == nil || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return NewTerminal(f)
}

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

// SetStatus replaces the progress line; "" removes it.
func (t *Terminal) SetStatus(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s == t.status {
		return
	}
	t.status = s
	_, _ = io.WriteString(t.w, "\r\x1b[K"+s)
}

// ShowProgress draws the tables being read on the progress line.
func (t *Terminal) ShowProgress(prog connectors.SnapshotProgress) {
	t.SetStatus(ProgressLine(prog, time.Now()))
}

// ProgressLine renders the tables being read in one line, or "" when none
// is.
func ProgressLine(prog connectors.SnapshotProgress, now time.Time) string {
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
