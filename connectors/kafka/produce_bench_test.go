package kafka

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// BenchmarkProduce produces snapshot rows of about 200 bytes through the
// sink to kfake, as the pipeline does: a size check, then Produce, with one
// promise per batch of 1,000. The broker's CPU is part of the figure.
func BenchmarkProduce(b *testing.B) {
	s, _ := openSink(b, Config{})
	ctx := context.Background()
	topic := "shop.public.bench"
	if err := s.EnsureTopic(ctx, topic); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	p := NewPromise(func(_ Delivery, err error) {
		if err != nil {
			b.Error(err)
		}
		wg.Done()
	})
	value := make([]byte, 190)
	pos := slicePos{n: 1, tables: []string{"public.bench"}}
	at := time.Now()
	keys := make([]byte, 8*b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		key := keys[8*i : 8*i+8 : 8*i+8]
		copy(key, []byte{0, 0, 0, 0, 1, byte(i), byte(i >> 8), byte(i >> 16)})
		ev := connectors.Event{Topic: topic, Op: connectors.OpRead, Pos: pos, CommitTime: at, Key: key, Value: value}
		if err := s.CheckSize(&ev); err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		s.Produce(ctx, &ev, p)
	}
	wg.Wait()
}
