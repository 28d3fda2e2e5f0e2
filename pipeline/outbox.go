package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/outbox"
	"github.com/liberator-cdc/liberator/schema"
)

// NoSchemaError stops liberator at an outbox event whose subject has no
// schema, when the outbox does not infer one. The position stays before
// the event.
type NoSchemaError struct {
	// Outbox is the outbox's table, or "message prefix P".
	Outbox string
	// Subject is the subject that has no schema.
	Subject string
	// Event is the event's id.
	Event string
	// Err wraps schema.ErrNoSchema.
	Err error
}

func (e *NoSchemaError) Error() string {
	return fmt.Sprintf("outbox event %s of %s: subject %q has no schema; stopped before the event, which is read again at the next start: "+
		"register the payload's Avro schema under %q (POST /subjects/%s/versions with {\"schema\": \"<the schema's JSON, quoted>\"}), "+
		"or set infer_schema: true on the outbox to register one inferred from the first event",
		e.Event, e.Outbox, e.Subject, e.Subject, e.Subject)
}

// Unwrap returns e.Err.
func (e *NoSchemaError) Unwrap() error { return e.Err }

// payloadSchema is the schema a subject's payloads are encoded with: the
// subject's latest when first needed in a run.
type payloadSchema struct {
	id     int
	schema avro.Schema
}

// outboxOf returns the outbox route of a table shape, nil for a table
// published as entities.
func (r *runner) outboxOf(t *connectors.Table) *outbox.Route {
	rt, ok := r.outboxes[t]
	if !ok {
		rt = r.p.outbox.Table(t.ID())
		r.outboxes[t] = rt
	}
	return rt
}

// produceOutbox publishes the event of an outbox record: a row inserted
// into an outbox table, or a message of an outbox prefix. An update or a
// delete of an outbox row publishes nothing, so that a service may delete
// the row in the transaction that wrote it. A record that cannot become an
// event, and a payload that does not fit its schema, go to the bad-row
// policy.
func (r *runner) produceOutbox(ctx context.Context, rt *outbox.Route, c *connectors.Change, f *inflight, arena []byte) ([]byte, error) {
	var (
		ev  *outbox.Event
		err error
	)
	switch c.Op {
	case connectors.OpCreate:
		ev, err = rt.FromRow(c.Table, c.After, kafka.ValidTopic)
	case connectors.OpMessage:
		ev, err = rt.FromMessage(c.Message, kafka.ValidTopic)
	default:
		return arena, nil
	}
	if err != nil {
		var ee *outbox.EventError
		if !errors.As(err, &ee) {
			return arena, err
		}
		return arena, r.outboxBadRow(rt, c, ev, ee.Field, kafka.ReasonEvent, err, f)
	}
	if err := r.sink.EnsureEventTopic(ctx, ev.Topic); err != nil {
		return arena, fmt.Errorf("outbox %s: %w", rt.Name(), err)
	}
	if _, ok := r.byTopic.Load(ev.Topic); !ok {
		r.byTopic.Store(ev.Topic, r.p.metrics.forTable(rt.Name()))
	}
	mark := len(arena)
	var value []byte
	if ev.Framed != nil {
		// A body in the wire format already: its schema must decode it.
		if _, _, err := r.reg.DecodeWithSchema(ctx, ev.Framed); err != nil {
			if connectors.IsRetryable(err) {
				return arena, err
			}
			return arena, r.outboxBadRow(rt, c, ev, rt.Config().Payload, kafka.ReasonPayload, err, f)
		}
		value = ev.Framed
	} else {
		start := len(arena)
		if arena, err = r.encodePayload(ctx, rt, ev, arena); err != nil {
			var pe *schema.PayloadError
			if !errors.As(err, &pe) {
				return arena, err
			}
			field := rt.Config().Payload
			if pe.Field != "" {
				field += "." + pe.Field
			}
			return arena, r.outboxBadRow(rt, c, ev, field, kafka.ReasonPayload, err, f)
		}
		value = arena[start:len(arena):len(arena)]
	}
	out := connectors.Event{Topic: ev.Topic, Key: ev.Key, Value: value, Op: connectors.OpCreate, Pos: c.Pos, TxID: c.TxID,
		CommitTime: c.CommitTime, Headers: ev.Headers, Timestamp: ev.Timestamp}
	if err := r.sink.CheckSize(&out); err != nil {
		var tle *kafka.TooLargeError
		if !errors.As(err, &tle) {
			return arena[:mark], err
		}
		return arena[:mark], r.outboxBadRow(rt, c, ev, "", kafka.ReasonTooLarge, err, f)
	}
	r.produce(f, &out)
	return arena, nil
}

