package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/liberator-cdc/liberator/connectors"
)

// columns are the indexes of an outbox table's columns in one shape.
type columns struct {
	id, aggType, aggID, typ, payload, timestamp int
	headers                                     []int
}

// columns returns the column indexes of t, or an error that names the
// entry's key and the column at fault.
func (rt *Route) columns(t *connectors.Table) (*columns, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if c := rt.cols[t]; c != nil {
		return c, nil
	}
	idx := map[string]int{}
	for i, c := range t.Columns {
		idx[c.Name] = i
	}
	var errs []error
	find := func(key, name string, kinds ...connectors.Kind) int {
		i, ok := idx[name]
		if !ok {
			errs = append(errs, fmt.Errorf("outbox table %s has no column %q (outbox.%s; columns: %s)", t.ID(), name, key, columnNames(t)))
			return -1
		}
		if len(kinds) > 0 && !kindIn(t.Columns[i].Type.Kind, kinds) {
			errs = append(errs, fmt.Errorf("outbox table %s: column %q (outbox.%s) is %s, which cannot hold %s", t.ID(), name, key, t.Columns[i].SQLType, kindsText(key)))
		}
		return i
	}
	text := []connectors.Kind{connectors.KindString, connectors.KindUUID, connectors.KindInt32, connectors.KindInt64, connectors.KindDecimal}
	c := &columns{
		id:        find("id", rt.cfg.ID, text...),
		aggType:   find("aggregate_type", rt.cfg.AggregateType, connectors.KindString),
		aggID:     find("aggregate_id", rt.cfg.AggregateID, text...),
		typ:       find("type", rt.cfg.Type, connectors.KindString),
		payload:   find("payload", rt.cfg.Payload, connectors.KindJSON, connectors.KindString, connectors.KindBytes),
		timestamp: -1,
	}
	if rt.cfg.Timestamp != "" {
		c.timestamp = find("timestamp", rt.cfg.Timestamp, connectors.KindTimestamp, connectors.KindLocalTimestamp)
	}
	for _, h := range rt.cfg.Headers {
		c.headers = append(c.headers, find("headers", h))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt.cols[t] = c
	return c, nil
}

func kindIn(k connectors.Kind, kinds []connectors.Kind) bool {
	for _, x := range kinds {
		if k == x {
			return true
		}
	}
	return false
}

func kindsText(key string) string {
	switch key {
	case "payload":
		return "a payload (use json, jsonb, text, varchar, or bytea/BLOB for a body in the Confluent wire format)"
	case "timestamp":
		return "a timestamp (use timestamptz, timestamp, TIMESTAMP or DATETIME)"
	case "aggregate_type", "type":
		return "a name (use text or varchar)"
	}
	return "an id (use text, varchar, uuid or an integer)"
}

func columnNames(t *connectors.Table) string {
	var b bytes.Buffer
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Name)
	}
	return b.String()
}

// FromRow returns the event of a row inserted into the outbox table t
// (Change.After). validTopic checks the routed topic. An error about the
// row is an *EventError.
func (rt *Route) FromRow(t *connectors.Table, row []any, validTopic func(string) error) (*Event, error) {
	c, err := rt.columns(t)
	if err != nil {
		return nil, err
	}
	ev := &Event{rt: rt, cols: c, row: row}
	fail := func(field string, err error) (*Event, error) {
		return ev, &EventError{Outbox: rt.name, ID: ev.ID, Field: field, Err: err}
	}
	for _, f := range []struct {
		dst  *string
		i    int
		name string
	}{{&ev.ID, c.id, rt.cfg.ID}, {&ev.AggregateType, c.aggType, rt.cfg.AggregateType}, {&ev.AggregateID, c.aggID, rt.cfg.AggregateID}, {&ev.Type, c.typ, rt.cfg.Type}} {
		s, err := text(row[f.i])
		if err != nil {
			return fail(f.name, err)
		}
		*f.dst = s
	}
	switch p := row[c.payload].(type) {
	case nil:
		return fail(rt.cfg.Payload, errNoPayload)
	case string:
		ev.Payload = []byte(p)
	case []byte:
		if Framed(p) {
			ev.Framed = p
		} else {
			ev.Payload = p
		}
	default:
		return fail(rt.cfg.Payload, fmt.Errorf("holds %T, not JSON text", p))
	}
	if c.timestamp >= 0 {
		switch us := row[c.timestamp].(type) {
		case nil:
		case int64:
			ev.Timestamp = time.UnixMicro(us).UTC()
		default:
			return fail(rt.cfg.Timestamp, fmt.Errorf("holds %v, not a timestamp", us))
		}
	}
	var extra []connectors.Header
	for j, i := range c.headers {
		if row[i] == nil {
			continue
		}
		s, err := headerText(row[i])
		if err != nil {
			return fail(rt.cfg.Headers[j], err)
		}
		extra = append(extra, connectors.Header{Key: rt.cfg.Headers[j], Value: []byte(s)})
	}
	return rt.finish(ev, extra, validTopic)
}

