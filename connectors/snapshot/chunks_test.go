package snapshot

import (
	"context"
	"errors"
	"strconv"
	"strings"
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
	send := NewSender(context.Background(), out, chunk, 5000, 1<<30)
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
		var size int64
		for i := range m.Changes {
			size += m.Changes[i].Size()
		}
		if m.Bytes != size {
			t.Errorf("a message of %d bytes says it has %d", size, m.Bytes)
		}
		got = append(got, strconv.Itoa(len(m.Changes))+" "+strconv.FormatBool(m.Done))
	}
	if d := cmp.Diff([]string{strconv.Itoa(RowsPerMessage) + " false", "3 true"}, got); d != "" {
		t.Errorf("messages as rows and done (-want +got):\n%s", d)
	}
}

func TestSenderWithMaxRowsHandsOverMessagesOfThatMany(t *testing.T) {
	out := make(chan Rows, 10)
	send := NewSender(context.Background(), out, Chunk{}, 5000, 1<<30).MaxRows(3000, 5000)
	for range 3001 {
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
		got = append(got, strconv.Itoa(len(m.Changes))+" "+strconv.FormatBool(m.Done))
	}
	if d := cmp.Diff([]string{"3000 false", "1 true"}, got); d != "" {
		t.Errorf("messages as rows and done (-want +got):\n%s", d)
	}
}

func TestSenderCutsMessagesOfLargeRowsByBytes(t *testing.T) {
	out := make(chan Rows, 100)
	row := func(n int) connectors.Change {
		return connectors.Change{Op: connectors.OpRead, After: []any{int64(1), strings.Repeat("x", n)}}
	}
	// Rows of 1 MB against messages of 2.5 MB: every third row ends one.
	send := NewSender(context.Background(), out, Chunk{}, 5000, 5<<19)
	for range 7 {
		if err := send.Add(row(1 << 20)); err != nil {
			t.Fatal(err)
		}
	}
	// A row bigger than a whole message ends the message it joins.
	if err := send.Add(row(3 << 20)); err != nil {
		t.Fatal(err)
	}
	if err := send.Done(); err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []int
	for m := range out {
		got = append(got, len(m.Changes))
	}
	if d := cmp.Diff([]int{3, 3, 2, 0}, got); d != "" {
		t.Errorf("rows per message (-want +got):\n%s", d)
	}
}

func TestMessageBytesLeavesRoomForEveryReaderAndTheChannel(t *testing.T) {
	if got := MessageBytes(64<<20, 4); got != 8<<20 {
		t.Errorf("MessageBytes(64MB, 4 readers) = %d, want 8MB", got)
	}
	if got := MessageBytes(64<<20, 0); got != 32<<20 {
		t.Errorf("MessageBytes(64MB, 0 readers) = %d, want 32MB", got)
	}
}

func TestSenderEndsAnEmptyChunkAndStopsWithItsContext(t *testing.T) {
	out := make(chan Rows, 1)
	if err := NewSender(context.Background(), out, Chunk{}, 10, 1<<30).Done(); err != nil {
		t.Fatal(err)
	}
	if m := <-out; !m.Done || len(m.Changes) != 0 {
		t.Errorf("an empty chunk's one message = %+v", m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := NewSender(ctx, make(chan Rows), Chunk{}, 10, 1<<30).Done(); !errors.Is(err, context.Canceled) {
		t.Errorf("Done on a blocked channel = %v, want context.Canceled", err)
	}
}

func TestReleasedMessagesAreClearedAndReused(t *testing.T) {
	out := make(chan Rows, 10)
	send := NewSender(context.Background(), out, Chunk{}, 5000, 1<<30)
	row := []any{int64(1)}
	for range RowsPerMessage {
		if err := send.Add(connectors.Change{Op: connectors.OpRead, After: row}); err != nil {
			t.Fatal(err)
		}
	}
	m := <-out
	if len(m.Changes) != RowsPerMessage {
		t.Fatalf("a message of %d rows", len(m.Changes))
	}
	full := m.Changes[:cap(m.Changes)]
	m.Release()
	for i := range full {
		if full[i].After != nil {
			t.Fatalf("change %d of a released message still holds its row", i)
		}
	}
	// An empty last message is released as well.
	if err := send.Done(); err != nil {
		t.Fatal(err)
	}
	(<-out).Release()
}
