// Package outbox turns outbox records into domain events: a row inserted
// into an outbox table, or a PostgreSQL logical decoding message, becomes
// one event with its id, its type, its aggregate's id as the key and its
// payload, routed to a topic by its aggregate type.
//
// It is a step like mapping: it knows the outbox section of the config and
// the neutral rows and messages of the connectors, and nothing of the
// databases, of Kafka or of Avro. The pipeline encodes the payload
// (schema) and hands the event to the sink.
package outbox

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// Config is one entry of the outbox section: an outbox table, or the
// prefix of PostgreSQL logical decoding messages. The names of the fields
// are columns of the table, or fields of the message's JSON object.
type Config struct {
	// Table is the outbox table, named as in source.tables. An INSERT
	// into it is an event; UPDATEs and DELETEs publish nothing. It is
	// captured whether or not source.tables lists it, and never
	// snapshotted. Conflicts with MessagePrefix.
	Table string `yaml:"table"`
	// MessagePrefix is the prefix of the messages that
	// pg_logical_emit_message(true, prefix, json) writes (PostgreSQL
	// only). Conflicts with Table.
	MessagePrefix string `yaml:"message_prefix"`
	// Topic is the topic of the events, where ${aggregate_type} and
	// ${type} stand for the event's values (characters a topic name
	// cannot hold become _). Default <kafka.topic_prefix>.${aggregate_type}.
	Topic string `yaml:"topic"`
	// ID is the column of the event's unique id, sent as header "id", on
	// which consumers drop the duplicates of at-least-once delivery.
	// Default id.
	ID string `yaml:"id"`
	// AggregateType is the column of the aggregate's type, which routes
	// the event (Topic). Default aggregatetype for a table, aggregate_type
	// for a message.
	AggregateType string `yaml:"aggregate_type"`
	// AggregateID is the column of the aggregate's id, the event's key:
	// the events of one aggregate go to one partition, in order. Default
	// aggregateid for a table, aggregate_id for a message.
	AggregateID string `yaml:"aggregate_id"`
	// Type is the column of the event's type, sent as header "type".
	// Default type.
	Type string `yaml:"type"`
	// Payload is the column of the event's body: JSON text (a json,
	// jsonb or text column, or a JSON value in a message), encoded with
	// the latest schema of the subject; or, in a bytea or BLOB column, a
	// body already in the Confluent wire format, passed through. Default
	// payload.
	Payload string `yaml:"payload"`
	// Timestamp is a column (a timestamp, or a message's RFC 3339 text)
	// that becomes the record's timestamp and header "timestamp". Default
	// none: the record's timestamp is the commit time.
	Timestamp string `yaml:"timestamp"`
	// Headers are more columns, each copied into a header of its name
	// (a NULL is no header).
	Headers []string `yaml:"headers"`
	// Subject says under which subject the payload's schema is
	// registered: topic (default; <topic>-value, Confluent's
	// TopicNameStrategy), record (the event's type, which names the
	// schema's record: RecordNameStrategy) or topic_record
	// (<topic>-<type>).
	Subject string `yaml:"subject"`
	// InferSchema registers a schema inferred from the first event's
	// payload when the subject has none. Default false: a subject
	// without a schema is an error that says how to register one.
	InferSchema bool `yaml:"infer_schema"`
}

// Values of Config.Subject.
const (
	SubjectTopic       = "topic"
	SubjectRecord      = "record"
	SubjectTopicRecord = "topic_record"
)

// ReservedPrefixes are message prefixes that liberator writes itself:
// the watermarks of incremental snapshots and the default heartbeat.
var ReservedPrefixes = []string{"liberator", "liberator.heartbeat"}

// WithDefaults returns c with its empty fields set to their defaults;
// prefix is kafka.topic_prefix.
func (c Config) WithDefaults(prefix string) Config {
	message := c.MessagePrefix != "" && c.Table == ""
	def := func(v *string, table, msg string) {
		if *v == "" {
			*v = table
			if message {
				*v = msg
			}
		}
	}
	def(&c.Topic, prefix+".${aggregate_type}", prefix+".${aggregate_type}")
	def(&c.ID, "id", "id")
	def(&c.AggregateType, "aggregatetype", "aggregate_type")
	def(&c.AggregateID, "aggregateid", "aggregate_id")
	def(&c.Type, "type", "type")
	def(&c.Payload, "payload", "payload")
	def(&c.Subject, SubjectTopic, SubjectTopic)
	return c
}

