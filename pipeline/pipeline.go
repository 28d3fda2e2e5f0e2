// Package pipeline moves changes from a source connector through the Avro
// mapping to the Kafka sink, and moves the source's position forward only
// as far as Kafka has acknowledged.
//
//	source.Read -> encode (schema) -> sink.Produce
//	     ^                                 |
//	     +-- source.Ack <- offsets topic <-+ (acknowledged checkpoints only)
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/schema"
)

// Header keys of every entity event.
const (
	HeaderOp       = "op"        // c, u, d, or r for a snapshot read
	HeaderPosition = "pos"       // the source position of the change
	HeaderCommitTS = "commit_ts" // commit time, RFC 3339 with microseconds, UTC
	HeaderTxID     = "txid"      // the source's transaction id
)

// Pipeline is one configured source feeding Kafka.
type Pipeline struct {
	cfg *Config
	log *slog.Logger

	status  *Status
	metrics *metrics
	started atomic.Bool // the source opened at least once
	// source is the source of the current attempt, for lag reporting.
	source atomic.Value // connectors.Source
	// term shows snapshot progress live, when stderr is a terminal.
	term *Terminal
	// topicState is the current topic of each table (TableTopics).
	topicState
}

// New returns a pipeline for a validated config. It does no I/O.
func New(cfg *Config, log *slog.Logger) *Pipeline {
	p := &Pipeline{cfg: cfg, log: log, status: newStatus()}
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
	env, err := p.startEmbedded(ctx)
	if err != nil {
		return err
	}
	defer env.Close()
	stopAdmin, err := p.serveAdmin(ctx)
	if err != nil {
		return err
	}
	defer stopAdmin()
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.runOnce(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		// At start a failure is reported at once, so that a wrong address or
		// a missing privilege is seen; once the pipeline has run, a lost
		// connection is retried.
		retry := connectors.IsRetryable(err) && p.started.Load()
		p.metrics.errors.WithLabelValues(strconv.FormatBool(retry)).Inc()
		if !retry {
			return err
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		p.log.Warn("pipeline failed; retrying", "error", err, "attempt", attempt, "in", wait.Round(time.Millisecond))
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
	sink, err := kafka.New(cfg.Kafka, p.log)
	if err != nil {
		return &ConfigError{err}
	}
	if err := sink.Open(ctx); err != nil {
		return err
	}
	defer sink.Close()
	reg, err := cfg.newRegistry(cfg.Registry.URL)
	if err != nil {
		return &ConfigError{fmt.Errorf("registry: %w", err)}
	}
	src, err := cfg.newSource(p.log)
	if err != nil {
		return &ConfigError{err}
	}
	stored, err := sink.ReadOffset(ctx, cfg.Name)
	if err != nil {
		return err
	}
	identity, err := p.checkIdentity(ctx, src, stored)
	if err != nil {
		return err
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
			if check.Err != nil {
				errs = append(errs, check.Err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("the source is not ready (liberator check lists every check):\n%w", errors.Join(errs...))
		}
	}
	if !p.started.Load() {
		if err := p.checkMapping(ctx, src); err != nil {
			return err
		}
	}
	if err := src.Open(ctx, resume); err != nil {
		if errors.Is(err, connectors.ErrStreamWithoutPosition) {
			err = fmt.Errorf("%w; no position is stored under key %q in offsets topic %q (was the offsets topic deleted, the pipeline's name changed, or Kafka replaced?). Starting over from the server's stream would keep rows deleted meanwhile in the topics for good: run liberator reset --config FILE to re-snapshot every table and tombstone the rows that are gone, or point name and kafka.offsets_topic back at the stored position", err, cfg.Name, cfg.Kafka.OffsetsTopic)
		}
		return errors.Join(err, src.Close(context.WithoutCancel(ctx)))
	}
	p.source.Store(src)
	p.status.setState("running")
	p.metrics.ready.Set(1)
	defer p.metrics.ready.Set(0)
	p.started.Store(true)

	r := &runner{p: p, src: src, sink: sink, reg: reg, cp: newCheckpointer(), tables: map[*connectors.Table]*tableState{},
		identity: identity, reconcile: reconcile}
	r.cp.onAck = r.acked
	// The produce context outlives ctx: records already buffered are
	// delivered during the drain, not failed by the cancellation.
	produceCtx, abortProduce := context.WithCancel(context.WithoutCancel(ctx))
	defer abortProduce()
	r.produceCtx = produceCtx

	g, gctx := errgroup.WithContext(ctx)
	readDone := make(chan struct{})
	g.Go(func() error {
		defer close(readDone)
		return r.readLoop(gctx)
	})
	g.Go(func() error { return r.commitLoop(gctx, readDone) })
	g.Go(func() error { return p.reportSnapshots(gctx, src) })
	err = g.Wait()
	if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled)) {
		err = nil
	}

	// Drain: flush what was produced, then store the last acknowledged
	// position. On a failure the position is stored too: it only covers
	// what Kafka acknowledged.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	p.status.setState("draining")
	if ferr := sink.Flush(dctx); ferr != nil {
		p.log.Warn("drain: flush did not finish", "error", ferr)
	}
	abortProduce()
	cerr := r.commit(dctx)
	err = errors.Join(err, cerr, src.Close(dctx))
	if err == nil {
		p.status.setState("stopped")
	}
	return err
}

// tableState is what the pipeline keeps per table shape.
type tableState struct {
	topic        string
	codec        *schema.Codec
	keyID, valID int
	// view maps the source's rows to the published ones (mapping).
	view *view
}

type runner struct {
	p          *Pipeline
	src        connectors.Source
	sink       *kafka.Sink
	reg        *schema.Registry
	cp         *checkpointer
	tables     map[*connectors.Table]*tableState
	byTopic    sync.Map // topic -> *tableMetrics
	produceCtx context.Context
	// topicVersions are the versioned topics of schema.on_incompatible:
	// new_topic, by table.
	versionsMu    sync.Mutex
	topicVersions map[string]*topicVersions

	committedSeq uint64
	hdr          headerCache
	arenaHint    int

	// identity is the source's, stored beside every position.
	identity string
	// reconcile holds the re-snapshots with reconcile under way, by table,
	// as of the batch being read. It is replaced, never modified, because
	// checkpoints share it.
	reconcile map[string]kafka.ReconcileStart
}

// readLoop reads batches, encodes their changes and produces them.
func (r *runner) readLoop(ctx context.Context) error {
	for {
		if _, _, err := r.cp.state(); err != nil {
			return err
		}
		b, err := r.src.Read(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.p.log.Info("source finished")
			}
			return err
		}
		f := r.cp.begin(b.Checkpoint)
		promise := f.promise
		if err := r.beginReconciles(ctx, b.Reconcile); err != nil {
			f.abandon()
			return err
		}
		// Start each batch's arena at the size the last one reached, so
		// that it rarely grows by copying.
		arena := make([]byte, 0, r.arenaHint)
		for i := range b.Changes {
			c := &b.Changes[i]
			// A batch that could not be produced whole is abandoned, so
			// that its checkpoint is never stored: the change that failed
			// is read again at the next start.
			ts, err := r.table(ctx, c.Table)
			if err != nil {
				f.abandon()
				return err
			}
			if arena, err = r.produceChange(ts, c, f, promise, arena); err != nil {
				f.abandon()
				return err
			}
		}
		if err := r.endReconciles(ctx, b.Reconcile, f); err != nil {
			f.abandon()
			return err
		}
		f.reconcile = r.reconcile
		f.seal()
		r.arenaHint = min(cap(arena), 64<<20)
	}
}

