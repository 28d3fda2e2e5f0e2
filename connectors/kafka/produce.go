package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// Header keys of every entity event.
const (
	HeaderOp       = "op"        // c, u, d, or r for a snapshot read
	HeaderCommitTS = "commit_ts" // commit time, RFC 3339 with microseconds, UTC
	HeaderPosition = "pos"       // the source position of the change
	HeaderTxID     = "txid"      // the source's transaction id
	// HeaderReconcile is "true" on the tombstones of a reconcile.
	HeaderReconcile = "reconcile"
)

// Delivery is what Kafka acknowledged (or failed): enough of an event for
// metrics.
type Delivery struct {
	Topic      string
	Op         connectors.Op
	Bytes      int // key and value
	CommitTime time.Time
}

// Promise receives the outcome of each event produced with it. Make one
// per group of events that share a callback, such as a batch: producing
// with it allocates nothing more.
type Promise struct {
	fn func(*kgo.Record, error)
}

// NewPromise returns a promise that calls done once per event, from the
// producer's goroutines. A failure names its topic and is marked
// retryable (connectors.MarkRetryable) when starting over may cure it. A
// record Kafka refused as too large fails with a *TooLargeError, marked
// retryable: the next run's size check catches it (Refused).
func NewPromise(done func(Delivery, error)) *Promise {
	return &Promise{fn: func(r *kgo.Record, err error) {
		if errors.Is(err, kerr.MessageTooLarge) {
			// The run starts over; the sink of the next one is told of
			// the refusal (Refused), and its size check catches the
			// record, so that the bad-row policy applies to it.
			err = connectors.MarkRetryable(fmt.Errorf("produce to topic %q: %w", r.Topic,
				&TooLargeError{Topic: r.Topic, Size: recordSize(r.Key, r.Value, r.Headers), Err: err}))
		} else if err != nil {
			err = fmt.Errorf("produce to topic %q: %w", r.Topic, err)
			if retryableProduceError(err) {
				err = connectors.MarkRetryable(err)
			}
		}
		var op connectors.Op
		if len(r.Headers) > 0 && r.Headers[0].Key == HeaderOp && len(r.Headers[0].Value) == 1 {
			op = connectors.Op(r.Headers[0].Value[0])
		}
		done(Delivery{Topic: r.Topic, Op: op, Bytes: len(r.Key) + len(r.Value), CommitTime: r.Timestamp}, err)
		// franz-go is done with the record once its promise has run:
		// it is emptied, so that neither a slab (record) it shares with
		// records in flight nor freeRecords keeps its key and value
		// alive, and kept for a later event.
		*r = kgo.Record{}
		freeRecords.Put(r)
	}}
}

// Produce buffers ev as a record, a tombstone when its Value is nil, and
// reports its outcome to p once Kafka has acknowledged it or it has failed.
// It blocks while the producer's buffer is full, until ctx ends. Events of
// one key reach one partition in the order they are produced. It is called
// from one goroutine at a time.
func (s *Sink) Produce(ctx context.Context, ev *connectors.Event, p *Promise) {
	ts := ev.CommitTime
	if !ev.Timestamp.IsZero() {
		ts = ev.Timestamp
	}
	// The record is a zero one of a slab: setting its fields one by one
	// spares the copy of a whole record.
	rec := s.record()
	rec.Topic, rec.Key, rec.Value, rec.Headers, rec.Timestamp = ev.Topic, ev.Key, ev.Value, s.headers(ev), ts
	s.cl.Produce(ctx, rec, p.fn)
}

// recordSlab is how many records Produce allocates at once: one
// allocation of 128 records costs less than 128 of one, for the allocator
// and for the collector that scans them. franz-go holds each record until
// its promise has run, and a slab stays alive while any of its records is
// held; the promise lets go of a record's key, value and headers, so that
// a slab keeps at most recordSlab-1 empty records more than one at a time
// would.
const recordSlab = 128

// freeRecords are the records whose promise has run, emptied. Reusing
// them spares the allocation of a record per event, and the collector's
// work for it, while events flow.
var freeRecords sync.Pool

