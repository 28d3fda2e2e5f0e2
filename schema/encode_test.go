package schema

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

// decodedOpts compare values as hamba's generic decoder returns them:
// floats by their bits (so NaN equals NaN and -0 differs from 0), decimals
// by value, and empty slices equal to nil ones.
var decodedOpts = cmp.Options{
	cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }),
	cmp.Comparer(func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }),
	cmp.Comparer(func(a, b *big.Rat) bool { return a == nil && b == nil || a != nil && b != nil && a.Cmp(b) == 0 }),
	cmpopts.EquateEmpty(),
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad rational " + s)
	}
	return r
}

func utcMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// unwrapUnion undoes the map[string]any{"type": v} with which hamba wraps
// some union values.
func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, inner := range m {
			return inner
		}
	}
	return v
}

// wallClock drops the location of a decoded local timestamp, which hamba
// places in time.Local with the wall clock of the encoded value.
func wallClock(v any) any {
	if t, ok := v.(time.Time); ok {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	const uuid = "123e4567-e89b-12d3-a456-426614174000"
	big38 := strings.Repeat("9", 38)
	tests := []struct {
		name  string
		typ   connectors.Type
		value any
		want  any // as hamba's generic decoder returns it
	}{
		{"true stays true", typ(connectors.KindBool), true, true},
		{"false stays false", typ(connectors.KindBool), false, false},
		{"the smallest int32 round-trips", typ(connectors.KindInt32), int32(math.MinInt32), math.MinInt32},
		{"the largest int32 round-trips", typ(connectors.KindInt32), int32(math.MaxInt32), math.MaxInt32},
		{"int32 minus one round-trips", typ(connectors.KindInt32), int32(-1), -1},
		{"the smallest int64 round-trips", typ(connectors.KindInt64), int64(math.MinInt64), int64(math.MinInt64)},
		{"the largest int64 round-trips", typ(connectors.KindInt64), int64(math.MaxInt64), int64(math.MaxInt64)},
		{"int64 zero round-trips", typ(connectors.KindInt64), int64(0), int64(0)},
		{"a float32 NaN round-trips", typ(connectors.KindFloat32), float32(math.NaN()), float32(math.NaN())},
		{"float32 infinity round-trips", typ(connectors.KindFloat32), float32(math.Inf(1)), float32(math.Inf(1))},
		{"float32 minus infinity round-trips", typ(connectors.KindFloat32), float32(math.Inf(-1)), float32(math.Inf(-1))},
		{"float32 negative zero keeps its sign", typ(connectors.KindFloat32), float32(math.Copysign(0, -1)), float32(math.Copysign(0, -1))},
		{"the largest float32 round-trips", typ(connectors.KindFloat32), float32(math.MaxFloat32), float32(math.MaxFloat32)},
		{"the smallest float32 round-trips", typ(connectors.KindFloat32), float32(math.SmallestNonzeroFloat32), float32(math.SmallestNonzeroFloat32)},
		{"a float64 NaN round-trips", typ(connectors.KindFloat64), math.NaN(), math.NaN()},
		{"float64 infinity round-trips", typ(connectors.KindFloat64), math.Inf(1), math.Inf(1)},
		{"float64 minus infinity round-trips", typ(connectors.KindFloat64), math.Inf(-1), math.Inf(-1)},
		{"float64 negative zero keeps its sign", typ(connectors.KindFloat64), math.Copysign(0, -1), math.Copysign(0, -1)},
		{"the largest float64 round-trips", typ(connectors.KindFloat64), math.MaxFloat64, math.MaxFloat64},
		{"a decimal at its scale round-trips", decimal(12, 2), "12.30", rat("12.30")},
		{"a decimal with fewer fraction digits is padded", decimal(12, 2), "-12.3", rat("-12.30")},
		{"an integer decimal gets the scale", decimal(12, 2), "7", rat("7")},
		{"a decimal with trailing zeros past the scale is exact", decimal(12, 2), "1.2300", rat("1.23")},
		{"negative zero decimal is zero", decimal(12, 2), "-0.00", rat("0")},
		{"a decimal with a plus sign round-trips", decimal(12, 2), "+5.05", rat("5.05")},
		{"a decimal with leading zeros round-trips", decimal(4, 2), "0012.34", rat("12.34")},
		{"a decimal of 38 nines round-trips", decimal(38, 0), big38, rat(big38)},
		{"a negative decimal of 38 digits round-trips", decimal(38, 2), "-" + big38[:36] + ".99", rat("-" + big38[:36] + ".99")},
		{"a decimal of 60 digits takes the big path", decimal(60, 10), strings.Repeat("8", 50) + "." + strings.Repeat("1", 10), rat(strings.Repeat("8", 50) + "." + strings.Repeat("1", 10))},
		{"a negative decimal of 60 digits takes the big path", decimal(60, 10), "-" + strings.Repeat("8", 50) + ".5", rat("-" + strings.Repeat("8", 50) + ".5")},
		{"a decimal with scale 0 round-trips", decimal(5, 0), "-12345", rat("-12345")},
		{"a decimal with scale equal to precision round-trips", decimal(5, 5), "-0.12345", rat("-0.12345")},
		{"an empty string round-trips", typ(connectors.KindString), "", ""},
		{"a non-ASCII string round-trips", typ(connectors.KindString), "naïve ☃", "naïve ☃"},
		{"a uuid round-trips", typ(connectors.KindUUID), uuid, uuid},
		{"an upper-case uuid round-trips", typ(connectors.KindUUID), strings.ToUpper(uuid), strings.ToUpper(uuid)},
		{"json text round-trips", typ(connectors.KindJSON), `{"a":[1,2]}`, `{"a":[1,2]}`},
		{"empty bytes round-trip", typ(connectors.KindBytes), []byte{}, []byte{}},
		{"bytes round-trip", typ(connectors.KindBytes), []byte{0, 1, 0xff}, []byte{0, 1, 0xff}},
		{"the epoch date round-trips", typ(connectors.KindDate), int32(0), utcMicros(0)},
		{"a date before 1970 round-trips", typ(connectors.KindDate), int32(-1), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"the first date of year 1 round-trips", typ(connectors.KindDate), int32(-719162), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"the last date of year 9999 round-trips", typ(connectors.KindDate), int32(2932896), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"a timestamp keeps its microseconds", typ(connectors.KindTimestamp), int64(1700000000123456), utcMicros(1700000000123456)},
		{"a timestamp before 1970 round-trips", typ(connectors.KindTimestamp), int64(-1), time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)},
		{"a local timestamp keeps its microseconds", typ(connectors.KindLocalTimestamp), int64(1700000000123456), utcMicros(1700000000123456)},
		{"a local timestamp before 1970 round-trips", typ(connectors.KindLocalTimestamp), int64(-86400000001), time.Date(1969, 12, 30, 23, 59, 59, 999999000, time.UTC)},
		{"midnight round-trips", typ(connectors.KindTime), int64(0), time.Duration(0)},
		{"a time keeps its microseconds", typ(connectors.KindTime), int64(45296789012), 12*time.Hour + 34*time.Minute + 56*time.Second + 789012*time.Microsecond},
		{"the end of the day round-trips", typ(connectors.KindTime), int64(86400000000), 24 * time.Hour},
		{"an empty array round-trips", array(typ(connectors.KindInt32)), []any{}, []any{}},
		{"an array of one NULL round-trips", array(typ(connectors.KindInt32)), []any{nil}, []any{nil}},
		{"an array of decimals with NULLs round-trips", array(decimal(10, 3)), []any{"1.5", nil, "-0.001"}, []any{rat("1.5"), nil, rat("-0.001")}},
		{"an array of strings round-trips", array(typ(connectors.KindString)), []any{"", "b"}, []any{"", "b"}},
		{"an array of arrays round-trips", array(array(typ(connectors.KindInt64))), []any{[]any{int64(1)}, nil, []any{}}, []any{map[string]any{"array": []any{int64(1)}}, nil, map[string]any{"array": []any{}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl := &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: []connectors.Column{
				{Name: "id", Type: typ(connectors.KindInt64)},
				{Name: "v", Type: tt.typ},
				{Name: "n", Type: tt.typ, Nullable: true},
			}}
			c, err := NewCodec("ns", tbl)
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range [][]any{{int64(7), tt.value, tt.value}, {int64(7), tt.value, nil}} {
				data, err := c.AppendValue(nil, row)
				if err != nil {
					t.Fatal(err)
				}
				var got any
				if err := avro.Unmarshal(c.Value, data, &got); err != nil {
					t.Fatalf("hamba cannot decode % x: %v", data, err)
				}
				m := got.(map[string]any)
				if n := unwrapUnion(m["n"]); n != nil {
					m["n"] = n
				}
				if tt.typ.Kind == connectors.KindLocalTimestamp {
					m["v"], m["n"] = wallClock(m["v"]), wallClock(m["n"])
				}
				want := map[string]any{"id": int64(7), "v": tt.want, "n": tt.want}
				if row[2] == nil {
					want["n"] = nil
				}
				if diff := cmp.Diff(want, got, decodedOpts); diff != "" {
					t.Errorf("decoded row (-want +got):\n%s", diff)
				}
				// The same bytes again, after a prefix: Append appends.
				again, err := c.AppendValue([]byte("prefix"), row)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(append([]byte("prefix"), data...), again); diff != "" {
					t.Errorf("AppendValue after a prefix (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	c, err := NewCodec("ns", everyKindTable())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		row       []any
		wantKey   map[string]any
		wantValue map[string]any
	}{
		{
			name: "a row with NULL in every nullable column round-trips",
			row: []any{
				int64(1), int32(2), true, nil, int32(3), nil, int64(4), nil, float32(5), nil, 6.5, nil,
				"7.25", nil, "s", nil, "123e4567-e89b-12d3-a456-426614174000", nil, `{}`, nil,
				[]byte("r"), nil, int32(8), nil, int64(9), nil, int64(10), nil, int64(11), nil,
				[]any{}, nil,
			},
			wantKey: map[string]any{"tenant": 2, "id": int64(1)},
			wantValue: map[string]any{
				"id": int64(1), "tenant": 2, "flag": true, "flag_n": nil, "i32": 3, "i32_n": nil,
				"i64": int64(4), "i64_n": nil, "f32": float32(5), "f32_n": nil, "f64": 6.5, "f64_n": nil,
				"dec": rat("7.25"), "dec_n": nil, "str": "s", "str_n": nil,
				"uuid": "123e4567-e89b-12d3-a456-426614174000", "uuid_n": nil, "doc": `{}`, "doc_n": nil,
				"raw": []byte("r"), "raw_n": nil, "day": utcMicros(8 * 86400e6), "day_n": nil,
				"ts": utcMicros(9), "ts_n": nil, "lts": utcMicros(10), "lts_n": nil, "tod": 11 * time.Microsecond, "tod_n": nil,
				"decs": []any{}, "tags_n": nil,
			},
		},
		{
			name: "a row with every nullable column set round-trips",
			row: []any{
				int64(-1), int32(-2), false, true, int32(3), int32(-3), int64(4), int64(-4), float32(5), float32(-5), 6.5, -6.5,
				"-7.25", "1", "", "t", "123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000", `[]`, `null`,
				[]byte{}, []byte{1}, int32(-8), int32(8), int64(-9), int64(9), int64(-10), int64(10), int64(11), int64(12),
				[]any{"1.000", nil}, []any{"a", nil},
			},
			wantKey: map[string]any{"tenant": -2, "id": int64(-1)},
			wantValue: map[string]any{
				"id": int64(-1), "tenant": -2, "flag": false, "flag_n": true, "i32": 3, "i32_n": -3,
				"i64": int64(4), "i64_n": int64(-4), "f32": float32(5), "f32_n": float32(-5), "f64": 6.5, "f64_n": -6.5,
				"dec": rat("-7.25"), "dec_n": rat("1"), "str": "", "str_n": "t",
				"uuid": "123e4567-e89b-12d3-a456-426614174000", "uuid_n": "00000000-0000-0000-0000-000000000000", "doc": `[]`, "doc_n": `null`,
				"raw": []byte{}, "raw_n": []byte{1}, "day": utcMicros(-8 * 86400e6), "day_n": utcMicros(8 * 86400e6),
				"ts": utcMicros(-9), "ts_n": utcMicros(9), "lts": utcMicros(-10), "lts_n": utcMicros(10), "tod": 11 * time.Microsecond, "tod_n": 12 * time.Microsecond,
				"decs": []any{rat("1"), nil}, "tags_n": []any{"a", nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := c.AppendKey(nil, tt.row)
			if err != nil {
				t.Fatal(err)
			}
			var gotKey any
			if err := avro.Unmarshal(c.Key, key, &gotKey); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantKey, gotKey, decodedOpts); diff != "" {
				t.Errorf("decoded key (-want +got):\n%s", diff)
			}

			value, err := c.AppendValue(nil, tt.row)
			if err != nil {
				t.Fatal(err)
			}
			var gotValue any
			if err := avro.Unmarshal(c.Value, value, &gotValue); err != nil {
				t.Fatal(err)
			}
			m := gotValue.(map[string]any)
			for k, v := range m {
				m[k] = unwrapUnion(v)
			}
			m["lts"], m["lts_n"] = wallClock(m["lts"]), wallClock(m["lts_n"])
			if diff := cmp.Diff(tt.wantValue, m, decodedOpts); diff != "" {
				t.Errorf("decoded value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoundTripGeometry(t *testing.T) {
	c, err := NewCodec("ns", geometryTable())
	if err != nil {
		t.Fatal(err)
	}
	point := []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}
	row := []any{
		int32(7),
		connectors.Geometry{WKB: point, SRID: 4326},
		connectors.Geometry{WKB: []byte{1, 3, 0, 0, 0, 0, 0, 0, 0}},
		connectors.Geometry{WKB: []byte{1, 2, 0, 0, 0, 0, 0, 0, 0}, SRID: -1},
	}
	key, err := c.AppendKey(nil, row)
	if err != nil {
		t.Fatal(err)
	}
	var gotKey any
	if err := avro.Unmarshal(c.Key, key, &gotKey); err != nil {
		t.Fatal(err)
	}
	wantKey := map[string]any{"id": 7, "at": map[string]any{"wkb": point, "srid": 4326}}
	if diff := cmp.Diff(wantKey, deepUnwrap(gotKey), decodedOpts); diff != "" {
		t.Errorf("decoded key (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name string
		path any
		want any
	}{
		{"a negative SRID is kept", row[3], map[string]any{"wkb": []byte{1, 2, 0, 0, 0, 0, 0, 0, 0}, "srid": -1}},
		{"a NULL geometry is null", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := append([]any(nil), row...)
			r[3] = tt.path
			value, err := c.AppendValue(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := avro.Unmarshal(c.Value, value, &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"id":   7,
				"at":   map[string]any{"wkb": point, "srid": 4326},
				"area": map[string]any{"wkb": []byte{1, 3, 0, 0, 0, 0, 0, 0, 0}, "srid": nil},
				"path": tt.want,
			}
			if diff := cmp.Diff(want, deepUnwrap(got), decodedOpts); diff != "" {
				t.Errorf("decoded value (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := c.AppendValue(nil, []any{int32(1), connectors.Geometry{}, row[2], nil}); err == nil || !strings.Contains(err.Error(), "geometry value has no WKB") {
		t.Errorf("a geometry without WKB: error %v, want one that says so", err)
	}
	if _, err := c.AppendValue(nil, []any{int32(1), point, row[2], nil}); err == nil || !strings.Contains(err.Error(), "want connectors.Geometry") {
		t.Errorf("bytes for a geometry: error %v, want one that names connectors.Geometry", err)
	}
}

// deepUnwrap is unwrapUnion applied to every field of nested records.
func deepUnwrap(v any) any {
	v = unwrapUnion(v)
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m))
		for k, f := range m {
			out[k] = deepUnwrap(f)
		}
		return out
	}
	return v
}

func TestAppendErrors(t *testing.T) {
	tbl := &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: typ(connectors.KindInt64)},
		{Name: "n", Type: typ(connectors.KindInt32), Nullable: true},
		{Name: "price", Type: decimal(5, 2)},
		{Name: "u", Type: typ(connectors.KindUUID), Nullable: true},
		{Name: "xs", Type: array(typ(connectors.KindInt32)), Nullable: true},
	}}
	c, err := NewCodec("ns", tbl)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		row    []any
		key    bool
		column string // of the *ValueError, "" when there is none
		want   string
	}{
		{"a NULL in a column that is not nullable names the column", []any{int64(1), nil, nil, nil, nil}, false, "price",
			`encode column "price" of table public.t: value is NULL but the column is not nullable`},
		{"a NULL key names the key column", []any{nil, nil, "1", nil, nil}, true, "id",
			`encode column "id" of table public.t: value is NULL but the column is not nullable`},
		{"a value of the wrong Go type names the kind and the type", []any{int64(1), 5, "1", nil, nil}, false, "n",
			`encode column "n" of table public.t: int32 value has Go type int, want int32`},
		{"a key of the wrong Go type names the kind and the type", []any{int32(1), nil, "1", nil, nil}, true, "id",
			`encode column "id" of table public.t: int64 value has Go type int32, want int64`},
		{"a decimal given as a float is the wrong type", []any{int64(1), nil, 1.5, nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value has Go type float64, want string`},
		{"a decimal with too many fraction digits is not rounded", []any{int64(1), nil, "1.005", nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value "1.005" has 3 fraction digits, more than the scale 2 (values are never rounded)`},
		{"a decimal with too many integer digits is an error", []any{int64(1), nil, "1000", nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value "1000" has 4 integer digits, more than precision 5 minus scale 2 allows`},
		{"a decimal NaN is an error", []any{int64(1), nil, "NaN", nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value "NaN" is not a number that an Avro decimal can hold (NaN and the infinities have no decimal form)`},
		{"a decimal -Infinity is an error", []any{int64(1), nil, "-Infinity", nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value "-Infinity" is not a number that an Avro decimal can hold (NaN and the infinities have no decimal form)`},
		{"a decimal with an exponent is an error", []any{int64(1), nil, "1e2", nil, nil}, false, "price",
			`encode column "price" of table public.t: decimal value "1e2" is not plain decimal text (want an optional sign, digits and an optional fraction, as in -12.30)`},
		{"a uuid that is not canonical is an error", []any{int64(1), nil, "1", "123e4567e89b12d3a456426614174000", nil}, false, "u",
			`encode column "u" of table public.t: uuid value "123e4567e89b12d3a456426614174000" is not in the canonical 8-4-4-4-12 form`},
		{"an array element of the wrong Go type names the element", []any{int64(1), nil, "1", nil, []any{int32(1), "2"}}, false, "xs",
			`encode column "xs" of table public.t: array element 1: int32 value has Go type string, want int32`},
		{"an array of the wrong Go type is an error", []any{int64(1), nil, "1", nil, []int32{1}}, false, "xs",
			`encode column "xs" of table public.t: array value has Go type []int32, want []any`},
		{"a value out of its Avro type's range names the column and says why", []any{int64(1), connectors.BadValue{Text: "3000000000", Reason: "more than an int holds"}, "1", nil, nil}, false, "n",
			`encode column "n" of table public.t: int32 value "3000000000" is more than an int holds`},
		{"a key out of its Avro type's range names the key column", []any{connectors.BadValue{Text: "18446744073709551615", Reason: "more than a long holds"}, nil, "1", nil, nil}, true, "id",
			`encode column "id" of table public.t: int64 value "18446744073709551615" is more than a long holds`},
		{"an array element out of its Avro type's range names the element", []any{int64(1), nil, "1", nil, []any{int32(1), connectors.BadValue{Text: "3000000000", Reason: "more than an int holds"}}}, false, "xs",
			`encode column "xs" of table public.t: array element 1: int32 value "3000000000" is more than an int holds`},
		{"a row of the wrong width is an error", []any{int64(1)}, false, "",
			`encode row of table public.t: row has 1 values, table has 5 columns`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			var got []byte
			var err error
			if tt.key {
				got, err = c.AppendKey(dst, tt.row)
			} else {
				got, err = c.AppendValue(dst, tt.row)
			}
			if err == nil {
				t.Fatal("succeeded, want an error")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			var ve *ValueError
			if errors.As(err, &ve) != (tt.column != "") || ve != nil && ve.Column != tt.column {
				t.Errorf("error %#v is not a *ValueError for column %q", err, tt.column)
			}
			if diff := cmp.Diff([]byte("keep"), got); diff != "" {
				t.Errorf("dst after an error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		name string
		id   int
		want []byte
	}{
		{"id 1 is the magic byte and four bytes", 1, []byte{0, 0, 0, 0, 1}},
		{"a large id is big-endian", 0x01020304, []byte{0, 1, 2, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(append([]byte("x"), tt.want...), AppendHeader([]byte("x"), tt.id)); diff != "" {
				t.Errorf("AppendHeader (-want +got):\n%s", diff)
			}
		})
	}
}

// benchTable and benchRow are a typical 7-column row.
func benchTable() *connectors.Table {
	return &connectors.Table{Schema: "public", Name: "orders", Key: []int{0}, Columns: []connectors.Column{
		{Name: "id", Type: typ(connectors.KindInt64), SQLType: "bigint"},
		{Name: "customer", Type: typ(connectors.KindString), SQLType: "text"},
		{Name: "total", Type: decimal(12, 2), SQLType: "numeric(12,2)"},
		{Name: "created_at", Type: typ(connectors.KindTimestamp), SQLType: "timestamptz"},
		{Name: "paid", Type: typ(connectors.KindBool), SQLType: "boolean"},
		{Name: "note", Type: typ(connectors.KindString), Nullable: true, SQLType: "text"},
		{Name: "weight", Type: typ(connectors.KindFloat64), Nullable: true, SQLType: "double precision"},
	}}
}

func benchRow() []any {
	return []any{int64(123456789), "ACME Corporation Ltd", "1234.50", int64(1700000000123456), true, nil, 12.5}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	c, err := NewCodec("ns", benchTable())
	if err != nil {
		t.Fatal(err)
	}
	row := benchRow()
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = c.AppendKey(dst[:0], row); err != nil {
			t.Fatal(err)
		}
		if dst, err = c.AppendValue(dst[:0], row); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("AppendKey and AppendValue allocate %v times per row, want 0", allocs)
	}
}

func BenchmarkAppendValue(b *testing.B) {
	c, err := NewCodec("ns", benchTable())
	if err != nil {
		b.Fatal(err)
	}
	row := benchRow()
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if dst, err = c.AppendValue(dst[:0], row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKeyAndValue(b *testing.B) {
	c, err := NewCodec("ns", benchTable())
	if err != nil {
		b.Fatal(err)
	}
	row := benchRow()
	key := make([]byte, 0, 64)
	value := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if key, err = c.AppendKey(AppendHeader(key[:0], 1), row); err != nil {
			b.Fatal(err)
		}
		if value, err = c.AppendValue(AppendHeader(value[:0], 2), row); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHambaMarshalValue encodes the same row with hamba's generic
// encoder, for comparison.
func BenchmarkHambaMarshalValue(b *testing.B) {
	c, err := NewCodec("ns", benchTable())
	if err != nil {
		b.Fatal(err)
	}
	row := map[string]any{
		"id": int64(123456789), "customer": "ACME Corporation Ltd", "total": rat("1234.50"),
		"created_at": utcMicros(1700000000123456), "paid": true, "note": nil, "weight": 12.5,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := avro.Marshal(c.Value, row); err != nil {
			b.Fatal(err)
		}
	}
}
