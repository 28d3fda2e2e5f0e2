package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/outbox"
)

// outboxRows is the outbox table of the run-loop tests, with Debezium's
// column names.
var outboxRows = &connectors.Table{Schema: "s", Name: "ob", Key: []int{0}, Columns: []connectors.Column{
	{Name: "id", Type: connectors.Type{Kind: connectors.KindString}, SQLType: "text"},
	{Name: "aggregatetype", Type: connectors.Type{Kind: connectors.KindString}, SQLType: "text"},
	{Name: "aggregateid", Type: connectors.Type{Kind: connectors.KindString}, SQLType: "text"},
	{Name: "type", Type: connectors.Type{Kind: connectors.KindString}, SQLType: "text"},
	{Name: "payload", Type: connectors.Type{Kind: connectors.KindJSON}, SQLType: "jsonb"},
}}

// orderEvent is the payload schema of the Order events.
const orderEvent = `{"type": "record", "name": "OrderPlaced", "namespace": "shop", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}]}`

// outboxOp is a change of the outbox table at pos: an insert, or with op
// an update or a delete of the same row.
func outboxOp(op connectors.Op, id, aggType, aggID, payload string, pos int) connectors.Change {
	row := []any{id, aggType, aggID, "OrderPlaced", payload}
	c := connectors.Change{Op: op, Table: outboxRows, Pos: fakePos(pos), CommitTime: time.Unix(1_700_000_000, 0)}
	if op == connectors.OpDelete {
		c.Before = row
	} else {
		c.After = row
	}
	return c
}

func outboxInsert(id, aggID, payload string, pos int) connectors.Change {
	return outboxOp(connectors.OpCreate, id, "Order", aggID, payload, pos)
}

// withOutbox makes s.ob an outbox routed to t.<aggregate type>.events and
// registers the Order events' schema.
func (e *loopEnv) withOutbox(t *testing.T) {
	t.Helper()
	e.cfg.Outbox = []outbox.Config{outbox.Config{Table: "s.ob", Topic: "t.${aggregate_type}.events"}.WithDefaults(e.cfg.Kafka.TopicPrefix)}
	if _, err := e.reg.Register(context.Background(), "t.Order.events-value", avro.MustParse(orderEvent)); err != nil {
		t.Fatal(err)
	}
}

// event is an outbox event as a consumer reads it.
type event struct {
	Key     string
	Headers map[string]string
	Value   map[string]any
}

func (e *loopEnv) events(t *testing.T, topic string) []event {
	t.Helper()
	var out []event
	for _, r := range e.records(t, topic) {
		ev := event{Key: string(r.Key), Headers: map[string]string{}}
		for _, h := range r.Headers {
			ev.Headers[h.Key] = string(h.Value)
		}
		v, err := e.reg.Decode(context.Background(), r.Value)
		if err != nil {
			t.Fatalf("decode the value of an event of %s: %v", topic, err)
		}
		ev.Value = v.(map[string]any)
		out = append(out, ev)
	}
	return out
}

