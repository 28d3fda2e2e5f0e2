package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name.golden, or rewrites the file when
// the test runs with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
	}
}

func typ(k connectors.Kind) connectors.Type { return connectors.Type{Kind: k} }

func decimal(precision, scale int) connectors.Type {
	return connectors.Type{Kind: connectors.KindDecimal, Precision: precision, Scale: scale}
}

func array(elem connectors.Type) connectors.Type {
	return connectors.Type{Kind: connectors.KindArray, Elem: &elem}
}

// everyKindTable has a column of every kind, nullable and not, a composite
// key (one of whose columns claims to be nullable), and an array of
// decimals.
func everyKindTable() *connectors.Table {
	return &connectors.Table{
		Schema: "public",
		Name:   "every_kind",
		Key:    []int{1, 0},
		Columns: []connectors.Column{
			{Name: "id", Type: typ(connectors.KindInt64), SQLType: "bigint"},
			{Name: "tenant", Type: typ(connectors.KindInt32), Nullable: true, SQLType: "integer"},
			{Name: "flag", Type: typ(connectors.KindBool), SQLType: "boolean"},
			{Name: "flag_n", Type: typ(connectors.KindBool), Nullable: true, SQLType: "boolean"},
			{Name: "i32", Type: typ(connectors.KindInt32), SQLType: "integer"},
			{Name: "i32_n", Type: typ(connectors.KindInt32), Nullable: true, SQLType: "integer"},
			{Name: "i64", Type: typ(connectors.KindInt64), SQLType: "bigint"},
			{Name: "i64_n", Type: typ(connectors.KindInt64), Nullable: true, SQLType: "bigint"},
			{Name: "f32", Type: typ(connectors.KindFloat32), SQLType: "real"},
			{Name: "f32_n", Type: typ(connectors.KindFloat32), Nullable: true, SQLType: "real"},
			{Name: "f64", Type: typ(connectors.KindFloat64), SQLType: "double precision"},
			{Name: "f64_n", Type: typ(connectors.KindFloat64), Nullable: true, SQLType: "double precision"},
			{Name: "dec", Type: decimal(12, 2), SQLType: "numeric(12,2)"},
			{Name: "dec_n", Type: decimal(38, 0), Nullable: true, SQLType: "numeric(38,0)"},
			{Name: "str", Type: typ(connectors.KindString), SQLType: "text"},
			{Name: "str_n", Type: typ(connectors.KindString), Nullable: true, SQLType: "varchar(20)"},
			{Name: "uuid", Type: typ(connectors.KindUUID), SQLType: "uuid"},
			{Name: "uuid_n", Type: typ(connectors.KindUUID), Nullable: true, SQLType: "uuid"},
			{Name: "doc", Type: typ(connectors.KindJSON), SQLType: "jsonb"},
			{Name: "doc_n", Type: typ(connectors.KindJSON), Nullable: true, SQLType: "json"},
			{Name: "raw", Type: typ(connectors.KindBytes), SQLType: "bytea"},
			{Name: "raw_n", Type: typ(connectors.KindBytes), Nullable: true, SQLType: "bytea"},
			{Name: "day", Type: typ(connectors.KindDate), SQLType: "date"},
			{Name: "day_n", Type: typ(connectors.KindDate), Nullable: true, SQLType: "date"},
			{Name: "ts", Type: typ(connectors.KindTimestamp), SQLType: "timestamp with time zone"},
			{Name: "ts_n", Type: typ(connectors.KindTimestamp), Nullable: true, SQLType: "timestamp with time zone"},
			{Name: "lts", Type: typ(connectors.KindLocalTimestamp), SQLType: "timestamp without time zone"},
			{Name: "lts_n", Type: typ(connectors.KindLocalTimestamp), Nullable: true, SQLType: "timestamp without time zone"},
			{Name: "tod", Type: typ(connectors.KindTime), SQLType: "time"},
			{Name: "tod_n", Type: typ(connectors.KindTime), Nullable: true, SQLType: "time"},
			{Name: "decs", Type: array(decimal(10, 3)), SQLType: "numeric(10,3)[]"},
			{Name: "tags_n", Type: array(typ(connectors.KindString)), Nullable: true, SQLType: "text[]"},
		},
	}
}