// rowFields lists a row's configured columns for a dead letter, the
// payload as JSON when it is JSON text.
func (rt *Route) rowFields(c *columns, row []any) []Field {
	out := []Field{
		{rt.cfg.ID, row[c.id]}, {rt.cfg.AggregateType, row[c.aggType]}, {rt.cfg.AggregateID, row[c.aggID]}, {rt.cfg.Type, row[c.typ]},
	}
	switch p := row[c.payload].(type) {
	case string:
		if json.Valid([]byte(p)) {
			out = append(out, Field{rt.cfg.Payload, json.RawMessage(p)})
		} else {
			out = append(out, Field{rt.cfg.Payload, p})
		}
	case []byte:
		if !Framed(p) && json.Valid(p) {
			out = append(out, Field{rt.cfg.Payload, json.RawMessage(p)})
		} else {
			out = append(out, Field{rt.cfg.Payload, p})
		}
	default:
		out = append(out, Field{rt.cfg.Payload, p})
	}
	if c.timestamp >= 0 {
		out = append(out, Field{rt.cfg.Timestamp, row[c.timestamp]})
	}
	for j, i := range c.headers {
		out = append(out, Field{rt.cfg.Headers[j], row[i]})
	}
	return out
}

// finish routes ev and sets its key and headers.
func (rt *Route) finish(ev *Event, extra []connectors.Header, validTopic func(string) error) (*Event, error) {
	fail := func(field string, err error) (*Event, error) {
		return ev, &EventError{Outbox: rt.name, ID: ev.ID, Field: field, Err: err}
	}
	if ev.ID == "" {
		return fail(rt.cfg.ID, errors.New("is empty: consumers drop duplicates by the event id"))
	}
	if ev.AggregateID == "" {
		return fail(rt.cfg.AggregateID, errors.New("is empty: it is the key that keeps an aggregate's events in order"))
	}
	if ev.AggregateType == "" && bytes.Contains([]byte(rt.cfg.Topic), []byte("${aggregate_type}")) {
		return fail(rt.cfg.AggregateType, errors.New("is empty: it routes the event to its topic"))
	}
	if ev.Type == "" && (rt.cfg.Subject != SubjectTopic || bytes.Contains([]byte(rt.cfg.Topic), []byte("${type}"))) {
		return fail(rt.cfg.Type, errors.New("is empty: it names the event's schema or topic"))
	}
	topic, err := rt.route(ev.AggregateType, ev.Type, validTopic)
	if err != nil {
		return fail(rt.cfg.AggregateType, err)
	}
	ev.Topic = topic
	ev.Key = []byte(ev.AggregateID)
	h := make([]connectors.Header, 0, 3+len(extra))
	h = append(h, connectors.Header{Key: HeaderID, Value: []byte(ev.ID)}, connectors.Header{Key: HeaderType, Value: []byte(ev.Type)})
	if !ev.Timestamp.IsZero() {
		h = append(h, connectors.Header{Key: HeaderTimestamp, Value: []byte(ev.Timestamp.Format("2006-01-02T15:04:05.000000Z"))})
	}
	ev.Headers = append(h, extra...)
	return ev, nil
}

// Headers of every outbox event, besides the op, commit_ts, pos and txid
// of every event.
const (
	// HeaderID is the event's id, on which consumers drop duplicates.
	HeaderID = "id"
	// HeaderType is the event's type.
	HeaderType = "type"
	// HeaderTimestamp is the outbox's timestamp column, RFC 3339 with
	// microseconds, UTC, when configured.
	HeaderTimestamp = "timestamp"
)

