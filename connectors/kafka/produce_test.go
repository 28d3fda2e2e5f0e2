package kafka

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// slicePos is a position whose type is not comparable, like PostgreSQL's.
type slicePos struct {
	n      int
	tables []string
}

func (p slicePos) String() string { return "pos" }
func (p slicePos) Encode() []byte { return []byte("pos") }
func (p slicePos) Equal(o connectors.Position) bool {
	q, ok := o.(slicePos)
	return ok && p.n == q.n && slices.Equal(p.tables, q.tables)
}

func TestHeadersAreSharedWithinATransaction(t *testing.T) {
	var s Sink
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	c := connectors.Event{Op: connectors.OpCreate, Pos: slicePos{n: 1, tables: []string{"a.b"}}, CommitTime: at, TxID: "7"}
	h1 := s.headers(&c)
	c.Pos = slicePos{n: 1, tables: []string{"a.b"}}
	if h2 := s.headers(&c); &h1[0] != &h2[0] {
		t.Error("a change of the same transaction built its headers again")
	}
	c.Pos = slicePos{n: 2, tables: []string{"a.b"}}
	h3 := s.headers(&c)
	if &h1[0] == &h3[0] {
		t.Fatal("a change at another position shares the headers")
	}
	if got := string(h3[1].Value); got != "2026-01-02T03:04:05.000006Z" {
		t.Errorf("commit timestamp header = %q", got)
	}
}

// Records are allocated in slabs (recordSlab): a record whose promise has
// run must not keep its key and value alive while others of its slab are
// in flight.
func TestAPromiseLetsGoOfItsRecordsKeyAndValue(t *testing.T) {
	var got Delivery
	p := NewPromise(func(d Delivery, err error) {
		if err != nil {
			t.Error(err)
		}
		got = d
	})
	r := &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("vv"),
		Headers: []kgo.RecordHeader{{Key: HeaderOp, Value: []byte{byte(connectors.OpUpdate)}}}}
	p.fn(r, nil)
	if want := (Delivery{Topic: "t", Op: connectors.OpUpdate, Bytes: 3}); got != want {
		t.Errorf("delivery = %+v, want %+v", got, want)
	}
	if r.Key != nil || r.Value != nil || r.Headers != nil {
		t.Errorf("after its promise the record still holds key %q, value %q, headers %v", r.Key, r.Value, r.Headers)
	}
}

// Produce takes the headers CheckSize found for the event it passed; any
// other event, or one CheckSize refused, gets its own.
func TestProduceTakesTheHeadersCheckSizeFound(t *testing.T) {
	s := Sink{cfg: Config{MaxMessageBytes: 1 << 10}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := connectors.Event{Topic: "t", Key: []byte("k"), Op: connectors.OpCreate, Pos: slicePos{n: 1}, CommitTime: at}
	if err := s.CheckSize(&a); err != nil {
		t.Fatal(err)
	}
	ha := s.headers(&a)
	b := a
	b.Pos = slicePos{n: 2}
	if hb := s.headers(&b); &hb[0] == &ha[0] || string(hb[2].Value) != "pos" {
		t.Fatal("an event CheckSize did not check took the headers of the one it did")
	}
	if err := s.CheckSize(&a); err != nil {
		t.Fatal(err)
	}
	big := a
	big.Pos, big.Value = slicePos{n: 3}, make([]byte, 1<<10)
	if err := s.CheckSize(&big); err == nil {
		t.Fatal("a record over the limit passed")
	}
	// a was checked, then big was refused: a's headers are not the
	// cached ones any more, and must be found again.
	if h := s.headers(&a); &h[0] == &ha[0] || !s.hdr.pos.Equal(slicePos{n: 1}) {
		t.Fatal("after a refused event, the event checked before it took the refused one's headers")
	}
}
