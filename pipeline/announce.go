package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/schema"
)

// describe returns the source's tables as they are now, when the source
// can describe them before it opens (connectors.Describer), and checks the
// mapping against them, so that a column a table lacks stops liberator at
// start. A source that cannot describe its tables returns none. Outbox
// tables are checked against their outbox's columns and left out.
func (p *Pipeline) describe(ctx context.Context, src connectors.Source) ([]*connectors.Table, error) {
	d, ok := src.(connectors.Describer)
	if !ok {
		return nil, nil
	}
	all, err := d.Describe(ctx)
	if err != nil {
		return nil, err
	}
	// Outbox tables publish events, not entities: they are checked
	// against their outbox's columns, and get no entity topic.
	var tables []*connectors.Table
	for _, t := range all {
		if p.outbox.Table(t.ID()) == nil {
			tables = append(tables, t)
		}
	}
	return tables, errors.Join(p.mapping.Check(tables), p.outbox.Check(all))
}

// announce creates the topic of each table and registers its key and
// value schemas there, before the first row is read: consumers can then
// subscribe to every table's topic, and read its schemas, before its first
// change, and an empty table has its topic too.
//
// A table whose shape today is incompatible with its subjects (it changed
// while liberator was stopped) is left to its first change, so that the
// changes before it are published first and schema.on_incompatible acts
// where it always does: at the change.
//
// keep is set for the tables a source hands over while running
// (connectors.Batch.Tables): their *Table is the one their changes carry,
// so the shape's placement is kept for them, and the table's first change
// neither registers nor looks up anything. The tables that a source
// describes before it opens are other pointers, and are not kept.
func (r *runner) announce(ctx context.Context, tables []*connectors.Table, keep bool) error {
	for _, t := range tables {
		v, err := r.p.mapping.View(t)
		if err != nil {
			return err
		}
		topic := r.p.mapping.Topic(t.ID())
		if r.p.cfg.Schema.OnIncompatible == config.OnIncompatibleNewTopic {
			tv, err := r.versions(ctx, t, topic)
			if err != nil {
				return err
			}
			topic = tv.topic(tv.current)
		}
		codec, err := schema.NewCodec(schema.Namespace(topic), v.Table, schema.WithFieldNames(v.Rename))
		if err != nil {
			return fmt.Errorf("map table %s to avro: %w", t.ID(), err)
		}
		if err := r.checkPlacement(ctx, topic, codec); err != nil {
			var ie *schema.IncompatibleError
			if !errors.As(err, &ie) {
				return err
			}
			r.p.log.Info("table changed incompatibly while stopped; its topic is set up at its first change",
				"table", t.ID(), "topic", topic, "reason", ie.Reason)
			continue
		}
		pl, err := r.register(ctx, t, topic, codec)
		if err != nil {
			return err
		}
		if keep {
			r.remember(t, v, pl)
			continue
		}
		r.p.setTableTopic(t.ID(), pl.topic)
		r.p.metrics.schemaID.WithLabelValues(pl.topic + "-key").Set(float64(pl.keyID))
		r.p.metrics.schemaID.WithLabelValues(pl.topic + "-value").Set(float64(pl.valID))
		r.p.log.Debug("table's topic and schemas are ready", "table", t.ID(), "topic", pl.topic,
			"key_schema_id", pl.keyID, "value_schema_id", pl.valID)
	}
	return nil
}

// announceNew announces the tables a source began to capture while
// running (connectors.Batch.Tables), before the changes of their batch:
// a table's first change then waits on neither the topic's creation nor
// the registry. Outbox tables, which have no entity topic, and shapes
// the run knows already are passed over.
func (r *runner) announceNew(ctx context.Context, tables []*connectors.Table) error {
	var fresh []*connectors.Table
	for _, t := range tables {
		if r.tables[t] == nil && r.p.outbox.Table(t.ID()) == nil {
			fresh = append(fresh, t)
		}
	}
	return r.announce(ctx, fresh, true)
}