// record returns a zero record: a free one, or one of the current slab,
// which it starts anew when it is used up. Called from Produce's
// goroutine only.
func (s *Sink) record() *kgo.Record {
	if r, ok := freeRecords.Get().(*kgo.Record); ok {
		return r
	}
	if len(s.slab) == 0 {
		s.slab = make([]kgo.Record, recordSlab)
	}
	rec := &s.slab[0]
	s.slab = s.slab[1:]
	return rec
}

// headers returns the headers of ev. Every change of a transaction, and
// every row of a snapshot, shares them: they are built once and the
// read-only slices shared. An event's own headers (Event.Headers) follow
// them, in a slice of its own.
func (s *Sink) headers(ev *connectors.Event) []kgo.RecordHeader {
	var h []kgo.RecordHeader
	if s.hdr.checked == eventAddr(ev) {
		h = s.hdr.h // CheckSize found them for ev
	} else {
		h = s.commonHeaders(ev)
	}
	s.hdr.checked = 0
	if len(ev.Headers) == 0 {
		return h
	}
	out := make([]kgo.RecordHeader, len(h), len(h)+len(ev.Headers))
	copy(out, h)
	for _, eh := range ev.Headers {
		out = append(out, kgo.RecordHeader{Key: eh.Key, Value: eh.Value})
	}
	return out
}

// commonHeaders returns the headers every event has.
func (s *Sink) commonHeaders(ev *connectors.Event) []kgo.RecordHeader {
	hc := &s.hdr
	if hc.h == nil || ev.Op != hc.op || ev.TxID != hc.txID || ev.Reconcile != hc.reconcile ||
		!ev.CommitTime.Equal(hc.ts) || !samePosition(ev.Pos, hc.pos) {
		h := make([]kgo.RecordHeader, 0, 4)
		h = append(h,
			kgo.RecordHeader{Key: HeaderOp, Value: []byte{byte(ev.Op)}},
			kgo.RecordHeader{Key: HeaderCommitTS, Value: []byte(ev.CommitTime.UTC().Format("2006-01-02T15:04:05.000000Z"))},
		)
		if ev.Pos != nil {
			h = append(h, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(ev.Pos.String())})
		}
		if ev.TxID != "" {
			h = append(h, kgo.RecordHeader{Key: HeaderTxID, Value: []byte(ev.TxID)})
		}
		if ev.Reconcile {
			h = append(h, kgo.RecordHeader{Key: HeaderReconcile, Value: []byte("true")})
		}
		size := 0
		for _, rh := range h {
			size += len(rh.Key) + len(rh.Value) + headerOverhead
		}
		*hc = headerCache{op: ev.Op, txID: ev.TxID, ts: ev.CommitTime, pos: ev.Pos, reconcile: ev.Reconcile, h: h, size: size}
	}
	return hc.h
}

// headerCache holds the headers of the last event.
type headerCache struct {
	op        connectors.Op
	txID      string
	ts        time.Time
	pos       connectors.Position
	reconcile bool
	h         []kgo.RecordHeader
	// size is what h adds to a record's size (recordSize).
	size int
	// checked is the address of the event CheckSize passed last, whose
	// headers are h, until Produce takes them; 0 otherwise. An address,
	// not a pointer: a pointer kept here would move every event its
	// callers check to the heap. A caller produces each event it checked
	// before checking or producing another; should its stack have moved
	// in between, the addresses differ and Produce builds the headers
	// again.
	checked uintptr
}

// eventAddr is the address of ev, compared to headerCache.checked.
func eventAddr(ev *connectors.Event) uintptr { return uintptr(unsafe.Pointer(ev)) }

func samePosition(a, b connectors.Position) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(b)
}

// retryableProduceError reports whether a record that failed with err may
// succeed when the pipeline starts over: a retriable Kafka error, or one of
// the producer-state errors that StopProducerOnDataLossDetected turns into
// failures. Errors such as a record too large or a missing ACL are not.
func retryableProduceError(err error) bool {
	return kerr.IsRetriable(err) ||
		errors.Is(err, kerr.OutOfOrderSequenceNumber) ||
		errors.Is(err, kerr.UnknownProducerID) ||
		errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) ||
		errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries)
}
