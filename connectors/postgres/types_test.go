package postgres

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// typmod of numeric(p,s).
func numericMod(p, s int) int32 { return int32(p<<16|s) + 4 }

func TestTypeMappingGolden(t *testing.T) {
	cases := []struct {
		sql    string
		oid    uint32
		typmod int32
	}{
		{"boolean", pgtype.BoolOID, -1},
		{"smallint", pgtype.Int2OID, -1},
		{"integer", pgtype.Int4OID, -1},
		{"bigint", pgtype.Int8OID, -1},
		{"real", pgtype.Float4OID, -1},
		{"double precision", pgtype.Float8OID, -1},
		{"numeric(12,2)", pgtype.NumericOID, numericMod(12, 2)},
		{"numeric(38,0)", pgtype.NumericOID, numericMod(38, 0)},
		{"numeric", pgtype.NumericOID, -1},
		{"numeric(2,5)", pgtype.NumericOID, numericMod(2, 5)},
		{"numeric(3,-2)", pgtype.NumericOID, int32(3<<16|(-2&0x7ff)) + 4},
		{"numeric(1000,1000)", pgtype.NumericOID, numericMod(1000, 1000)},
		{"text", pgtype.TextOID, -1},
		{"character varying(20)", pgtype.VarcharOID, 24},
		{"character(3)", pgtype.BPCharOID, 7},
		{"uuid", pgtype.UUIDOID, -1},
		{"date", pgtype.DateOID, -1},
		{"timestamp without time zone", pgtype.TimestampOID, -1},
		{"timestamp with time zone", pgtype.TimestamptzOID, -1},
		{"time without time zone", pgtype.TimeOID, -1},
		{"json", pgtype.JSONOID, -1},
		{"jsonb", pgtype.JSONBOID, -1},
		{"bytea", pgtype.ByteaOID, -1},
		{"integer[]", pgtype.Int4ArrayOID, -1},
		{"text[]", pgtype.TextArrayOID, -1},
		{"numeric(10,3)[]", pgtype.NumericArrayOID, numericMod(10, 3)},
		{"timestamp with time zone[]", pgtype.TimestamptzArrayOID, -1},
		{"interval", pgtype.IntervalOID, -1},
		{"time with time zone", pgtype.TimetzOID, -1},
		{"inet", pgtype.InetOID, -1},
		{"money", 790, -1},
		{"an enum", 16385, -1},
	}
	// Types outside the built-in set come from the catalog.
	cat := &catalog{types: map[uint32]pgType{
		pgtype.IntervalOID: {typtype: 'b'}, pgtype.TimetzOID: {typtype: 'b'}, pgtype.InetOID: {typtype: 'b'}, 790: {typtype: 'b'},
		16385: {oid: 16385, typtype: 'e'},
	}}
	var b strings.Builder
	for _, c := range cases {
		typ, err := cat.neutralType(context.Background(), c.oid, c.typmod)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		fmt.Fprintf(&b, "%-30s -> %s\n", c.sql, describe(typ))
	}
	golden(t, "types.golden", b.String())
}

func describe(t connectors.Type) string {
	switch t.Kind {
	case connectors.KindDecimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case connectors.KindArray:
		return "array of " + describe(*t.Elem)
	}
	return t.Kind.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", path, d)
	}
}
