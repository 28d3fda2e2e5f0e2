package schema

import (
	"math"
	"math/big"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

// defaultsTable has a column with a constant default of every kind, NOT
// NULL and nullable, and defaults Avro cannot hold.
func defaultsTable() *connectors.Table {
	col := func(name string, t connectors.Type, nullable bool, sqlType string, def any) connectors.Column {
		return connectors.Column{Name: name, Type: t, Nullable: nullable, SQLType: sqlType, Default: def}
	}
	return &connectors.Table{
		Schema: "public",
		Name:   "defaults",
		Key:    []int{0},
		Columns: []connectors.Column{
			col("id", typ(connectors.KindInt64), false, "bigint", int64(7)),
			col("flag", typ(connectors.KindBool), false, "boolean", true),
			col("flag_n", typ(connectors.KindBool), true, "boolean", false),
			col("i32", typ(connectors.KindInt32), false, "integer", int32(-5)),
			col("i32_n", typ(connectors.KindInt32), true, "integer", int32(42)),
			col("i64", typ(connectors.KindInt64), false, "bigint", int64(math.MinInt64)),
			col("f32", typ(connectors.KindFloat32), false, "real", float32(1.5)),
			col("f64_n", typ(connectors.KindFloat64), true, "double precision", -0.25),
			col("f64_nan", typ(connectors.KindFloat64), false, "double precision", math.NaN()),
			col("f64_inf_n", typ(connectors.KindFloat64), true, "double precision", math.Inf(1)),
			col("dec", decimal(12, 2), false, "numeric(12,2)", "-1.5"),
			col("dec_n", decimal(38, 10), true, "numeric(38,10)", "12345678901234567890.0123456789"),
			col("str", typ(connectors.KindString), false, "text", "it's \"new\" <&>"),
			col("str_n", typ(connectors.KindString), true, "varchar(10)", ""),
			col("uuid", typ(connectors.KindUUID), false, "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
			col("doc", typ(connectors.KindJSON), true, "jsonb", `{"a": 1}`),
			col("raw", typ(connectors.KindBytes), false, "bytea", []byte{0, 1, 0x7f, 0x80, 0xff}),
			col("day", typ(connectors.KindDate), false, "date", int32(-25567)),
			col("ts", typ(connectors.KindTimestamp), true, "timestamp with time zone", int64(2208988800000000)),
			col("lts", typ(connectors.KindLocalTimestamp), false, "timestamp without time zone", int64(-1)),
			col("tod", typ(connectors.KindTime), false, "time", int64(86399999999)),
			col("tags", array(typ(connectors.KindString)), false, "text[]", []any{}),
			col("tags_full", array(typ(connectors.KindString)), true, "text[]", []any{"a"}),
			col("none_n", typ(connectors.KindString), true, "text", nil),
			col("none", typ(connectors.KindString), false, "text", nil),
		},
	}
}

// fieldDefaults lists each field's default, as hamba holds it, for
// comparison; a field without one maps to "no default".
func fieldDefaults(s avro.Schema) map[string]any {
	out := map[string]any{}
	for _, f := range s.(*avro.RecordSchema).Fields() {
		if !f.HasDefault() {
			out[f.Name()] = "no default"
			continue
		}
		out[f.Name()] = f.Default()
	}
	return out
}

func TestAvroDefaultRefusesWrongForms(t *testing.T) {
	tests := []struct {
		name string
		v    any
		t    connectors.Type
	}{
		{"an int64 for an int32 column", int64(1), typ(connectors.KindInt32)},
		{"a float64 for a real column", 1.5, typ(connectors.KindFloat32)},
		{"a number for a decimal column", 1.5, decimal(4, 1)},
		{"a decimal that does not fit", "123.45", decimal(4, 2)},
		{"a uuid that is not canonical", "A0EEBC999C0B4EF8BB6D6BB9BD380A11", typ(connectors.KindUUID)},
		{"a string for a bytes column", "x", typ(connectors.KindBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := avroDefault(tt.v, tt.t); err == nil {
				t.Errorf("avroDefault(%#v) succeeded, want an error", tt.v)
			}
			table := &connectors.Table{Schema: "s", Name: "t", Key: []int{0}, Columns: []connectors.Column{
				{Name: "id", Type: typ(connectors.KindInt32)},
				{Name: "c", Type: tt.t, SQLType: "x", Default: tt.v},
			}}
			if _, err := NewCodec("ns", table); err == nil {
				t.Error("NewCodec succeeded, want an error naming the column")
			}
		})
	}
}

// TestNullableDefaultPutsItsBranchFirst checks that a nullable column with
// a default encodes NULL and values with the branch order of [T, "null"],
// by decoding with hamba.
func TestNullableDefaultPutsItsBranchFirst(t *testing.T) {
	table := &connectors.Table{Schema: "s", Name: "t", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: typ(connectors.KindInt32)},
		{Name: "n", Type: typ(connectors.KindInt64), Nullable: true, Default: int64(5)},
		{Name: "m", Type: typ(connectors.KindInt64), Nullable: true},
	}}
	c, err := NewCodec("ns", table)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]any{{int32(1), int64(9), nil}, {int32(2), nil, int64(3)}} {
		body, err := c.AppendValue(nil, row)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := avro.Unmarshal(c.Value, body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"id": int(row[0].(int32)), "n": row[1], "m": row[2]}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("decoded row %v (-want +got):\n%s", row, d)
		}
	}
}