// Validate reports every problem of the outbox section at once, each
// named by its key (outbox[0].table). entries have their defaults.
// tableID turns a table name into Table.ID form or says why it cannot;
// postgres is true when the source is PostgreSQL; validTopic checks a
// topic name.
func Validate(entries []Config, tableID func(string) (string, error), postgres bool, validTopic func(string) error) error {
	var errs []error
	tables, prefixes := map[string]int{}, map[string]int{}
	for i, e := range entries {
		key := fmt.Sprintf("outbox[%d]", i)
		switch {
		case e.Table == "" && e.MessagePrefix == "":
			errs = append(errs, fmt.Errorf("%s: has neither table nor message_prefix (give the outbox table, or the prefix of pg_logical_emit_message)", key))
		case e.Table != "" && e.MessagePrefix != "":
			errs = append(errs, fmt.Errorf("%s: has both table and message_prefix (one entry is one outbox; write two entries)", key))
		case e.Table != "":
			id, err := tableID(e.Table)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.table: %w", key, err))
				break
			}
			if j, ok := tables[id]; ok {
				errs = append(errs, fmt.Errorf("%s.table: %s is outbox[%d].table already", key, id, j))
			}
			tables[id] = i
		default:
			if !postgres {
				errs = append(errs, fmt.Errorf("%s.message_prefix: messages are PostgreSQL's (pg_logical_emit_message); with MySQL or MariaDB use an outbox table", key))
			}
			for _, r := range ReservedPrefixes {
				if e.MessagePrefix == r {
					errs = append(errs, fmt.Errorf("%s.message_prefix: %q is liberator's own (its watermarks and heartbeats); choose another, such as liberator.outbox", key, r))
				}
			}
			if j, ok := prefixes[e.MessagePrefix]; ok {
				errs = append(errs, fmt.Errorf("%s.message_prefix: %q is outbox[%d].message_prefix already", key, e.MessagePrefix, j))
			}
			prefixes[e.MessagePrefix] = i
		}
		if err := checkTemplate(e.Topic, validTopic); err != nil {
			errs = append(errs, fmt.Errorf("%s.topic: %w", key, err))
		}
		switch e.Subject {
		case SubjectTopic, SubjectRecord, SubjectTopicRecord:
		default:
			errs = append(errs, fmt.Errorf("%s.subject: %q is not a subject name strategy (use topic, record or topic_record)", key, e.Subject))
		}
		seen := map[string]string{}
		for _, f := range []struct{ key, name string }{
			{"id", e.ID}, {"aggregate_type", e.AggregateType}, {"aggregate_id", e.AggregateID},
			{"type", e.Type}, {"payload", e.Payload}, {"timestamp", e.Timestamp},
		} {
			if f.name == "" {
				continue
			}
			if other, ok := seen[f.name]; ok && (f.key == "payload" || other == "payload") {
				errs = append(errs, fmt.Errorf("%s.%s: %q is %s's too; the payload needs a column of its own", key, f.key, f.name, other))
			}
			seen[f.name] = f.key
		}
		for j, h := range e.Headers {
			if h == "" {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: is empty (name a column)", key, j))
			}
			if h == "id" || h == "type" || h == "timestamp" {
				errs = append(errs, fmt.Errorf("%s.headers[%d]: %q is a header every event has already; name another column", key, j, h))
			}
		}
	}
	return errors.Join(errs...)
}

// placeholders are what a topic template may name.
var placeholders = []string{"${aggregate_type}", "${type}"}

// checkTemplate checks a topic template: with its placeholders filled
// with a plain word, it must be a valid topic name.
func checkTemplate(t string, validTopic func(string) error) error {
	filled := t
	for _, p := range placeholders {
		filled = strings.ReplaceAll(filled, p, "x")
	}
	if strings.Contains(filled, "${") {
		return fmt.Errorf("%q names a field that is not ${aggregate_type} or ${type}", t)
	}
	if err := validTopic(filled); err != nil {
		return fmt.Errorf("%q: %w", t, err)
	}
	return nil
}

// Router finds the outbox of a table or of a message prefix. It is safe
// for concurrent use.
type Router struct {
	byTable  map[string]*Route
	byPrefix map[string]*Route
	tables   []string
	prefixes []string
}

// New returns the router of validated entries (with their defaults);
// tableID turns a table name of the config into Table.ID form.
func New(entries []Config, tableID func(string) string) *Router {
	r := &Router{byTable: map[string]*Route{}, byPrefix: map[string]*Route{}}
	for _, e := range entries {
		rt := &Route{cfg: e, cols: map[*connectors.Table]*columns{}, topics: map[string]topicOf{}}
		if e.Table != "" {
			rt.name = tableID(e.Table)
			r.byTable[rt.name] = rt
			r.tables = append(r.tables, rt.name)
		} else {
			rt.name = "message prefix " + e.MessagePrefix
			rt.message = true
			r.byPrefix[e.MessagePrefix] = rt
			r.prefixes = append(r.prefixes, e.MessagePrefix)
		}
	}
	return r
}

// Table returns the route of a table ("schema.name"), nil if it is no
// outbox.
func (r *Router) Table(id string) *Route { return r.byTable[id] }

// Message returns the route of a message prefix, nil if it is no outbox.
func (r *Router) Message(prefix string) *Route { return r.byPrefix[prefix] }

// Tables are the outbox tables, in Table.ID form, in the config's order.
func (r *Router) Tables() []string { return r.tables }

