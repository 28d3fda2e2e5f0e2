package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// BadRow is a change that the pipeline could not publish to its entity
// topic: a value the Avro encoder refuses, or a record larger than the
// topic takes. Under errors.on_bad_row: dead_letter it goes to the
// dead-letter topic as JSON (ProduceDeadLetter).
type BadRow struct {
	// Table is the table's "schema.name".
	Table string
	// Topic is the entity topic the change was meant for.
	Topic string
	// Op is the change's operation.
	Op connectors.Op
	// Key holds the row's key columns, by field name, in key order.
	Key []Field
	// Row holds the published columns of the row, by field name, in
	// column order; nil for a delete.
	Row []Field
	// Column is the column at fault, as the database names it; empty
	// when the row as a whole is at fault (too large).
	Column string
	// Reason is a short word for what is wrong: ReasonEncode or
	// ReasonTooLarge.
	Reason string
	// Err says what is wrong.
	Err error
	// Pos, TxID and CommitTime are the change's.
	Pos        connectors.Position
	TxID       string
	CommitTime time.Time
	// Outbox is true for an outbox record that cannot be published as an
	// event: Table is then the outbox (its table, or "message prefix P"),
	// Key the event's id, Row the record's fields and Column the field at
	// fault.
	Outbox bool
}

// Reasons of a BadRow.
const (
	// ReasonEncode is a value the Avro encoder refuses.
	ReasonEncode = "encode"
	// ReasonTooLarge is a record larger than its topic takes.
	ReasonTooLarge = "too_large"
	// ReasonPayload is an outbox event's payload that does not fit the
	// schema of its subject, or a passed-through body that its schema
	// cannot decode.
	ReasonPayload = "payload"
	// ReasonEvent is an outbox record that lacks what an event needs (an
	// id, an aggregate id, a body), or a message that is not
	// transactional.
	ReasonEvent = "event"
)

// Field is a column's published name and its value in a form that
// encoding/json prints (see schema.JSONValue).
type Field struct {
	Name  string
	Value any
}

// KeyString is the key as a reader of a log wants it: "id=42" or
// "region=eu, id=7".
func (b *BadRow) KeyString() string {
	var sb strings.Builder
	for i, f := range b.Key {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s=%v", f.Name, f.Value)
	}
	return sb.String()
}

// Headers of a dead-letter record, besides the entity events' op,
// commit_ts, pos and txid. Those named after Kafka Connect's carry what
// Connect's dead-letter queue carries under the same name.
const (
	HeaderErrorTable      = "liberator.error.table"
	HeaderErrorKey        = "liberator.error.key"
	HeaderErrorColumn     = "liberator.error.column"
	HeaderErrorReason     = "liberator.error.reason"
	HeaderErrorMessage    = "liberator.error.message"
	HeaderErrorPosition   = "liberator.error.position"
	HeaderErrorTopic      = "liberator.error.topic"
	HeaderErrorRowOmitted = "liberator.error.row_omitted"
	HeaderConnectTopic    = "__connect.errors.topic"
	HeaderConnectMessage  = "__connect.errors.exception.message"
)

