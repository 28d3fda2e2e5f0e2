package pipeline

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// committedKeys reads topic as a read_committed consumer does, up to its
// last stable offset, and counts each key's records.
func (e *loopEnv) committedKeys(t *testing.T, topic string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	out := map[string]int{}
	if end.Offset == 0 {
		return out
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for done := false; !done; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= end.Offset {
				done = true
			}
			if !r.Attrs.IsControl() && r.Offset < end.Offset {
				out[fmt.Sprintf("%x", r.Key)]++
			}
		})
	}
	return out
}

func exactlyOnce(e *loopEnv) {
	e.cfg.Delivery = config.DeliveryExactlyOnce
}

func TestRunExactlyOnceCommitsEventsWithTheirPosition(t *testing.T) {
	e := newLoopEnv(t)
	exactlyOnce(e)
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	for i := range 5 {
		src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, int64(2*i), "x", i+1), upsert(a, int64(2*i+1), "y", i+1)}, Checkpoint: fakePos(i + 1)}
	}
	waitFor(t, "position 5 acked", func() bool { return src.lastAck() == fakePos(5) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := e.stored(t); got != "fake:5" {
		t.Errorf("stored position = %q, want fake:5", got)
	}
	keys := e.committedKeys(t, "t.s.a")
	if len(keys) != 10 {
		t.Errorf("read_committed sees %d keys, want 10", len(keys))
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s seen %d times, want once", k, n)
		}
	}
}

func TestRunExactlyOnceAbortsAFailedTransactionAndResumesWithoutDoubles(t *testing.T) {
	e := newLoopEnv(t)
	exactlyOnce(e)
	e.cfg.CommitInterval = time.Hour // only the first position and the drain commit
	src := newFakeSource()
	_, done, runErr := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// Batch 2 is produced and acknowledged in the open transaction; batch
	// 3 cannot be encoded, which stops the run.
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "x", 2), upsert(a, 3, "x", 2)}, Checkpoint: fakePos(2)}
	bad := upsert(a, 4, "x", 3)
	bad.After[1] = 42
	src.batches <- connectors.Batch{Changes: []connectors.Change{bad}, Checkpoint: fakePos(3)}
	select {
	case <-done:
		if *runErr == nil {
			t.Fatal("Run = nil, want the encoding failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on a row it cannot encode")
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1: the failed transaction is aborted", got)
	}
	if keys := e.committedKeys(t, "t.s.a"); len(keys) != 1 {
		t.Errorf("read_committed sees keys %v, want only the committed key 1", keys)
	}
	// The next run starts over from position 1 and sends batch 2 again.
	src2 := newFakeSource()
	stop, _, _ := e.run(t, src2)
	src2.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "x", 2), upsert(a, 3, "x", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "position 2 acked", func() bool { return src2.lastAck() == fakePos(2) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	src2.mu.Lock()
	resume := string(src2.resume)
	src2.mu.Unlock()
	if resume != "fake:1" {
		t.Errorf("the second run resumed at %q, want fake:1", resume)
	}
	for k, n := range e.committedKeys(t, "t.s.a") {
		if n != 1 {
			t.Errorf("key %s seen %d times by read_committed, want once", k, n)
		}
	}
}

func TestRunExactlyOnceStopsFencedWhenASecondInstanceTakesOver(t *testing.T) {
	e := newLoopEnv(t)
	exactlyOnce(e)
	first := newFakeSource()
	_, done, runErr := e.run(t, first)
	a := table("a")
	first.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return first.lastAck() == fakePos(1) })
	firstP := e.p

	second := newFakeSource()
	stop, _, _ := e.run(t, second)
	// The second instance is open once its source is: its producer was
	// initialized before.
	waitFor(t, "the second instance to start", func() bool {
		second.mu.Lock()
		defer second.mu.Unlock()
		return second.resume != nil
	})
	// The first one's next write is refused; it stops, not retried.
	first.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "first", 2)}, Checkpoint: fakePos(2)}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the fenced instance did not stop")
	}
	var fe *kafka.FencedError
	if !errors.As(*runErr, &fe) {
		t.Fatalf("Run of the fenced instance = %v, want a *kafka.FencedError", *runErr)
	}
	if got := first.lastAck(); got != fakePos(1) {
		t.Errorf("the fenced instance acked %v, want fake:1 only", got)
	}
	if st, _ := firstP.status.State(); st == "retrying" {
		t.Error("the fenced instance retries")
	}
	second.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "second", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "position 2 acked by the second instance", func() bool { return second.lastAck() == fakePos(2) })
	if err := stop(); err != nil {
		t.Fatalf("Run of the second instance = %v", err)
	}
	keys := e.committedKeys(t, "t.s.a")
	if len(keys) != 2 {
		t.Errorf("read_committed sees keys %v, want 1 and 2", keys)
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("key %s seen %d times, want once", k, n)
		}
	}
}

