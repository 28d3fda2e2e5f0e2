package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// A table's first events go to a topic the sink has just created. They
// must not wait for the client's next metadata refresh (MetadataMinAge,
// 5 s by default), and the client has already been told, by an earlier
// produce, that other topics exist.
func TestTheFirstEventOfANewTopicIsAcknowledgedWithinAHundredMilliseconds(t *testing.T) {
	s, _ := openSink(t, Config{})
	ctx := context.Background()
	produce := func(topic string) time.Duration {
		t.Helper()
		start := time.Now()
		if err := s.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		s.Produce(ctx, &connectors.Event{Topic: topic, Key: []byte("k"), Value: []byte("v"), CommitTime: time.Now()},
			NewPromise(func(_ Delivery, err error) { done <- err }))
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no acknowledgement from new topic %s after 10 s", topic)
		}
		return time.Since(start)
	}
	produce("shop.public.first")
	for _, topic := range []string{"shop.public.second", "shop.public.third", "shop.public.fourth"} {
		if d := produce(topic); d > 100*time.Millisecond {
			t.Errorf("topic %s: first event acknowledged %v after its topic was created; want under 100ms", topic, d)
		} else {
			t.Logf("topic %s: created and first event acknowledged in %v", topic, d)
		}
	}
}
