package snapshot

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestWindowEmitsOnlyRowsNoChangeTouched(t *testing.T) {
	tbl := &connectors.Table{Schema: "s", Name: "t", Key: []int{0}}
	other := &connectors.Table{Schema: "s", Name: "u", Key: []int{0}}
	log := slog.New(slog.DiscardHandler)
	var sn Manager
	sn.Request(connectors.SnapshotRequest{Tables: []string{"s.t"}})
	sn.TakeRequests(log)
	i, ok := sn.NextChunk()
	if !ok || i != 0 {
		t.Fatalf("NextChunk() = %d, %v; want the requested table", i, ok)
	}
	sn.StartTable(i, func() int64 { return 3 }, log)
	w := sn.NewWindow(i, tbl)
	for _, id := range []int32{1, 2, 3} {
		w.Add([]any{id, "snapshot"})
	}
	w.Last, w.Full = []string{"3"}, true
	sn.Window = w

	w.Touch(tbl, nil, []any{int32(1), "before the low watermark"})
	w.Opened()
	w.Touch(tbl, []any{int32(2), "old"}, nil)
	w.Touch(other, nil, []any{int32(3), "another table"})
	if _, ok := sn.NextChunk(); ok {
		t.Error("no chunk is due while a window is open")
	}

	kept := sn.CloseWindow(log)
	if d := cmp.Diff([][]any{{int32(1), "snapshot"}, {int32(3), "snapshot"}}, kept); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]TableState{{Table: "s.t", After: []string{"3"}}}, sn.State.Tables); d != "" {
		t.Errorf("state (-want +got):\n%s", d)
	}

	// The last chunk: fewer rows than chunk_size.
	first := w.ID
	w = sn.NewWindow(0, tbl)
	if w.ID == first {
		t.Error("each chunk has its own ID")
	}
	sn.Window = w
	w.Opened()
	if kept := sn.CloseWindow(log); len(kept) != 0 || sn.State != nil {
		t.Errorf("an empty last chunk ends the snapshot: kept %v, state %+v", kept, sn.State)
	}
	if p := sn.Progress.Progress().Tables[0]; !p.Done || p.Rows != 3 {
		t.Errorf("progress = %+v", p)
	}
}

func TestAWindowNeverOpenedIsReadAgain(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	sn := Manager{State: (*State)(nil).With("s.t")}
	w := sn.NewWindow(0, &connectors.Table{Schema: "s", Name: "t", Key: []int{0}})
	w.Add([]any{int32(1)})
	sn.Window = w
	if kept := sn.CloseWindow(log); kept != nil || sn.State.Tables[0].Done {
		t.Errorf("kept %v, state %+v; want nothing emitted and no progress", kept, sn.State)
	}
	if i, ok := sn.NextChunk(); !ok || i != 0 {
		t.Error("the chunk is due again")
	}
}