func TestOutboxInsertIsAnEventOnItsRoutedTopicAndUpdatesAndDeletesAreNothing(t *testing.T) {
	e := newLoopEnv(t)
	e.withOutbox(t)
	if _, err := e.reg.Register(context.Background(), "t.Payment.events-value", avro.MustParse(
		`{"type": "record", "name": "PaymentRefunded", "fields": [{"name": "amount", "type": "long"}]}`)); err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	// A service's transaction: the order, its event, and the event's row
	// deleted at once; then an update of an outbox row, which is no event.
	src.batches <- connectors.Batch{Changes: []connectors.Change{
		upsert(a, 1, "placed", 1),
		outboxInsert("e-1", "o-1", `{"order_id": "o-1", "total": "12.30"}`, 1),
		outboxOp(connectors.OpDelete, "e-1", "Order", "o-1", `{"order_id": "o-1", "total": "12.30"}`, 1),
	}, Checkpoint: fakePos(1)}
	src.batches <- connectors.Batch{Changes: []connectors.Change{
		outboxOp(connectors.OpUpdate, "e-0", "Order", "o-0", `{"order_id": "o-0", "total": "1.00"}`, 2),
		outboxOp(connectors.OpCreate, "e-2", "Payment", "p-7", `{"amount": 500}`, 2),
		outboxInsert("e-3", "o-1", `{"total": 4, "order_id": "o-1"}`, 2),
	}, Checkpoint: fakePos(2)}
	waitFor(t, "position 2 acked", func() bool { return src.lastAck() == fakePos(2) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := e.stored(t); got != "fake:2" {
		t.Errorf("stored position = %q, want fake:2", got)
	}
	orders := e.events(t, "t.Order.events")
	want := []event{
		{Key: "o-1", Headers: map[string]string{"id": "e-1", "type": "OrderPlaced"}, Value: map[string]any{"order_id": "o-1", "total": "12.30"}},
		{Key: "o-1", Headers: map[string]string{"id": "e-3", "type": "OrderPlaced"}, Value: map[string]any{"order_id": "o-1", "total": "4.00"}},
	}
	// The headers every event has (op, commit_ts, pos, txid) are the
	// sink's; these are the outbox's.
	for i := range orders {
		for k := range orders[i].Headers {
			if k != "id" && k != "type" {
				delete(orders[i].Headers, k)
			}
		}
		orders[i].Value["total"] = ratText(t, orders[i].Value["total"])
	}
	if d := cmp.Diff(want, orders); d != "" {
		t.Errorf("events of t.Order.events, in commit order, none for the update or the delete (-want +got):\n%s", d)
	}
	payments := e.events(t, "t.Payment.events")
	if len(payments) != 1 || payments[0].Key != "p-7" || payments[0].Headers["id"] != "e-2" || payments[0].Value["amount"] != int64(500) {
		t.Errorf("events of t.Payment.events = %+v, want the one refund keyed p-7", payments)
	}
	if n := len(e.records(t, "t.s.a")); n != 1 {
		t.Errorf("%d records of the entity table beside the outbox, want 1", n)
	}
}

// ratText spells a decoded decimal as its text with two fraction digits.
func ratText(t *testing.T, v any) string {
	t.Helper()
	r, ok := v.(interface{ FloatString(int) string })
	if !ok {
		t.Fatalf("decimal decoded as %T", v)
	}
	return r.FloatString(2)
}

// badPayloadLog is three batches of one event each; the second's total
// is no decimal.
func badPayloadLog() []connectors.Batch {
	return []connectors.Batch{
		{Changes: []connectors.Change{outboxInsert("e-1", "o-1", `{"order_id": "o-1", "total": 1}`, 1)}, Checkpoint: fakePos(1)},
		{Changes: []connectors.Change{outboxInsert("e-2", "o-2", `{"order_id": "o-2", "total": "ten"}`, 2)}, Checkpoint: fakePos(2)},
		{Changes: []connectors.Change{outboxInsert("e-3", "o-3", `{"order_id": "o-3", "total": 3}`, 3)}, Checkpoint: fakePos(3)},
	}
}

func TestOutboxPayloadThatDoesNotFitUnderFailStopsBeforeItNamingEventAndField(t *testing.T) {
	e := newLoopEnv(t)
	e.withOutbox(t)
	src := newLogSource(badPayloadLog()...)
	src.release(3)
	_, done, runErr := e.run(t, src)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop at the payload that does not fit")
	}
	var bre *BadRowError
	if !errors.As(*runErr, &bre) {
		t.Fatalf("Run = %v, want a *BadRowError", *runErr)
	}
	if connectors.IsRetryable(*runErr) {
		t.Errorf("a bad payload under fail is retryable: %v", *runErr)
	}
	for _, want := range []string{`bad outbox event e-2 of s.ob, field "payload.total", at position fake:2`, "is ten, not a decimal number", "set errors.on_bad_row to skip or dead_letter"} {
		if !strings.Contains(bre.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, bre)
		}
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1: the position stays before the event", got)
	}
	var ids []string
	for _, ev := range e.events(t, "t.Order.events") {
		ids = append(ids, ev.Headers["id"])
	}
	if !slices.Equal(ids, []string{"e-1"}) {
		t.Errorf("events = %v, want [e-1]: nothing at or after the bad one", ids)
	}
	if got := e.badRows("s.ob", "failed"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=failed} = %v, want 1", got)
	}
}