// geometryTable has three geometry columns, one nullable and one in the
// key: each record defines the geometry record once and refers to it after.
func geometryTable() *connectors.Table {
	return &connectors.Table{
		Schema: "gis",
		Name:   "shapes",
		Key:    []int{0, 1},
		Columns: []connectors.Column{
			{Name: "id", Type: typ(connectors.KindInt32), SQLType: "int(11)"},
			{Name: "at", Type: typ(connectors.KindGeometry), SQLType: "point"},
			{Name: "area", Type: typ(connectors.KindGeometry), SQLType: "polygon"},
			{Name: "path", Type: typ(connectors.KindGeometry), Nullable: true, SQLType: "linestring"},
		},
	}
}

// namesTable has column names that are not valid Avro names.
func namesTable() *connectors.Table {
	return &connectors.Table{
		Schema: "shop",
		Name:   "Order Lines",
		Key:    []int{0},
		Columns: []connectors.Column{
			{Name: "line-id", Type: typ(connectors.KindInt32), SQLType: "int(11)"},
			{Name: "2fa", Type: typ(connectors.KindBool), SQLType: "tinyint(1)"},
			{Name: "größe", Type: typ(connectors.KindString), Nullable: true, SQLType: "varchar(10)"},
			{Name: "unit price ($)", Type: decimal(8, 0), Nullable: true, SQLType: "decimal(8,0)"},
			{Name: "", Type: typ(connectors.KindString), SQLType: "text"},
		},
	}
}

func TestNewCodec(t *testing.T) {
	tests := []struct {
		name      string
		golden    string
		namespace string
		table     *connectors.Table
	}{
		{"a column of every kind maps to its Avro type", "every_kind", Namespace("app.public.every_kind"), everyKindTable()},
		{"column names that are not Avro names are rewritten", "names", Namespace("shop.Order Lines"), namesTable()},
		{"constant SQL defaults become Avro defaults", "defaults", Namespace("app.public.defaults"), defaultsTable()},
		{"geometries are records defined once per schema", "geometry", Namespace("app.gis.shapes"), geometryTable()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCodec(tt.namespace, tt.table)
			if err != nil {
				t.Fatal(err)
			}
			key, err := marshalSchema(c.Key)
			if err != nil {
				t.Fatal(err)
			}
			value, err := marshalSchema(c.Value)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(map[string]json.RawMessage{"key": key, "value": value})
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden(t, tt.golden, pretty.Bytes())

			// The registry gets the JSON: it must parse back to the same schema.
			for _, s := range []avro.Schema{c.Key, c.Value} {
				text, err := marshalSchema(s)
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
				if err != nil {
					t.Fatalf("parse derived schema: %v", err)
				}
				if diff := cmp.Diff(s.String(), parsed.String()); diff != "" {
					t.Errorf("canonical form changes when the schema is parsed back (-derived +parsed):\n%s", diff)
				}
				if diff := cmp.Diff(fieldDefaults(s), fieldDefaults(parsed)); diff != "" {
					t.Errorf("defaults change when the schema is parsed back (-derived +parsed):\n%s", diff)
				}
			}
		})
	}
}