// DeadLetter is the JSON value of a dead-letter record.
type DeadLetter struct {
	Table string `json:"table"`
	// Topic is the entity topic the row was meant for.
	Topic string `json:"topic"`
	Op    string `json:"op"`
	// Key and Row are JSON objects of field names to values; Row is null
	// for a delete, and when RowOmitted.
	Key json.RawMessage `json:"key"`
	Row json.RawMessage `json:"row"`
	// RowOmitted is true when the row was left out because the
	// dead-letter record would not fit its own topic with it.
	RowOmitted bool   `json:"row_omitted"`
	Column     string `json:"column,omitempty"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
	Position   string `json:"position,omitempty"`
	TxID       string `json:"txid,omitempty"`
	// CommitTime is RFC 3339 with microseconds, UTC.
	CommitTime string `json:"commit_time"`
}

// EnsureDeadLetterTopic creates the dead-letter topic unless it exists,
// with cleanup.policy=delete so that every bad row is kept (until its
// retention), kafka.partitions, and kafka.topic_configs but for
// cleanup.policy.
func (s *Sink) EnsureDeadLetterTopic(ctx context.Context, topic string) error {
	configs := s.entityConfigs()
	configs["cleanup.policy"] = kadm.StringPtr("delete")
	if err := s.ensureTopic(ctx, topic, s.cfg.Partitions, configs, false); err != nil {
		return fmt.Errorf("errors.dead_letter_topic: %w", err)
	}
	return nil
}

// EnsureEventTopic creates a topic of domain events (an outbox's) unless
// it exists, with cleanup.policy=delete: events are history, and every one
// is kept until its retention. It has kafka.partitions and
// kafka.topic_configs but for cleanup.policy. A topic that exists is taken
// as it is.
func (s *Sink) EnsureEventTopic(ctx context.Context, topic string) error {
	// Called for every event: a topic known already costs a lookup, not
	// the configs of one to create.
	s.mu.Lock()
	known := s.topics[topic]
	s.mu.Unlock()
	if known {
		return nil
	}
	configs := s.entityConfigs()
	configs["cleanup.policy"] = kadm.StringPtr("delete")
	return s.ensureTopic(ctx, topic, s.cfg.Partitions, configs, false)
}

// ProduceDeadLetter produces b to topic as a JSON record (DeadLetter),
// keyed by the JSON object of its key columns, and reports its outcome to
// p like Produce. A row that would make the record larger than topic
// takes is left out, and the record says so. It returns an error, and
// produces nothing, when the record is too large even without the row.
func (s *Sink) ProduceDeadLetter(ctx context.Context, topic string, b *BadRow, p *Promise) error {
	rec, err := s.deadLetterRecord(topic, b)
	if err != nil {
		return err
	}
	s.cl.Produce(ctx, rec, p.fn)
	return nil
}

// deadLetterRecord builds the record of ProduceDeadLetter.
func (s *Sink) deadLetterRecord(topic string, b *BadRow) (*kgo.Record, error) {
	key, err := jsonObject(b.Key)
	if err != nil {
		return nil, fmt.Errorf("dead-letter the key of table %s: %w", b.Table, err)
	}
	dl := DeadLetter{
		Table: b.Table, Topic: b.Topic, Op: b.Op.String(), Key: key, Row: json.RawMessage("null"),
		Column: b.Column, Reason: b.Reason, Error: b.Err.Error(), TxID: b.TxID,
		CommitTime: b.CommitTime.UTC().Format("2006-01-02T15:04:05.000000Z"),
	}
	if b.Pos != nil {
		dl.Position = b.Pos.String()
	}
	if b.Row != nil {
		if dl.Row, err = jsonObject(b.Row); err != nil {
			return nil, fmt.Errorf("dead-letter a row of table %s: %w", b.Table, err)
		}
	}
	limit := s.Limit(topic)
	for {
		value, err := json.Marshal(dl)
		if err != nil {
			return nil, fmt.Errorf("dead-letter a row of table %s: %w", b.Table, err)
		}
		rec := &kgo.Record{Topic: topic, Key: key, Value: value, Headers: deadLetterHeaders(b, &dl), Timestamp: b.CommitTime}
		size := recordSize(rec.Key, rec.Value, rec.Headers)
		if size <= limit {
			return rec, nil
		}
		if dl.RowOmitted || b.Row == nil {
			return nil, fmt.Errorf("dead-letter a row of table %s (%s): even without the row, the record is %d bytes, more than dead-letter topic %q takes (%d bytes)",
				b.Table, b.KeyString(), size, topic, limit)
		}
		dl.Row, dl.RowOmitted = json.RawMessage("null"), true
	}
}

// deadLetterHeaders are the headers of a dead-letter record: the entity
// events' own, then why the row is there.
func deadLetterHeaders(b *BadRow, dl *DeadLetter) []kgo.RecordHeader {
	h := []kgo.RecordHeader{
		{Key: HeaderOp, Value: []byte{byte(b.Op)}},
		{Key: HeaderCommitTS, Value: []byte(dl.CommitTime)},
	}
	if dl.Position != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(dl.Position)})
	}
	if dl.TxID != "" {
		h = append(h, kgo.RecordHeader{Key: HeaderTxID, Value: []byte(dl.TxID)})
	}
	h = append(h,
		kgo.RecordHeader{Key: HeaderErrorTable, Value: []byte(b.Table)},
		kgo.RecordHeader{Key: HeaderErrorKey, Value: []byte(b.KeyString())},
		kgo.RecordHeader{Key: HeaderErrorColumn, Value: []byte(b.Column)},
		kgo.RecordHeader{Key: HeaderErrorReason, Value: []byte(b.Reason)},
		kgo.RecordHeader{Key: HeaderErrorMessage, Value: []byte(dl.Error)},
		kgo.RecordHeader{Key: HeaderErrorPosition, Value: []byte(dl.Position)},
		kgo.RecordHeader{Key: HeaderErrorTopic, Value: []byte(b.Topic)},
		kgo.RecordHeader{Key: HeaderConnectTopic, Value: []byte(b.Topic)},
		kgo.RecordHeader{Key: HeaderConnectMessage, Value: []byte(dl.Error)},
	)
	if dl.RowOmitted {
		h = append(h, kgo.RecordHeader{Key: HeaderErrorRowOmitted, Value: []byte("true")})
	}
	return h
}

// jsonObject prints fields as a JSON object, in their order.
func jsonObject(fields []Field) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		value, err := json.Marshal(f.Value)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
