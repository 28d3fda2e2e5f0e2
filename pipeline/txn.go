package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// Exactly once (delivery: exactly_once).
//
// The sink's producer is transactional and one transaction is always open
// (kafka.Sink.CommitTransaction). The reader produces whole batches into
// it; a commit takes the transaction between two batches: it waits until
// Kafka acknowledged every record produced (so the checkpointer's latest
// checkpoint is the last batch's), writes that position to the offsets
// topic in the same transaction, commits, and only then acknowledges the
// position to the source. A transaction ends every commit_interval, or
// sooner once transaction_max_bytes were produced in it.
//
// On any failure the run aborts the open transaction (or, killed, leaves
// it to the next start, whose producer fences the old one and aborts it)
// and starts over from the last committed position: a read_committed
// consumer sees the events of the aborted transaction never, and those of
// a committed one exactly once, since their position was committed with
// them.

// txnState is the exactly-once state of a run; nil under at_least_once.
type txnState struct {
	// mu is held by the reader while it produces a batch and by a
	// commit, so that a transaction ends between batches.
	mu sync.Mutex
	// bytes are the keys and values produced in the open transaction.
	bytes atomic.Int64
	// max is transaction_max_bytes.
	max int64
	// full is signalled when bytes reach max.
	full chan struct{}
	// lastCommit is when a transaction last committed; guarded by mu.
	lastCommit time.Time
}

// idleCommitEvery is how often an idle pipeline commits its position
// again under exactly_once. Tests shorten it.
var idleCommitEvery = 5 * time.Second

func newTxnState(max int64) *txnState {
	return &txnState{max: max, full: make(chan struct{}, 1), lastCommit: time.Now()}
}

// counted adds n produced bytes, and tells the commit loop when the
// transaction is full.
func (t *txnState) counted(n int) {
	if t.bytes.Add(int64(n)) >= t.max {
		select {
		case t.full <- struct{}{}:
		default:
		}
	}
}

// fullCh is the channel the commit loop waits on; nil, which blocks
// forever, under at_least_once.
func (r *runner) fullCh() <-chan struct{} {
	if r.txn == nil {
		return nil
	}
	return r.txn.full
}

// beginBatch keeps a commit from ending the transaction while a batch is
// produced; endBatch lets it.
func (r *runner) beginBatch() {
	if r.txn != nil {
		r.txn.mu.Lock()
	}
}

func (r *runner) endBatch() {
	if r.txn != nil {
		r.txn.mu.Unlock()
	}
}

// commitTxn commits the open transaction with the latest acknowledged
// position, between two batches.
func (r *runner) commitTxn(ctx context.Context) error {
	r.txn.mu.Lock()
	defer r.txn.mu.Unlock()
	return r.commitTxnLocked(ctx)
}

// commitTxnLocked commits the open transaction; the caller holds
// r.txn.mu, between two batches or before the batch it produces has
// produced anything (scanReconciles), so that the position it commits
// covers every record of the transaction.
func (r *runner) commitTxnLocked(ctx context.Context) error {
	_, seq, err := r.cp.state()
	if err != nil {
		return err
	}
	if r.partial.Load() {
		// The reader stops with the batch's error, and the run
		// aborts the transaction rather than commit it.
		return nil
	}
	idle := seq == r.committedSeq.Load() && r.txn.bytes.Load() == 0
	if idle && time.Since(r.txn.lastCommit) < idleCommitEvery {
		return nil
	}
	// Every record produced is acknowledged (or failed) after the flush,
	// so the checkpoint read next is the last sealed batch's.
	if err := r.sink.Flush(ctx); err != nil {
		return fmt.Errorf("commit a transaction: flush: %w", err)
	}
	cpt, seq, err := r.cp.state()
	if err != nil {
		return err
	}
	pos := cpt.pos
	if idle && pos == nil {
		return nil
	}
	// An idle pipeline writes its position again every idleCommitEvery:
	// a producer that another instance fenced learns of it at its next
	// write, and must not hold the source (a replication slot) for long.
	if pos != nil && (seq != r.committedSeq.Load() || idle) {
		st := kafka.Stored{Source: r.identity, Position: string(pos.Encode()), Reconcile: cpt.reconcile}
		if err := r.sink.WriteOffset(ctx, r.p.cfg.Name, st); err != nil {
			return err
		}
	}
	if err := r.sink.CommitTransaction(ctx); err != nil {
		return err
	}
	r.txn.bytes.Store(0)
	r.txn.lastCommit = time.Now()
	if pos == nil || seq == r.committedSeq.Load() {
		return nil
	}
	if err := r.src.Ack(ctx, pos); err != nil {
		return fmt.Errorf("acknowledge position %s to the source: %w", pos, err)
	}
	r.committedSeq.Store(seq)
	r.p.status.setPosition(pos.String())
	r.p.log.Debug("transaction committed", "position", pos.String())
	return nil
}