func TestRunExactlyOnceStopsFencedWhileIdle(t *testing.T) {
	defer func(d time.Duration) { idleCommitEvery = d }(idleCommitEvery)
	idleCommitEvery = 50 * time.Millisecond
	e := newLoopEnv(t)
	exactlyOnce(e)
	first := newFakeSource()
	_, done, runErr := e.run(t, first)
	a := table("a")
	first.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return first.lastAck() == fakePos(1) })
	second := newFakeSource()
	stop, _, _ := e.run(t, second)
	// No more changes reach the first instance: it learns of the takeover
	// when it writes its position again.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle fenced instance did not stop")
	}
	var fe *kafka.FencedError
	if !errors.As(*runErr, &fe) {
		t.Fatalf("Run of the fenced instance = %v, want a *kafka.FencedError", *runErr)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run of the second instance = %v", err)
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1", got)
	}
}

// committedIDs decodes the keys committedKeys counts into the ids of table
// a's rows.
func (e *loopEnv) committedIDs(t *testing.T, topic string) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	for k, n := range e.committedKeys(t, topic) {
		raw, err := hex.DecodeString(k)
		if err != nil {
			t.Fatal(err)
		}
		key, err := e.reg.Decode(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		out[key.(map[string]any)["id"].(int64)] = n
	}
	return out
}

// A re-snapshot with reconcile reads its topic as a read_committed
// consumer before it tombstones; the transaction it commits for that read
// must carry the position that covers every record in it. Here the run
// fails right after the batch that ends the re-snapshot: none of that
// batch's rows may be committed, since its position is not, and the next
// run, which sends the batch again, leaves each row in the topic once.
func TestRunExactlyOnceReconcileCommitsNoRowAheadOfItsPosition(t *testing.T) {
	e := newLoopEnv(t)
	exactlyOnce(e)
	e.cfg.CommitInterval = time.Hour // only the reconcile's read commits
	src := newFakeSource()
	_, done, runErr := e.run(t, src)
	a := table("a")
	var before []connectors.Change
	for i := range 10 {
		before = append(before, upsert(a, int64(i), "old", 1))
	}
	src.batches <- connectors.Batch{Changes: before, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// Rows 0 to 4 are gone; the re-snapshot finds 5 to 9, the last three
	// in the batch that ends it.
	reread := func(from, to int) []connectors.Change {
		var out []connectors.Change
		for i := from; i < to; i++ {
			c := upsert(a, int64(i), "new", 2)
			c.Op = connectors.OpRead
			out = append(out, c)
		}
		return out
	}
	begin := connectors.Batch{Changes: reread(5, 7), Checkpoint: fakePos(2), Reconcile: []connectors.ReconcileMark{{Table: "s.a"}}}
	end := connectors.Batch{Changes: reread(7, 10), Checkpoint: fakePos(3), Reconcile: []connectors.ReconcileMark{{Table: "s.a", End: true}}}
	src.batches <- begin
	src.batches <- end
	bad := upsert(a, 30, "x", 4)
	bad.After[1] = 42
	src.batches <- connectors.Batch{Changes: []connectors.Change{bad}, Checkpoint: fakePos(4)}
	select {
	case <-done:
		if *runErr == nil {
			t.Fatal("Run = nil, want the encoding failure")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on a row it cannot encode")
	}
	if got := e.stored(t); got != "fake:2" {
		t.Errorf("stored position = %q, want fake:2, committed before the re-snapshot's last batch", got)
	}
	want := map[int64]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 1, 8: 1, 9: 1}
	if got := e.committedIDs(t, "t.s.a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records per id seen by read_committed = %v, want %v: the rows of the batch that ends the re-snapshot are committed ahead of its position", got, want)
	}

	// The next run resumes at position 2, with the re-snapshot under way,
	// and sends its last batch again.
	src2 := newFakeSource()
	stop, _, _ := e.run(t, src2)
	src2.batches <- end
	waitFor(t, "position 3 acked", func() bool { return src2.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Rows 0 to 4: the row and its tombstone; 5 to 9: the old row and the
	// re-snapshot's, once each.
	want = map[int64]int{0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2}
	if got := e.committedIDs(t, "t.s.a"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records per id seen by read_committed = %v, want %v", got, want)
	}
}