// table returns the state of a table shape, registering its schemas and
// creating its topic the first time the shape is seen.
func (r *runner) table(ctx context.Context, t *connectors.Table) (*tableState, error) {
	if ts := r.tables[t]; ts != nil {
		return ts, nil
	}
	m, name := r.p.cfg.mappingFor(t.ID())
	v, err := newView(t, m, name, r.p.cfg.MappingSalt)
	if err != nil {
		return nil, err
	}
	topic := r.p.cfg.topicFor(t.ID())
	// Registry errors that may pass are marked retryable by the registry
	// client; an incompatible schema is not.
	pl, err := r.place(ctx, t, v, topic)
	if err != nil {
		return nil, err
	}
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
	return ts, nil
}

// produceChange produces the events of one change: a tombstone for the old
// key when an update moved the row, then the row (or a tombstone for a
// delete). Keys and values are carved out of arena, which it returns grown.
func (r *runner) produceChange(ts *tableState, c *connectors.Change, f *inflight, promise func(*kgo.Record, error), arena []byte) ([]byte, error) {
	headers := r.headers(c)
	after, before := ts.view.project(c.After), ts.view.project(c.Before)
	if c.Op == connectors.OpDelete || c.KeyChanged() {
		key, a, err := appendKey(arena, ts, before)
		if err != nil {
			return arena, fmt.Errorf("encode key of table %s: %w", c.Table.ID(), err)
		}
		arena = a
		if c.Op == connectors.OpDelete {
			r.produce(f, promise, &kgo.Record{Topic: ts.topic, Key: key, Headers: headers, Timestamp: c.CommitTime})
			return arena, nil
		}
		r.produce(f, promise, &kgo.Record{Topic: ts.topic, Key: key, Headers: tombstoneHeaders(headers), Timestamp: c.CommitTime})
	}
	key, arena, err := appendKey(arena, ts, after)
	if err != nil {
		return arena, fmt.Errorf("encode key of table %s: %w", c.Table.ID(), err)
	}
	start := len(arena)
	arena = schema.AppendHeader(arena, ts.valID)
	if arena, err = ts.codec.AppendValue(arena, after); err != nil {
		return arena, fmt.Errorf("encode row of table %s: %w", c.Table.ID(), err)
	}
	val := arena[start:len(arena):len(arena)]
	r.produce(f, promise, &kgo.Record{Topic: ts.topic, Key: key, Value: val, Headers: headers, Timestamp: c.CommitTime})
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

func (r *runner) produce(f *inflight, promise func(*kgo.Record, error), rec *kgo.Record) {
	f.add()
	r.sink.Produce(r.produceCtx, rec, promise)
}

func (r *runner) headers(c *connectors.Change) []kgo.RecordHeader {
	// Every change of a transaction, and every row of a snapshot, shares
	// these values: build them once and share the read-only slices.
	hc := &r.hdr
	if hc.h == nil || c.Op != hc.op || c.TxID != hc.txID || !c.CommitTime.Equal(hc.ts) || !samePosition(c.Pos, hc.pos) {
		h := make([]kgo.RecordHeader, 0, 4)
		h = append(h,
			kgo.RecordHeader{Key: HeaderOp, Value: []byte{byte(c.Op)}},
			kgo.RecordHeader{Key: HeaderCommitTS, Value: []byte(c.CommitTime.UTC().Format("2006-01-02T15:04:05.000000Z"))},
		)
		if c.Pos != nil {
			h = append(h, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(c.Pos.String())})
		}
		if c.TxID != "" {
			h = append(h, kgo.RecordHeader{Key: HeaderTxID, Value: []byte(c.TxID)})
		}
		*hc = headerCache{op: c.Op, txID: c.TxID, ts: c.CommitTime, pos: c.Pos, h: h}
	}
	return hc.h
}

