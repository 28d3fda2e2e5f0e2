package schema

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestJSONValuePrintsNeutralValuesReadably(t *testing.T) {
	kind := func(k connectors.Kind) connectors.Type { return connectors.Type{Kind: k} }
	i32 := kind(connectors.KindInt32)
	dec := kind(connectors.KindDecimal)
	tests := []struct {
		name string
		typ  connectors.Type
		in   any
		want string // as encoding/json prints it
	}{
		{"NULL is null", kind(connectors.KindString), nil, `null`},
		{"a bigint is a number", kind(connectors.KindInt64), int64(-9007199254740993), `-9007199254740993`},
		{"a decimal keeps its text", dec, "-12.30", `"-12.30"`},
		{"a NaN decimal is its text", dec, "NaN", `"NaN"`},
		{"a double NaN is a string", kind(connectors.KindFloat64), math.NaN(), `"NaN"`},
		{"a real infinity is a string", kind(connectors.KindFloat32), float32(math.Inf(-1)), `"-Infinity"`},
		{"a date is ISO", kind(connectors.KindDate), int32(-1), `"1969-12-31"`},
		{"a timestamp is RFC 3339 in UTC", kind(connectors.KindTimestamp), int64(1709212455123456), `"2024-02-29T13:14:15.123456Z"`},
		{"a local timestamp has no zone", kind(connectors.KindLocalTimestamp), int64(500000), `"1970-01-01T00:00:00.5"`},
		{"a time of day", kind(connectors.KindTime), int64(86_399_000_001), `"23:59:59.000001"`},
		{"bytes are base64", kind(connectors.KindBytes), []byte{0, 0xff}, `"AP8="`},
		{"JSON stays text", kind(connectors.KindJSON), `{"a":1}`, `"{\"a\":1}"`},
		{"an array converts its elements", connectors.Type{Kind: connectors.KindArray, Elem: &i32}, []any{int32(1), nil}, `[1,null]`},
		{"a geometry is its record", kind(connectors.KindGeometry), connectors.Geometry{WKB: []byte{1}, SRID: 4326}, `{"srid":4326,"wkb":"AQ=="}`},
		{"a geometry without SRID has a null srid", kind(connectors.KindGeometry), connectors.Geometry{WKB: []byte{1}}, `{"srid":null,"wkb":"AQ=="}`},
		{"a value out of range is its text", kind(connectors.KindLocalTimestamp), connectors.BadValue{Text: "294276-12-31 23:59:59.999999", Reason: "r"}, `"294276-12-31 23:59:59.999999"`},
		{"an array element out of range is its text", connectors.Type{Kind: connectors.KindArray, Elem: &i32}, []any{connectors.BadValue{Text: "3000000000"}}, `["3000000000"]`},
		{"a value of the wrong form is printed as it is", kind(connectors.KindDate), "tomorrow", `"tomorrow"`},
		{"a value encoding/json cannot print is printed with fmt", kind(connectors.KindString), struct{ C chan int }{}, `"{\u003cnil\u003e}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(JSONValue(tt.typ, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, string(b)); d != "" {
				t.Errorf("JSON (-want +got):\n%s", d)
			}
		})
	}
}

func TestFieldsAreTheValueRecordsNamesAfterRenames(t *testing.T) {
	tab := &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: connectors.Type{Kind: connectors.KindInt64}},
		{Name: "order-id", Type: connectors.Type{Kind: connectors.KindString}, Nullable: true},
		{Name: "n", Type: connectors.Type{Kind: connectors.KindInt32}, Nullable: true},
	}}
	c, err := NewCodec("ns", tab, WithFieldNames(map[string]string{"n": "count"}))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"id", "order_id", "count"}, c.Fields()); d != "" {
		t.Errorf("Fields (-want +got):\n%s", d)
	}
}
