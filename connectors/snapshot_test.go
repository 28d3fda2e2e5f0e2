package connectors

import (
	"log/slog"
	"slices"
	"testing"
	"time"
)

func TestSnapshotTrackerFollowsATable(t *testing.T) {
	var tr SnapshotTracker
	tr.Add("public.items", false)
	if tr.Started("public.items") || !tr.Progress().Running() {
		t.Fatal("a registered table is waiting, and the snapshot is running")
	}
	tr.Start("public.items", 1000)
	tr.AddRows("public.items", 400)
	tr.AddRows("public.unknown", 5)
	p := tr.Progress().Tables
	if len(p) != 1 || p[0].Rows != 400 || p[0].Estimated != 1000 || !tr.Started("public.items") {
		t.Fatalf("progress = %+v", p)
	}
	done := tr.Finish("public.items")
	if !done.Done || done.Finished.IsZero() || tr.Progress().Running() {
		t.Fatalf("finished progress = %+v", done)
	}
	tr.Add("public.items", true)
	if p := tr.Progress().Tables[0]; p.Done || p.Rows != 0 || !p.Incremental {
		t.Errorf("a finished table added again starts over, got %+v", p)
	}
}

func TestTableProgressRateAndETA(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Second)
	tests := []struct {
		name  string
		p     TableProgress
		rate  float64
		eta   time.Duration
		etaOK bool
	}{
		{"a table under way", TableProgress{Rows: 1000, Estimated: 3000, Started: start}, 100, 20 * time.Second, true},
		{"no estimate, no ETA", TableProgress{Rows: 1000, Estimated: -1, Started: start}, 100, 0, false},
		{"past its estimate", TableProgress{Rows: 5000, Estimated: 3000, Started: start}, 500, 0, true},
		{"not started", TableProgress{Estimated: 10}, 0, 0, false},
		{"done: the rate up to the end", TableProgress{Rows: 1000, Estimated: 1000, Started: start, Finished: start.Add(5 * time.Second), Done: true}, 200, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Rate(now); got != tt.rate {
				t.Errorf("Rate = %v, want %v", got, tt.rate)
			}
			eta, ok := tt.p.ETA(now)
			if eta != tt.eta || ok != tt.etaOK {
				t.Errorf("ETA = %v, %v; want %v, %v", eta, ok, tt.eta, tt.etaOK)
			}
		})
	}
}

func TestSnapshotOptionsDefaultsAndLimits(t *testing.T) {
	o := SnapshotOptions{}.WithDefaults()
	if o.Parallelism < 1 || o.ChunkSize != DefaultChunkSize || o.SignalTable != "liberator.signal" {
		t.Errorf("defaults = %+v", o)
	}
	if err := (SnapshotOptions{Parallelism: 300}).Validate(); err == nil {
		t.Error("parallelism 300 was accepted")
	}
	if err := (SnapshotOptions{Parallelism: 4, ChunkSize: 100}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestChunkFrontierMovesOnlyPastChunksWithoutAGap(t *testing.T) {
	var tr SnapshotTracker
	tr.Add("a.b", false)
	tr.Start("a.b", 30)
	f := NewChunkFrontier(&tr, slog.New(slog.DiscardHandler))
	st := (*SnapshotState)(nil).With("a.b")
	f.AddRows(st, 0, 10)
	st, moved := f.ChunkRead(st, 0, 1, []string{"20"})
	if moved || st.Tables[0].After != nil {
		t.Fatalf("the second chunk read first moves nothing: %+v", st.Tables[0])
	}
	st, _ = f.ChunkRead(st, 0, 2, nil)
	if st.Done() {
		t.Fatal("the last chunk read before the first finishes nothing")
	}
	st, moved = f.ChunkRead(st, 0, 0, []string{"10"})
	if !moved || !st.Done() || !slices.Equal(st.Tables[0].After, []string{"20"}) {
		t.Fatalf("the first chunk read moves past all three: %+v", st.Tables[0])
	}
	if p := tr.Progress().Tables[0]; !p.Done || p.Rows != 10 {
		t.Errorf("progress = %+v", p)
	}
}
