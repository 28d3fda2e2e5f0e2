package outbox

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/liberator-cdc/liberator/connectors"
)

func validTopic(s string) error {
	if s == "" || strings.ContainsAny(s, " /") {
		return fmt.Errorf("%q is not a topic name", s)
	}
	return nil
}

func tableID(s string) (string, error) {
	if !strings.Contains(s, ".") {
		return "public." + s, nil
	}
	return s, nil
}

func id(s string) string { v, _ := tableID(s); return v }

var outboxTable = &connectors.Table{Schema: "public", Name: "outbox", Key: []int{0}, Columns: []connectors.Column{
	{Name: "id", Type: connectors.Type{Kind: connectors.KindUUID}},
	{Name: "aggregatetype", Type: connectors.Type{Kind: connectors.KindString}},
	{Name: "aggregateid", Type: connectors.Type{Kind: connectors.KindInt64}},
	{Name: "type", Type: connectors.Type{Kind: connectors.KindString}},
	{Name: "payload", Type: connectors.Type{Kind: connectors.KindJSON}},
	{Name: "tenant", Type: connectors.Type{Kind: connectors.KindString}, Nullable: true},
}}

func TestARowBecomesAnEventKeyedByItsAggregate(t *testing.T) {
	cfg := Config{Table: "outbox", Headers: []string{"tenant"}}.WithDefaults("shop")
	r := New([]Config{cfg}, id)
	rt := r.Table("public.outbox")
	if rt == nil {
		t.Fatal("the outbox table has no route")
	}
	ev, err := rt.FromRow(outboxTable, []any{"6f1c0b7e-0000-4000-8000-000000000001", "Order", int64(42), "OrderPlaced", `{"total": 1}`, "acme"}, validTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := &Event{
		ID: "6f1c0b7e-0000-4000-8000-000000000001", AggregateType: "Order", AggregateID: "42", Type: "OrderPlaced",
		Topic: "shop.Order", Key: []byte("42"), Payload: []byte(`{"total": 1}`),
		Headers: []connectors.Header{{Key: "id", Value: []byte("6f1c0b7e-0000-4000-8000-000000000001")}, {Key: "type", Value: []byte("OrderPlaced")}, {Key: "tenant", Value: []byte("acme")}},
	}
	if d := cmp.Diff(want, ev, cmpopts.IgnoreUnexported(Event{})); d != "" {
		t.Errorf("event (-want +got):\n%s", d)
	}
	if got := rt.Subject(ev); got != "shop.Order-value" {
		t.Errorf("subject %q, want shop.Order-value", got)
	}
}

func TestRoutingByTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, template, aggType, typ, want string
	}{
		{"by aggregate type", "${aggregate_type}.events", "Order", "Placed", "Order.events"},
		{"by type", "events.${type}", "Order", "Order Placed", "events.Order_Placed"},
		{"fixed", "domain-events", "Order", "Placed", "domain-events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := New([]Config{Config{Table: "outbox", Topic: tc.template}.WithDefaults("p")}, id).Table("public.outbox")
			ev, err := rt.FromRow(outboxTable, []any{"e1", tc.aggType, int64(1), tc.typ, `{}`, nil}, validTopic)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Topic != tc.want {
				t.Errorf("topic %q, want %q", ev.Topic, tc.want)
			}
		})
	}
}

func TestARecordThatCannotBeAnEventNamesItsField(t *testing.T) {
	rt := New([]Config{Config{Table: "outbox"}.WithDefaults("p")}, id).Table("public.outbox")
	for _, tc := range []struct {
		name  string
		row   []any
		field string
	}{
		{"a NULL aggregate id", []any{"e1", "Order", nil, "T", `{}`, nil}, "aggregateid"},
		{"a NULL payload", []any{"e1", "Order", int64(1), "T", nil, nil}, "payload"},
		{"an empty id", []any{"", "Order", int64(1), "T", `{}`, nil}, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := rt.FromRow(outboxTable, tc.row, validTopic)
			var ee *EventError
			if !errors.As(err, &ee) {
				t.Fatalf("got %v, want an *EventError", err)
			}
			if ee.Field != tc.field {
				t.Errorf("field %q, want %q", ee.Field, tc.field)
			}
			if ev == nil || len(ev.Fields()) == 0 {
				t.Error("the record's fields are not kept for a dead letter")
			}
		})
	}
}

func TestAPayloadInTheWireFormatIsPassedThrough(t *testing.T) {
	tbl := *outboxTable
	tbl.Columns = append([]connectors.Column(nil), outboxTable.Columns...)
	tbl.Columns[4].Type.Kind = connectors.KindBytes
	rt := New([]Config{Config{Table: "outbox"}.WithDefaults("p")}, id).Table("public.outbox")
	framed := []byte{0, 0, 0, 0, 7, 2, 'x'}
	ev, err := rt.FromRow(&tbl, []any{"e1", "Order", int64(1), "T", framed, nil}, validTopic)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Payload != nil || string(ev.Framed) != string(framed) {
		t.Errorf("payload %q framed %v, want the body passed through", ev.Payload, ev.Framed)
	}
}

func TestAMessageBecomesAnEvent(t *testing.T) {
	rt := New([]Config{Config{MessagePrefix: "liberator.outbox"}.WithDefaults("shop")}, id).Message("liberator.outbox")
	content := `{"id": "e1", "aggregate_type": "Order", "aggregate_id": 42, "type": "OrderPlaced", "payload": {"total": 1}}`
	ev, err := rt.FromMessage(&connectors.Message{Prefix: "liberator.outbox", Content: []byte(content), Transactional: true}, validTopic)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID != "e1" || string(ev.Key) != "42" || ev.Topic != "shop.Order" || string(ev.Payload) != `{"total": 1}` {
		t.Errorf("event %+v", ev)
	}
	_, err = rt.FromMessage(&connectors.Message{Prefix: "liberator.outbox", Content: []byte(content)}, validTopic)
	if !errors.Is(err, ErrNotTransactional) {
		t.Errorf("a non-transactional message: got %v, want ErrNotTransactional", err)
	}
	_, err = rt.FromMessage(&connectors.Message{Prefix: "liberator.outbox", Content: []byte(`{"id": "e2"}`), Transactional: true}, validTopic)
	var ee *EventError
	if !errors.As(err, &ee) || ee.Field != "aggregate_type" || ee.ID != "e2" {
		t.Errorf("a message without its fields: got %v", err)
	}
}

func TestValidateNamesEveryProblemByItsKey(t *testing.T) {
	entries := []Config{
		{},
		{Table: "a", MessagePrefix: "p"},
		{MessagePrefix: "liberator"},
		{Table: "outbox", Topic: "${aggregate}.x"},
		{Table: "outbox", Subject: "name"},
		{MessagePrefix: "m", Headers: []string{"id"}},
	}
	for i := range entries {
		entries[i] = entries[i].WithDefaults("p")
	}
	err := Validate(entries, tableID, false, validTopic)
	for _, want := range []string{
		"outbox[0]: has neither table nor message_prefix",
		"outbox[1]: has both table and message_prefix",
		"outbox[2].message_prefix: messages are PostgreSQL's",
		`outbox[2].message_prefix: "liberator" is liberator's own`,
		`outbox[3].topic: "${aggregate}.x" names a field`,
		"outbox[4].table: public.outbox is outbox[3].table already",
		`outbox[4].subject: "name" is not a subject name strategy`,
		`outbox[5].headers[0]: "id" is a header every event has already`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
