package schema

import (
	"fmt"
	"math"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

// JSONValue turns v, a row value in the neutral form of t (see
// connectors.Kind), into a value that encoding/json prints readably and
// exactly, in the forms ToJSON gives decoded Avro values:
//   - decimal: its text, as a string ("12.30");
//   - date: "2006-01-02";
//   - timestamp: RFC 3339 in UTC; local-timestamp: the same without a zone;
//   - time: "15:04:05.999999" (fraction digits only as needed);
//   - float NaN and infinities: the strings "NaN", "Infinity", "-Infinity";
//   - bytes: []byte, which encoding/json prints as base64;
//   - json: its text, as a string (it need not be valid JSON);
//   - array: []any of its elements, each turned the same way;
//   - geometry: {"wkb": []byte, "srid": null or the id}, as the record.
//   - a connectors.BadValue: its text as the database prints it.
//
// It is meant for rows that could not be encoded, so it never fails: a
// value that is not in the form of its kind is printed with fmt (unless
// encoding/json prints it as it is), and nil stays nil.
func JSONValue(t connectors.Type, v any) any {
	if v == nil {
		return nil
	}
	if b, ok := v.(connectors.BadValue); ok {
		return b.Text
	}
	switch t.Kind {
	case connectors.KindDate:
		if d, ok := v.(int32); ok {
			return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		}
	case connectors.KindTimestamp:
		if us, ok := v.(int64); ok {
			return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
		}
	case connectors.KindLocalTimestamp:
		if us, ok := v.(int64); ok {
			return time.UnixMicro(us).UTC().Format("2006-01-02T15:04:05.999999999")
		}
	case connectors.KindTime:
		if us, ok := v.(int64); ok {
			return timeOfDay(time.Duration(us) * time.Microsecond)
		}
	case connectors.KindGeometry:
		if g, ok := v.(connectors.Geometry); ok {
			var srid any
			if g.SRID != 0 {
				srid = g.SRID
			}
			return map[string]any{"wkb": g.WKB, "srid": srid}
		}
	case connectors.KindArray:
		if a, ok := v.([]any); ok && t.Elem != nil {
			out := make([]any, len(a))
			for i, e := range a {
				out[i] = JSONValue(*t.Elem, e)
			}
			return out
		}
	}
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
	case string, bool, []byte, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return v
	}
	return fmt.Sprint(v)
}

// Fields returns the value record's field names, aligned with the table's
// columns: the names events carry, after the mapping's renames.
func (c *Codec) Fields() []string {
	rs := c.Value.(*avro.RecordSchema).Fields()
	names := make([]string, len(rs))
	for i, f := range rs {
		names[i] = f.Name()
	}
	return names
}