var errNoPayload = errors.New("is NULL: an event needs a body (use {} for an event without fields)")

// Framed reports whether b is a body in the Confluent wire format: a
// magic byte 0, a 4-byte schema id, and the Avro body. JSON text never
// starts with a zero byte.
func Framed(b []byte) bool { return len(b) >= 5 && b[0] == 0 }

// text returns an id or name column's value as text.
func text(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", errors.New("is NULL")
	case string:
		return v, nil
	case int32:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case []byte:
		if utf8.Valid(v) {
			return string(v), nil
		}
		return "", errors.New("is not UTF-8 text")
	}
	return "", fmt.Errorf("holds %T, which is not text or a whole number", v)
}

// headerText returns a header column's value as text.
func headerText(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case bool:
		return strconv.FormatBool(v), nil
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return text(v)
}

// FromMessage returns the event of a message of the route's prefix. Its
// content is a JSON object with the configured fields; the payload field
// holds the body as a JSON value. validTopic checks the routed topic. An
// error about the message is an *EventError.
func (rt *Route) FromMessage(m *connectors.Message, validTopic func(string) error) (*Event, error) {
	ev := &Event{}
	fail := func(field string, err error) (*Event, error) {
		return ev, &EventError{Outbox: rt.name, ID: ev.ID, Field: field, Err: err}
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m.Content, &obj); err != nil || obj == nil {
		if err == nil {
			err = errors.New("it is null")
		}
		ev.fields = []Field{{"content", string(m.Content)}}
		return fail("", fmt.Errorf("the message is not a JSON object: %w", err))
	}
	get := func(name string) (string, bool, error) {
		raw, ok := obj[name]
		if !ok || string(raw) == "null" {
			return "", false, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s, true, nil
		}
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&n); err == nil {
			return n.String(), true, nil
		}
		return "", true, fmt.Errorf("is %s, not a text or a number", raw)
	}
	for _, f := range []struct {
		dst  *string
		name string
	}{{&ev.ID, rt.cfg.ID}, {&ev.AggregateType, rt.cfg.AggregateType}, {&ev.AggregateID, rt.cfg.AggregateID}, {&ev.Type, rt.cfg.Type}} {
		s, ok, err := get(f.name)
		if err == nil && !ok {
			err = errors.New("is missing from the message")
		}
		if err != nil {
			ev.fields = rt.messageFields(obj)
			return fail(f.name, err)
		}
		*f.dst = s
	}
	raw, ok := obj[rt.cfg.Payload]
	if !ok || string(raw) == "null" {
		ev.fields = rt.messageFields(obj)
		return fail(rt.cfg.Payload, errors.New("is missing from the message or null: an event needs a body (use {} for an event without fields)"))
	}
	ev.Payload = raw
	ev.fields = rt.messageFields(obj)
	if !m.Transactional {
		return fail("", ErrNotTransactional)
	}
	if rt.cfg.Timestamp != "" {
		s, ok, err := get(rt.cfg.Timestamp)
		if err == nil && ok {
			ev.Timestamp, err = time.Parse(time.RFC3339Nano, s)
		}
		if err != nil {
			return fail(rt.cfg.Timestamp, fmt.Errorf("is not an RFC 3339 time: %w", err))
		}
		ev.Timestamp = ev.Timestamp.UTC()
	}
	var extra []connectors.Header
	for _, h := range rt.cfg.Headers {
		s, ok, err := get(h)
		if err != nil {
			return fail(h, err)
		}
		if ok {
			extra = append(extra, connectors.Header{Key: h, Value: []byte(s)})
		}
	}
	return rt.finish(ev, extra, validTopic)
}

// messageFields lists a message's fields for a dead letter: the whole
// object as it was written.
func (rt *Route) messageFields(obj map[string]json.RawMessage) []Field {
	out := make([]Field, 0, len(obj))
	for _, name := range []string{rt.cfg.ID, rt.cfg.AggregateType, rt.cfg.AggregateID, rt.cfg.Type, rt.cfg.Payload} {
		if raw, ok := obj[name]; ok {
			out = append(out, Field{name, raw})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(obj)) {
		switch name {
		case rt.cfg.ID, rt.cfg.AggregateType, rt.cfg.AggregateID, rt.cfg.Type, rt.cfg.Payload:
			continue
		}
		out = append(out, Field{name, obj[name]})
	}
	return out
}
