package snapshot

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestWindowEmitsOnlyRowsNoChangeTouched(t *testing.T) {
	tbl := &connectors.Table{Schema: "s", Name: "t", Key: []int{0}}
	other := &connectors.Table{Schema: "s", Name: "u", Key: []int{0}}
	log := slog.New(slog.DiscardHandler)
	var sn Manager
	if err := sn.Init(connectors.SnapshotOptions{}, []string{"s.t"}, canonical); err != nil {
		t.Fatal(err)
	}
	if err := sn.RequestTables(connectors.SnapshotRequest{Tables: []string{"t"}}, connectors.SnapshotInitial, canonical); err != nil {
		t.Fatal(err)
	}
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

// canonical names tables as PostgreSQL does: "t" is "s.t", in schema s.
func canonical(name string) (string, error) {
	switch strings.Count(name, ".") {
	case 0:
		return "s." + name, nil
	case 1:
		return name, nil
	}
	return "", errors.New(name + " is not a table name")
}

func TestRequestTablesRefusesWhatCannotBeServed(t *testing.T) {
	tests := []struct {
		name string
		mode connectors.SnapshotMode
		req  []string
		err  string
	}{
		{"a captured table", connectors.SnapshotInitial, []string{"s.t", "u"}, ""},
		{"snapshot mode only does not stream", connectors.SnapshotOnly, []string{"s.t"}, "snapshot request refused: liberator snapshot does not stream; ask the daemon (liberator run)"},
		{"a table that is not captured", connectors.SnapshotNever, []string{"s.t", "s.v"}, "snapshot request refused: s.v is not captured (add it to source.tables)"},
		{"a name that is not a table's", connectors.SnapshotInitial, []string{"a.b.c"}, "snapshot request refused: a.b.c is not a table name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sn Manager
			if err := sn.Init(connectors.SnapshotOptions{}, []string{"t", "s.u"}, canonical); err != nil {
				t.Fatal(err)
			}
			err := sn.RequestTables(connectors.SnapshotRequest{Tables: tt.req}, tt.mode, canonical)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				sn.TakeRequests(slog.New(slog.DiscardHandler))
				if d := cmp.Diff([]TableState{{Table: "s.t"}, {Table: "s.u"}}, sn.State.Tables); d != "" {
					t.Errorf("queued by their canonical names (-want +got):\n%s", d)
				}
				return
			}
			if !errors.Is(err, connectors.ErrSnapshotRefused) || err.Error() != tt.err {
				t.Errorf("RequestTables = %v, want %q wrapping ErrSnapshotRefused", err, tt.err)
			}
		})
	}
}

func TestResumeTakesUpTheStoredSnapshots(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	initial := &State{Initial: true, Tables: []TableState{{Table: "s.a", After: []string{"7"}}}}
	incremental := &State{Tables: []TableState{{Table: "s.a", After: []string{"7"}}}}
	tests := []struct {
		name      string
		stored    *PositionState
		addTables bool
		initial   bool
		want      *State
	}{
		{"nothing recorded", nil, true, false, nil},
		{"an initial snapshot is read on, with the tables it lacks", &PositionState{Tables: []string{"s.a"}, Snapshot: initial}, true, true,
			&State{Initial: true, Tables: []TableState{{Table: "s.a", After: []string{"7"}}, {Table: "s.b"}}}},
		{"an incremental snapshot goes on, and added tables join it", &PositionState{Tables: []string{"s.a"}, Snapshot: incremental}, true, false,
			&State{Tables: []TableState{{Table: "s.a", After: []string{"7"}}, {Table: "s.b"}}}},
		{"added tables wait when they may not be added", &PositionState{Tables: []string{"s.a"}, Snapshot: incremental}, false, false,
			&State{Tables: []TableState{{Table: "s.a", After: []string{"7"}}}}},
		{"tables not recorded are not taken as added", &PositionState{}, true, false, nil},
		{"a table added with no snapshot under way", &PositionState{Tables: []string{"s.a"}}, true, false, &State{Tables: []TableState{{Table: "s.b"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sn Manager
			if err := sn.Init(connectors.SnapshotOptions{}, []string{"a", "b"}, canonical); err != nil {
				t.Fatal(err)
			}
			if got := sn.Resume(tt.stored, tt.addTables, log); got != tt.initial || sn.Initial != tt.initial {
				t.Errorf("Resume = %t, Initial %t; want %t", got, sn.Initial, tt.initial)
			}
			if d := cmp.Diff(tt.want, sn.State); d != "" {
				t.Errorf("State (-want +got):\n%s", d)
			}
			if !tt.initial && sn.State != nil && len(sn.Progress.Progress().Tables) != len(sn.State.Tables) {
				t.Errorf("progress %+v does not follow the state", sn.Progress.Progress())
			}
		})
	}
}

func TestAddedTablesAreCapturedAndQueuedWithoutTouchingRecordedOnes(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	var sn Manager
	if err := sn.Init(connectors.SnapshotOptions{Never: []string{"s.box"}}, []string{"s.t"}, canonical); err != nil {
		t.Fatal(err)
	}
	recorded := sn.Tables
	sn.AddTables([]string{"s.new", "s.t", "s.box"}, log)
	if d := cmp.Diff([]string{"s.t"}, recorded); d != "" {
		t.Errorf("the tables a checkpoint recorded changed (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"s.t", "s.new"}, sn.Tables); d != "" {
		t.Errorf("Tables (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]TableState{{Table: "s.new"}}, sn.State.Tables); d != "" {
		t.Errorf("State (-want +got):\n%s", d)
	}
	if err := sn.RequestTables(connectors.SnapshotRequest{Tables: []string{"s.new"}}, connectors.SnapshotInitial, canonical); err != nil {
		t.Errorf("an added table cannot be requested: %v", err)
	}
	if i, ok := sn.NextChunk(); !ok || sn.State.Tables[i].Table != "s.new" {
		t.Errorf("NextChunk() = %d, %v; want the added table", i, ok)
	}
}
