package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
)

const orderPlaced = `{
  "type": "record", "name": "OrderPlaced", "namespace": "shop",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}, "default": "NEW"},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
      {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "string"}, "default": {}},
    {"name": "ratio", "type": "double", "default": 0}
  ]
}`

func TestAppendJSONEncodesWhatTheSchemaDecodes(t *testing.T) {
	s := avro.MustParse(orderPlaced)
	payload := `{"order_id": "o-1", "total": "12.30", "placed_at": "2024-05-01T10:00:00.5Z", "note": "gift",
		"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}], "tags": {"channel": "web"}, "ratio": 0.25}`
	b, err := AppendJSON(nil, s, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(s, b, &got); err != nil {
		t.Fatalf("decode what was encoded: %v", err)
	}
	js := ToJSON(s, got).(map[string]any)
	want := map[string]any{
		"order_id": "o-1", "total": "12.30", "placed_at": "2024-05-01T10:00:00.5Z", "status": "NEW", "note": "gift",
		"lines": []any{map[string]any{"sku": "A", "qty": 2}, map[string]any{"sku": "B", "qty": 1}},
		"tags":  map[string]any{"channel": "web"}, "ratio": 0.25,
	}
	if d := cmp.Diff(want, js); d != "" {
		t.Errorf("decoded payload (-want +got):\n%s", d)
	}
}

func TestAppendJSONNamesTheFirstFieldThatDoesNotFit(t *testing.T) {
	s := avro.MustParse(orderPlaced)
	base := `"order_id": "o-1", "total": 1, "placed_at": 0, "lines": []`
	for _, tc := range []struct {
		name, payload, field string
	}{
		{"a required field is missing", `{"total": 1, "placed_at": 0, "lines": []}`, "order_id"},
		{"a text where a number must be", `{"order_id": "o", "total": "ten", "placed_at": 0, "lines": []}`, "total"},
		{"a decimal with more digits than its scale", `{"order_id": "o", "total": 1.005, "placed_at": 0, "lines": []}`, "total"},
		{"a fraction in an int", `{` + base[:len(base)-len(`"lines": []`)] + `"lines": [{"sku": "A", "qty": 1.5}]}`, "lines[0].qty"},
		{"a symbol the enum lacks", `{` + base + `, "status": "LOST"}`, "status"},
		{"a field the schema lacks", `{` + base + `, "colour": "red"}`, "colour"},
		{"a number where the union takes a string", `{` + base + `, "note": 7}`, "note"},
		{"a time that is no time", `{"order_id": "o", "total": 1, "placed_at": "yesterday", "lines": []}`, "placed_at"},
		{"not an object at all", `[1, 2]`, ""},
		{"not JSON", `{"order_id": `, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := AppendJSON([]byte{9}, s, []byte(tc.payload))
			var pe *PayloadError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want a *PayloadError", err)
			}
			if pe.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if len(b) != 1 || b[0] != 9 {
				t.Errorf("dst is %v after a failure, want it as it was", b)
			}
		})
	}
}

func TestAppendJSONTakesAUnionBranchByName(t *testing.T) {
	s := avro.MustParse(`["null", "long", "string"]`)
	for _, tc := range []struct {
		payload string
		want    any
	}{{`null`, nil}, {`5`, int64(5)}, {`"x"`, "x"}, {`{"string": "7"}`, "7"}} {
		b, err := AppendJSON(nil, s, []byte(tc.payload))
		if err != nil {
			t.Fatalf("%s: %v", tc.payload, err)
		}
		var got any
		if err := avro.Unmarshal(s, b, &got); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tc.want, unwrapUnion(got)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.payload, d)
		}
	}
}

func TestInferSchemaFitsTheEventItWasInferredFrom(t *testing.T) {
	payload := []byte(`{"order_id": "o-1", "qty": 3, "price": 9.5, "paid": true, "note": null,
		"customer": {"id": 7, "name": "Ada"}, "skus": ["A", "B"], "empty": []}`)
	s, err := InferSchema("shop.OrderPlaced", "ignored", payload)
	if err != nil {
		t.Fatal(err)
	}
	rec := s.(*avro.RecordSchema)
	if rec.FullName() != "shop.OrderPlaced" {
		t.Errorf("record %s, want shop.OrderPlaced", rec.FullName())
	}
	var names []string
	for _, f := range rec.Fields() {
		names = append(names, f.Name())
	}
	if d := cmp.Diff([]string{"order_id", "qty", "price", "paid", "note", "customer", "skus", "empty"}, names); d != "" {
		t.Errorf("fields in the payload's order (-want +got):\n%s", d)
	}
	if _, err := AppendJSON(nil, s, payload); err != nil {
		t.Errorf("the event does not fit the schema inferred from it: %v", err)
	}
	if _, err := AppendJSON(nil, s, []byte(`{"order_id": "o-2"}`)); err != nil {
		t.Errorf("a later event that leaves fields out does not fit: %v", err)
	}
	if _, err := InferSchema("X", "ns", []byte(`{"bad-name": 1}`)); err == nil {
		t.Error("a field that is no Avro name was inferred")
	}
}

