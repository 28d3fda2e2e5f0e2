package mapping

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

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
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, d)
	}
}

// customers is a table with a key, personal data and a default.
func customers() *connectors.Table {
	kind := func(k connectors.Kind) connectors.Type { return connectors.Type{Kind: k} }
	return &connectors.Table{Schema: "public", Name: "customers", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: kind(connectors.KindInt64), SQLType: "bigint"},
		{Name: "email", Type: kind(connectors.KindString), Nullable: true, SQLType: "text"},
		{Name: "ssn", Type: kind(connectors.KindString), SQLType: "text", Default: "none"},
		{Name: "born", Type: kind(connectors.KindDate), Nullable: true, SQLType: "date"},
		{Name: "score", Type: kind(connectors.KindInt32), SQLType: "integer", Default: int32(0)},
		{Name: "notes", Type: kind(connectors.KindString), Nullable: true, SQLType: "text"},
		{Name: "tags", Type: connectors.Type{Kind: connectors.KindArray, Elem: &connectors.Type{Kind: connectors.KindString}}, Nullable: true, SQLType: "text[]"},
	}}
}

func TestViewMapsRows(t *testing.T) {
	m := &Table{
		Exclude: []string{"notes"},
		Rename:  map[string]string{"email": "mail", "born": "birth-day"},
		Mask:    map[string]string{"ssn": "***"},
		Hash:    []string{"email", "born"},
	}
	v, err := NewView(customers(), m, "public.customers", "pepper")
	if err != nil {
		t.Fatal(err)
	}
	row := []any{int64(7), "a@example.com", "123-45-6789", int32(-1), int32(5), "private", []any{"x"}}
	got := v.Project(row)
	want := []any{
		int64(7),
		hashValue("pepper", connectors.Type{Kind: connectors.KindString}, "a@example.com"),
		"***",
		hashValue("pepper", connectors.Type{Kind: connectors.KindDate}, int32(-1)),
		int32(5),
		[]any{"x"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("projected row (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]any{int64(7), nil, nil, nil, nil, nil}, v.Project([]any{int64(7), nil, nil, nil, nil, nil, nil})); d != "" {
		t.Errorf("NULLs stay NULL (-want +got):\n%s", d)
	}
	if v.Project(nil) != nil {
		t.Error("a nil row did not stay nil")
	}
	// The SHA-256 of "pepper" followed by "a@example.com", in hex.
	if got[1] != "b933d59aaed37a1cf390cf5d081b2bc732116ea629ebd8fd26836f4b4d4849f0" {
		t.Errorf("hash = %q, want the SHA-256 of the salt and the value", got[1])
	}
	if d := cmp.Diff(map[string]string{"id": "id", "mail": "email", "ssn": "ssn", "birth_day": "born", "score": "score", "tags": "tags"}, v.Columns); d != "" {
		t.Errorf("field to column (-want +got):\n%s", d)
	}

	// The mapped table's Avro schema, as the registry would get it.
	c, err := schema.NewCodec(schema.Namespace("crm.customers"), v.Table, schema.WithFieldNames(v.Rename))
	if err != nil {
		t.Fatal(err)
	}
	text, err := json.Marshal(c.Value)
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, text, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden(t, "mapped_customers", pretty.Bytes())
}

func TestViewLeavesValuesOutOfRangeForTheEncoder(t *testing.T) {
	v, err := NewView(customers(), &Table{Mask: map[string]string{"ssn": "***"}, Hash: []string{"born"}}, "public.customers", "pepper")
	if err != nil {
		t.Fatal(err)
	}
	bad := connectors.BadValue{Text: "5881580-07-11", Reason: "outside the range of an Avro date"}
	got := v.Project([]any{int64(7), nil, bad, bad, int32(5), nil, nil})
	// A masked value is replaced whatever it was; a hashed one has no text
	// to hash, so it stays for the encoder to refuse as a bad row.
	if d := cmp.Diff([]any{int64(7), nil, "***", bad, int32(5), nil, nil}, got); d != "" {
		t.Errorf("projected row (-want +got):\n%s", d)
	}
}

func TestViewWithoutMappingIsTheTable(t *testing.T) {
	table := customers()
	v, err := NewView(table, nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	row := []any{int64(1), nil, "x", nil, int32(1), nil, nil}
	if v.Table != table || &v.Project(row)[0] != &row[0] {
		t.Error("an unmapped table is not passed through as it is")
	}
}

func TestViewIncludeAndKey(t *testing.T) {
	v, err := NewView(customers(), &Table{Include: []string{"score", "id"}, Key: []string{"id"}}, "public.customers", "")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"id", "score"}, []string{v.Table.Columns[0].Name, v.Table.Columns[1].Name}); d != "" {
		t.Errorf("columns keep the table's order (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]int{0}, v.Table.Key); d != "" {
		t.Errorf("key (-want +got):\n%s", d)
	}
}

func TestViewRefuses(t *testing.T) {
	tests := []struct {
		name string
		m    Table
		want string
	}{
		{"an unknown column", Table{Exclude: []string{"nope"}}, `mapping.public.customers.exclude: column "nope" is not a column of table public.customers`},
		{"an unknown renamed column", Table{Rename: map[string]string{"nope": "x"}}, `mapping.public.customers.rename: column "nope" is not a column of table public.customers`},
		{"a key column left out", Table{Exclude: []string{"id"}}, `mapping.public.customers: key column "id" of table public.customers must be published`},
		{"a masked key column", Table{Mask: map[string]string{"id": "x"}}, `mapping.public.customers.mask: key column "id" of table public.customers cannot be masked`},
		{"a hashed array", Table{Hash: []string{"tags"}}, `mapping.public.customers.hash: column "tags" of table public.customers is an array`},
		{"a key other than the primary key", Table{Key: []string{"email"}}, `mapping.public.customers.key: table public.customers is keyed by id`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewView(customers(), &tt.m, "public.customers", "salt")
			if err == nil {
				t.Fatal("newView succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestValueText(t *testing.T) {
	kind := func(k connectors.Kind) connectors.Type { return connectors.Type{Kind: k} }
	tests := []struct {
		t    connectors.Type
		v    any
		want string
	}{
		{kind(connectors.KindString), "héllo", "héllo"},
		{kind(connectors.KindDecimal), "-1.50", "-1.50"},
		{kind(connectors.KindBool), true, "true"},
		{kind(connectors.KindInt32), int32(-5), "-5"},
		{kind(connectors.KindInt64), int64(1) << 62, "4611686018427387904"},
		{kind(connectors.KindFloat32), float32(0.1), "0.1"},
		{kind(connectors.KindFloat64), 1e300, "1e+300"},
		{kind(connectors.KindBytes), []byte{0, 1}, "\x00\x01"},
		{kind(connectors.KindDate), int32(-1), "1969-12-31"},
		{kind(connectors.KindTimestamp), int64(1_500_000), "1970-01-01T00:00:01.5Z"},
		{kind(connectors.KindLocalTimestamp), int64(-1), "1969-12-31T23:59:59.999999"},
		{kind(connectors.KindTime), int64(45296_000001), "12:34:56.000001"},
	}
	for _, tt := range tests {
		if got := string(valueText(tt.t, tt.v)); got != tt.want {
			t.Errorf("valueText(%s, %#v) = %q, want %q", tt.t.Kind, tt.v, got, tt.want)
		}
	}
	if got, want := hashValue("s", kind(connectors.KindString), "x"), "9740c9dcdb4487d8cd63d2a544d8e6573f082081c49aef08c7853ab0f99e019a"; got != want {
		t.Errorf("hash = %q, want %q", got, want)
	}
	if hashValue("a", kind(connectors.KindString), "x") == hashValue("b", kind(connectors.KindString), "x") {
		t.Error("the salt does not change the hash")
	}
}
