package pipeline

import (
	"errors"
	"testing"

	"github.com/liberator-cdc/liberator/connectors/kafka"
)

func TestArenaComesBackOnlyOnceEveryRecordHasItsOutcome(t *testing.T) {
	p := newArenaPool(1 << 20)
	c := newCheckpointer()
	f := c.begin(pos("a"))
	arena := append(p.get(4096), "key1value1key2value2"...)
	f.add()
	f.add()
	f.arenas, f.pool = [][]byte{arena}, p
	f.seal()

	f.delivered(kafka.Delivery{Topic: "t"}, nil)
	if got := p.get(1); cap(got) == cap(arena) && &got[:1][0] == &arena[0] {
		t.Fatal("the arena was handed out again while a record in it was in flight")
	}
	// A failed record is done with too: franz-go has let go of it.
	f.delivered(kafka.Delivery{Topic: "t"}, errors.New("boom"))
	got := p.get(1)
	if cap(got) != cap(arena) || &got[:1][0] != &arena[0] {
		t.Fatal("the arena did not come back once every record had its outcome")
	}
	if len(got) != 0 {
		t.Errorf("a kept arena came back with %d bytes in it", len(got))
	}
}

func TestArenaOfAnAbandonedBatchIsNotKept(t *testing.T) {
	p := newArenaPool(1 << 20)
	c := newCheckpointer()
	f := c.begin(pos("a"))
	f.add()
	f.abandon() // produceBatch sets no arenas on a batch it abandons
	f.delivered(kafka.Delivery{Topic: "t"}, nil)
	if p.held != 0 {
		t.Errorf("%d bytes kept from an abandoned batch", p.held)
	}
}

func TestArenaPoolKeepsWithinItsBudget(t *testing.T) {
	p := newArenaPool(10 << 10)
	p.put([][]byte{make([]byte, 0, 4<<10), make([]byte, 0, 4<<10), make([]byte, 0, 4<<10)})
	if p.held != 8<<10 || len(p.free) != 2 {
		t.Fatalf("kept %d bytes in %d arenas, want 8 KB in 2", p.held, len(p.free))
	}
	if b := p.get(8 << 10); cap(b) != 8<<10 {
		t.Errorf("get(8 KB) = capacity %d, want a new arena of 8 KB", cap(b))
	}
	if b := p.get(1 << 10); cap(b) != 4<<10 {
		t.Errorf("get(1 KB) = capacity %d, want a kept arena of 4 KB", cap(b))
	}
	if p.held != 4<<10 {
		t.Errorf("held = %d after handing one out, want 4 KB", p.held)
	}
}