// TestOldEventsReadWithNewSchemaGetDefaults is what a downstream consumer
// does: it decodes an event written before columns were added with the
// subject's latest schema, through schema resolution, and gets each new
// column's SQL default (or null).
func TestOldEventsReadWithNewSchemaGetDefaults(t *testing.T) {
	old := &connectors.Table{Schema: "s", Name: "t", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: typ(connectors.KindInt32)},
	}}
	added := defaultsTable()
	added.Columns[0] = connectors.Column{Name: "id", Type: typ(connectors.KindInt32)}
	// Adding a NOT NULL column without a default Avro can hold is not
	// compatible; leave those out.
	cols := added.Columns[:1]
	for _, c := range added.Columns[1:] {
		if c.Name != "f64_nan" && c.Name != "none" && c.Name != "tod" {
			cols = append(cols, c)
		}
	}
	added.Columns = cols
	oldCodec, err := NewCodec("ns", old)
	if err != nil {
		t.Fatal(err)
	}
	newCodec, err := NewCodec("ns", added)
	if err != nil {
		t.Fatal(err)
	}
	// The reader schema comes from the registry's text, as a consumer's does.
	text, err := marshalSchema(newCodec.Value)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := oldCodec.AppendValue(nil, []any{int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := avro.NewSchemaCompatibility().Compatible(reader, oldCodec.Value); err != nil {
		t.Fatalf("the new schema cannot read the old one: %v", err)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader, oldCodec.Value)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(resolved, body, &got); err != nil {
		t.Fatal(err)
	}
	for _, f := range reader.(*avro.RecordSchema).Fields() {
		if !f.HasDefault() {
			continue
		}
		v, ok := got[f.Name()]
		if !ok {
			t.Errorf("field %s is missing from the decoded event", f.Name())
			continue
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for _, inner := range m {
				v = inner
			}
		}
		want := f.Default()
		if l := logicalOf(nonNull(f.Type())); l != nil && l.Type() == avro.Date {
			want = int64(want.(int)) * 86400_000000
		}
		switch v := v.(type) {
		case *big.Rat:
			// A decimal: compare the numbers.
			var col connectors.Column
			for _, c := range added.Columns {
				if FieldName(c.Name) == f.Name() {
					col = c
				}
			}
			if r, _ := new(big.Rat).SetString(col.Default.(string)); r.Cmp(v) != 0 {
				t.Errorf("field %s = %s, want the default %s", f.Name(), v.FloatString(10), col.Default)
			}
			continue
		default:
			if d := cmp.Diff(normalize(want), normalize(v)); d != "" {
				t.Errorf("field %s (-default +decoded):\n%s", f.Name(), d)
			}
		}
	}
	if got["str"] != "it's \"new\" <&>" {
		t.Errorf("str = %#v, want the default", got["str"])
	}
}

// normalize maps decoded values and hamba's default forms onto one form.
func normalize(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case float32:
		return float64(v)
	case []any:
		if len(v) == 0 {
			return []any{}
		}
	}
	if t, ok := v.(interface{ UnixMicro() int64 }); ok {
		return t.UnixMicro()
	}
	return v
}

func TestMarshalSchemaWritesBytesDefaultsAsCodePoints(t *testing.T) {
	c, err := NewCodec("ns", defaultsTable())
	if err != nil {
		t.Fatal(err)
	}
	text, err := marshalSchema(c.Value)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range parsed.(*avro.RecordSchema).Fields() {
		if f.Name() == "raw" {
			if d := cmp.Diff([]byte{0, 1, 0x7f, 0x80, 0xff}, f.Default()); d != "" {
				t.Errorf("raw default (-want +got):\n%s", d)
			}
		}
	}
}
