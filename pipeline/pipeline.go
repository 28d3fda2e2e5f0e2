// Package pipeline moves changes from a source connector through the Avro
// mapping to the Kafka sink, and moves the source's position forward only
// as far as Kafka has acknowledged.
//
//	source.Read -> encode (schema) -> sink.Produce
//	     ^                                 |
//	     +-- source.Ack <- offsets topic <-+ (acknowledged checkpoints only)
//
// Under delivery: exactly_once the events of many batches and the offsets
// record are written in one Kafka transaction, ended between two batches
// every commit_interval or transaction_max_bytes, and the source is
// acknowledged only after the commit; any failure aborts it, and the run
// starts over from the last committed position (see txn.go).
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/mapping"
	"github.com/liberator-cdc/liberator/outbox"
	"github.com/liberator-cdc/liberator/schema"
)

// Deps are what a pipeline runs on. The command line builds them from the
// config (cmd/liberator); tests build them around fakes.
type Deps struct {
	// Source returns a new, unopened source for each attempt: a source is
	// opened once, and a retry after a lost connection starts afresh.
	Source func() (connectors.Source, error)
	// Sink returns a new, unopened sink for each attempt. metrics is the
	// pipeline's Prometheus registry, for the producer's own metrics
	// (kafka.WithMetrics).
	Sink func(metrics prometheus.Registerer) (*kafka.Sink, error)
	// Registry is the schema registry.
	Registry *schema.Registry
	// Log is where the pipeline logs; nil means slog.Default().
	Log *slog.Logger
	// Progress, if not nil, shows snapshot progress live (a terminal's
	// status line); otherwise it is logged every 10 seconds.
	Progress ProgressDisplay
}

// Pipeline is one configured source feeding Kafka.
type Pipeline struct {
	cfg     *config.Config
	deps    Deps
	log     *slog.Logger
	mapping *mapping.Mapping
	// outbox routes the records of outbox tables and messages.
	outbox *outbox.Router

	status  *Status
	metrics *metrics
	started atomic.Bool // the source opened at least once
	// source is the source of the current attempt, for lag reporting and
	// snapshot requests.
	source atomic.Value // connectors.Source
	// topicState is the current topic of each table (TableTopics).
	topicState
	// refused are the records Kafka refused as too large, by topic, kept
	// across runs (noteRefusal).
	refusedMu sync.Mutex
	refused   map[string]refusal
}

// New returns a pipeline for a validated config. It does no I/O.
func New(cfg *config.Config, deps Deps) *Pipeline {
	if deps.Log == nil {
		deps.Log = slog.Default()
	}
	p := &Pipeline{cfg: cfg, deps: deps, log: deps.Log, mapping: cfg.Mapper(), outbox: cfg.OutboxRouter(), status: newStatus()}
	p.metrics = newMetrics(p)
	return p
}

