package schema

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
)

func TestToJSON(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		value  any
		want   string // json.Marshal of the result
	}{
		{"a decimal keeps its scale", `{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}`, rat("12.3"), `"12.30"`},
		{"a negative decimal below one keeps its zero", `{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}`, rat("-0.5"), `"-0.50"`},
		{"a decimal with scale 0 has no point", `{"type":"bytes","logicalType":"decimal","precision":5}`, rat("-42"), `"-42"`},
		{"a fixed decimal keeps its scale", `{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":5,"scale":1}`, rat("3"), `"3.0"`},
		{"a date is printed as a date", `{"type":"int","logicalType":"date"}`, time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), `"1969-12-31"`},
		{"a timestamp is RFC 3339 in UTC", `{"type":"long","logicalType":"timestamp-micros"}`, time.Date(2024, 2, 29, 23, 59, 59, 1000, time.FixedZone("X", 3600)), `"2024-02-29T22:59:59.000001Z"`},
		{"a local timestamp has no zone", `{"type":"long","logicalType":"local-timestamp-micros"}`, time.Date(2024, 2, 29, 23, 59, 59, 120000000, time.UTC), `"2024-02-29T23:59:59.12"`},
		{"a time of day is printed as a clock", `{"type":"long","logicalType":"time-micros"}`, 9*time.Hour + 5*time.Second + 500*time.Microsecond, `"09:00:05.0005"`},
		{"a whole second has no fraction", `{"type":"int","logicalType":"time-millis"}`, 23*time.Hour + 59*time.Minute + 59*time.Second, `"23:59:59"`},
		{"a double NaN is a string", `"double"`, math.NaN(), `"NaN"`},
		{"a double infinity is a string", `"double"`, math.Inf(1), `"Infinity"`},
		{"a float minus infinity is a string", `"float"`, float32(math.Inf(-1)), `"-Infinity"`},
		{"a finite float stays a number", `"float"`, float32(1.5), `1.5`},
		{"bytes are base64", `"bytes"`, []byte{0xff, 0}, `"/wA="`},
		{"a fixed is base64", `{"type":"fixed","name":"G","size":2}`, [2]byte{1, 2}, `"AQI="`},
		{"a union value wrapped by type is unwrapped", `["null",{"type":"long","logicalType":"timestamp-micros"}]`, map[string]any{"long.timestamp-micros": time.Unix(0, 0)}, `"1970-01-01T00:00:00Z"`},
		{"a union value that is not wrapped is converted", `["null",{"type":"bytes","logicalType":"decimal","precision":4,"scale":1}]`, rat("1"), `"1.0"`},
		{"a union NULL is null", `["null","double"]`, nil, `null`},
		{"an array is converted element by element", `{"type":"array","items":["null","double"]}`, []any{math.Inf(-1), nil}, `["-Infinity",null]`},
		{"a map is converted value by value", `{"type":"map","values":"double"}`, map[string]any{"a": math.NaN()}, `{"a":"NaN"}`},
		{"a record is converted field by field", `{"type":"record","name":"R","fields":[{"name":"d","type":{"type":"int","logicalType":"date"}}]}`, map[string]any{"d": time.Unix(0, 0).UTC()}, `{"d":"1970-01-01"}`},
		{"a value that does not match its schema is left alone", `{"type":"bytes","logicalType":"decimal","precision":4,"scale":1}`, "x", `"x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := avro.ParseWithCache(tt.schema, "", &avro.SchemaCache{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(ToJSON(s, tt.value))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("JSON (-want +got):\n%s", diff)
			}
		})
	}
}
