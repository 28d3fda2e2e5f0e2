package pipeline

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

type pos string

func (p pos) String() string { return string(p) }
func (p pos) Encode() []byte { return []byte(p) }

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

	rec := &kgo.Record{Topic: "t"}
	d.promise(rec, nil)
	if p, _, _ := c.state(); p.pos != nil {
		t.Fatalf("checkpoint %v reached before the earlier batches were acknowledged", p)
	}
	a.promise(rec, nil)
	a.promise(rec, nil)
	if p, _, _ := c.state(); p.pos != pos("a") {
		t.Fatalf("checkpoint = %v, want a", p)
	}
	b.promise(rec, nil)
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
	a.promise(&kgo.Record{Topic: "t"}, boom)
	b.promise(&kgo.Record{Topic: "t"}, nil)
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
	a.promise(&kgo.Record{Topic: "t"}, nil) // acknowledged before the batch is fully produced
	if p, _, _ := c.state(); p.pos != nil {
		t.Fatalf("checkpoint %v reached before the batch was sealed", p)
	}
	a.seal()
	if p, _, _ := c.state(); p.pos != pos("a") {
		t.Fatalf("checkpoint = %v, want a", p)
	}
}
