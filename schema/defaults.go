package schema

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"

	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

// avroDefault turns a column's default, in its neutral value form, into the
// form hamba's avro.WithDefault takes for the column's Avro type. ok is
// false when the field gets no default: there is none (v is nil), or Avro
// cannot hold it (a NaN or infinite float, whose JSON has no number, or an
// array that is not empty, whose elements would be union values), or it is
// a time of day, which hamba/avro misreads. A v of
// the wrong Go type for its kind is an error, as in AppendValue.
func avroDefault(v any, t connectors.Type) (def any, ok bool, err error) {
	if v == nil {
		return nil, false, nil
	}
	bad := func() (any, bool, error) { return nil, false, wrongType(t.Kind, v) }
	switch t.Kind {
	case connectors.KindBool:
		b, ok := v.(bool)
		if !ok {
			return bad()
		}
		return b, true, nil
	case connectors.KindInt32, connectors.KindDate:
		i, ok := v.(int32)
		if !ok {
			return bad()
		}
		return i, true, nil
	case connectors.KindInt64, connectors.KindTimestamp, connectors.KindLocalTimestamp, connectors.KindTime:
		i, ok := v.(int64)
		if !ok {
			return bad()
		}
		if t.Kind == connectors.KindTime {
			// hamba/avro v2.31.0 applies a time-micros default as if it
			// were nanoseconds (5000000 reads as 5ms): leave it out rather
			// than have Go consumers read a wrong time.
			return nil, false, nil
		}
		return i, true, nil
	case connectors.KindFloat32:
		f, ok := v.(float32)
		if !ok {
			return bad()
		}
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, false, nil
		}
		return f, true, nil
	case connectors.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, false, nil
		}
		return f, true, nil
	case connectors.KindDecimal:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		enc, err := appendDecimal(nil, s, t.Precision, t.Scale)
		if err != nil {
			return nil, false, err
		}
		n, size := binary.Varint(enc) // the length prefix
		return byteString(enc[size : size+int(n)]), true, nil
	case connectors.KindString, connectors.KindJSON:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		return s, true, nil
	case connectors.KindUUID:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if !isCanonicalUUID(s) {
			return nil, false, fmt.Errorf("uuid value %q is not in the canonical 8-4-4-4-12 form", s)
		}
		return s, true, nil
	case connectors.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return bad()
		}
		return byteString(b), true, nil
	case connectors.KindArray:
		a, ok := v.([]any)
		if !ok {
			return bad()
		}
		if len(a) > 0 {
			return nil, false, nil
		}
		return []any{}, true, nil
	}
	return nil, false, nil
}

// byteString is the JSON form of a bytes default in the Avro
// specification: a string whose code points 0 to 255 are the bytes.
func byteString(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// marshalSchema returns the JSON text of s, as the registry gets it.
//
// hamba/avro v2.31.0 parses a bytes default the way the Avro specification
// says (a string of code points 0 to 255), but marshals it back as base64
// (encoding/json's form of a []byte), which every reader, hamba included,
// would then take for other bytes. marshalSchema writes such defaults in
// the specification's form. Only the fields of a top-level record are
// fixed; the only records liberator nests, geometries, have no bytes defaults.
func marshalSchema(s avro.Schema) ([]byte, error) {
	text, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return text, nil
	}
	for _, f := range rec.Fields() {
		b, ok := f.Default().([]byte)
		if !ok || !f.HasDefault() {
			continue
		}
		wrong, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		bad, err := json.Marshal(b) // the base64 string
		if err != nil {
			return nil, err
		}
		good, err := json.Marshal(byteString(b))
		if err != nil {
			return nil, err
		}
		right := bytes.Replace(wrong, append([]byte(`"default":`), bad...), append([]byte(`"default":`), good...), 1)
		if bytes.Equal(right, wrong) || !bytes.Contains(text, wrong) {
			return nil, fmt.Errorf("marshal schema: cannot write the bytes default of field %q", f.Name())
		}
		text = bytes.Replace(text, wrong, right, 1)
	}
	return text, nil
}
