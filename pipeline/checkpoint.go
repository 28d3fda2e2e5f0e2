package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// checkpointer tracks the batches whose records are in flight and finds the
// latest checkpoint below which Kafka has acknowledged everything. A
// checkpoint is never reached because its batch was read, only because all
// of its records, and those of every earlier batch, were acknowledged.
type checkpointer struct {
	mu      sync.Mutex
	queue   []*inflight // in read order; the head is the oldest
	latest  checkpoint
	seq     uint64 // bumped when latest moves
	err     error  // the first produce failure; nothing moves after it
	changed chan struct{}
	// onAck, if set, is called for every acknowledged record.
	onAck func(kafka.Delivery)
}

// checkpoint is a source position and the re-snapshots with reconcile
// under way at it.
type checkpoint struct {
	pos connectors.Position
	// reconcile is shared between checkpoints: replaced, never modified.
	reconcile map[string]kafka.ReconcileStart
}

// inflight is one batch on its way to Kafka.
type inflight struct {
	cp  *checkpointer
	pos connectors.Position
	// reconcile is the re-snapshots with reconcile under way after the
	// batch; set before seal.
	reconcile map[string]kafka.ReconcileStart
	// promise is the sink's callback for every record of the batch.
	promise *kafka.Promise
	began   time.Time    // when the batch was read
	pending atomic.Int64 // unacknowledged records, plus one until sealed
	done    bool         // guarded by cp.mu
	failed  bool         // guarded by cp.mu
	// arenas hold the batch's keys and values; set before seal, and
	// given to pool once every record has had its outcome.
	arenas [][]byte
	pool   *arenaPool
}

func newCheckpointer() *checkpointer {
	return &checkpointer{changed: make(chan struct{}, 1)}
}

// begin registers a batch, before any of its records is produced.
func (c *checkpointer) begin(pos connectors.Position) *inflight {
	f := &inflight{cp: c, pos: pos, began: time.Now()}
	f.promise = kafka.NewPromise(f.delivered)
	f.pending.Store(1)
	c.mu.Lock()
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	return f
}

// add counts one more record of the batch; call it before producing.
func (f *inflight) add() { f.pending.Add(1) }

// seal says every record of the batch has been produced.
func (f *inflight) seal() { f.release() }

// abandon says the batch could not be produced whole. Its checkpoint, and
// every later one, is never reached; the records it did produce are still
// awaited, so that the checkpoints before it move on.
func (f *inflight) abandon() {
	f.cp.mu.Lock()
	f.failed = true
	f.cp.mu.Unlock()
	f.release()
}

// delivered is the outcome of every record of the batch.
func (f *inflight) delivered(d kafka.Delivery, err error) {
	if err != nil {
		f.cp.fail(err)
		f.cp.mu.Lock()
		f.failed = true
		f.cp.mu.Unlock()
	} else if f.cp.onAck != nil {
		f.cp.onAck(d)
	}
	f.release()
}

func (f *inflight) release() {
	if f.pending.Add(-1) == 0 {
		f.cp.finish(f)
		if f.pool != nil {
			f.pool.put(f.arenas)
			f.arenas = nil
		}
	}
}

func (c *checkpointer) finish(f *inflight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.done = true
	moved := false
	n := 0
	for _, h := range c.queue {
		if !h.done || h.failed || c.err != nil {
			break
		}
		if h.pos != nil {
			c.latest = checkpoint{pos: h.pos, reconcile: h.reconcile}
			moved = true
		}
		n++
	}
	c.queue = c.queue[n:]
	if moved {
		c.seq++
		select {
		case c.changed <- struct{}{}:
		default:
		}
	}
}

func (c *checkpointer) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// state returns the latest acknowledged checkpoint, its sequence number,
// and the first failure.
func (c *checkpointer) state() (checkpoint, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest, c.seq, c.err
}

// inFlight counts batches not yet fully acknowledged.
func (c *checkpointer) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// oldestUnacked returns when the oldest batch that Kafka has not fully
// acknowledged was read, and false when every batch is acknowledged.
func (c *checkpointer) oldestUnacked() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.queue {
		if !f.done {
			return f.began, true
		}
	}
	return time.Time{}, false
}
