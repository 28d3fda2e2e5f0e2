package pipeline

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// checkIdentity compares the identity of the source's stream with the one
// stored beside the position, and returns it. A position of another stream
// is an error: two pipelines share a name, or the source moved.
func (p *Pipeline) checkIdentity(ctx context.Context, src connectors.Source, stored *kafka.Stored) (string, error) {
	id, ok := src.(connectors.Identifier)
	if !ok {
		return "", nil
	}
	identity, err := id.Identity(ctx)
	if err != nil {
		return "", err
	}
	if stored != nil && stored.Source != "" && stored.Source != identity {
		return "", &IdentityError{Key: p.cfg.Name, Topic: p.cfg.Kafka.OffsetsTopic, Stored: stored.Source, Source: identity}
	}
	return identity, nil
}

// IdentityError says that the position stored under a pipeline's name
// belongs to another stream than the one the source reads.
type IdentityError struct {
	Key, Topic     string
	Stored, Source string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("the position stored under key %q in offsets topic %q belongs to %s, but this pipeline reads %s: two pipelines share the name %q, or the source moved. Give each pipeline its own name; if this source really replaces the old one, run liberator reset --config FILE, which re-snapshots every table and tombstones the rows that are gone",
		e.Key, e.Topic, e.Stored, e.Source, e.Key)
}

// topicOf is the topic a table is published to now.
func (r *runner) topicOf(table string) string {
	if topic, ok := r.p.TableTopics()[table]; ok {
		return topic
	}
	return r.p.mapping.Topic(table)
}

// beginReconciles records where the topics stand as re-snapshots with
// reconcile begin. A resumed re-snapshot keeps the point recorded before
// the restart.
func (r *runner) beginReconciles(ctx context.Context, marks []connectors.ReconcileMark) error {
	for _, m := range marks {
		if m.End {
			continue
		}
		if _, ok := r.reconcile[m.Table]; ok && m.Resume {
			continue
		}
		if m.Resume {
			// Rows read before the restart are before any point recorded
			// now, and would be taken for rows that are gone.
			r.p.log.Error("a re-snapshot with reconcile resumes without the point where it began; the table is re-snapshotted without reconcile, so rows deleted during the gap may stay in its topic (liberator snapshot --table T --reconcile repairs it)", "table", m.Table)
			continue
		}
		topic := r.topicOf(m.Table)
		start, err := r.sink.BeginReconcile(ctx, topic)
		if err != nil {
			return fmt.Errorf("begin the reconcile of table %s: %w", m.Table, err)
		}
		next := maps.Clone(r.reconcile)
		if next == nil {
			next = map[string]kafka.ReconcileStart{}
		}
		next[m.Table] = start
		r.reconcile = next
		r.p.log.Info("re-snapshot with reconcile begins: keys of the topic that neither it nor the stream writes are tombstoned at its end",
			"table", m.Table, "topic", topic, "from_offsets", start.Start)
	}
	return nil
}

// ending is a re-snapshot with reconcile that ends with the batch being
// produced: the keys its topic holds that nothing wrote since it began, as
// far as the records before the batch tell.
type ending struct {
	table  string
	start  kafka.ReconcileStart
	ghosts [][]byte
	took   time.Time
}

// scanReconciles reads, for each re-snapshot with reconcile that ends with
// the batch about to be produced, its topic: the keys live before it began
// that no record since wrote. It runs before the batch's changes are
// produced, so that every record it must see belongs to a batch already
// sealed: under exactly_once it commits the open transaction first (a
// read_committed read waits for it), and that commit is an ordinary one,
// with the position that covers every record in it. A commit made after
// the batch's rows were produced would carry the position of the batch
// before, and a crash before the next commit would send those rows again
// to read_committed consumers. The keys the batch writes itself are taken
// from memory (touched) and spared by endReconciles.
func (r *runner) scanReconciles(ctx context.Context, marks []connectors.ReconcileMark) ([]ending, error) {
	var out []ending
	for _, m := range marks {
		if !m.End {
			continue
		}
		start, ok := r.reconcile[m.Table]
		if !ok {
			continue
		}
		if len(out) == 0 {
			// Every record produced so far must be in the topic, and,
			// under exactly_once, committed, before it is read.
			if r.txn != nil {
				if err := r.commitTxnLocked(ctx); err != nil {
					return nil, fmt.Errorf("reconcile table %s: %w", m.Table, err)
				}
			}
			if err := r.sink.Flush(ctx); err != nil {
				return nil, fmt.Errorf("reconcile table %s: flush: %w", m.Table, err)
			}
			if _, _, err := r.cp.state(); err != nil {
				return nil, err
			}
		}
		took := time.Now()
		ghosts, err := r.sink.Ghosts(ctx, start)
		if err != nil {
			return nil, fmt.Errorf("reconcile table %s: %w", m.Table, err)
		}
		out = append(out, ending{table: m.Table, start: start, ghosts: ghosts, took: took})
	}
	if len(out) > 0 {
		r.touched = map[string]map[uint64]struct{}{}
		for _, e := range out {
			r.touched[e.start.Topic] = map[uint64]struct{}{}
		}
	}
	return out, nil
}

// touch remembers the key of ev while a re-snapshot with reconcile of its
// topic ends with the batch being produced.
func (r *runner) touch(ev *connectors.Event) {
	if keys, ok := r.touched[ev.Topic]; ok {
		keys[kafka.KeyHash(ev.Key)] = struct{}{}
	}
}

// endReconciles tombstones, for each re-snapshot with reconcile that ends
// with this batch, the ghosts scanReconciles found that the batch did not
// write: rows deleted while the source's log could not be read. The
// tombstones belong to batch f, so its checkpoint is stored only once they
// are acknowledged, and under exactly_once they commit with it.
func (r *runner) endReconciles(ends []ending, f *inflight) {
	if len(ends) == 0 {
		return
	}
	touched := r.touched
	r.touched = nil
	now := time.Now()
	for _, e := range ends {
		n := 0
		for _, k := range e.ghosts {
			if _, ok := touched[e.start.Topic][kafka.KeyHash(k)]; ok {
				continue
			}
			r.produce(f, &connectors.Event{Topic: e.start.Topic, Key: k, Op: connectors.OpDelete, CommitTime: now, Reconcile: true})
			n++
		}
		r.p.metrics.reconciled.WithLabelValues(e.table).Add(float64(n))
		next := maps.Clone(r.reconcile)
		delete(next, e.table)
		r.reconcile = next
		r.p.log.Info("re-snapshot with reconcile done: keys no longer in the table tombstoned",
			"table", e.table, "topic", e.start.Topic, "tombstones", n, "took", time.Since(e.took).Round(time.Millisecond))
	}
}
