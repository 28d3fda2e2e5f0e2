package kafka

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

// openSink starts a kfake cluster and opens a sink on it.
func openSink(t testing.TB, cfg Config) (*Sink, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.Brokers = c.ListenAddrs()
	if cfg.TopicPrefix == "" {
		cfg.TopicPrefix = "shop"
	}
	s, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, c
}

func TestStoredRoundTripsAndReadsBarePositions(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  *Stored
	}{
		{"a bare position of an earlier version", "pg:0/16B3748", &Stored{V: 1, Position: "pg:0/16B3748"}},
		{"a stored position with its identity and a reconcile", `{"v":1,"source":"postgres system 7 database d slot s","position":"pg:0/1","reconcile":{"public.t":{"topic":"shop.public.t","start":{"0":12}}}}`,
			&Stored{V: 1, Source: "postgres system 7 database d slot s", Position: "pg:0/1",
				Reconcile: map[string]ReconcileStart{"public.t": {Topic: "shop.public.t", Start: map[int32]int64{0: 12}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStored([]byte(tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("ParseStored (-want +got):\n%s", d)
			}
			b, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseStored(b)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(got, again); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
	for _, bad := range []string{`{"v":2,"position":"x"}`, `{"v":1}`, `{"v":1,"position":"x","other":1}`} {
		if _, err := ParseStored([]byte(bad)); err == nil {
			t.Errorf("ParseStored(%s) = nil error", bad)
		}
	}
}

func TestReadOffsetFindsThePositionInATopicOfManyPartitions(t *testing.T) {
	ctx := context.Background()
	s, _ := openSink(t, Config{OffsetsTopic: "offsets3"})
	if _, err := s.adm.CreateTopic(ctx, 3, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "offsets3"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		if err := s.WriteOffset(ctx, name, Stored{Position: "pos-of-" + name + "-1"}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteOffset(ctx, name, Stored{Position: "pos-of-" + name + "-2"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		st, err := s.ReadOffset(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st == nil || st.Position != "pos-of-"+name+"-2" {
			t.Errorf("ReadOffset(%q) = %+v, want its last position", name, st)
		}
	}
	if st, err := s.ReadOffset(ctx, "none"); err != nil || st != nil {
		t.Errorf("ReadOffset of a key never written = %+v, %v; want nil, nil", st, err)
	}
}

func TestTheOffsetsTopicGetsNoEntityTopicConfigs(t *testing.T) {
	ctx := context.Background()
	s, _ := openSink(t, Config{TopicConfigs: map[string]string{"retention.bytes": "1024"}})
	if _, err := s.ReadOffset(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTopic(ctx, "shop.s.t"); err != nil {
		t.Fatal(err)
	}
	configs := func(topic string) map[string]string {
		rcs, err := s.adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range rc.Configs {
			if c.Source == 1 { // DYNAMIC_TOPIC_CONFIG: set on the topic
				out[c.Key] = c.MaybeValue()
			}
		}
		return out
	}
	if d := cmp.Diff(map[string]string{"cleanup.policy": "compact"}, configs("_liberator_offsets")); d != "" {
		t.Errorf("offsets topic configs (-want +got):\n%s", d)
	}
	if got := configs("shop.s.t")["retention.bytes"]; got != "1024" {
		t.Errorf("entity topic retention.bytes = %q, want the configured 1024", got)
	}
}

func TestGhostsAreTheLiveKeysNothingWroteSinceTheStart(t *testing.T) {
	ctx := context.Background()
	s, _ := openSink(t, Config{Partitions: 2})
	topic := "shop.s.t"
	produce := func(key string, value string) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: append([]byte{0, 0, 0, 0, 1}, key...)}
		if value != "" {
			r.Value = []byte(value)
		}
		if err := s.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EnsureTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}
	// Before the re-snapshot: a, b, c, d live; e deleted; f deleted and
	// written again.
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		produce(k, "v1")
	}
	produce("e", "")
	produce("f", "")
	produce("f", "v2")
	start, err := s.BeginReconcile(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	// The re-snapshot reads b and f; the stream deletes c and inserts g.
	produce("b", "v2")
	produce("f", "v3")
	produce("c", "")
	produce("g", "v1")
	ghosts, err := s.Ghosts(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range ghosts {
		got = append(got, string(k[5:]))
	}
	if d := cmp.Diff([]string{"a", "d"}, got); d != "" {
		t.Errorf("ghosts (-want +got):\n%s", d)
	}
}

func TestWriteOffsetReturnsWhenItsContextEndsWhileKafkaIsUnreachable(t *testing.T) {
	cut := harness.NewCutter()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(cut.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := New(Config{Brokers: c.ListenAddrs(), TopicPrefix: "shop"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteOffset(context.Background(), "p", Stored{Position: "pg:0/1"}); err != nil {
		t.Fatalf("WriteOffset = %v", err)
	}

	cut.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.WriteOffset(ctx, "p", Stored{Position: "pg:0/2"}) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) || !connectors.IsRetryable(err) {
			t.Errorf("WriteOffset with Kafka unreachable = %v, want a retryable deadline exceeded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WriteOffset did not return when its context ended")
	}
}
