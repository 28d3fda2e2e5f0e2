package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/goleak"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTailPrintsAKeyInPlainTextAsItsText(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(srfake.NewRegistry().Handler())
	defer srv.Close()
	cfg := &config.Config{Kafka: kafka.Config{Brokers: c.ListenAddrs()}, Registry: config.RegistryConfig{URL: srv.URL}}
	cfg.Defaults()
	reg, err := cfg.NewRegistry(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := avro.MustParse(`{"type": "record", "name": "OrderPlaced", "fields": [{"name": "order_id", "type": "long"}]}`)
	id, err := reg.Register(ctx, "shop.Order.events-value", s)
	if err != nil {
		t.Fatal(err)
	}
	value, err := schema.AppendJSON(schema.AppendHeader(nil, id), s, []byte(`{"order_id": 102}`))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "shop.Order.events"); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: "shop.Order.events", Key: []byte("102"), Value: value, Headers: []kgo.RecordHeader{{Key: "type", Value: []byte("OrderPlaced")}}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Tail(ctx, cfg, Options{Topic: "shop.Order.events"}, &out); err != nil {
		t.Fatal(err)
	}
	var got tailEvent
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%s: %v", out.Bytes(), err)
	}
	want := tailEvent{Topic: "shop.Order.events", Key: "102", Value: map[string]any{"order_id": float64(102)}, Headers: map[string]string{"type": "OrderPlaced"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("printed event (-want +got):\n%s", d)
	}
}