// encodePayload appends ev's payload, framed, encoded with the latest
// schema of its subject. A payload that does not fit a schema read
// earlier in the run is tried once more with the subject's latest, which
// may be newer. On error it returns arena as it was.
func (r *runner) encodePayload(ctx context.Context, rt *outbox.Route, ev *outbox.Event, arena []byte) ([]byte, error) {
	subject := rt.Subject(ev)
	ps, err := r.payloadSchema(ctx, rt, subject, ev, false)
	if err != nil {
		return arena, err
	}
	mark := len(arena)
	out, err := schema.AppendJSON(schema.AppendHeader(arena, ps.id), ps.schema, ev.Payload)
	if err == nil {
		return out, nil
	}
	latest, lerr := r.payloadSchema(ctx, rt, subject, ev, true)
	if lerr != nil {
		return arena[:mark], lerr
	}
	if latest.id == ps.id {
		return arena[:mark], fmt.Errorf("subject %q, schema %d: %w", subject, ps.id, err)
	}
	out, err = schema.AppendJSON(schema.AppendHeader(arena[:mark], latest.id), latest.schema, ev.Payload)
	if err != nil {
		return arena[:mark], fmt.Errorf("subject %q, schema %d: %w", subject, latest.id, err)
	}
	return out, nil
}

// payloadSchema returns the schema of subject: the one read earlier in the
// run, unless fresh; else the subject's latest, or, when the subject has
// none and the outbox infers schemas, one inferred from ev's payload and
// registered.
func (r *runner) payloadSchema(ctx context.Context, rt *outbox.Route, subject string, ev *outbox.Event, fresh bool) (*payloadSchema, error) {
	if ps := r.payloadSchemas[subject]; ps != nil && !fresh {
		return ps, nil
	}
	id, s, err := r.reg.Latest(ctx, subject)
	if errors.Is(err, schema.ErrNoSchema) {
		if !rt.Config().InferSchema {
			return nil, &NoSchemaError{Outbox: rt.Name(), Subject: subject, Event: ev.ID, Err: err}
		}
		if s, err = schema.InferSchema(ev.Type, schema.Namespace(ev.Topic), ev.Payload); err != nil {
			return nil, err
		}
		if id, err = r.reg.Register(ctx, subject, s); err != nil {
			return nil, fmt.Errorf("outbox %s: register the schema inferred from event %s: %w", rt.Name(), ev.ID, err)
		}
		r.p.log.Info("registered a payload schema inferred from the first event", "outbox", rt.Name(), "subject", subject,
			"schema_id", id, "event", ev.ID)
	} else if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", rt.Name(), err)
	}
	ps := &payloadSchema{id: id, schema: s}
	r.payloadSchemas[subject] = ps
	r.p.metrics.schemaID.WithLabelValues(subject).Set(float64(id))
	return ps, nil
}

// outboxBadRow applies errors.on_bad_row to an outbox record that cannot
// be published. ev holds what was read of it.
func (r *runner) outboxBadRow(rt *outbox.Route, c *connectors.Change, ev *outbox.Event, field, reason string, cause error, f *inflight) error {
	b := &kafka.BadRow{
		Table: rt.Name(), Op: c.Op, Column: field, Reason: reason, Err: cause,
		Pos: c.Pos, TxID: c.TxID, CommitTime: c.CommitTime, Outbox: true,
	}
	id := ""
	if ev != nil {
		id, b.Topic = ev.ID, ev.Topic
		for _, fl := range ev.Fields() {
			b.Row = append(b.Row, kafka.Field{Name: fl.Name, Value: fl.Value})
		}
	}
	b.Key = []kafka.Field{{Name: outbox.HeaderID, Value: id}}
	return r.handleBadRow(b, f)
}
