package postgres

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

// TestParseDefault feeds parseDefault the expressions PostgreSQL 15's
// pg_get_expr prints for column defaults (copied from a real server).
func TestParseDefault(t *testing.T) {
	kind := func(k connectors.Kind) connectors.Type { return connectors.Type{Kind: k} }
	dec := func(p, s int) connectors.Type {
		return connectors.Type{Kind: connectors.KindDecimal, Precision: p, Scale: s}
	}
	arr := func(k connectors.Kind) connectors.Type {
		e := kind(k)
		return connectors.Type{Kind: connectors.KindArray, Elem: &e}
	}
	tests := []struct {
		name   string
		expr   string
		typ    connectors.Type
		oid    uint32
		typmod int32
		want   any
	}{
		{"no default is nil", "", kind(connectors.KindInt32), pgtype.Int4OID, -1, nil},
		{"a timestamp past what timestamp-micros holds is no default", "'294276-12-31 23:59:59.999999'::timestamp without time zone", kind(connectors.KindLocalTimestamp), pgtype.TimestampOID, -1, nil},
		{"a positive integer", "42", kind(connectors.KindInt32), pgtype.Int4OID, -1, int32(42)},
		{"a negative integer is quoted and cast", "'-42'::integer", kind(connectors.KindInt32), pgtype.Int4OID, -1, int32(-42)},
		{"a bigint", "7", kind(connectors.KindInt64), pgtype.Int8OID, -1, int64(7)},
		{"a decimal", "1.5", dec(12, 2), pgtype.NumericOID, -1, "1.5"},
		{"a negative decimal", "'-0.5'::numeric", dec(12, 2), pgtype.NumericOID, -1, "-0.5"},
		{"a decimal with more digits than the scale has no exact default", "1.555", dec(12, 2), pgtype.NumericOID, -1, nil},
		{"an unconstrained numeric is text", "'-0.5'::numeric", kind(connectors.KindString), pgtype.NumericOID, -1, "-0.5"},
		{"a string with a doubled quote", "'it''s'::text", kind(connectors.KindString), pgtype.TextOID, -1, "it's"},
		{"a varchar", "'x'::character varying", kind(connectors.KindString), pgtype.VarcharOID, 14, "x"},
		{"a char(n) is padded as stored", "'ab'::bpchar", kind(connectors.KindString), pgtype.BPCharOID, 7, "ab "},
		{"a backslash is literal", `'a\b'::text`, kind(connectors.KindString), pgtype.TextOID, -1, `a\b`},
		{"a newline inside the literal", "'\n'::text", kind(connectors.KindString), pgtype.TextOID, -1, "\n"},
		{"an escape string is not taken", `E'a\\b'::text`, kind(connectors.KindString), pgtype.TextOID, -1, nil},
		{"true", "true", kind(connectors.KindBool), pgtype.BoolOID, -1, true},
		{"false", "false", kind(connectors.KindBool), pgtype.BoolOID, -1, false},
		{"a date", "'2020-01-02'::date", kind(connectors.KindDate), pgtype.DateOID, -1, int32(18263)},
		{"an instant", "'2020-01-02 01:04:05.123456+00'::timestamp with time zone", kind(connectors.KindTimestamp), pgtype.TimestamptzOID, -1, int64(1577927045123456)},
		{"a time", "'12:00:00'::time without time zone", kind(connectors.KindTime), pgtype.TimeOID, -1, int64(43200000000)},
		{"a float from a numeric literal", "'-1.5'::numeric", kind(connectors.KindFloat64), pgtype.Float8OID, -1, -1.5},
		{"a real", "1.25", kind(connectors.KindFloat32), pgtype.Float4OID, -1, float32(1.25)},
		{"NaN", "'NaN'::double precision", kind(connectors.KindFloat64), pgtype.Float8OID, -1, math.NaN()},
		{"an empty array", "'{}'::text[]", arr(connectors.KindString), pgtype.TextArrayOID, -1, []any{}},
		{"an array with a NULL", "'{1,NULL}'::integer[]", arr(connectors.KindInt32), pgtype.Int4ArrayOID, -1, []any{int32(1), nil}},
		{"a uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid", kind(connectors.KindUUID), pgtype.UUIDOID, -1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"jsonb", `'{"a": 1}'::jsonb`, kind(connectors.KindJSON), pgtype.JSONBOID, -1, `{"a": 1}`},
		{"bytea", `'\x00ff'::bytea`, kind(connectors.KindBytes), pgtype.ByteaOID, -1, []byte{0, 0xff}},
		{"an enum", "'ok'::mood", kind(connectors.KindString), 99999, -1, "ok"},
		{"a quoted enum type", `'ok'::"Mood"`, kind(connectors.KindString), 99999, -1, "ok"},
		{"an infinite date", "'infinity'::date", kind(connectors.KindDate), pgtype.DateOID, -1, int32(math.MaxInt32)},
		{"a function call is not constant", "now()", kind(connectors.KindTimestamp), pgtype.TimestamptzOID, -1, nil},
		{"a sequence is not constant", "nextval('d_z_seq'::regclass)", kind(connectors.KindInt32), pgtype.Int4OID, -1, nil},
		{"an expression is not constant", "(1 + 2)", kind(connectors.KindInt32), pgtype.Int4OID, -1, nil},
		{"a concatenation is not constant", "('a'::text || 'b'::text)", kind(connectors.KindString), pgtype.TextOID, -1, nil},
		{"two literals are not one", "'a'::text || 'b'::text", kind(connectors.KindString), pgtype.TextOID, -1, nil},
		{"NULL is no default", "NULL::integer", kind(connectors.KindInt32), pgtype.Int4OID, -1, nil},
		{"text that does not decode as the type", "'abc'::text", kind(connectors.KindInt32), pgtype.Int4OID, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := decoderFor(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got := parseDefault(tt.expr, tt.typ, tt.oid, tt.typmod, d)
			if !connectors.SameValue(tt.want, got) {
				t.Errorf("parseDefault(%q) = %#v, want %#v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestValidateKeyColumns(t *testing.T) {
	cfg := Config{DSN: "postgres://u@h/db", Tables: []string{"public.a", "b"}, KeyColumns: map[string][]string{
		"public.a": {"x"}, "public.b": {"y"}, "public.c": {"z"}, "public.d": {}, "x.y.z": {"q"},
	}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	want := `mapping.public.c.key: public.c is not in source.tables
mapping.public.d.key: public.d is not in source.tables
mapping.x.y.z.key: "x.y.z" is not a table name: it has more than two parts (use schema.table; quote a part that holds a dot or a quote as in SQL: "My.Schema"."Odd""Table"; or write {schema: ..., table: ...})`
	if d := cmp.Diff(want, err.Error()); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}

// FuzzParseDefault checks that any default expression gives nil or a value
// of the column kind's form, without panicking.
func FuzzParseDefault(f *testing.F) {
	for _, s := range []string{"42", "'-42'::integer", "'it''s'::text", "'{1,NULL}'::integer[]", "now()", "'\x00'::bytea", "1.5", "true", "'2020-01-02'::date"} {
		f.Add(s)
	}
	types := []connectors.Type{
		{Kind: connectors.KindInt32}, {Kind: connectors.KindDecimal, Precision: 10, Scale: 2}, {Kind: connectors.KindString},
		{Kind: connectors.KindBytes}, {Kind: connectors.KindDate}, {Kind: connectors.KindBool}, {Kind: connectors.KindFloat64},
	}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, typ := range types {
			d, err := decoderFor(typ)
			if err != nil {
				t.Fatal(err)
			}
			v := parseDefault(expr, typ, 0, -1, d)
			if v == nil {
				continue
			}
			var ok bool
			switch typ.Kind {
			case connectors.KindInt32, connectors.KindDate:
				_, ok = v.(int32)
			case connectors.KindDecimal, connectors.KindString:
				_, ok = v.(string)
			case connectors.KindBytes:
				_, ok = v.([]byte)
			case connectors.KindBool:
				_, ok = v.(bool)
			case connectors.KindFloat64:
				_, ok = v.(float64)
			}
			if !ok {
				t.Errorf("parseDefault(%q) for %s = %#v", expr, typ.Kind, v)
			}
		}
	})
}
