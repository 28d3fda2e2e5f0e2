package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestKeyPartitionerPlacesKeysAsTheStickyKeyPartitioner(t *testing.T) {
	ours := newKeyPartitioner().ForTopic("t")
	theirs := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for n := 1; n <= 9; n++ {
		for i := range 2000 {
			r := &kgo.Record{Key: []byte(fmt.Sprintf("\x00\x00\x00\x00\x01key-%d", i))}
			if got, want := ours.Partition(r, n), theirs.Partition(r, n); got != want {
				t.Fatalf("key %q among %d partitions: partition %d, want %d", r.Key, n, got, want)
			}
			if !ours.RequiresConsistency(r) {
				t.Fatalf("key %q: a keyed record must keep to its partition", r.Key)
			}
		}
	}
	if _, ok := ours.(kgo.TopicPartitionerOnNewBatch); !ok {
		t.Error("records without a key no longer move to another partition on a new batch")
	}
}

// Every record of a key lands in the partition Kafka's Java client would
// pick, in the order produced.
func TestProducedRecordsLandInTheirKeysPartitions(t *testing.T) {
	const partitions, keys, versions = 3, 300, 3
	s, _ := openSink(t, Config{Partitions: partitions})
	ctx := context.Background()
	topic := "shop.public.placed"
	if err := s.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	p := NewPromise(func(_ Delivery, err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
		wg.Done()
	})
	for v := range versions {
		for k := range keys {
			wg.Add(1)
			ev := connectors.Event{Topic: topic, Op: connectors.OpUpdate, CommitTime: time.Now(),
				Key: fmt.Appendf(nil, "key-%d", k), Value: fmt.Appendf(nil, "%d", v)}
			s.Produce(ctx, &ev, p)
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := map[string]int{}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for seen := 0; seen < keys*versions; {
		fs := cl.PollFetches(pctx)
		if err := pctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", seen, keys*versions, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			seen++
			if want := keyPartition(string(r.Key), partitions); r.Partition != want {
				t.Errorf("key %q in partition %d, want %d", r.Key, r.Partition, want)
			}
			if want := fmt.Sprint(next[string(r.Key)]); string(r.Value) != want {
				t.Errorf("key %q: version %s, want %s", r.Key, r.Value, want)
			}
			next[string(r.Key)]++
		})
	}
}
