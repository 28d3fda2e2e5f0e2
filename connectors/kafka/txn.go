package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// Exactly once (delivery: exactly_once).
//
// The sink's producer is transactional, with a transactional.id derived
// from the pipeline's name (TransactionalID). Opening the sink initializes
// the producer: Kafka bumps the id's epoch, which fences any earlier
// producer of the same id (a killed process, or an instance still running)
// and aborts its open transaction. Then one transaction is always open:
// every record the sink produces, entity events, dead letters, outbox
// events, reconcile tombstones and the offsets record alike, belongs to it.
// CommitTransaction flushes, commits it, and begins the next;
// AbortTransaction drops it. A read_committed consumer therefore sees the
// events of a transaction together with the position that covers them, or
// neither, and ReadOffset reads committed positions only.
//
// Topic creation and schema registration are not records and happen
// outside any transaction; both are idempotent, so one left behind by an
// aborted transaction is harmless.

// TransactionTimeout is how long Kafka lets a transaction stay open before
// it aborts it. A transaction of a live pipeline lasts about
// commit_interval; one left open by a killed process is aborted at once by
// the next start, and by Kafka after this timeout if nothing starts.
const TransactionTimeout = time.Minute

// endTxnTimeout bounds ending a transaction.
const endTxnTimeout = 30 * time.Second

// TransactionalID is the transactional.id of the pipeline named name.
func TransactionalID(name string) string { return "liberator-" + name }

// WithTransactions makes the sink's producer transactional under id
// (delivery: exactly_once). See CommitTransaction.
func WithTransactions(id string) Option {
	return func(s *Sink) { s.txnID = id }
}

// Transactional reports whether the sink's producer is transactional.
func (s *Sink) Transactional() bool { return s.txnID != "" }

// FencedError says that another producer with the same transactional.id
// initialized after this one: another instance with the same name took
// over (a second replica, or one started by mistake). Kafka refuses every
// further write of this producer, so the pipeline stops at once, without
// retrying. It is not retryable.
type FencedError struct {
	TransactionalID string
	Err             error
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("fenced: another instance with transactional.id %q took over (a second liberator with the same name started); this one stops and writes nothing more: %v", e.TransactionalID, e.Err)
}

func (e *FencedError) Unwrap() error { return e.Err }

// Fenced returns err as a *FencedError when it says that another producer
// of this sink's transactional.id took over, err otherwise. Only a
// transactional sink is ever fenced. A TransactionalIDAuthorizationFailed
// is not a takeover but a missing ACL: it becomes a permanent error that
// names the grant.
func (s *Sink) Fenced(err error) error {
	if err == nil || !s.Transactional() {
		return err
	}
	var fe *FencedError
	if errors.As(err, &fe) {
		return err
	}
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch):
		return &FencedError{TransactionalID: s.txnID, Err: bareKafkaError(err)}
	case errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return fmt.Errorf("delivery: exactly_once: the principal may not use transactional.id %q (grant WRITE and DESCRIBE on TransactionalId %s, or use delivery: at_least_once): %w",
			s.txnID, s.txnID, kerr.TransactionalIDAuthorizationFailed)
	}
	return err
}

// bareKafkaError returns the kerr error that err wraps, without the
// retryable mark around it.
func bareKafkaError(err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke
	}
	return err
}

// initTransactions fences earlier producers of the transactional.id,
// aborting their open transaction, and begins the first transaction.
func (s *Sink) initTransactions(ctx context.Context) error {
	if _, _, err := s.cl.ProducerID(ctx); err != nil {
		if f := s.Fenced(err); f != err {
			return f
		}
		return connectors.MarkRetryable(fmt.Errorf("initialize the transactional producer %q: %w", s.txnID, err))
	}
	if err := s.cl.BeginTransaction(); err != nil {
		return s.Fenced(fmt.Errorf("begin a transaction: %w", err))
	}
	return nil
}

// CommitTransaction waits until Kafka acknowledged every record of the
// open transaction, commits it, and begins the next. Nothing may be
// produced while it runs. Unless it returns nil, the transaction's
// outcome is unknown or aborted: the caller stops and starts over from the
// last committed position (AbortTransaction, Close), and a fenced
// producer's error is a *FencedError.
func (s *Sink) CommitTransaction(ctx context.Context) error {
	if err := s.cl.Flush(ctx); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("commit a transaction: flush: %w", err))
	}
	// Not cut short by ctx: an EndTxn cancelled in flight leaves the
	// outcome unknown (franz-go then refuses to commit again), and a
	// shutdown would turn a commit that was under way into a failure.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTxnTimeout)
	defer cancel()
	if err := s.cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
		err = fmt.Errorf("commit a transaction: %w", err)
		if errors.Is(err, kerr.InvalidTxnState) {
			// The transaction whose records Kafka acknowledged is
			// no longer open: a producer that initialized the id
			// since aborted it (under KIP-890 Kafka then answers
			// INVALID_TXN_STATE rather than PRODUCER_FENCED), or
			// Kafka did, after TransactionTimeout. Either way this
			// producer's epoch is stale; like Kafka's own clients,
			// it counts as fenced.
			return &FencedError{TransactionalID: s.txnID, Err: kerr.InvalidTxnState}
		}
		if f := s.Fenced(err); f != err {
			return f
		}
		return connectors.MarkRetryable(err)
	}
	if err := s.cl.BeginTransaction(); err != nil {
		return s.Fenced(fmt.Errorf("begin a transaction: %w", err))
	}
	return nil
}

// AbortTransaction drops the records still buffered and aborts the open
// transaction: a read_committed consumer never sees its records. A
// producer that is fenced, or a process killed before it aborts, leaves
// the abort to the next producer of the id, or to Kafka after
// TransactionTimeout.
func (s *Sink) AbortTransaction(ctx context.Context) error {
	if err := s.cl.AbortBufferedRecords(ctx); err != nil {
		return fmt.Errorf("abort a transaction: %w", err)
	}
	if err := s.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return s.Fenced(fmt.Errorf("abort a transaction: %w", err))
	}
	return nil
}

// CheckTransactions reports whether the principal may use transactions,
// for `liberator check`: it initializes a transactional producer of id
// TransactionalID(name)+".check". The probe uses an id of its own so that
// it does not fence a running pipeline; an ACL that grants the pipeline's
// id by prefix (liberator-<name>) covers it.
func (c Config) CheckTransactions(ctx context.Context, name string) error {
	c.Defaults()
	opts, err := c.clientOpts()
	if err != nil {
		return err
	}
	id := TransactionalID(name) + ".check"
	cl, err := kgo.NewClient(append(opts, kgo.TransactionalID(id), kgo.TransactionTimeout(TransactionTimeout))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, _, err := cl.ProducerID(ctx); err != nil {
		if errors.Is(err, kerr.TransactionalIDAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
			return fmt.Errorf("delivery: exactly_once: the principal may not use transactions (grant WRITE and DESCRIBE on TransactionalId prefix %s, and IDEMPOTENT_WRITE on the cluster; or use delivery: at_least_once): %w", TransactionalID(name), err)
		}
		return fmt.Errorf("delivery: exactly_once: initialize a transactional producer %q: %w", id, err)
	}
	return nil
}