func TestAppendJSONTakesWhatEncodingJSONTakes(t *testing.T) {
	s := avro.MustParse(`["null", "boolean", "double", "string", {"type": "array", "items": ["null", "double", "string"]}, {"type": "map", "values": ["null", "double", "string"]}]`)
	for _, payload := range []string{
		`1`, `-0`, `0.5e-3`, `1E+2`, ` "x" `, `[]`, `{}`, `[1, "a", null]`, `{"a": 1, "b": "x"}`, "\t[\n1\r]",
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a: 1}`, `[1 2]`, `tru`, `nul`, `"a`,
		"\"a\x01\"", `"\x"`, `"\u12"`, `"\u12g4"`, `{"a":1}}`, `[1]]`, `1 2`, ``, ` `, `{"a":[}`, `[{]`,
	} {
		_, err := AppendJSON(nil, s, []byte(payload))
		var pe *PayloadError
		notJSON := errors.As(err, &pe) && (strings.HasPrefix(pe.Err.Error(), "is not JSON") || strings.HasPrefix(pe.Err.Error(), "is not one JSON value"))
		if valid := json.Valid([]byte(payload)); notJSON == valid {
			t.Errorf("%q: encoding/json says valid %v, AppendJSON says %v", payload, valid, err)
		}
	}
}

func TestAppendJSONDecodesTextAsEncodingJSONDoes(t *testing.T) {
	s := avro.MustParse(`{"type": "record", "name": "R", "fields": [{"name": "s", "type": "string"}]}`)
	for _, payload := range []string{
		`{"s": "plain"}`, `{"s": "tab\there \"quoted\" \\ \/ \b\f\n\r"}`, `{"s": "\u00e9\u4e16"}`, `{"s": "\ud83d\ude00 pair"}`,
		`{"s": "lone \ud83d surrogate"}`, `{"s": "lone \ude00 low"}`, "{\"s\": \"bad \xff utf-8\"}", `{"s": "é世"}`,
		`{"s": "first", "s": "last"}`, `{"\u0073": "escaped name"}`,
	} {
		var want struct{ S string }
		if err := json.Unmarshal([]byte(payload), &want); err != nil {
			t.Fatal(err)
		}
		b, err := AppendJSON(nil, s, []byte(payload))
		if err != nil {
			t.Errorf("%s: %v", payload, err)
			continue
		}
		var got map[string]any
		if err := avro.Unmarshal(s, b, &got); err != nil {
			t.Fatal(err)
		}
		if got["s"] != want.S {
			t.Errorf("%s: %q, want %q as encoding/json reads it", payload, got["s"], want.S)
		}
	}
}

// FuzzAppendJSON feeds AppendJSON any bytes: it never panics, says "not
// JSON" exactly when encoding/json does, and what it accepts decodes with
// the schema.
func FuzzAppendJSON(f *testing.F) {
	s := avro.MustParse(orderPlaced)
	loose := avro.MustParse(`["null", "boolean", "double", "string", {"type": "array", "items": ["null", "double", "string"]}, {"type": "map", "values": ["null", "double", "string"]}]`)
	for _, seed := range []string{
		`{"order_id": "o-1", "total": "12.30", "placed_at": "2024-05-01T10:00:00.5Z", "lines": [{"sku": "A", "qty": 2}]}`,
		`{"order_id": "\ud83d", "total": 1.5, "placed_at": 0, "lines": [], "tags": {"a": "b"}, "ratio": -0}`,
		`[1, "a", null, {"x": [true]}]`, `{"a":1,}`, "\"\xff\"", `1e999`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, sch := range []avro.Schema{s, loose} {
			b, err := AppendJSON(nil, sch, payload)
			var pe *PayloadError
			notJSON := errors.As(err, &pe) && (strings.HasPrefix(pe.Err.Error(), "is not JSON") || strings.HasPrefix(pe.Err.Error(), "is not one JSON value"))
			if valid := json.Valid(payload); notJSON == valid {
				t.Fatalf("%q: encoding/json says valid %v, AppendJSON says %v", payload, valid, err)
			}
			if err != nil {
				continue
			}
			var v any
			if err := avro.Unmarshal(sch, b, &v); err != nil {
				t.Fatalf("%q: what AppendJSON encoded does not decode: %v", payload, err)
			}
		}
	})
}
