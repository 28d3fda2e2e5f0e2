package mysql

import (
	"context"
	"sync"

	"github.com/go-mysql-org/go-mysql/replication"
	"golang.org/x/sync/semaphore"
)

// eventBudget bounds the bytes of the rows events that go-mysql's reading
// goroutine has decoded but the stream goroutine has not yet taken: the
// reader takes an event's bytes before decoding it, and waits while they
// are all taken; the stream goroutine gives them back when it takes the
// event. eventCacheCount alone bounds events, not bytes: 256 events of a
// table of 1 MB rows are 256 MB.
type eventBudget struct {
	ctx    context.Context
	cancel context.CancelFunc
	size   int64
	sem    *semaphore.Weighted
	mu     sync.Mutex
	held   map[*replication.RowsEvent]int64
	// raw are the rows events left undecoded for decodeImages.
	raw map[*replication.RowsEvent]rawRows
}

// newEventBudget returns a budget of size bytes whose waits end with ctx,
// or with close.
func newEventBudget(ctx context.Context, size int64) *eventBudget {
	ctx, cancel := context.WithCancel(ctx)
	return &eventBudget{ctx: ctx, cancel: cancel, size: size, sem: semaphore.NewWeighted(size), held: map[*replication.RowsEvent]int64{}, raw: map[*replication.RowsEvent]rawRows{}}
}

// take takes n bytes for e, waiting until they are free. An event larger
// than the whole budget waits until the budget is free, then takes all of
// it.
func (b *eventBudget) take(e *replication.RowsEvent, n int64) error {
	n = min(n, b.size)
	if err := b.sem.Acquire(b.ctx, n); err != nil {
		return err
	}
	b.mu.Lock()
	b.held[e] += n
	b.mu.Unlock()
	return nil
}

// give gives back the bytes that ev's rows events took.
func (b *eventBudget) give(ev replication.Event) {
	switch e := ev.(type) {
	case *replication.RowsEvent:
		b.mu.Lock()
		n, ok := b.held[e]
		delete(b.held, e)
		b.mu.Unlock()
		if ok {
			b.sem.Release(n)
		}
	case *replication.TransactionPayloadEvent:
		for _, inner := range e.Events {
			b.give(inner.Event)
		}
	}
}

// keepRaw keeps the undecoded rows of e for the stream goroutine.
func (b *eventBudget) keepRaw(e *replication.RowsEvent, r rawRows) {
	b.mu.Lock()
	b.raw[e] = r
	b.mu.Unlock()
}

// takeRaw returns and forgets the undecoded rows of e, if e has them.
func (b *eventBudget) takeRaw(e *replication.RowsEvent) (rawRows, bool) {
	b.mu.Lock()
	r, ok := b.raw[e]
	if ok {
		delete(b.raw, e)
	}
	b.mu.Unlock()
	return r, ok
}

// close ends every wait, so that the reader goroutine can stop.
func (b *eventBudget) close() { b.cancel() }

// closeSyncer closes the binlog connection and its reader goroutine.
func (s *Source) closeSyncer() {
	if s.events != nil {
		// A reader waiting for bytes would keep Close waiting.
		s.events.close()
	}
	if s.syncer != nil {
		s.syncer.Close()
		s.syncer = nil
	}
}