func TestOutboxPayloadThatDoesNotFitIsDeadLetteredAndTheEventsAfterItPublished(t *testing.T) {
	e := newLoopEnv(t)
	e.withOutbox(t)
	e.cfg.Errors.OnBadRow = config.OnBadRowDeadLetter
	e.cfg.Errors.DeadLetterTopic = "t.bad"
	src := newLogSource(badPayloadLog()...)
	src.release(3)
	stop, _, _ := e.run(t, src)
	waitFor(t, "position 3 acked", func() bool { return src.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	var ids []string
	for _, ev := range e.events(t, "t.Order.events") {
		ids = append(ids, ev.Headers["id"])
	}
	if !slices.Equal(ids, []string{"e-1", "e-3"}) {
		t.Errorf("events = %v, want [e-1 e-3]", ids)
	}
	recs := e.records(t, "t.bad")
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	var dl kafka.DeadLetter
	if err := json.Unmarshal(recs[0].Value, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Table != "s.ob" || dl.Topic != "t.Order.events" || dl.Column != "payload.total" || dl.Reason != kafka.ReasonPayload ||
		dl.Position != "fake:2" || string(recs[0].Key) != `{"id":"e-2"}` || !strings.Contains(dl.Error, "is ten, not a decimal number") {
		t.Errorf("dead letter = %s, key %s", recs[0].Value, recs[0].Key)
	}
	var row map[string]any
	if err := json.Unmarshal(dl.Row, &row); err != nil {
		t.Fatalf("the dead letter's row %s: %v", dl.Row, err)
	}
	if d := cmp.Diff(map[string]any{"order_id": "o-2", "total": "ten"}, row["payload"]); d != "" {
		t.Errorf("the dead letter's payload, as JSON (-want +got):\n%s", d)
	}
	if got := e.badRows("s.ob", "dead_lettered"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=dead_lettered} = %v, want 1", got)
	}
}

// ackRecorder is a fake source that remembers whether an ack passed a
// position while a test held an event.
type ackRecorder struct {
	*fakeSource
	mu      sync.Mutex
	holding bool
	passed  []connectors.Position
}

func (s *ackRecorder) Ack(ctx context.Context, pos connectors.Position) error {
	s.mu.Lock()
	if s.holding && int(pos.(fakePos)) >= 2 {
		s.passed = append(s.passed, pos)
	}
	s.mu.Unlock()
	return s.fakeSource.Ack(ctx, pos)
}

func TestOutboxPositionNeverPassesAnEventKafkaHasNotAcknowledged(t *testing.T) {
	defer func(d time.Duration) { stallAfter = d }(stallAfter)
	stallAfter = 300 * time.Millisecond
	e := newLoopEnv(t)
	e.withOutbox(t)
	src := &ackRecorder{fakeSource: newFakeSource()}
	stop, done, runErr := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })

	// The broker refuses every produce request with an event of the
	// outbox, with an error the producer retries, until the test lets it
	// through; other requests, such as the offsets topic's, go through.
	// Requests name the topic by its id. NOT_ENOUGH_REPLICAS holds back
	// only the refused partition (the producer refreshes its metadata
	// before it tries again, within about 5 s). With REQUEST_TIMED_OUT
	// the producer held back the offsets topic's record too, and the test
	// passed even when the event's batch did not wait for it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	created, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "t.Order.events")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		released bool
		held     = make(chan struct{})
		once     sync.Once
	)
	e.cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		req := kreq.(*kmsg.ProduceRequest)
		if released || !slices.ContainsFunc(req.Topics, func(tp kmsg.ProduceRequestTopic) bool {
			return tp.Topic == "t.Order.events" || tp.TopicID == created.ID
		}) {
			return nil, nil, false
		}
		once.Do(func() { close(held) })
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, pp := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.ErrorCode = pp.Partition, kerr.NotEnoughReplicas.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	src.mu.Lock()
	src.holding = true
	src.mu.Unlock()
	src.batches <- connectors.Batch{Changes: []connectors.Change{outboxInsert("e-1", "o-1", `{"order_id": "o-1", "total": 1}`, 2)}, Checkpoint: fakePos(2)}
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "y", 3)}, Checkpoint: fakePos(3)}
	select {
	case <-held:
	case <-done:
		t.Fatalf("Run = %v before the event was produced", *runErr)
	case <-time.After(10 * time.Second):
		t.Fatal("the event was never produced")
	}
	// Stalled: the pipeline has waited stallAfter, thirty commit
	// intervals, for the event's acknowledgement, and has stored and
	// acked what it could.
	waitFor(t, "the pipeline to stall on the held event", func() bool { st, _ := e.p.State(); return st == "stalled" })
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v while Kafka holds the event, want fake:1", got)
	}
	src.mu.Lock()
	src.holding = false
	src.mu.Unlock()
	mu.Lock()
	released = true
	mu.Unlock()
	waitFor(t, "position 3 acked once Kafka acknowledges the event", func() bool { return src.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.passed) > 0 {
		t.Errorf("acked %v while Kafka had not acknowledged the event at fake:2", src.passed)
	}
	if got := e.events(t, "t.Order.events"); len(got) != 1 || got[0].Headers["id"] != "e-1" {
		t.Errorf("events = %+v, want e-1 once", got)
	}
}
