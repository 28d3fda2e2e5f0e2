package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestLimitIsTheSmallerOfTheConfigAndTheTopic(t *testing.T) {
	ctx := context.Background()
	s, c := openSink(t, Config{MaxMessageBytes: 8 << 20})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "max.message.bytes": kadm.StringPtr("1048576"),
	}, "shop.s.small"); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"shop.s.small", "shop.s.created"} {
		if err := s.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	got := []int{s.Limit("shop.s.small"), s.Limit("shop.s.created"), s.Limit("shop.s.unknown")}
	if d := cmp.Diff([]int{1 << 20, 8 << 20, 8 << 20}, got); d != "" {
		t.Errorf("limits of a topic of 1 MiB, one liberator created and one not ensured (-want +got):\n%s", d)
	}
	// A refusal the described limit does not explain lowers the limit
	// below the refused record; one it explains does not.
	s.Refused("shop.s.created", 3<<20, 8<<20)
	s.Refused("shop.s.small", 3<<20, 4<<20)
	if got := []int{s.Limit("shop.s.created"), s.Limit("shop.s.small")}; !cmp.Equal(got, []int{3<<20 - 1, 1 << 20}) {
		t.Errorf("limits after refusals = %v, want [%d %d]", got, 3<<20-1, 1<<20)
	}
}

func TestCheckSizeCountsKeyValueHeadersAndFraming(t *testing.T) {
	s, _ := openSink(t, Config{MaxMessageBytes: 2048})
	// An outbox event's own headers count too.
	ev := &connectors.Event{Topic: "shop.s.t", Key: []byte("k"), Op: connectors.OpCreate, CommitTime: time.Unix(0, 0), TxID: "7",
		Headers: []connectors.Header{{Key: "id", Value: []byte("e-1")}, {Key: "type", Value: []byte("OrderPlaced")}}}
	headers := recordSize(nil, nil, s.headers(ev)) - recordOverhead
	ev.Value = make([]byte, 2048-recordOverhead-headers-len(ev.Key))
	if err := s.CheckSize(ev); err != nil {
		t.Errorf("a record of exactly the limit: %v", err)
	}
	ev.Value = append(ev.Value, 0)
	var tle *TooLargeError
	if err := s.CheckSize(ev); !errors.As(err, &tle) || tle.Size != 2049 || tle.Limit != 2048 || tle.Topic != "shop.s.t" {
		t.Fatalf("a record one byte over = %v, want a TooLargeError of 2049 bytes over 2048", err)
	}
	if !strings.Contains(tle.Error(), `the record is 2049 bytes, more than topic "shop.s.t" takes (2048 bytes`) {
		t.Errorf("message %q", tle.Error())
	}
}