// Run runs until ctx is cancelled, the snapshot of snapshot mode only is
// complete, or a permanent error happens. A retryable error (a lost
// connection) restarts the pipeline from the last stored position after an
// exponential backoff with jitter. Cancelling ctx drains gracefully: reading
// stops, the producer is flushed, the last acknowledged position is stored,
// and Run returns nil.
func (p *Pipeline) Run(ctx context.Context) error {
	const minBackoff = 250 * time.Millisecond
	backoff := minBackoff
	var lastErr string
	var lastWarn time.Time
	for attempt := 1; ; attempt++ {
		began := time.Now()
		err := p.runOnce(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if time.Since(began) > time.Minute {
			// A run that lasted is not part of the same outage: the
			// backoff starts over.
			backoff = minBackoff
		}
		// At start a failure is reported at once, so that a wrong address or
		// a missing privilege is seen; once the pipeline has run, a lost
		// connection is retried.
		var fenced *kafka.FencedError
		retry := connectors.IsRetryable(err) && p.started.Load() && !errors.As(err, &fenced)
		p.metrics.errors.WithLabelValues(strconv.FormatBool(retry)).Inc()
		if !retry {
			return err
		}
		if errors.Is(err, kafka.ErrUnreachable) {
			// An attempt that only finds Kafka still gone costs a
			// connection attempt: they stay close, so that the pipeline
			// starts again within seconds of Kafka's return.
			backoff = min(backoff, unreachableBackoff)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		p.status.setState("retrying")
		p.metrics.ready.Set(0)
		p.metrics.retrying.Set(1)
		// One line per attempt, and the same error once per
		// repeatWarnEvery: a long outage is not a log flood.
		if msg := err.Error(); msg != lastErr || time.Since(lastWarn) >= repeatWarnEvery {
			p.log.Warn("pipeline failed; retrying", "error", err, "attempt", attempt, "in", wait.Round(time.Millisecond))
			lastErr, lastWarn = msg, time.Now()
		} else {
			p.log.Debug("pipeline failed; retrying", "error", err, "attempt", attempt, "in", wait.Round(time.Millisecond))
		}
		p.metrics.retries.Inc()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// runOnce opens everything, streams until ctx ends or an error, then drains.
func (p *Pipeline) runOnce(ctx context.Context) (err error) {
	cfg := p.cfg
	sink, err := p.deps.Sink(p.metrics.reg)
	if err != nil {
		return err
	}
	if err := sink.Open(ctx); err != nil {
		return err
	}
	defer sink.Close()
	if cfg.ExactlyOnce() != sink.Transactional() {
		return fmt.Errorf("delivery: %s needs a sink whose producer is transactional exactly then (kafka.WithTransactions)", cfg.Delivery)
	}
	// A fenced producer's errors become a *kafka.FencedError, which Run
	// does not retry.
	defer func() { err = sink.Fenced(err) }()
	p.tellRefusals(sink)
	defer func() { p.noteRefusal(sink, err) }()
	reg := p.deps.Registry
	src, err := p.deps.Source()
	if err != nil {
		return err
	}
	stored, err := sink.ReadOffset(ctx, cfg.Name)
	if err != nil {
		return err
	}
	if cfg.Errors.OnBadRow == config.OnBadRowDeadLetter {
		if err := sink.EnsureDeadLetterTopic(ctx, cfg.Errors.DeadLetterTopic); err != nil {
			return err
		}
	}
	var resume []byte
	reconcile := map[string]kafka.ReconcileStart{}
	if stored != nil {
		resume = []byte(stored.Position)
		reconcile = stored.Reconcile
	}
	if c, ok := src.(connectors.Checker); ok && !p.started.Load() {
		var errs []error
		for _, check := range c.Check(ctx) {
			if check.Err != nil && !check.Warning {
				errs = append(errs, check.Err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("the source is not ready (liberator check lists every check):\n%w", errors.Join(errs...))
		}
	}
	var described []*connectors.Table
	if !p.started.Load() {
		if described, err = p.describe(ctx, src); err != nil {
			return err
		}
	}
	// After the source's checks, which say what is missing better than a
	// failed connection would.
	identity, err := p.checkIdentity(ctx, src, stored)
	if err != nil {
		return err
	}
	r := &runner{p: p, src: src, sink: sink, reg: reg, cp: newCheckpointer(), tables: map[*connectors.Table]*tableState{},
		outboxes: map[*connectors.Table]*outbox.Route{}, payloadSchemas: map[string]*payloadSchema{},
		identity: identity, reconcile: reconcile, arenaBytes: int(max(cfg.Memory().Arena, minArenaBytes)), bytesPerChange: minBytesPerChange}
	r.arenas = newArenaPool(r.arenaBytes)
	r.cp.onAck = r.acked
	if cfg.ExactlyOnce() {
		r.txn = newTxnState(int64(cfg.TransactionMaxBytes))
	}
	// Every table's topic and schemas exist before the source reads a
	// row, empty tables' too.
	if err := r.announce(ctx, described, false); err != nil {
		return err
	}
	if err := src.Open(ctx, resume); err != nil {
		if errors.Is(err, connectors.ErrStreamWithoutPosition) {
			err = fmt.Errorf("%w (no position is stored under key %q in offsets topic %q: was the offsets topic deleted, the pipeline's name changed, or Kafka replaced? If so, point name and kafka.offsets_topic back at the stored position, or reset)", err, cfg.Name, cfg.Kafka.OffsetsTopic)
		}
		return errors.Join(err, src.Close(context.WithoutCancel(ctx)))
	}
	p.source.Store(src)
	// A run after a failure stays retrying, and not ready, until it shows
	// that it works (watchAcks): a registry or broker that fails again at
	// the first change must not read as ready in between.
	if !p.started.Load() {
		p.status.setState("running")
		p.metrics.ready.Set(1)
		p.metrics.retrying.Set(0)
	}
	defer p.metrics.ready.Set(0)
	p.started.Store(true)

	// The produce context outlives ctx: records already buffered are
	// delivered during the drain, not failed by the cancellation.
	produceCtx, abortProduce := context.WithCancel(context.WithoutCancel(ctx))
	defer abortProduce()
	r.produceCtx = produceCtx

	g, gctx := errgroup.WithContext(ctx)
	// The drain is bounded by shutdown_timeout from the moment the run
	// ends. A reader blocked on a full producer buffer (Kafka unreachable)
	// would hold the run forever: at that deadline its produce is
	// abandoned, and what it had not produced is read again at the next
	// start.
	deadline := make(chan time.Time, 1)
	stopAbort := context.AfterFunc(gctx, func() {
		at := time.Now().Add(cfg.ShutdownTimeout)
		deadline <- at
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
			abortProduce()
		case <-produceCtx.Done():
		}
	})
	defer stopAbort()
	readDone := make(chan struct{})
	g.Go(func() error {
		defer close(readDone)
		return r.readLoop(gctx)
	})
	g.Go(func() error { return r.commitLoop(gctx, readDone) })
	g.Go(func() error { return p.reportSnapshots(gctx, src) })
	g.Go(func() error { r.watchAcks(gctx); return nil })
	err = g.Wait()
	// A source that is finished returns io.EOF; a lost connection may wrap
	// an io.EOF too, but it is marked retryable.
	if isSourceEnd(err) || (err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		err = nil
	}

	// Drain: flush what was produced, then store the last acknowledged
	// position. On a failure the position is stored too: it only covers
	// what Kafka acknowledged.
	until := time.Now().Add(cfg.ShutdownTimeout)
	select {
	case until = <-deadline:
	default:
	}
	dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), until)
	defer cancel()
	p.status.setState("draining")
	var drainErr error
	if ferr := sink.Flush(dctx); ferr != nil {
		drainErr = fmt.Errorf("%w: Kafka did not acknowledge every event within shutdown_timeout (%s); those after the stored position are sent again at the next start: %w", ErrDrainIncomplete, cfg.ShutdownTimeout, ferr)
		p.log.Warn("drain did not finish", "error", ferr)
	}
	abortProduce()
	// Storing the position and closing the source get a short grace past
	// the deadline: what they store is covered by Kafka's acknowledgement.
	gctx2, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), max(time.Until(until), 0)+closeGrace)
	defer cancel2()
	var cerr error
	if r.txn != nil && (err != nil || drainErr != nil || r.partial.Load()) {
		// The open transaction may hold part of a batch: it is
		// aborted, and the next run starts from the last committed
		// position. A fenced producer cannot abort; the producer that
		// fenced it already did.
		if aerr := sink.AbortTransaction(gctx2); aerr != nil && err == nil {
			cerr = aerr
		}
	} else {
		cerr = r.commit(gctx2)
	}
	err = errors.Join(err, cerr, src.Close(gctx2))
	if ctx.Err() != nil && drainErr != nil {
		// A shutdown that gave up what Kafka had not acknowledged: the
		// records abandoned failed, which is this and nothing more.
		err = drainErr
	}
	if err == nil {
		p.status.setState("stopped")
	}
	return err
}

// unreachableBackoff caps the backoff while Kafka cannot be reached at all
// (kafka.ErrUnreachable). repeatWarnEvery is how often one error repeated
// by every attempt is logged as a warning.
const (
	unreachableBackoff = 4 * time.Second
	repeatWarnEvery    = 30 * time.Second
)

// isSourceEnd reports whether err says that the source is finished.
func isSourceEnd(err error) bool {
	return errors.Is(err, io.EOF) && !connectors.IsRetryable(err)
}

// stallAfter is how long Kafka may leave a batch unacknowledged before the
// pipeline reports itself stalled, and not ready. franz-go retries a
// produce for as long as Kafka is unreachable, so an outage of Kafka shows
// here rather than as an error. Tests shorten it.
var stallAfter = 5 * time.Second

// probeEvery is how often the pipeline asks Kafka whether it answers while
// no batch waits for an acknowledgement, and probeTimeout how long the
// answer may take. Tests shorten them.
var (
	probeEvery   = 2 * time.Second
	probeTimeout = 2 * time.Second
)

// watchAcks reports the pipeline stalled, and not ready, while the oldest
// batch waits for Kafka's acknowledgement longer than stallAfter, or while
// Kafka does not answer a probe; and running again once neither holds.
// Acknowledgements say nothing of Kafka while nothing is in flight, so an
// idle pipeline probes it (a metadata request) every probeEvery; after a
// failed probe it goes on probing until Kafka answers, batches or not.
//
// A run after a failure starts in state retrying; watchAcks makes it
// running once a checkpoint is acknowledged, or once Kafka answers a probe
// while nothing is in flight.
func (r *runner) watchAcks(ctx context.Context) {
	t := time.NewTicker(stallAfter / 10)
	defer t.Stop()
	p := r.p
	var (
		lastProbe   time.Time
		answered    bool  // a probe of this run succeeded
		unreachable error // the last probe's failure, nil once one succeeds
	)
	for {
		select {
		case <-ctx.Done():
			p.status.swapState("stalled", "running")
			return
		case <-t.C:
		}
		began, waiting := r.cp.oldestUnacked()
		if (!waiting || unreachable != nil) && time.Since(lastProbe) >= probeEvery {
			lastProbe = time.Now()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			unreachable = r.sink.Ping(pctx)
			cancel()
			if ctx.Err() != nil {
				continue // a probe cut short by the shutdown says nothing
			}
			answered = answered || unreachable == nil
		}
		stalled := waiting && time.Since(began) > stallAfter
		_, acked, _ := r.cp.state()
		switch {
		case stalled || unreachable != nil:
			if p.status.swapState("running", "stalled") {
				p.metrics.ready.Set(0)
				p.metrics.retrying.Set(1)
				if stalled {
					p.log.Warn("Kafka has not acknowledged events; not ready until it does", "waiting", time.Since(began).Round(time.Second))
				} else {
					p.log.Warn("Kafka does not answer; not ready until it does", "error", unreachable)
				}
			}
		case p.status.swapState("stalled", "running"):
			p.metrics.ready.Set(1)
			p.metrics.retrying.Set(0)
			p.log.Info("Kafka answers and acknowledges events again; ready")
		case (acked > 0 || answered && !waiting) && p.status.swapState("retrying", "running"):
			p.metrics.ready.Set(1)
			p.metrics.retrying.Set(0)
			p.log.Info("running again; ready")
		}
	}
}

// closeGrace is how long storing the last position and closing the source
// may run past shutdown_timeout.
const closeGrace = 5 * time.Second

// ErrDrainIncomplete is wrapped by Run's error when a graceful shutdown
// could not deliver every event read before shutdown_timeout ran out.
// Nothing is lost: the stored position stays before what Kafka did not
// acknowledge.
var ErrDrainIncomplete = errors.New("the drain did not complete")

// tableState is what the pipeline keeps per table shape.
type tableState struct {
	topic        string
	codec        *schema.Codec
	keyID, valID int
	// view maps the source's rows to the published ones.
	view *mapping.View
}

type runner struct {
	p      *Pipeline
	src    connectors.Source
	sink   *kafka.Sink
	reg    *schema.Registry
	cp     *checkpointer
	tables map[*connectors.Table]*tableState
	// outboxes are the outbox routes of table shapes, nil for the tables
	// published as entities; payloadSchemas the schemas of the outboxes'
	// subjects, as read in this run.
	outboxes       map[*connectors.Table]*outbox.Route
	payloadSchemas map[string]*payloadSchema
	byTopic        sync.Map // topic -> *tableMetrics
	produceCtx     context.Context
	// topicVersions are the versioned topics of schema.on_incompatible:
	// new_topic, by table.
	versionsMu    sync.Mutex
	topicVersions map[string]*topicVersions

	// committedSeq is the sequence of the checkpoint stored last.
	committedSeq atomic.Uint64
	// arenaHint is the largest arena a batch reached.
	arenaHint int
	// bytesPerChange is what the last batch's events took in its arena,
	// per change: a small batch's arena is sized by it.
	bytesPerChange int
	// arenaBytes is where a batch's arena is left to its records and a
	// new one begun (config.Memory.Arena).
	arenaBytes int
	// arenas keeps the arenas of acknowledged batches.
	arenas *arenaPool

	// identity is the source's, stored beside every position.
	identity string
	// txn is the exactly-once state; nil under at_least_once.
	txn *txnState
	// partial is set once a batch could not be produced whole.
	partial atomic.Bool
	// reconcile holds the re-snapshots with reconcile under way, by table,
	// as of the batch being read. It is replaced, never modified, because
	// checkpoints share it.
	reconcile map[string]kafka.ReconcileStart
	// touched holds, by topic, the hashes of the keys the batch being
	// produced writes to a topic whose re-snapshot with reconcile ends
	// with it; nil otherwise.
	touched map[string]map[uint64]struct{}
}

// readLoop reads batches, encodes their changes and produces them.
func (r *runner) readLoop(ctx context.Context) error {
	for {
		if _, _, err := r.cp.state(); err != nil {
			return err
		}
		b, err := r.src.Read(ctx)
		if err != nil {
			if isSourceEnd(err) {
				r.p.log.Info("source finished")
			}
			return err
		}
		if len(b.Tables) > 0 {
			if err := r.announceNew(ctx, b.Tables); err != nil {
				return err
			}
			if len(b.Changes) == 0 && b.Checkpoint == nil && len(b.Reconcile) == 0 {
				continue // tables alone: nothing to produce, no position to keep
			}
		}
		if err := r.produceBatch(ctx, &b); err != nil {
			return err
		}
		// Encoded: nothing refers to the batch's changes any more.
		if rc, ok := r.src.(connectors.Recycler); ok {
			rc.Recycle(b)
		}
	}
}

// produceBatch encodes and produces the changes of one batch. Under
// exactly_once no transaction ends while it runs.
func (r *runner) produceBatch(ctx context.Context, b *connectors.Batch) (err error) {
	r.beginBatch()
	defer r.endBatch()
	// Set before the transaction is let go (endBatch): a transaction
	// holding part of a batch is never committed.
	defer func() {
		if err != nil {
			r.partial.Store(true)
		}
	}()
	f := r.cp.begin(b.Checkpoint)
	if err := r.beginReconciles(ctx, b.Reconcile); err != nil {
		f.abandon()
		return err
	}
	ends, err := r.scanReconciles(ctx, b.Reconcile)
	if err != nil {
		f.abandon()
		return err
	}
	defer func() { r.touched = nil }()
	// Start each batch's arena at the largest size one reached, so that
	// it rarely grows by copying; but a batch of a few changes (a small
	// transaction at a time, at low latency) takes twice what its
	// changes need at the last batch's bytes per change, not the
	// megabytes a large batch did.
	arena := r.arenas.get(min(r.arenaHint, max(2*len(b.Changes)*r.bytesPerChange, minArenaStart)))
	used := 0
	// The arenas filled so far; they go back to r.arenas once every
	// record of the batch has had its outcome, unless the batch is
	// abandoned.
	var filled [][]byte
	// A batch's changes mostly come from one table: the state of the
	// last entity table is kept, sparing two lookups per change.
	var (
		lastTable *connectors.Table
		lastState *tableState
	)
	for i := range b.Changes {
		c := &b.Changes[i]
		if len(arena) >= r.arenaBytes {
			// The events produced so far keep this arena alive
			// until Kafka acknowledges them; growing it further
			// would copy them and hold both. A new one begins.
			used += len(arena)
			filled = append(filled, arena)
			arena = r.arenas.get(r.arenaBytes)
		}
		// A batch that could not be produced whole is abandoned, so
		// that its checkpoint is never stored: the change that failed
		// is read again at the next start.
		if c.Table == lastTable && c.Op != connectors.OpMessage && lastTable != nil {
			if arena, err = r.produceChange(lastState, c, f, arena); err != nil {
				f.abandon()
				return err
			}
			continue
		}
		if rt := r.outboxRoute(c); rt != nil || c.Op == connectors.OpMessage {
			if rt != nil {
				if arena, err = r.produceOutbox(ctx, rt, c, f, arena); err != nil {
					f.abandon()
					return err
				}
			}
			continue
		}
		ts, err := r.table(ctx, c.Table)
		if err != nil {
			f.abandon()
			return err
		}
		lastTable, lastState = c.Table, ts
		if arena, err = r.produceChange(ts, c, f, arena); err != nil {
			f.abandon()
			return err
		}
	}
	r.endReconciles(ends, f)
	f.reconcile = r.reconcile
	f.arenas, f.pool = append(filled, arena), r.arenas
	f.seal()
	r.arenaHint = max(r.arenaHint, min(cap(arena), r.arenaBytes))
	if n, bytes := len(b.Changes), used+len(arena); n > 0 && bytes > 0 {
		r.bytesPerChange = max((bytes+n-1)/n, minBytesPerChange)
	}
	return nil
}

// outboxRoute returns the outbox of a change: of its message's prefix, or
// of its table; nil when it is an entity table's change.
func (r *runner) outboxRoute(c *connectors.Change) *outbox.Route {
	if c.Op == connectors.OpMessage {
		if c.Message == nil {
			return nil
		}
		return r.p.outbox.Message(c.Message.Prefix)
	}
	return r.outboxOf(c.Table)
}

// minArenaBytes is the least arenaBytes, whatever the config says.
const minArenaBytes = 1 << 20

// minBytesPerChange is the least bytesPerChange: a key and a small value
// with their headers.
const minBytesPerChange = 64

// minArenaStart is the least a batch's arena starts at.
const minArenaStart = 4 << 10

// table returns the state of a table shape, registering its schemas and
// creating its topic the first time the shape is seen.
func (r *runner) table(ctx context.Context, t *connectors.Table) (*tableState, error) {
	if ts := r.tables[t]; ts != nil {
		return ts, nil
	}
	v, err := r.p.mapping.View(t)
	if err != nil {
		return nil, err
	}
	topic := r.p.mapping.Topic(t.ID())
	// Registry errors that may pass are marked retryable by the registry
	// client; an incompatible schema is not.
	pl, err := r.place(ctx, t, v, topic)
	if err != nil {
		return nil, err
	}
	return r.remember(t, v, pl), nil
}

// remember keeps the placement of a table shape for its changes.
func (r *runner) remember(t *connectors.Table, v *mapping.View, pl placement) *tableState {
	topic, keyID, valID := pl.topic, pl.keyID, pl.valID
	ts := &tableState{topic: topic, codec: pl.codec, keyID: keyID, valID: valID, view: v}
	r.tables[t] = ts
	r.p.setTableTopic(t.ID(), topic)
	if _, ok := r.byTopic.Load(topic); !ok {
		r.byTopic.Store(topic, r.p.metrics.forTable(t.ID()))
	}
	r.p.metrics.schemaID.WithLabelValues(topic + "-key").Set(float64(keyID))
	r.p.metrics.schemaID.WithLabelValues(topic + "-value").Set(float64(valID))
	r.p.log.Info("publishing table", "table", t.ID(), "topic", topic, "key_schema_id", keyID, "value_schema_id", valID)
	return ts
}

// produceChange produces the events of one change: a tombstone for the old
// key when an update moved the row, then the row (or a tombstone for a
// delete). Keys and values are carved out of arena, which it returns grown.
// A change that cannot be published, because a value cannot be encoded or
// its record is larger than its topic takes, is a bad row: it goes to
// badRow, and what it returns is produceChange's error.
func (r *runner) produceChange(ts *tableState, c *connectors.Change, f *inflight, arena []byte) ([]byte, error) {
	ev := connectors.Event{Topic: ts.topic, Op: c.Op, Pos: c.Pos, TxID: c.TxID, CommitTime: c.CommitTime}
	after, before := ts.view.Project(c.After), ts.view.Project(c.Before)
	if c.Op == connectors.OpDelete || c.KeyChanged() {
		mark := len(arena)
		key, a, err := appendKey(arena, ts, before)
		if err != nil {
			return arena, r.encodeFailed(ts, c, before, after, f, fmt.Errorf("encode key of table %s: %w", c.Table.ID(), err))
		}
		arena = a
		tomb := ev
		tomb.Key, tomb.Op = key, connectors.OpDelete
		if err := r.sink.CheckSize(&tomb); err != nil {
			return arena[:mark], r.tooLarge(ts, c, before, after, f, err)
		}
		r.produce(f, &tomb)
		if c.Op == connectors.OpDelete {
			return arena, nil
		}
	}
	mark := len(arena)
	key, arena, err := appendKey(arena, ts, after)
	if err != nil {
		return arena, r.encodeFailed(ts, c, after, after, f, fmt.Errorf("encode key of table %s: %w", c.Table.ID(), err))
	}
	start := len(arena)
	arena = schema.AppendHeader(arena, ts.valID)
	if arena, err = ts.codec.AppendValue(arena, after); err != nil {
		return arena[:mark], r.encodeFailed(ts, c, after, after, f, fmt.Errorf("encode row of table %s: %w", c.Table.ID(), err))
	}
	ev.Key, ev.Value = key, arena[start:len(arena):len(arena)]
	if err := r.sink.CheckSize(&ev); err != nil {
		return arena[:mark], r.tooLarge(ts, c, after, after, f, err)
	}
	r.produce(f, &ev)
	return arena, nil
}

func appendKey(arena []byte, ts *tableState, row []any) (key, grown []byte, err error) {
	start := len(arena)
	arena = schema.AppendHeader(arena, ts.keyID)
	arena, err = ts.codec.AppendKey(arena, row)
	if err != nil {
		return nil, arena[:start], err
	}
	return arena[start:len(arena):len(arena)], arena, nil
}

// produce counts ev in batch f, then hands it to the sink.
func (r *runner) produce(f *inflight, ev *connectors.Event) {
	f.add()
	if r.txn != nil {
		r.txn.counted(len(ev.Key) + len(ev.Value))
	}
	if r.touched != nil {
		r.touch(ev)
	}
	r.sink.Produce(r.produceCtx, ev, f.promise)
}

// acked counts an event that Kafka acknowledged.
func (r *runner) acked(d kafka.Delivery) {
	v, ok := r.byTopic.Load(d.Topic)
	if !ok {
		return
	}
	tm := v.(*tableMetrics)
	tm.events[opIndex(d.Op)].Inc()
	tm.bytes.Add(float64(d.Bytes))
	if d.Op != connectors.OpRead {
		r.p.metrics.commitToAck.Observe(time.Since(d.CommitTime).Seconds())
	}
}

// commitLoop stores the latest acknowledged checkpoint every commit
// interval, and once more when the reader stops.
func (r *runner) commitLoop(ctx context.Context, readDone <-chan struct{}) error {
	t := time.NewTicker(r.p.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.cp.changed:
			if _, _, err := r.cp.state(); err != nil {
				return err
			}
			if r.committedSeq.Load() != 0 {
				continue
			}
			// The first position of a run is stored at once: until it
			// is, a restart finds none.
		case <-r.fullCh():
			// transaction_max_bytes were produced in the transaction.
		case <-readDone:
			return nil
		case <-ctx.Done():
			return nil
		}
		if err := r.commit(ctx); err != nil {
			return err
		}
	}
}

// commit stores the latest acknowledged checkpoint in the offsets topic and
// then acknowledges it to the source. Under exactly_once it commits the
// open transaction with it (commitTxn).
func (r *runner) commit(ctx context.Context) error {
	if r.txn != nil {
		return r.commitTxn(ctx)
	}
	cpt, seq, perr := r.cp.state()
	pos := cpt.pos
	if pos == nil || seq == r.committedSeq.Load() {
		return perr
	}
	st := kafka.Stored{Source: r.identity, Position: string(pos.Encode()), Reconcile: cpt.reconcile}
	if err := r.sink.WriteOffset(ctx, r.p.cfg.Name, st); err != nil {
		return errors.Join(perr, err)
	}
	if err := r.src.Ack(ctx, pos); err != nil {
		return errors.Join(perr, fmt.Errorf("acknowledge position %s to the source: %w", pos, err))
	}
	r.committedSeq.Store(seq)
	r.p.status.setPosition(pos.String())
	r.p.log.Debug("position stored", "position", pos.String(), "in_flight_batches", r.cp.inFlight())
	return perr
}
