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

// endReconciles tombstones, for each re-snapshot with reconcile that ends
// with this batch, the keys that its topic holds but that nothing wrote
// since it began: rows deleted while the source's log could not be read.
// The tombstones belong to batch f, so its checkpoint is stored only once
// they are acknowledged.
func (r *runner) endReconciles(ctx context.Context, marks []connectors.ReconcileMark, f *inflight) error {
	for _, m := range marks {
		if !m.End {
			continue
		}
		start, ok := r.reconcile[m.Table]
		if !ok {
			continue
		}
		// Every record produced so far must be in the topic before it is
		// read. Under exactly_once they must be committed too, or a
		// read_committed scan would wait for the open transaction: it is
		// committed here, with the position of the last whole batch.
		if r.txn != nil {
			if err := r.commitTxnLocked(ctx); err != nil {
				return fmt.Errorf("reconcile table %s: %w", m.Table, err)
			}
		}
		if err := r.sink.Flush(ctx); err != nil {
			return fmt.Errorf("reconcile table %s: flush: %w", m.Table, err)
		}
		if _, _, err := r.cp.state(); err != nil {
			return err
		}
		took := time.Now()
		ghosts, err := r.sink.Ghosts(ctx, start)
		if err != nil {
			return fmt.Errorf("reconcile table %s: %w", m.Table, err)
		}
		now := time.Now()
		for _, k := range ghosts {
			r.produce(f, &connectors.Event{Topic: start.Topic, Key: k, Op: connectors.OpDelete, CommitTime: now, Reconcile: true})
		}
		r.p.metrics.reconciled.WithLabelValues(m.Table).Add(float64(len(ghosts)))
		next := maps.Clone(r.reconcile)
		delete(next, m.Table)
		r.reconcile = next
		r.p.log.Info("re-snapshot with reconcile done: keys no longer in the table tombstoned",
			"table", m.Table, "topic", start.Topic, "tombstones", len(ghosts), "took", time.Since(took).Round(time.Millisecond))
	}
	return nil
}
