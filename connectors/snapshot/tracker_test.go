package snapshot

import (
	"log/slog"
	"slices"
	"testing"
)

func TestSnapshotTrackerFollowsATable(t *testing.T) {
	var tr Tracker
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

func TestChunkFrontierMovesOnlyPastChunksWithoutAGap(t *testing.T) {
	var tr Tracker
	tr.Add("a.b", false)
	tr.Start("a.b", 30)
	f := NewFrontier(&tr, slog.New(slog.DiscardHandler))
	st := (*State)(nil).With("a.b")
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
