package pipeline

import (
	"errors"
	"testing"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

type pos string

func (p pos) String() string { return string(p) }
func (p pos) Encode() []byte { return []byte(p) }
func (p pos) Equal(o connectors.Position) bool {
	q, ok := o.(pos)
	return ok && p == q
}

func TestCheckpointerAdvancesOnlyPastAcknowledgedBatches(t *testing.T) {
	c := newCheckpointer()
	a := c.begin(pos("a"))
	a.add()
	a.add()
	a.seal()
	b := c.begin(nil) // a batch that ends inside a transaction
	b.add()
	b.seal()
	d := c.begin(pos("d"))
	d.add()
	d.seal()

	rec := kafka.Delivery{Topic: "t"}
	d.delivered(rec, nil)
	if p, _, _ := c.state(); p.pos != nil {
		t.Fatalf("checkpoint %v reached before the earlier batches were acknowledged", p)
	}
	a.delivered(rec, nil)
	a.delivered(rec, nil)
	if p, _, _ := c.state(); p.pos != pos("a") {
		t.Fatalf("checkpoint = %v, want a", p)
	}
	b.delivered(rec, nil)
	if p, _, _ := c.state(); p.pos != pos("d") {
		t.Fatalf("checkpoint = %v, want d once every batch is acknowledged", p)
	}
	if n := c.inFlight(); n != 0 {
		t.Errorf("%d batches still in flight", n)
	}
}

func TestCheckpointerStopsAtAFailure(t *testing.T) {
	c := newCheckpointer()
	a := c.begin(pos("a"))
	a.add()
	a.seal()
	b := c.begin(pos("b"))
	b.add()
	b.seal()
	boom := errors.New("boom")
	a.delivered(kafka.Delivery{Topic: "t"}, boom)
	b.delivered(kafka.Delivery{Topic: "t"}, nil)
	cpt, _, err := c.state()
	p := cpt.pos
	if p != nil {
		t.Errorf("checkpoint moved to %v past a failed record", p)
	}
	if !errors.Is(err, boom) {
		t.Errorf("error = %v, want it to wrap the produce error", err)
	}
}

func TestCheckpointerWaitsForTheSeal(t *testing.T) {
	c := newCheckpointer()
	a := c.begin(pos("a"))
	a.add()
	a.delivered(kafka.Delivery{Topic: "t"}, nil) // acknowledged before the batch is fully produced
	if p, _, _ := c.state(); p.pos != nil {
		t.Fatalf("checkpoint %v reached before the batch was sealed", p)
	}
	a.seal()
	if p, _, _ := c.state(); p.pos != pos("a") {
		t.Fatalf("checkpoint = %v, want a", p)
	}
}

func TestCheckpointerNeverPassesAnAbandonedBatch(t *testing.T) {
	c := newCheckpointer()
	a := c.begin(pos("a"))
	a.add()
	a.seal()
	b := c.begin(pos("b")) // its second change could not be encoded
	b.add()
	b.abandon()
	rec := kafka.Delivery{Topic: "t"}
	b.delivered(rec, nil)
	a.delivered(rec, nil)
	cpt, _, err := c.state()
	p := cpt.pos
	if p != pos("a") {
		t.Errorf("checkpoint = %v, want a: the batch before the abandoned one is acknowledged, the abandoned one never is", p)
	}
	if err != nil {
		t.Errorf("state error = %v; the reader reports the abandonment itself", err)
	}
}