// headerCache holds the headers of the last change.
type headerCache struct {
	op   connectors.Op
	txID string
	ts   time.Time
	pos  connectors.Position
	h    []kgo.RecordHeader
}

// samePosition reports whether two positions are equal: by their Equal
// method if they have one, else by == for comparable types; others never
// compare equal.
func samePosition(a, b connectors.Position) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if e, ok := a.(equalPosition); ok {
		return e.Equal(b)
	}
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t.Comparable() && a == b
}

// equalPosition is a position that knows when another one is the same.
type equalPosition interface {
	Equal(connectors.Position) bool
}

// tombstoneHeaders are the headers of the tombstone that precedes the new
// row of a key-changing update: the same, with op d. A delete's own
// headers already say d.
func tombstoneHeaders(h []kgo.RecordHeader) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, len(h))
	copy(out, h)
	out[0].Value = []byte{byte(connectors.OpDelete)}
	return out
}

// acked counts an event that Kafka acknowledged.
func (r *runner) acked(rec *kgo.Record) {
	v, ok := r.byTopic.Load(rec.Topic)
	if !ok {
		return
	}
	tm := v.(*tableMetrics)
	op := connectors.Op(rec.Headers[0].Value[0])
	tm.events[opIndex(op)].Inc()
	tm.bytes.Add(float64(len(rec.Key) + len(rec.Value)))
	if op != connectors.OpRead {
		r.p.metrics.commitToAck.Observe(time.Since(rec.Timestamp).Seconds())
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
			if r.committedSeq != 0 {
				continue
			}
			// The first position of a run is stored at once: until it
			// is, a restart finds none.
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
// then acknowledges it to the source.
func (r *runner) commit(ctx context.Context) error {
	cpt, seq, perr := r.cp.state()
	pos := cpt.pos
	if pos == nil || seq == r.committedSeq {
		return perr
	}
	st := kafka.Stored{Source: r.identity, Position: string(pos.Encode()), Reconcile: cpt.reconcile}
	if err := r.sink.WriteOffset(ctx, r.p.cfg.Name, st); err != nil {
		return errors.Join(perr, err)
	}
	if err := r.src.Ack(ctx, pos); err != nil {
		return errors.Join(perr, fmt.Errorf("acknowledge position %s to the source: %w", pos, err))
	}
	r.committedSeq = seq
	r.p.status.setPosition(pos.String())
	r.p.log.Debug("position stored", "position", pos.String(), "in_flight_batches", r.cp.inFlight())
	return perr
}
