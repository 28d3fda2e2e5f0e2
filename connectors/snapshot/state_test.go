package snapshot

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestSnapshotStateIsCopiedOnWrite(t *testing.T) {
	st := (*State)(nil).With("a.b", "a.c")
	next := st.Advanced(0, []string{"9"}, false)
	if st.Tables[0].After != nil {
		t.Fatal("Advanced modified the state it was given")
	}
	if d := cmp.Diff([]TableState{{Table: "a.b", After: []string{"9"}}, {Table: "a.c"}}, next.Tables); d != "" {
		t.Error(d)
	}
	done := next.Advanced(0, nil, true).Advanced(1, nil, true)
	if !done.Done() || next.Done() {
		t.Errorf("Done() = %v, %v; want true, false", done.Done(), next.Done())
	}
	again := done.With("a.b")
	if d := cmp.Diff([]TableState{{Table: "a.b"}, {Table: "a.c", Done: true}}, again.Tables); d != "" {
		t.Errorf("a finished table asked for again starts over (-want +got):\n%s", d)
	}
	if d := cmp.Diff(next.Tables, next.With("a.b").Tables); d != "" {
		t.Errorf("a table under way keeps its progress when asked for again:\n%s", d)
	}
}

func TestReconcileKeepsTheConfiguredTables(t *testing.T) {
	stored := &State{Tables: []TableState{{Table: "a.gone", After: []string{"1"}}, {Table: "a.b", After: []string{"9"}}}}
	st := stored.Reconcile([]string{"a.b", "a.c"}, true)
	want := []TableState{{Table: "a.b", After: []string{"9"}}, {Table: "a.c"}}
	if d := cmp.Diff(want, st.Tables); d != "" || !st.Initial {
		t.Errorf("an initial snapshot keeps configured progress and adds the rest (-want +got):\n%s", d)
	}
	if got := stored.Reconcile([]string{"a.b", "a.c"}, false); len(got.Tables) != 1 || got.Initial {
		t.Errorf("an incremental snapshot adds no table: %+v", got)
	}
	if (&State{Tables: []TableState{{Table: "a.b", Done: true}}}).Reconcile([]string{"a.b"}, false) != nil {
		t.Error("a finished incremental snapshot reconciles to nil")
	}
	if got, want := st.String(), "initial snapshot, 0 of 2 tables done, a.b read up to key (9)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParsePositionStateChecksKeys(t *testing.T) {
	in := PositionState{Tables: []string{"a.b"}, Snapshot: &State{Tables: []TableState{{Table: "a.b", After: []string{"x"}}}}}
	refuse := func(string) error { return errors.New("not a key") }
	if _, err := ParsePositionState(in.Encode(), refuse); err == nil || err.Error() != "key of a.b: not a key" {
		t.Errorf("ParsePositionState = %v, want the key refused, naming the table", err)
	}
	back, err := ParsePositionState(in.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(&in, back); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRowKeyMatchesSnapshotAndStreamRows(t *testing.T) {
	tbl := &connectors.Table{Key: []int{0, 1}}
	tests := []struct {
		name string
		a, b []any
		same bool
	}{
		{"the same key from a full row and a key-only tuple", []any{"eu", int32(7), "x"}, []any{"eu", int32(7), nil}, true},
		{"another number", []any{"eu", int32(7), nil}, []any{"eu", int32(8), nil}, false},
		{"another type", []any{"eu", int32(7), nil}, []any{"eu", int64(7), nil}, false},
		{"text that would run into the next column", []any{"e\x00u", int32(7), nil}, []any{"e", int32(7), nil}, false},
		{"bytes compare by content", []any{[]byte{1, 2}, int32(1), nil}, []any{[]byte{1, 2}, int32(1), nil}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RowKey(tbl, tt.a) == RowKey(tbl, tt.b); got != tt.same {
				t.Errorf("RowKey(%v) == RowKey(%v) is %v, want %v", tt.a, tt.b, got, tt.same)
			}
		})
	}
}
