package schema

import (
	"math"
	"math/big"
	"reflect"
	"strconv"
	"time"

	"github.com/hamba/avro/v2"
)

// ToJSON turns v, a value that hamba/avro decoded generically (into an any)
// with the schema s, into a value that encoding/json prints readably and
// exactly. It needs the schema because a decoded decimal (*big.Rat) has
// lost its scale; Registry.DecodeWithSchema returns both.
//
// The conversions are:
//   - decimal: a string with exactly the schema's scale, as "12.30";
//   - date: "2006-01-02";
//   - timestamp-millis/micros: RFC 3339 in UTC with up to nanoseconds;
//   - local-timestamp-millis/micros: RFC 3339 without a zone (the wall
//     clock as decoded; hamba v2.31.0 decodes it relative to time.Local
//     and can be an hour off near a daylight-saving change, so a program
//     that prints them should run with time.Local set to UTC);
//   - time-millis/micros: "15:04:05.999999" (fraction digits only as needed);
//   - float and double NaN and infinities: the strings "NaN", "Infinity"
//     and "-Infinity" (encoding/json cannot print them as numbers);
//   - bytes and fixed: []byte, which encoding/json prints as base64;
//   - a union value, whether hamba wrapped it as map[string]any{"type": v}
//     or not: the value of its branch, converted;
//   - records and maps: map[string]any (encoding/json sorts the keys);
//     arrays: []any.
//
// Everything else is returned as it is. A value that does not match s is
// returned as it is too; ToJSON never fails.
func ToJSON(s avro.Schema, v any) any {
	if v == nil {
		return nil
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		return ToJSON(s.Schema(), v)
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, fv := range m {
			out[k] = fv
		}
		for _, f := range s.Fields() {
			if fv, ok := m[f.Name()]; ok {
				out[f.Name()] = ToJSON(f.Type(), fv)
			}
		}
		return out
	case *avro.UnionSchema:
		return unionToJSON(s, v)
	case *avro.ArraySchema:
		a, ok := v.([]any)
		if !ok {
			return v
		}
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = ToJSON(s.Items(), e)
		}
		return out
	case *avro.MapSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, e := range m {
			out[k] = ToJSON(s.Values(), e)
		}
		return out
	case *avro.FixedSchema:
		if d, ok := s.Logical().(*avro.DecimalLogicalSchema); ok {
			return decimalToJSON(v, d.Scale())
		}
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return b
		}
		return v
	case *avro.PrimitiveSchema:
		return primitiveToJSON(s, v)
	}
	return v
}

// unionToJSON unwraps a union value and converts it with its branch.
func unionToJSON(s *avro.UnionSchema, v any) any {
	types := s.Types()
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for k, inner := range m {
			for _, t := range types {
				if unionBranchName(t) == k {
					return ToJSON(t, inner)
				}
			}
		}
	}
	// hamba returns some branches unwrapped. With a single non-null branch
	// there is no doubt which one it is.
	var branch avro.Schema
	for _, t := range types {
		if t.Type() == avro.Null {
			continue
		}
		if branch != nil {
			return v // several branches: leave v alone rather than guess
		}
		branch = t
	}
	if branch == nil {
		return v
	}
	return ToJSON(branch, v)
}

// unionBranchName is the key hamba uses for a union branch in a generically
// decoded value: the full name of a named type, else the type with its
// logical type, as "long.timestamp-micros".
func unionBranchName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		name += "." + string(l.Logical().Type())
	}
	return name
}

func primitiveToJSON(s *avro.PrimitiveSchema, v any) any {
	switch v := v.(type) {
	case float32:
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return nonFiniteJSON(f)
		}
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nonFiniteJSON(v)
		}
		return v
	}
	if s.Logical() == nil {
		return v
	}
	switch l := s.Logical().(type) {
	case *avro.DecimalLogicalSchema:
		return decimalToJSON(v, l.Scale())
	}
	switch s.Logical().Type() {
	case avro.Date:
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.DateOnly)
		}
	case avro.TimestampMillis, avro.TimestampMicros:
		if t, ok := v.(time.Time); ok {
			return t.UTC().Format(time.RFC3339Nano)
		}
	case avro.LocalTimestampMillis, avro.LocalTimestampMicros:
		if t, ok := v.(time.Time); ok {
			return t.Format("2006-01-02T15:04:05.999999999")
		}
	case avro.TimeMillis, avro.TimeMicros:
		if d, ok := v.(time.Duration); ok {
			return timeOfDay(d)
		}
	}
	return v
}

func nonFiniteJSON(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return "NaN"
}

// decimalToJSON prints a decoded decimal with exactly scale fraction digits.
func decimalToJSON(v any, scale int) any {
	r, ok := v.(*big.Rat)
	if !ok || r == nil {
		return v
	}
	return r.FloatString(scale)
}

// timeOfDay prints d, a time since midnight, as "15:04:05" with as many
// fraction digits as it needs.
func timeOfDay(d time.Duration) string {
	if d < 0 {
		return d.String()
	}
	h, d := d/time.Hour, d%time.Hour
	m, d := d/time.Minute, d%time.Minute
	sec, ns := d/time.Second, d%time.Second
	b := make([]byte, 0, 18)
	b = appendTwoDigits(b, int(h))
	b = append(b, ':')
	b = appendTwoDigits(b, int(m))
	b = append(b, ':')
	b = appendTwoDigits(b, int(sec))
	if ns != 0 {
		frac := strconv.AppendInt(nil, int64(ns)+1e9, 10)[1:] // 9 digits, zero-padded
		for frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
		b = append(append(b, '.'), frac...)
	}
	return string(b)
}

func appendTwoDigits(b []byte, n int) []byte {
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}
