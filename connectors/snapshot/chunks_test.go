package snapshot

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// keysBoundary finds boundaries among the keys 1 to last.
func keysBoundary(last int) Boundary {
	return func(_ context.Context, lo []string, n int) ([]string, error) {
		from := 0
		if lo != nil {
			from, _ = strconv.Atoi(lo[0])
		}
		if from+n > last {
			return nil, nil
		}
		return []string{strconv.Itoa(from + n)}, nil
	}
}

func TestSplitCutsTheUnfinishedTablesInOrder(t *testing.T) {
	sn := Manager{Opts: connectors.SnapshotOptions{ChunkSize: 2}}
	st := &State{Initial: true, Tables: []TableState{
		{Table: "s.done", Done: true},
		{Table: "s.resumed", After: []string{"1"}},
		{Table: "s.whole"},
		{Table: "s.empty"},
	}}
	for _, ts := range st.Tables {
		sn.Progress.Add(ts.Table, false)
	}
	chunks := make(chan Chunk, 10)
	err := sn.Split(context.Background(), st, chunks, func(_ context.Context, i int) (int64, Boundary) {
		switch st.Tables[i].Table {
		case "s.resumed":
			return 5, keysBoundary(6)
		case "s.whole":
			return -1, nil
		case "s.empty":
			return 0, keysBoundary(0)
		}
		t.Errorf("asked about table %d, which is done", i)
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	close(chunks)
	var got []Chunk
	for c := range chunks {
		got = append(got, c)
	}
	want := []Chunk{
		{Table: 1, Seq: 0, Lo: []string{"1"}, Hi: []string{"3"}},
		{Table: 1, Seq: 1, Lo: []string{"3"}, Hi: []string{"5"}},
		{Table: 1, Seq: 2, Lo: []string{"5"}},
		{Table: 2, Seq: 0},
		{Table: 3, Seq: 0},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("chunks (-want +got):\n%s", d)
	}
	p := sn.Progress.Progress().Tables
	if !p[0].Started.IsZero() || p[1].Started.IsZero() || p[1].Estimated != 5 || p[2].Estimated != -1 {
		t.Errorf("each unfinished table's progress starts with its estimate: %+v", p)
	}
}

func TestSplitStopsWithItsContext(t *testing.T) {
	sn := Manager{Opts: connectors.SnapshotOptions{ChunkSize: 1}}
	st := &State{Tables: []TableState{{Table: "s.t"}}}
	ctx, cancel := context.WithCancel(context.Background())
	chunks := make(chan Chunk)
	go func() {
		<-chunks
		cancel()
	}()
	err := sn.Split(ctx, st, chunks, func(context.Context, int) (int64, Boundary) { return -1, keysBoundary(1000) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Split = %v, want context.Canceled", err)
	}
}

func TestSplitReturnsABoundaryError(t *testing.T) {
	sn := Manager{Opts: connectors.SnapshotOptions{ChunkSize: 1}}
	st := &State{Tables: []TableState{{Table: "s.t"}}}
	failed := errors.New("connection lost")
	err := sn.Split(context.Background(), st, make(chan Chunk), func(context.Context, int) (int64, Boundary) {
		return -1, func(context.Context, []string, int) ([]string, error) { return nil, failed }
	})
	if !errors.Is(err, failed) {
		t.Errorf("Split = %v, want the boundary's error", err)
	}
}

func TestSenderHandsRowsOverInMessages(t *testing.T) {
	out := make(chan Rows, 10)
	chunk := Chunk{Table: 1, Seq: 2}
	send := NewSender(context.Background(), out, chunk, 5000)
	for range RowsPerMessage + 3 {
		if err := send.Add(connectors.Change{Op: connectors.OpRead}); err != nil {
			t.Fatal(err)
		}
	}
	if err := send.Done(); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []string
	for m := range out {
		if m.Chunk.Table != 1 || m.Chunk.Seq != 2 {
			t.Errorf("a message of chunk %+v", m.Chunk)
		}
		got = append(got, strconv.Itoa(len(m.Changes))+" "+strconv.FormatBool(m.Done))
	}
	if d := cmp.Diff([]string{strconv.Itoa(RowsPerMessage) + " false", "3 true"}, got); d != "" {
		t.Errorf("messages as rows and done (-want +got):\n%s", d)
	}
}

func TestSenderEndsAnEmptyChunkAndStopsWithItsContext(t *testing.T) {
	out := make(chan Rows, 1)
	if err := NewSender(context.Background(), out, Chunk{}, 10).Done(); err != nil {
		t.Fatal(err)
	}
	if m := <-out; !m.Done || len(m.Changes) != 0 {
		t.Errorf("an empty chunk's one message = %+v", m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewSender(ctx, make(chan Rows), Chunk{}, 10).Done(); !errors.Is(err, context.Canceled) {
		t.Errorf("Done on a blocked channel = %v, want context.Canceled", err)
	}
}