// Prefixes are the message prefixes of the outboxes, in the config's order.
func (r *Router) Prefixes() []string { return r.prefixes }

// Check checks the outbox tables among tables (as a source describes
// them): each column the entry names exists, and holds what it must.
func (r *Router) Check(tables []*connectors.Table) error {
	var errs []error
	for _, t := range tables {
		if rt := r.byTable[t.ID()]; rt != nil {
			if _, err := rt.columns(t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Route is one outbox: how its records become events.
type Route struct {
	cfg     Config
	name    string
	message bool

	mu     sync.Mutex
	cols   map[*connectors.Table]*columns
	topics map[string]topicOf // by aggregate type and type
}

// Name is the outbox's table ("schema.name") or "message prefix P".
func (rt *Route) Name() string { return rt.name }

// Config is the outbox's entry, with its defaults.
func (rt *Route) Config() Config { return rt.cfg }

// Event is one domain event, ready for its payload to be encoded.
type Event struct {
	// ID, AggregateType, AggregateID and Type are the record's values, as
	// text.
	ID, AggregateType, AggregateID, Type string
	// Topic is where the event goes.
	Topic string
	// Key is the aggregate id as UTF-8 text.
	Key []byte
	// Headers are id, type, timestamp if configured, and the configured
	// headers, in that order.
	Headers []connectors.Header
	// Payload is the body as JSON text, to be encoded with its subject's
	// schema; nil when Framed is set.
	Payload []byte
	// Framed is a body already in the Confluent wire format (a magic
	// byte 0 and a schema id first), passed through as it is.
	Framed []byte
	// Timestamp is the record's timestamp when the outbox has a
	// timestamp column; zero otherwise.
	Timestamp time.Time

	// fields are a message's fields; a row's are read from row, only
	// when a dead letter needs them.
	fields []Field
	rt     *Route
	cols   *columns
	row    []any
}

// Fields are the record's fields by their names in the config's columns,
// for a dead letter: values as text, the payload as JSON. A row's are read
// from the row the event came from, which must not have changed.
func (ev *Event) Fields() []Field {
	if ev.row != nil {
		return ev.rt.rowFields(ev.cols, ev.row)
	}
	return ev.fields
}

// Field is one field of an outbox record, for a dead letter.
type Field struct {
	Name  string
	Value any
}

// Subject is the subject of the event's payload schema (Config.Subject).
func (rt *Route) Subject(ev *Event) string {
	switch rt.cfg.Subject {
	case SubjectRecord:
		return ev.Type
	case SubjectTopicRecord:
		return ev.Topic + "-" + ev.Type
	}
	return ev.Topic + "-value"
}

// EventError is an outbox record that cannot become an event: a field
// missing, NULL or of the wrong form, a topic that its aggregate type
// cannot name, or a message that is not transactional. The pipeline
// treats it as a bad row.
type EventError struct {
	// Outbox is Route.Name.
	Outbox string
	// ID is the event's id, empty when it could not be read.
	ID string
	// Field is the column or message field at fault, as the config names
	// it; empty when the record as a whole is.
	Field string
	// Err says what is wrong.
	Err error
}

func (e *EventError) Error() string {
	id := e.ID
	if id == "" {
		id = "(no id)"
	}
	if e.Field == "" {
		return fmt.Sprintf("outbox event %s of %s: %v", id, e.Outbox, e.Err)
	}
	return fmt.Sprintf("outbox event %s of %s: field %q: %v", id, e.Outbox, e.Field, e.Err)
}

// Unwrap returns e.Err.
func (e *EventError) Unwrap() error { return e.Err }

// ErrNotTransactional is the EventError.Err of a message written with
// pg_logical_emit_message(false, ...).
var ErrNotTransactional = errors.New("the message is not transactional: it was written whether or not its transaction committed, so it may announce what never happened; write it with pg_logical_emit_message(true, ...)")

// topicOf is a routed topic, or why an aggregate type cannot name one.
type topicOf struct {
	topic string
	err   error
}

// route returns the topic of an aggregate type and type, checked with
// validTopic once per pair.
func (rt *Route) route(aggType, typ string, validTopic func(string) error) (string, error) {
	k := aggType + "\x00" + typ
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if t, ok := rt.topics[k]; ok {
		return t.topic, t.err
	}
	topic := strings.ReplaceAll(rt.cfg.Topic, "${aggregate_type}", sanitize(aggType))
	topic = strings.ReplaceAll(topic, "${type}", sanitize(typ))
	t := topicOf{topic: topic}
	if err := validTopic(topic); err != nil {
		t.err = fmt.Errorf("routes to topic %q: %w", topic, err)
	}
	if len(rt.topics) < maxRoutes {
		rt.topics[k] = t
	}
	return t.topic, t.err
}

// maxRoutes bounds the routes a Route remembers.
const maxRoutes = 4096

// sanitize replaces every character that a topic name cannot hold with _.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}
