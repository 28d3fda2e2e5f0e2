package pipeline

import (
	"errors"
	"fmt"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/schema"
)

// BadRowError is the error that stops liberator at a bad row under
// errors.on_bad_row: fail. The position stays before the row, so that it
// is read again at the next start.
type BadRowError struct {
	// Table is the table's "schema.name".
	Table string
	// Key is the row's key, as "id=42".
	Key string
	// Column is the column at fault, as the database names it; empty when
	// the row as a whole is (too large).
	Column string
	// Reason is kafka.ReasonEncode or kafka.ReasonTooLarge.
	Reason string
	// Op is the change's operation.
	Op connectors.Op
	// Position is the change's source position.
	Position string
	// Err says what is wrong: it wraps a *schema.ValueError or a
	// *kafka.TooLargeError.
	Err error
	// DeadLetter, under errors.on_bad_row: dead_letter, says why the row
	// could not be written to the dead-letter topic either.
	DeadLetter error
	// Event is set for an outbox record that cannot be published: the
	// event's id. Table is then the outbox, and Column the field at
	// fault (a path into the payload, as payload.total).
	Event string
}

func (e *BadRowError) Error() string {
	what := "the row as a whole"
	if e.Column != "" {
		what = fmt.Sprintf("column %q", e.Column)
	}
	how := "set errors.on_bad_row to skip or dead_letter to go past it"
	if e.Event != "" && e.DeadLetter == nil && e.Reason != kafka.ReasonTooLarge {
		what = "the event as a whole"
		if e.Column != "" {
			what = fmt.Sprintf("field %q", e.Column)
		}
		return fmt.Sprintf("bad outbox event %s of %s, %s, at position %s: %v; stopped before it, and it is read again at the next start: %s (the event is in the database's log: a new outbox record adds a later event, it does not replace this one)",
			e.Event, e.Table, what, e.Position, e.Err, how)
	}
	switch {
	case e.DeadLetter != nil:
		return fmt.Sprintf("bad row in table %s, key %s, %s, at position %s: %v; and it cannot be written to the dead-letter topic: %v; stopped before it, and it is read again at the next start: let the dead-letter topic take it (its max.message.bytes), or set errors.on_bad_row to skip",
			e.Table, e.Key, what, e.Position, e.Err, e.DeadLetter)
	case e.Reason == kafka.ReasonTooLarge:
		how += ", or let the topic take it (raise the topic's max.message.bytes, and kafka.max_message_bytes)"
	case e.Op == connectors.OpRead:
		how += ", or fix the row in the table (the snapshot reads it again)"
	default:
		how += " (the change is in the database's log: fixing the row now adds a later change, it does not remove this one)"
	}
	return fmt.Sprintf("bad row in table %s, key %s, %s, at position %s: %v; stopped before it, and it is read again at the next start: %s",
		e.Table, e.Key, what, e.Position, e.Err, how)
}

// Unwrap returns e.Err.
func (e *BadRowError) Unwrap() error { return e.Err }

// encodeFailed handles a change whose key or value could not be encoded.
// A value at fault (*schema.ValueError) makes it a bad row; any other
// failure is returned as it is.
func (r *runner) encodeFailed(ts *tableState, c *connectors.Change, keyRow, row []any, f *inflight, err error) error {
	var ve *schema.ValueError
	if !errors.As(err, &ve) {
		return err
	}
	return r.badRow(ts, c, keyRow, row, f, ve.Column, kafka.ReasonEncode, err)
}

// tooLarge handles a change whose record is larger than its topic takes.
func (r *runner) tooLarge(ts *tableState, c *connectors.Change, keyRow, row []any, f *inflight, err error) error {
	var tle *kafka.TooLargeError
	if !errors.As(err, &tle) {
		return err
	}
	return r.badRow(ts, c, keyRow, row, f, "", kafka.ReasonTooLarge, err)
}