// CheckSize keeps the limit of the topic it checked last; a refusal, or a
// topic whose limit the sink learns, must still take effect at once.
func TestCheckSizeFollowsALimitThatChanges(t *testing.T) {
	s, c := openSink(t, Config{MaxMessageBytes: 4096})
	ctx := context.Background()
	ev := &connectors.Event{Topic: "shop.s.t", Key: []byte("k"), Op: connectors.OpCreate, CommitTime: time.Unix(0, 0)}
	ev.Value = make([]byte, 3000-recordOverhead-(recordSize(nil, nil, s.headers(ev))-recordOverhead)-len(ev.Key))
	if err := s.CheckSize(ev); err != nil {
		t.Fatalf("a record of 3000 bytes under a limit of 4096: %v", err)
	}
	s.Refused("shop.s.t", 3000, 4096)
	var tle *TooLargeError
	if err := s.CheckSize(ev); !errors.As(err, &tle) || tle.Limit != 2999 {
		t.Fatalf("a record of the size Kafka refused = %v, want a TooLargeError over 2999 bytes", err)
	}

	ev.Topic = "shop.s.small"
	if err := s.CheckSize(ev); err != nil {
		t.Fatalf("a record of 3000 bytes for a topic not yet ensured: %v", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{
		"cleanup.policy": kadm.StringPtr("compact"), "max.message.bytes": kadm.StringPtr("2048"),
	}, "shop.s.small"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTopic(ctx, "shop.s.small"); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSize(ev); !errors.As(err, &tle) || tle.Limit != 2048 {
		t.Fatalf("a record of 3000 bytes once the topic's limit of 2048 is known = %v, want a TooLargeError", err)
	}
}

func badRow() *BadRow {
	return &BadRow{
		Table: "public.items", Topic: "shop.public.items", Op: connectors.OpUpdate,
		Key:    []Field{{"region", "eu"}, {"id", int64(42)}},
		Row:    []Field{{"region", "eu"}, {"id", int64(42)}, {"price", "NaN"}, {"note", strings.Repeat("n", 3000)}},
		Column: "price", Reason: ReasonEncode, Err: errors.New(`decimal value "NaN" is not a number`),
		TxID: "745", CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
	}
}

func TestADeadLetterIsJSONWithItsReasonInHeaders(t *testing.T) {
	s, _ := openSink(t, Config{})
	rec, err := s.deadLetterRecord("shop.dead_letter", badRow())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(rec.Key); got != `{"region":"eu","id":42}` {
		t.Errorf("key = %s", got)
	}
	var dl DeadLetter
	if err := json.Unmarshal(rec.Value, &dl); err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal(dl.Row, &row); err != nil {
		t.Fatal(err)
	}
	if row["price"] != "NaN" || row["id"] != float64(42) || dl.RowOmitted {
		t.Errorf("row = %v, omitted %v", row, dl.RowOmitted)
	}
	dl.Row, dl.Key = nil, nil
	want := DeadLetter{Table: "public.items", Topic: "shop.public.items", Op: "u", Column: "price", Reason: "encode",
		Error: `decimal value "NaN" is not a number`, TxID: "745", CommitTime: "2026-01-02T03:04:05.000006Z"}
	if d := cmp.Diff(want, dl); d != "" {
		t.Errorf("dead letter (-want +got):\n%s", d)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	for k, v := range map[string]string{
		HeaderOp: "u", HeaderTxID: "745", HeaderErrorTable: "public.items", HeaderErrorKey: "region=eu, id=42",
		HeaderErrorColumn: "price", HeaderErrorReason: "encode", HeaderErrorTopic: "shop.public.items",
		HeaderConnectTopic: "shop.public.items", HeaderConnectMessage: `decimal value "NaN" is not a number`,
	} {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	if _, ok := headers[HeaderErrorRowOmitted]; ok {
		t.Error("a row that fits is said to be omitted")
	}
}

func TestADeadLetterLeavesOutARowThatWouldNotFit(t *testing.T) {
	s, _ := openSink(t, Config{MaxMessageBytes: 2048})
	rec, err := s.deadLetterRecord("shop.dead_letter", badRow())
	if err != nil {
		t.Fatal(err)
	}
	var dl DeadLetter
	if err := json.Unmarshal(rec.Value, &dl); err != nil {
		t.Fatal(err)
	}
	if !dl.RowOmitted || string(dl.Row) != "null" {
		t.Errorf("row_omitted = %v, row = %s; want the row left out", dl.RowOmitted, dl.Row)
	}
	if rec.Headers[len(rec.Headers)-1].Key != HeaderErrorRowOmitted {
		t.Errorf("no %s header", HeaderErrorRowOmitted)
	}
	if n := recordSize(rec.Key, rec.Value, rec.Headers); n > 2048 {
		t.Errorf("the dead letter is %d bytes, more than its topic takes", n)
	}
	b := badRow()
	b.Key = []Field{{"id", strings.Repeat("k", 4000)}}
	if _, err := s.deadLetterRecord("shop.dead_letter", b); err == nil || !strings.Contains(err.Error(), "even without the row") {
		t.Errorf("a key too large for the dead-letter topic = %v", err)
	}
}

func TestTheDeadLetterTopicKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	s, _ := openSink(t, Config{MaxMessageBytes: 4 << 20})
	if err := s.EnsureDeadLetterTopic(ctx, "shop.dead_letter"); err != nil {
		t.Fatal(err)
	}
	rcs, err := s.adm.DescribeTopicConfigs(ctx, "shop.dead_letter")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("shop.dead_letter", nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" || c.Key == "max.message.bytes" {
			got[c.Key] = c.MaybeValue()
		}
	}
	if d := cmp.Diff(map[string]string{"cleanup.policy": "delete", "max.message.bytes": "4194304"}, got); d != "" {
		t.Errorf("dead-letter topic configs (-want +got):\n%s", d)
	}
}
