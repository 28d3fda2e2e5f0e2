package console

import (
	"bytes"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestProgressLineShowsTheTablesBeingRead(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)
	prog := connectors.SnapshotProgress{Tables: []connectors.TableProgress{
		{Table: "public.done", Rows: 10, Estimated: 10, Started: now.Add(-time.Minute), Finished: now.Add(-30 * time.Second), Done: true},
		{Table: "public.items", Rows: 25_000, Estimated: 100_000, Started: now.Add(-10 * time.Second)},
		{Table: "public.unknown", Rows: 1234, Estimated: -1, Started: now.Add(-2 * time.Second)},
		{Table: "public.waiting", Estimated: -1},
	}}
	want := "snapshot 1/4 tables done · public.items 25,000/100,000 (25%) 2,500 rows/s ETA 30s · public.unknown 1,234 617 rows/s"
	if got := ProgressLine(prog, now); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := ProgressLine(connectors.SnapshotProgress{Tables: prog.Tables[:1]}, now); got != "" {
		t.Errorf("with nothing being read the line is %q, want none", got)
	}
}

func TestTerminalKeepsTheProgressLineBelowTheLogs(t *testing.T) {
	var out bytes.Buffer
	term := NewTerminal(&out)
	term.SetStatus("snapshot 0/1")
	if _, err := term.Write([]byte("a log line\n")); err != nil {
		t.Fatal(err)
	}
	term.SetStatus("")
	want := "\r\x1b[Ksnapshot 0/1" + "\r\x1b[Ka log line\nsnapshot 0/1" + "\r\x1b[K"
	if got := out.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCountGroupsThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