func TestNewCodecErrors(t *testing.T) {
	withColumn := func(c connectors.Column) *connectors.Table {
		return &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: []connectors.Column{
			{Name: "id", Type: typ(connectors.KindInt64), SQLType: "bigint"}, c,
		}}
	}
	tests := []struct {
		name        string
		table       *connectors.Table
		want        string
		unsupported bool
	}{
		{
			name:        "an invalid kind is unsupported",
			table:       withColumn(connectors.Column{Name: "shape", Type: typ(connectors.KindInvalid), SQLType: "geometry"}),
			want:        `derive schema of table public.t: column "shape" (geometry): kind invalid: unsupported column type`,
			unsupported: true,
		},
		{
			name:        "an unknown kind is unsupported",
			table:       withColumn(connectors.Column{Name: "x", Type: typ(connectors.Kind(200)), SQLType: "xml"}),
			want:        `derive schema of table public.t: column "x" (xml): kind kind(200): unsupported column type`,
			unsupported: true,
		},
		{
			name:        "an array of an unsupported kind is unsupported",
			table:       withColumn(connectors.Column{Name: "xs", Type: array(typ(connectors.KindInvalid)), SQLType: "point[]"}),
			want:        `derive schema of table public.t: column "xs" (point[]): array element: kind invalid: unsupported column type`,
			unsupported: true,
		},
		{
			name:        "an array without an element type is unsupported",
			table:       withColumn(connectors.Column{Name: "xs", Type: typ(connectors.KindArray), SQLType: "anyarray"}),
			want:        `derive schema of table public.t: column "xs" (anyarray): array has no element type: unsupported column type`,
			unsupported: true,
		},
		{
			name:        "a decimal without precision is unsupported",
			table:       withColumn(connectors.Column{Name: "amount", Type: decimal(0, 0), SQLType: "numeric"}),
			want:        `derive schema of table public.t: column "amount" (numeric): decimal precision 0 and scale 0 are out of range (want 1 <= precision and 0 <= scale <= precision): unsupported column type`,
			unsupported: true,
		},
		{
			name:        "a decimal whose scale exceeds its precision is unsupported",
			table:       withColumn(connectors.Column{Name: "amount", Type: decimal(2, 3), SQLType: "numeric(2,3)"}),
			want:        `derive schema of table public.t: column "amount" (numeric(2,3)): decimal precision 2 and scale 3 are out of range (want 1 <= precision and 0 <= scale <= precision): unsupported column type`,
			unsupported: true,
		},
		{
			name: "two columns with the same field name are an error",
			table: &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: []connectors.Column{
				{Name: "i_d", Type: typ(connectors.KindInt64)},
				{Name: "i-d", Type: typ(connectors.KindInt64)},
			}},
			want: `derive schema of table public.t: columns "i_d" and "i-d" both map to the Avro field name "i_d"`,
		},
		{
			name:  "a table without a key is an error",
			table: &connectors.Table{Schema: "public", Name: "t", Columns: []connectors.Column{{Name: "id", Type: typ(connectors.KindInt64)}}},
			want:  `derive schema of table public.t: table has no key columns`,
		},
		{
			name:  "a key index out of range is an error",
			table: &connectors.Table{Schema: "public", Name: "t", Key: []int{1}, Columns: []connectors.Column{{Name: "id", Type: typ(connectors.KindInt64)}}},
			want:  `derive schema of table public.t: key column index 1 is out of range (table has 1 columns)`,
		},
		{
			name:  "a key column listed twice is an error",
			table: &connectors.Table{Schema: "public", Name: "t", Key: []int{0, 0}, Columns: []connectors.Column{{Name: "id", Type: typ(connectors.KindInt64)}}},
			want:  `derive schema of table public.t: column "id" appears twice in the key`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCodec("ns", tt.table)
			if err == nil {
				t.Fatal("NewCodec succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if got := errors.Is(err, connectors.ErrUnsupportedType); got != tt.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupportedType) = %v, want %v", got, tt.unsupported)
			}
		})
	}
}

func TestFieldName(t *testing.T) {
	tests := []struct {
		name, column, want string
	}{
		{"a valid name is kept", "order_id", "order_id"},
		{"mixed case is kept", "OrderID", "OrderID"},
		{"a hyphen becomes an underscore", "order-id", "order_id"},
		{"a space becomes an underscore", "unit price", "unit_price"},
		{"a leading digit gets an underscore prefix", "2fa", "_2fa"},
		{"a leading digit and illegal characters are both fixed", "1st-place", "_1st_place"},
		{"each non-ASCII character becomes one underscore", "größe", "gr__e"},
		{"an invalid UTF-8 byte becomes one underscore", "a\xffb", "a_b"},
		{"the empty name becomes an underscore", "", "_"},
		{"a leading underscore is kept", "_x", "_x"},
		{"a dot becomes an underscore", "a.b", "a_b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, FieldName(tt.column)); diff != "" {
				t.Errorf("FieldName(%q) (-want +got):\n%s", tt.column, diff)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	tests := []struct {
		name, topic, want string
	}{
		{"a valid dotted topic is kept", "app.public.orders", "app.public.orders"},
		{"each part is made a valid name", "app.public.orders-v2", "app.public.orders_v2"},
		{"a part starting with a digit gets a prefix", "1st.orders", "_1st.orders"},
		{"an empty part becomes an underscore", "a..b", "a._.b"},
		{"a topic without dots is one name", "orders-v2", "orders_v2"},
		{"a sanitized non-ASCII table's topic", "app.___.caf_", "app.___.caf_"},
		{"a sanitized topic with a hash suffix", "app.public.some_test_data_0a1b2c3d", "app.public.some_test_data_0a1b2c3d"},
		{"a topic of a name that starts with a digit and holds a dash", "app.2024-q1.x", "app._2024_q1.x"},
		{"a name that is not a topic is made valid as well", "app.テスト.café", "app.___.caf_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Namespace(tt.topic)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Namespace(%q) (-want +got):\n%s", tt.topic, diff)
			}
			if _, err := avro.NewRecordSchema("Value", got, nil); err != nil {
				t.Errorf("hamba rejects namespace %q: %v", got, err)
			}
		})
	}
}
