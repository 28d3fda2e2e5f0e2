package kafka

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// openTxnSink opens a transactional sink of id on cluster c.
func openTxnSink(t *testing.T, c *kfake.Cluster, id string) *Sink {
	t.Helper()
	s, err := New(Config{Brokers: c.ListenAddrs(), TopicPrefix: "shop"}, slog.New(slog.DiscardHandler), WithTransactions(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// produceWait produces n events to topic and waits for their acks.
func produceWait(t *testing.T, s *Sink, topic string, n int) {
	t.Helper()
	errs := make(chan error, n)
	p := NewPromise(func(_ Delivery, err error) { errs <- err })
	for i := range n {
		s.Produce(context.Background(), &connectors.Event{Topic: topic, Key: []byte{byte(i)}, Value: []byte("v"), Op: connectors.OpCreate}, p)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
}

// countCommitted counts the records of topic partition 0 that a
// read_committed consumer sees, and returns the partition's last stable
// offset.
func countCommitted(t *testing.T, c *kfake.Cluster, topic string) (int, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	lso, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := lso.Lookup(topic, 0)
	n := 0
	err = (&Sink{cfg: Config{Brokers: c.ListenAddrs(), ClientID: "test"}}).scan(ctx, topic, map[int32][2]int64{0: {0, end.Offset}}, func(*kgo.Record) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	return n, end.Offset
}

func TestTransactionalSinkCommitsAndACrashLeavesNothingVisible(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := openTxnSink(t, c, "liberator-shop")
	if err := s.EnsureTopic(context.Background(), "shop.t"); err != nil {
		t.Fatal(err)
	}
	produceWait(t, s, "shop.t", 3)
	if err := s.CommitTransaction(context.Background()); err != nil {
		t.Fatalf("CommitTransaction = %v", err)
	}
	// Acknowledged, never committed: the process dies.
	produceWait(t, s, "shop.t", 5)
	s.Close()
	if n, _ := countCommitted(t, c, "shop.t"); n != 3 {
		t.Fatalf("read_committed sees %d records after the crash, want the 3 committed", n)
	}
	// The next start fences the dead producer and aborts its transaction.
	s2 := openTxnSink(t, c, "liberator-shop")
	n, lso := countCommitted(t, c, "shop.t")
	if n != 3 {
		t.Errorf("read_committed sees %d records after the restart, want 3", n)
	}
	// 3 records, a commit marker, 5 aborted records, an abort marker.
	if lso != 10 {
		t.Errorf("last stable offset = %d after the restart, want 10: the open transaction is aborted at once", lso)
	}
	produceWait(t, s2, "shop.t", 1)
	if err := s2.CommitTransaction(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := countCommitted(t, c, "shop.t"); n != 4 {
		t.Errorf("read_committed sees %d records, want 4", n)
	}
}

func TestTransactionalSinkIsFencedByASecondOneOfItsID(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := openTxnSink(t, c, "liberator-shop")
	if err := first.EnsureTopic(context.Background(), "shop.t"); err != nil {
		t.Fatal(err)
	}
	produceWait(t, first, "shop.t", 2)
	openTxnSink(t, c, "liberator-shop")
	// The first one's records were acknowledged; its commit is refused.
	err = first.CommitTransaction(context.Background())
	var fe *FencedError
	if !errors.As(err, &fe) {
		t.Fatalf("CommitTransaction after a takeover = %v, want a *FencedError", err)
	}
	if connectors.IsRetryable(err) {
		t.Errorf("a fenced producer's error is retryable: %v", err)
	}
	if n, _ := countCommitted(t, c, "shop.t"); n != 0 {
		t.Errorf("read_committed sees %d records of the fenced producer, want none", n)
	}
}

func TestReadOffsetReadsCommittedPositionsOnly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := openTxnSink(t, c, "liberator-shop")
	ctx := context.Background()
	if err := s.WriteOffset(ctx, "shop", Stored{Position: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitTransaction(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteOffset(ctx, "shop", Stored{Position: "p2"}); err != nil {
		t.Fatal(err)
	}
	s.Close() // p2 is never committed
	s2 := openTxnSink(t, c, "liberator-shop")
	st, err := s2.ReadOffset(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || st.Position != "p1" {
		t.Errorf("ReadOffset = %+v, want the committed position p1", st)
	}
}

func TestCheckTransactionsDoesNotFenceARunningPipeline(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	running := openTxnSink(t, c, TransactionalID("shop"))
	if err := running.EnsureTopic(context.Background(), "shop.t"); err != nil {
		t.Fatal(err)
	}
	produceWait(t, running, "shop.t", 1)
	if err := (Config{Brokers: c.ListenAddrs(), TopicPrefix: "shop"}).CheckTransactions(context.Background(), "shop"); err != nil {
		t.Fatalf("CheckTransactions = %v", err)
	}
	if err := running.CommitTransaction(context.Background()); err != nil {
		t.Errorf("the running pipeline's commit after a check = %v, want nil", err)
	}
}
