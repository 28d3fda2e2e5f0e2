package schema

// Payloads: JSON text encoded with a registered Avro schema, for outbox
// events, whose body is written by the service, not derived from a table.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// PayloadError is a JSON payload that does not fit its schema. It names
// the first field that does not fit.
type PayloadError struct {
	// Field is the path of the field at fault, as "total" or
	// "lines[2].sku"; empty for the payload as a whole.
	Field string
	// Err says what is wrong.
	Err error
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("payload does not fit its schema: %v", e.Err)
	}
	return fmt.Sprintf("payload does not fit its schema: field %s: %v", e.Field, e.Err)
}

// Unwrap returns e.Err.
func (e *PayloadError) Unwrap() error { return e.Err }

// AppendJSON appends the Avro binary encoding of payload, JSON text, with
// schema s to dst (no header; see AppendHeader). The payload is checked
// against s as it is encoded: a record's fields must all be there or have
// a default, and no other field may be; numbers must fit their type, whole
// where it is int or long.
//
// The JSON forms are Avro's own where JSON has one (a union's value bare,
// or as {"branch": value}; bytes and fixed as text of code points 0 to
// 255), and these for the logical types: a decimal as a number or as
// decimal text ("12.30"), never rounded; a date as its number of days or
// "2006-01-02"; a time as its count or "15:04:05.999999"; a timestamp as
// its count or RFC 3339 text (a local timestamp without the zone); a
// uuid as its canonical text. NaN and the infinities are the texts "NaN",
// "Infinity" and "-Infinity".
//
// The payload is read as encoding/json reads it: the same grammar, a name
// given twice has its last value, and a byte that is not UTF-8 or a lone
// surrogate in a text becomes U+FFFD. It is never decoded into Go values:
// it is checked, then each value is encoded from its text.
//
// On error it returns dst as it was and a *PayloadError.
func AppendJSON(dst []byte, s avro.Schema, payload []byte) ([]byte, error) {
	i := skipSpace(payload, 0)
	end, err := scanValue(payload, i, 0)
	if err != nil {
		return dst, &PayloadError{Err: fmt.Errorf("is not JSON: %w", err)}
	}
	if skipSpace(payload, end) != len(payload) {
		return dst, &PayloadError{Err: errors.New("is not one JSON value: text follows it")}
	}
	e := encoders.Get().(*payloadEncoder)
	out, err := e.value(dst, s, payload[i:end])
	clear(e.members) // no hold on the payload from the pool
	e.members, e.path = e.members[:0], e.path[:0]
	encoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// fieldPath is the path of field name of the record at parent.
func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// payloadEncoder encodes a checked JSON value from its text. Its members
// are a stack of the members of the objects and the elements of the
// arrays being encoded, each object's or array's above its parent's.
type payloadEncoder struct {
	members []member
	path    []step // the way to the value being encoded
	text    []byte // a string's text, when it is not its bytes
}

// member is an object's member (name and value) or an array's element
// (value), as spans of the payload.
type member struct {
	name, value []byte
}

var encoders = sync.Pool{New: func() any { return &payloadEncoder{} }}

// step is one step of the way to a value in the payload, for an error,
// which spells the way (e.path) only when it happens.
type step struct {
	kind  stepKind
	field string // a record's field
	key   []byte // a map's value
	index int    // an array's element
}

type stepKind uint8

const (
	stepField stepKind = iota
	stepIndex
	stepKey
)

// where spells e.path: "lines[2].sku", `tags["x"]`.
func (e *payloadEncoder) where() string {
	w := ""
	for _, st := range e.path {
		switch st.kind {
		case stepKey:
			w = fmt.Sprintf("%s[%q]", w, st.key)
		case stepIndex:
			w = fmt.Sprintf("%s[%d]", w, st.index)
		default:
			w = fieldPath(w, st.field)
		}
	}
	return w
}

// fail returns a *PayloadError at e.path.
func (e *payloadEncoder) fail(format string, args ...any) error {
	return &PayloadError{Field: e.where(), Err: fmt.Errorf(format, args...)}
}

// failAt returns a *PayloadError one step further than e.path.
func (e *payloadEncoder) failAt(st step, format string, args ...any) error {
	e.path = append(e.path, st)
	err := e.fail(format, args...)
	e.path = e.path[:len(e.path)-1]
	return err
}

// in encodes v with s one step further into the payload.
func (e *payloadEncoder) in(dst []byte, st step, s avro.Schema, v []byte) ([]byte, error) {
	e.path = append(e.path, st)
	out, err := e.value(dst, s, v)
	e.path = e.path[:len(e.path)-1]
	return out, err
}

// describe names a JSON value in an error.
func (e *payloadEncoder) describe(v []byte) string {
	switch v[0] {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case '"':
		return strconv.Quote(string(appendUnquoted(nil, v)))
	}
	return string(v) // a number, true or false
}

// str returns the text of v, a JSON string, valid until the next call.
func (e *payloadEncoder) str(v []byte) []byte {
	if s, ok := plainString(v); ok {
		return s
	}
	e.text = appendUnquoted(e.text[:0], v)
	return e.text
}

// collect pushes the members of v, an object or an array, onto
// e.members, and returns where they start.
func (e *payloadEncoder) collect(v []byte) int {
	base := len(e.members)
	i := skipSpace(v, 1)
	if v[i] == '}' || v[i] == ']' {
		return base
	}
	object := v[0] == '{'
	for {
		var m member
		if object {
			end := skipString(v, i)
			var plain bool
			if m.name, plain = plainString(v[i:end]); !plain {
				m.name = appendUnquoted(nil, v[i:end])
			}
			i = skipSpace(v, skipSpace(v, end)+1) // past the colon
		}
		end := skipValue(v, i)
		m.value = v[i:end]
		e.members = append(e.members, m)
		i = skipSpace(v, end)
		if v[i] != ',' {
			return base
		}
		i = skipSpace(v, i+1)
	}
}

// last returns the value of the last member named name among
// e.members[base:], as encoding/json keeps the last of repeated names.
func (e *payloadEncoder) last(base int, name string) ([]byte, bool) {
	for i := len(e.members) - 1; i >= base; i-- {
		if string(e.members[i].name) == name {
			return e.members[i].value, true
		}
	}
	return nil, false
}

func (e *payloadEncoder) value(dst []byte, s avro.Schema, v []byte) ([]byte, error) {
	switch s := s.(type) {
	case *avro.RefSchema:
		return e.value(dst, s.Schema(), v)
	case *avro.NullSchema:
		if v[0] != 'n' {
			return dst, e.fail("is %s, not null", e.describe(v))
		}
		return dst, nil
	case *avro.PrimitiveSchema:
		return e.primitive(dst, s, v)
	case *avro.RecordSchema:
		return e.record(dst, s, v)
	case *avro.EnumSchema:
		if v[0] != '"' {
			return dst, e.fail("is %s, not a symbol of enum %s", e.describe(v), s.FullName())
		}
		str := e.str(v)
		for i, sym := range s.Symbols() {
			if sym == string(str) {
				return appendLong(dst, int64(i)), nil
			}
		}
		return dst, e.fail("is %q, not a symbol of enum %s (%s)", str, s.FullName(), strings.Join(s.Symbols(), ", "))
	case *avro.ArraySchema:
		if v[0] != '[' {
			return dst, e.fail("is %s, not an array", e.describe(v))
		}
		base := e.collect(v)
		out, err := e.items(dst, s, base)
		e.members = e.members[:base]
		return out, err
	case *avro.MapSchema:
		if v[0] != '{' {
			return dst, e.fail("is %s, not an object (map)", e.describe(v))
		}
		return e.mapValue(dst, s, v)
	case *avro.UnionSchema:
		return e.union(dst, s, v)
	case *avro.FixedSchema:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && l != nil {
			start := len(dst)
			out, err := e.decimal(dst, l, v)
			if err != nil {
				return dst, err
			}
			// Fixed: the two's complement sign-extended to the size, no length.
			n, w := binary.Varint(out[start:])
			body := out[start+w:]
			if int(n) > s.Size() {
				return dst, e.fail("decimal %s needs %d bytes, more than fixed %s holds (%d)", e.describe(v), n, s.FullName(), s.Size())
			}
			fill := byte(0)
			if len(body) > 0 && body[0]&0x80 != 0 {
				fill = 0xff
			}
			fixed := bytes.Repeat([]byte{fill}, s.Size()-len(body))
			fixed = append(fixed, body...)
			return append(dst[:start], fixed...), nil
		}
		start := len(dst)
		out, err := e.latin1(dst, v)
		if err != nil {
			return dst, err
		}
		if n := len(out) - start; n != s.Size() {
			return dst, e.fail("has %d bytes; fixed %s holds exactly %d", n, s.FullName(), s.Size())
		}
		return out, nil
	}
	return dst, e.fail("has schema type %s, which payloads do not support", s.Type())
}

// items encodes the elements of an array, e.members[base:].
func (e *payloadEncoder) items(dst []byte, s *avro.ArraySchema, base int) ([]byte, error) {
	if n := len(e.members) - base; n > 0 {
		dst = appendLong(dst, int64(n))
		for i := range n {
			var err error
			if dst, err = e.in(dst, step{kind: stepIndex, index: i}, s.Items(), e.members[base+i].value); err != nil {
				return dst, err
			}
		}
	}
	return append(dst, 0), nil
}

// record encodes v, an object, field by field in the schema's order. A
// field it lacks takes its default; a member that is no field is an
// error, once every field fits.
func (e *payloadEncoder) record(dst []byte, s *avro.RecordSchema, v []byte) ([]byte, error) {
	if v[0] != '{' {
		return dst, e.fail("is %s, not an object (record %s)", e.describe(v), s.FullName())
	}
	base := e.collect(v)
	out, err := e.fields(dst, s, base)
	e.members = e.members[:base]
	return out, err
}

// fields encodes the fields of a record from the members of its object,
// e.members[base:].
func (e *payloadEncoder) fields(dst []byte, s *avro.RecordSchema, base int) ([]byte, error) {
	matched := 0
	for _, f := range s.Fields() {
		fv, ok := e.last(base, f.Name())
		if !ok {
			if !f.HasDefault() {
				return dst, e.failAt(step{field: f.Name()}, "is missing, and the schema gives it no default")
			}
			b, err := encodedDefault(f)
			if err != nil {
				return dst, e.failAt(step{field: f.Name()}, "is missing, and its default cannot be encoded: %v", err)
			}
			dst = append(dst, b...)
			continue
		}
		matched++
		var err error
		if dst, err = e.in(dst, step{field: f.Name()}, f.Type(), fv); err != nil {
			return dst, err
		}
	}
	if matched == len(e.members)-base {
		return dst, nil
	}
	// A member that is no field, or a field named twice: the first
	// unknown name in order, as the error names it.
	var unknown []byte
	for _, m := range e.members[base:] {
		if fieldIndex(s, string(m.name)) < 0 && (unknown == nil || bytes.Compare(m.name, unknown) < 0) {
			unknown = m.name
		}
	}
	if unknown != nil {
		return dst, e.failAt(step{field: string(unknown)}, "is not a field of record %s (its fields: %s)", s.FullName(), fieldList(s))
	}
	return dst, nil
}

// mapValue encodes v, an object, as a map in the order of its members
// (the last of a repeated name).
func (e *payloadEncoder) mapValue(dst []byte, s *avro.MapSchema, v []byte) ([]byte, error) {
	base := e.collect(v)
	out, err := e.entries(dst, s, base)
	e.members = e.members[:base]
	return out, err
}

// entries encodes the entries of a map from the members of its object,
// e.members[base:].
func (e *payloadEncoder) entries(dst []byte, s *avro.MapSchema, base int) ([]byte, error) {
	n := 0
	for i := base; i < len(e.members); i++ {
		if !e.repeated(i) {
			n++
		}
	}
	if n > 0 {
		dst = appendLong(dst, int64(n))
		for i := base; i < len(e.members); i++ {
			if e.repeated(i) {
				continue
			}
			m := e.members[i]
			dst = append(appendLong(dst, int64(len(m.name))), m.name...)
			var err error
			if dst, err = e.in(dst, step{kind: stepKey, key: m.name}, s.Values(), m.value); err != nil {
				return dst, err
			}
		}
	}
	return append(dst, 0), nil
}

// repeated reports whether a later member of the same object has the
// name of member i (the members above an object's are its own).
func (e *payloadEncoder) repeated(i int) bool {
	for j := i + 1; j < len(e.members); j++ {
		if bytes.Equal(e.members[j].name, e.members[i].name) {
			return true
		}
	}
	return false
}

var defaults sync.Map // *avro.Field -> []byte, its default encoded

// encodedDefault returns the encoding of f's default.
func encodedDefault(f *avro.Field) ([]byte, error) {
	if b, ok := defaults.Load(f); ok {
		return b.([]byte), nil
	}
	b, err := avro.Marshal(f.Type(), f.Default())
	if err != nil {
		return nil, err
	}
	defaults.Store(f, b)
	return b, nil
}

func fieldIndex(s *avro.RecordSchema, name string) int {
	for i, f := range s.Fields() {
		if f.Name() == name {
			return i
		}
	}
	return -1
}

// union picks the union's branch: null for null; the branch a
// single-key object names ({"string": "x"}, Avro's JSON form); else the
// first branch the value fits.
func (e *payloadEncoder) union(dst []byte, s *avro.UnionSchema, v []byte) ([]byte, error) {
	types := s.Types()
	if v[0] == 'n' {
		for i, t := range types {
			if t.Type() == avro.Null {
				return appendLong(dst, int64(i)), nil
			}
		}
		return dst, e.fail("is null, which union %s does not allow", typeList(types))
	}
	if v[0] == '{' {
		if name, inner, ok := e.single(v); ok {
			for i, t := range types {
				if unionBranchName(t) == name {
					out, err := e.value(appendLong(dst, int64(i)), t, inner)
					if err != nil {
						return dst, err
					}
					return out, nil
				}
			}
		}
	}
	var first error
	for i, t := range types {
		if t.Type() == avro.Null {
			continue
		}
		out, err := e.value(appendLong(dst, int64(i)), t, v)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil || len(types) > 2 {
		return dst, e.fail("is %s, which fits no branch of union %s", e.describe(v), typeList(types))
	}
	return dst, first
}

// single returns the name and value of v, an object, when it has one
// name (the last value of a repeated one).
func (e *payloadEncoder) single(v []byte) (string, []byte, bool) {
	base := e.collect(v)
	ms := e.members[base:]
	e.members = e.members[:base]
	if len(ms) == 0 {
		return "", nil, false
	}
	for _, m := range ms[1:] {
		if !bytes.Equal(m.name, ms[0].name) {
			return "", nil, false
		}
	}
	return string(ms[0].name), ms[len(ms)-1].value, true
}

func typeList(types []avro.Schema) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = unionBranchName(t)
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func (e *payloadEncoder) primitive(dst []byte, s *avro.PrimitiveSchema, v []byte) ([]byte, error) {
	logical := ""
	if l := s.Logical(); l != nil {
		logical = string(l.Type())
	}
	switch s.Type() {
	case avro.Null:
		if v[0] != 'n' {
			return dst, e.fail("is %s, not null", e.describe(v))
		}
		return dst, nil
	case avro.Boolean:
		switch v[0] {
		case 't':
			return append(dst, 1), nil
		case 'f':
			return append(dst, 0), nil
		}
		return dst, e.fail("is %s, not true or false", e.describe(v))
	case avro.Int:
		n, err := e.wholeOrTime(v, logical, 32)
		if err != nil {
			return dst, err
		}
		return appendLong(dst, n), nil
	case avro.Long:
		n, err := e.wholeOrTime(v, logical, 64)
		if err != nil {
			return dst, err
		}
		return appendLong(dst, n), nil
	case avro.Float, avro.Double:
		f, err := e.float(v)
		if err != nil {
			return dst, err
		}
		if s.Type() == avro.Float {
			if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
				return dst, e.fail("is %s, beyond the range of a float", e.describe(v))
			}
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case avro.String:
		if v[0] != '"' {
			return dst, e.fail("is %s, not a text", e.describe(v))
		}
		str := e.str(v)
		if logical == string(avro.UUID) && !isCanonicalUUID(string(str)) {
			return dst, e.fail("is %q, not a UUID in its canonical form (8-4-4-4-12 hex digits)", str)
		}
		return append(appendLong(dst, int64(len(str))), str...), nil
	case avro.Bytes:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && l != nil {
			return e.decimal(dst, l, v)
		}
		// The length comes first: the bytes are appended, then moved up
		// behind it.
		mark := len(dst)
		out, err := e.latin1(dst, v)
		if err != nil {
			return dst, err
		}
		n := len(out) - mark
		head := appendLong(nil, int64(n))
		out = append(out, head...)
		copy(out[mark+len(head):], out[mark:mark+n])
		copy(out[mark:], head)
		return out, nil
	}
	return dst, e.fail("has schema type %s, which payloads do not support", s.Type())
}

// latin1 appends the bytes of v, text of code points 0 to 255 (Avro's
// JSON form of bytes), to dst.
func (e *payloadEncoder) latin1(dst, v []byte) ([]byte, error) {
	if v[0] != '"' {
		return dst, e.fail("is %s, not a text of bytes (each character one byte, \\u0000 to \\u00ff)", e.describe(v))
	}
	mark := len(dst)
	for _, r := range string(e.str(v)) {
		if r > 0xff {
			return dst[:mark], e.fail("holds %q, which is not a byte (bytes are written as characters \\u0000 to \\u00ff)", r)
		}
		dst = append(dst, byte(r))
	}
	return dst, nil
}

func (e *payloadEncoder) decimal(dst []byte, l *avro.DecimalLogicalSchema, v []byte) ([]byte, error) {
	var text string
	switch {
	case v[0] == '"':
		text = string(e.str(v))
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		text = string(v)
	default:
		return dst, e.fail("is %s, not a decimal number", e.describe(v))
	}
	if strings.ContainsAny(text, "eE") {
		// A JSON number in exponent form: written out exactly.
		f, ok := new(big.Float).SetPrec(0).SetString(text)
		if !ok {
			return dst, e.fail("is %s, not a decimal number", text)
		}
		exact := f.Text('f', l.Scale())
		if g, _ := new(big.Float).SetString(exact); g == nil || g.Cmp(f) != 0 {
			return dst, e.fail("is %s, which has more fraction digits than the scale %d (values are never rounded)", text, l.Scale())
		}
		text = exact
	}
	out, err := appendDecimal(dst, text, l.Precision(), l.Scale())
	if err != nil {
		return dst, &PayloadError{Field: e.where(), Err: err}
	}
	return out, nil
}

// wholeOrTime reads an int or long: a whole number, or for a date, time or
// timestamp logical type its text too.
func (e *payloadEncoder) wholeOrTime(v []byte, logical string, bits int) (int64, error) {
	switch {
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		if n, ok := smallWhole(v); ok && (bits == 64 || n >= math.MinInt32 && n <= math.MaxInt32) {
			return n, nil
		}
		n, err := strconv.ParseInt(string(v), 10, bits)
		if err != nil {
			if !bytes.ContainsAny(v, ".eE") {
				return 0, e.fail("is %s, beyond the range of an Avro %s", v, intName(bits))
			}
			return 0, e.fail("is %s, not a whole number (an Avro %s)", v, intName(bits))
		}
		return n, nil
	case v[0] == '"' && logical != "":
		str := string(e.str(v))
		n, err := parseTimeText(str, logical)
		if err != nil {
			return 0, &PayloadError{Field: e.where(), Err: err}
		}
		if bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
			return 0, e.fail("is %q, beyond the range of an Avro int (%s)", str, logical)
		}
		return n, nil
	}
	if logical != "" {
		return 0, e.fail("is %s, not a %s (a number, or its text)", e.describe(v), logical)
	}
	return 0, e.fail("is %s, not a whole number (an Avro %s)", e.describe(v), intName(bits))
}

// smallWhole reads a JSON number of at most 18 digits, no fraction and
// no exponent, without strconv.
func smallWhole(v []byte) (int64, bool) {
	neg := v[0] == '-'
	d := v
	if neg {
		d = v[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

func intName(bits int) string {
	if bits == 32 {
		return "int"
	}
	return "long"
}

// parseTimeText reads the text form of a date, time or timestamp.
func parseTimeText(s, logical string) (int64, error) {
	switch avro.LogicalType(logical) {
	case avro.Date:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return 0, fmt.Errorf("is %q, not a date (2006-01-02)", s)
		}
		return t.Unix() / 86400, nil
	case avro.TimeMillis, avro.TimeMicros:
		t, err := time.Parse("15:04:05.999999999", s)
		if err != nil {
			return 0, fmt.Errorf("is %q, not a time of day (15:04:05.999999)", s)
		}
		d := t.Sub(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))
		if avro.LogicalType(logical) == avro.TimeMillis {
			return d.Milliseconds(), nil
		}
		return d.Microseconds(), nil
	case avro.TimestampMillis, avro.TimestampMicros:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("is %q, not an RFC 3339 time (2006-01-02T15:04:05.999999Z)", s)
		}
		if avro.LogicalType(logical) == avro.TimestampMillis {
			return t.UnixMilli(), nil
		}
		return t.UnixMicro(), nil
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		t, err := time.Parse("2006-01-02T15:04:05.999999999", s)
		if err != nil {
			return 0, fmt.Errorf("is %q, not a local time (2006-01-02T15:04:05.999999, no zone)", s)
		}
		if avro.LogicalType(logical) == avro.LocalTimestampMillis {
			return t.UnixMilli(), nil
		}
		return t.UnixMicro(), nil
	}
	return 0, fmt.Errorf("is %q, not a number (logical type %s has no text form)", s, logical)
}

func (e *payloadEncoder) float(v []byte) (float64, error) {
	switch {
	case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return 0, e.fail("is %s, beyond the range of a double", v)
		}
		return f, nil
	case v[0] == '"':
		switch string(e.str(v)) {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, e.fail("is %s, not a number", e.describe(v))
}