// badRow applies errors.on_bad_row to a change that cannot be published.
// keyRow holds its key columns, row the published row (nil for a delete).
// Under fail it returns a *BadRowError; under skip it logs and counts the
// row; under dead_letter it produces the row to the dead-letter topic as
// part of batch f, so that the batch's checkpoint is stored only once
// Kafka has the dead letter.
func (r *runner) badRow(ts *tableState, c *connectors.Change, keyRow, row []any, f *inflight, column, reason string, cause error) error {
	b := &kafka.BadRow{
		Table: c.Table.ID(), Topic: ts.topic, Op: c.Op, Column: column, Reason: reason, Err: cause,
		Pos: c.Pos, TxID: c.TxID, CommitTime: c.CommitTime,
	}
	names := ts.codec.Fields()
	cols := ts.view.Table.Columns
	if keyRow != nil {
		for _, k := range ts.view.Table.Key {
			b.Key = append(b.Key, kafka.Field{Name: names[k], Value: schema.JSONValue(cols[k].Type, keyRow[k])})
		}
	}
	if row != nil && c.Op != connectors.OpDelete {
		b.Row = make([]kafka.Field, len(cols))
		for i, col := range cols {
			b.Row[i] = kafka.Field{Name: names[i], Value: schema.JSONValue(col.Type, row[i])}
		}
	}
	return r.handleBadRow(b, f)
}

// handleBadRow applies errors.on_bad_row to b (see badRow).
func (r *runner) handleBadRow(b *kafka.BadRow, f *inflight) error {
	p := r.p
	pos := ""
	if b.Pos != nil {
		pos = b.Pos.String()
	}
	table, column, reason, cause := b.Table, b.Column, b.Reason, b.Err
	switch p.cfg.Errors.OnBadRow {
	case config.OnBadRowSkip:
		p.metrics.badRows.WithLabelValues(table, "skipped").Inc()
		p.log.Warn("bad row skipped (errors.on_bad_row: skip)", "table", table, "key", b.KeyString(), "column", column,
			"reason", reason, "error", cause, "position", pos)
		return nil
	case config.OnBadRowDeadLetter:
		f.add()
		if err := r.sink.ProduceDeadLetter(r.produceCtx, p.cfg.Errors.DeadLetterTopic, b, f.promise); err != nil {
			f.release()
			p.metrics.badRows.WithLabelValues(table, "failed").Inc()
			bre := r.badRowError(b, pos)
			bre.DeadLetter = err
			return bre
		}
		p.metrics.badRows.WithLabelValues(table, "dead_lettered").Inc()
		p.log.Warn("bad row sent to the dead-letter topic (errors.on_bad_row: dead_letter)", "table", table, "key", b.KeyString(),
			"column", column, "reason", reason, "error", cause, "position", pos, "topic", p.cfg.Errors.DeadLetterTopic)
		return nil
	}
	p.metrics.badRows.WithLabelValues(table, "failed").Inc()
	return r.badRowError(b, pos)
}

func (r *runner) badRowError(b *kafka.BadRow, pos string) *BadRowError {
	e := &BadRowError{Table: b.Table, Key: b.KeyString(), Column: b.Column, Reason: b.Reason, Op: b.Op, Position: pos, Err: b.Err}
	if b.Outbox {
		e.Event = b.Key[0].Value.(string)
	}
	return e
}

// refusal is a record Kafka refused as too large in a run, and the limit
// its topic had then (kafka.TooLargeError).
type refusal struct{ size, limit int }

// noteRefusal remembers, from the error that ended a run, a record that
// Kafka refused as too large after it was produced (its topic's limit was
// lowered, or the topic takes less than it says). The run is retried; the
// next one's sink is told (kafka.Sink.Refused), so that its size check
// catches the record and errors.on_bad_row applies to it, rather than the
// runs failing on it for ever.
func (p *Pipeline) noteRefusal(sink *kafka.Sink, err error) {
	var tle *kafka.TooLargeError
	if !errors.As(err, &tle) || tle.Err == nil {
		return
	}
	p.refusedMu.Lock()
	defer p.refusedMu.Unlock()
	if p.refused == nil {
		p.refused = map[string]refusal{}
	}
	if r, ok := p.refused[tle.Topic]; !ok || tle.Size < r.size {
		p.refused[tle.Topic] = refusal{size: tle.Size, limit: sink.Limit(tle.Topic)}
	}
	p.log.Warn("Kafka refused a record as too large; the run starts over, and the record goes to errors.on_bad_row",
		"topic", tle.Topic, "bytes", tle.Size, "limit", sink.Limit(tle.Topic), "error", tle.Err)
}

// tellRefusals tells a new run's sink of the records refused before.
func (p *Pipeline) tellRefusals(sink *kafka.Sink) {
	p.refusedMu.Lock()
	defer p.refusedMu.Unlock()
	for topic, r := range p.refused {
		sink.Refused(topic, r.size, r.limit)
	}
}
