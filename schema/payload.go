package schema

// Payloads: JSON text encoded with a registered Avro schema, for outbox
// events, whose body is written by the service, not derived from a table.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
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
// On error it returns dst as it was and a *PayloadError.
func AppendJSON(dst []byte, s avro.Schema, payload []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return dst, &PayloadError{Err: fmt.Errorf("is not JSON: %w", err)}
	}
	if _, err := d.Token(); err != io.EOF {
		return dst, &PayloadError{Err: errors.New("is not one JSON value: text follows it")}
	}
	out, err := appendJSONValue(dst, s, v, "")
	if err != nil {
		return dst, err
	}
	return out, nil
}

func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func payloadErr(path string, format string, args ...any) error {
	return &PayloadError{Field: path, Err: fmt.Errorf(format, args...)}
}

// describe names a JSON value in an error.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%v", v)
}

func appendJSONValue(dst []byte, s avro.Schema, v any, path string) ([]byte, error) {
	switch s := s.(type) {
	case *avro.RefSchema:
		return appendJSONValue(dst, s.Schema(), v, path)
	case *avro.NullSchema:
		if v != nil {
			return dst, payloadErr(path, "is %s, not null", describe(v))
		}
		return dst, nil
	case *avro.PrimitiveSchema:
		return appendJSONPrimitive(dst, s, v, path)
	case *avro.RecordSchema:
		obj, ok := v.(map[string]any)
		if !ok {
			return dst, payloadErr(path, "is %s, not an object (record %s)", describe(v), s.FullName())
		}
		matched := 0
		for _, f := range s.Fields() {
			fv, ok := obj[f.Name()]
			fp := fieldPath(path, f.Name())
			if ok {
				matched++
			}
			if !ok {
				if !f.HasDefault() {
					return dst, payloadErr(fp, "is missing, and the schema gives it no default")
				}
				b, err := avro.Marshal(f.Type(), f.Default())
				if err != nil {
					return dst, payloadErr(fp, "is missing, and its default cannot be encoded: %v", err)
				}
				dst = append(dst, b...)
				continue
			}
			var err error
			if dst, err = appendJSONValue(dst, f.Type(), fv, fp); err != nil {
				return dst, err
			}
		}
		if matched < len(obj) {
			for _, name := range slices.Sorted(maps.Keys(obj)) {
				if fieldIndex(s, name) < 0 {
					return dst, payloadErr(fieldPath(path, name), "is not a field of record %s (its fields: %s)", s.FullName(), fieldList(s))
				}
			}
		}
		return dst, nil
	case *avro.EnumSchema:
		str, ok := v.(string)
		if !ok {
			return dst, payloadErr(path, "is %s, not a symbol of enum %s", describe(v), s.FullName())
		}
		for i, sym := range s.Symbols() {
			if sym == str {
				return appendLong(dst, int64(i)), nil
			}
		}
		return dst, payloadErr(path, "is %q, not a symbol of enum %s (%s)", str, s.FullName(), strings.Join(s.Symbols(), ", "))
	case *avro.ArraySchema:
		arr, ok := v.([]any)
		if !ok {
			return dst, payloadErr(path, "is %s, not an array", describe(v))
		}
		if len(arr) > 0 {
			dst = appendLong(dst, int64(len(arr)))
			for i, e := range arr {
				var err error
				if dst, err = appendJSONValue(dst, s.Items(), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case *avro.MapSchema:
		obj, ok := v.(map[string]any)
		if !ok {
			return dst, payloadErr(path, "is %s, not an object (map)", describe(v))
		}
		if len(obj) > 0 {
			dst = appendLong(dst, int64(len(obj)))
			for k, e := range obj {
				dst = appendString(dst, k)
				var err error
				if dst, err = appendJSONValue(dst, s.Values(), e, fmt.Sprintf("%s[%q]", path, k)); err != nil {
					return dst, err
				}
			}
		}
		return append(dst, 0), nil
	case *avro.UnionSchema:
		return appendJSONUnion(dst, s, v, path)
	case *avro.FixedSchema:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && l != nil {
			start := len(dst)
			out, err := appendJSONDecimal(dst, l, v, path)
			if err != nil {
				return dst, err
			}
			// Fixed: the two's complement sign-extended to the size, no length.
			n, w := binary.Varint(out[start:])
			body := out[start+w:]
			if int(n) > s.Size() {
				return dst, payloadErr(path, "decimal %s needs %d bytes, more than fixed %s holds (%d)", describe(v), n, s.FullName(), s.Size())
			}
			fill := byte(0)
			if len(body) > 0 && body[0]&0x80 != 0 {
				fill = 0xff
			}
			fixed := bytes.Repeat([]byte{fill}, s.Size()-len(body))
			fixed = append(fixed, body...)
			return append(dst[:start], fixed...), nil
		}
		b, err := latin1(v, path)
		if err != nil {
			return dst, err
		}
		if len(b) != s.Size() {
			return dst, payloadErr(path, "has %d bytes; fixed %s holds exactly %d", len(b), s.FullName(), s.Size())
		}
		return append(dst, b...), nil
	}
	return dst, payloadErr(path, "has schema type %s, which payloads do not support", s.Type())
}

func fieldIndex(s *avro.RecordSchema, name string) int {
	for i, f := range s.Fields() {
		if f.Name() == name {
			return i
		}
	}
	return -1
}

// appendJSONUnion picks the union's branch: null for null; the branch a
// single-key object names ({"string": "x"}, Avro's JSON form); else the
// first branch the value fits.
func appendJSONUnion(dst []byte, s *avro.UnionSchema, v any, path string) ([]byte, error) {
	types := s.Types()
	if v == nil {
		for i, t := range types {
			if t.Type() == avro.Null {
				return appendLong(dst, int64(i)), nil
			}
		}
		return dst, payloadErr(path, "is null, which union %s does not allow", typeList(types))
	}
	if obj, ok := v.(map[string]any); ok && len(obj) == 1 {
		for name, inner := range obj {
			for i, t := range types {
				if unionBranchName(t) == name {
					out, err := appendJSONValue(appendLong(dst, int64(i)), t, inner, path)
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
		out, err := appendJSONValue(appendLong(dst, int64(i)), t, v, path)
		if err == nil {
			return out, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil || len(types) > 2 {
		return dst, payloadErr(path, "is %s, which fits no branch of union %s", describe(v), typeList(types))
	}
	return dst, first
}

func typeList(types []avro.Schema) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = unionBranchName(t)
	}
	return "[" + strings.Join(names, ", ") + "]"
}

func appendJSONPrimitive(dst []byte, s *avro.PrimitiveSchema, v any, path string) ([]byte, error) {
	logical := ""
	if l := s.Logical(); l != nil {
		logical = string(l.Type())
	}
	switch s.Type() {
	case avro.Null:
		if v != nil {
			return dst, payloadErr(path, "is %s, not null", describe(v))
		}
		return dst, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return dst, payloadErr(path, "is %s, not true or false", describe(v))
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case avro.Int:
		n, err := wholeOrTime(v, logical, path, 32)
		if err != nil {
			return dst, err
		}
		return appendLong(dst, n), nil
	case avro.Long:
		n, err := wholeOrTime(v, logical, path, 64)
		if err != nil {
			return dst, err
		}
		return appendLong(dst, n), nil
	case avro.Float, avro.Double:
		f, err := floatValue(v, path)
		if err != nil {
			return dst, err
		}
		if s.Type() == avro.Float {
			if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
				return dst, payloadErr(path, "is %s, beyond the range of a float", describe(v))
			}
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return dst, payloadErr(path, "is %s, not a text", describe(v))
		}
		if logical == string(avro.UUID) && !isCanonicalUUID(str) {
			return dst, payloadErr(path, "is %q, not a UUID in its canonical form (8-4-4-4-12 hex digits)", str)
		}
		return appendString(dst, str), nil
	case avro.Bytes:
		if l, ok := s.Logical().(*avro.DecimalLogicalSchema); ok && l != nil {
			return appendJSONDecimal(dst, l, v, path)
		}
		b, err := latin1(v, path)
		if err != nil {
			return dst, err
		}
		return append(appendLong(dst, int64(len(b))), b...), nil
	}
	return dst, payloadErr(path, "has schema type %s, which payloads do not support", s.Type())
}

func appendString(dst []byte, s string) []byte {
	return append(appendLong(dst, int64(len(s))), s...)
}

// latin1 turns text of code points 0 to 255, Avro's JSON form of bytes,
// into the bytes.
func latin1(v any, path string) ([]byte, error) {
	str, ok := v.(string)
	if !ok {
		return nil, payloadErr(path, "is %s, not a text of bytes (each character one byte, \\u0000 to \\u00ff)", describe(v))
	}
	b := make([]byte, 0, len(str))
	for _, r := range str {
		if r > 0xff {
			return nil, payloadErr(path, "holds %q, which is not a byte (bytes are written as characters \\u0000 to \\u00ff)", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

func appendJSONDecimal(dst []byte, l *avro.DecimalLogicalSchema, v any, path string) ([]byte, error) {
	var text string
	switch v := v.(type) {
	case json.Number:
		text = v.String()
	case string:
		text = v
	default:
		return dst, payloadErr(path, "is %s, not a decimal number", describe(v))
	}
	if strings.ContainsAny(text, "eE") {
		// A JSON number in exponent form: written out exactly.
		f, ok := new(big.Float).SetPrec(0).SetString(text)
		if !ok {
			return dst, payloadErr(path, "is %s, not a decimal number", text)
		}
		text = f.Text('f', l.Scale())
		if g, _ := new(big.Float).SetString(text); g == nil || g.Cmp(f) != 0 {
			return dst, payloadErr(path, "is %s, which has more fraction digits than the scale %d (values are never rounded)", v, l.Scale())
		}
	}
	out, err := appendDecimal(dst, text, l.Precision(), l.Scale())
	if err != nil {
		return dst, &PayloadError{Field: path, Err: err}
	}
	return out, nil
}

// wholeOrTime reads an int or long: a whole number, or for a date, time or
// timestamp logical type its text too.
func wholeOrTime(v any, logical, path string, bits int) (int64, error) {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, bits)
		if err != nil {
			if !strings.ContainsAny(v.String(), ".eE") {
				return 0, payloadErr(path, "is %s, beyond the range of an Avro %s", v, intName(bits))
			}
			return 0, payloadErr(path, "is %s, not a whole number (an Avro %s)", v, intName(bits))
		}
		return n, nil
	case string:
		if logical == "" {
			break
		}
		n, err := parseTimeText(v, logical)
		if err != nil {
			return 0, &PayloadError{Field: path, Err: err}
		}
		if bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
			return 0, payloadErr(path, "is %q, beyond the range of an Avro int (%s)", v, logical)
		}
		return n, nil
	}
	if logical != "" {
		return 0, payloadErr(path, "is %s, not a %s (a number, or its text)", describe(v), logical)
	}
	return 0, payloadErr(path, "is %s, not a whole number (an Avro %s)", describe(v), intName(bits))
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

func floatValue(v any, path string) (float64, error) {
	switch v := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(v.String(), 64)
		if err != nil {
			return 0, payloadErr(path, "is %s, beyond the range of a double", v)
		}
		return f, nil
	case string:
		switch v {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
	}
	return 0, payloadErr(path, "is %s, not a number", describe(v))
}
