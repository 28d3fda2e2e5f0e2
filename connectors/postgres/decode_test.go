package postgres

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestDecoders(t *testing.T) {
	text := connectors.Type{Kind: connectors.KindString}
	i32 := connectors.Type{Kind: connectors.KindInt32}
	tests := []struct {
		name string
		typ  connectors.Type
		in   string
		want any
	}{
		{"a boolean true", connectors.Type{Kind: connectors.KindBool}, "t", true},
		{"the smallest integer", i32, "-2147483648", int32(math.MinInt32)},
		{"the largest bigint", connectors.Type{Kind: connectors.KindInt64}, "9223372036854775807", int64(math.MaxInt64)},
		{"a real NaN", connectors.Type{Kind: connectors.KindFloat32}, "NaN", float32(math.NaN())},
		{"a double infinity", connectors.Type{Kind: connectors.KindFloat64}, "-Infinity", math.Inf(-1)},
		{"a negative zero", connectors.Type{Kind: connectors.KindFloat64}, "-0", math.Copysign(0, -1)},
		{"a decimal keeps its text", connectors.Type{Kind: connectors.KindDecimal, Precision: 12, Scale: 2}, "-12.30", "-12.30"},
		{"a NaN decimal is passed on for the encoder to refuse", connectors.Type{Kind: connectors.KindDecimal, Precision: 10, Scale: 2}, "NaN", "NaN"},
		{"bytea in hex", connectors.Type{Kind: connectors.KindBytes}, `\x00ff10`, []byte{0, 0xff, 0x10}},
		{"the epoch", connectors.Type{Kind: connectors.KindDate}, "1970-01-01", int32(0)},
		{"a date before 1970", connectors.Type{Kind: connectors.KindDate}, "1969-12-31", int32(-1)},
		{"a date after 2038", connectors.Type{Kind: connectors.KindDate}, "2100-03-01", int32(47541)},
		{"a date before Christ", connectors.Type{Kind: connectors.KindDate}, "0001-01-01 BC", int32(-719528)},
		{"a year of five digits", connectors.Type{Kind: connectors.KindDate}, "10000-01-01", int32(2932897)},
		{"an infinite date", connectors.Type{Kind: connectors.KindDate}, "infinity", int32(math.MaxInt32)},
		{"a timestamp with microseconds", connectors.Type{Kind: connectors.KindLocalTimestamp}, "2024-02-29 13:14:15.123456", int64(1709212455123456)},
		{"a timestamp with a short fraction", connectors.Type{Kind: connectors.KindLocalTimestamp}, "1970-01-01 00:00:00.5", int64(500000)},
		{"a timestamptz in UTC", connectors.Type{Kind: connectors.KindTimestamp}, "2024-02-29 13:14:15.123456+00", int64(1709212455123456)},
		{"a timestamptz with an offset in minutes", connectors.Type{Kind: connectors.KindTimestamp}, "2024-02-29 18:44:15+05:30", int64(1709212455000000)},
		{"a timestamptz before 1970", connectors.Type{Kind: connectors.KindTimestamp}, "1969-12-31 23:59:59.999999+00", int64(-1)},
		{"an infinite timestamptz", connectors.Type{Kind: connectors.KindTimestamp}, "-infinity", int64(math.MinInt64)},
		{"a time at the end of the day", connectors.Type{Kind: connectors.KindTime}, "24:00:00", int64(86_400_000_000)},
		{"a time with microseconds", connectors.Type{Kind: connectors.KindTime}, "00:00:01.000001", int64(1_000_001)},
		{"an empty array", connectors.Type{Kind: connectors.KindArray, Elem: &text}, "{}", []any{}},
		{"an array with NULL and quoting", connectors.Type{Kind: connectors.KindArray, Elem: &text}, `{a,NULL,"b,c","d \"e\" \\f","NULL"}`, []any{"a", nil, "b,c", `d "e" \f`, "NULL"}},
		{"an array of integers", connectors.Type{Kind: connectors.KindArray, Elem: &i32}, "{1,-2,3}", []any{int32(1), int32(-2), int32(3)}},
		{"an array with explicit bounds", connectors.Type{Kind: connectors.KindArray, Elem: &i32}, "[0:1]={7,8}", []any{int32(7), int32(8)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := decoderFor(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec([]byte(tt.in))
			if err != nil {
				t.Fatalf("decode %q: %v", tt.in, err)
			}
			if d := cmp.Diff(tt.want, got, cmpopts.EquateNaNs()); d != "" {
				t.Errorf("decode %q (-want +got):\n%s", tt.in, d)
			}
			if f, ok := got.(float64); ok && f == 0 && math.Signbit(f) != math.Signbit(tt.want.(float64)) {
				t.Errorf("decode %q: sign of zero lost", tt.in)
			}
		})
	}
}

func TestDecodersRefuse(t *testing.T) {
	text := connectors.Type{Kind: connectors.KindString}
	tests := []struct {
		name string
		typ  connectors.Type
		in   string
		want error
	}{
		{"an integer out of range", connectors.Type{Kind: connectors.KindInt32}, "2147483648", errBadText},
		{"a multi-dimensional array", connectors.Type{Kind: connectors.KindArray, Elem: &text}, "{{a},{b}}", connectors.ErrUnsupportedType},
		{"a timestamp with a zone where none is expected", connectors.Type{Kind: connectors.KindLocalTimestamp}, "2024-01-01 00:00:00+00", errBadText},
		{"a date that is not ISO", connectors.Type{Kind: connectors.KindDate}, "01/02/2024", errBadText},
		{"bytea in escape form", connectors.Type{Kind: connectors.KindBytes}, `abc\000`, errBadText},
		{"seven fraction digits", connectors.Type{Kind: connectors.KindTime}, "00:00:00.1234567", errBadText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, err := decoderFor(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dec([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("decode %q: got error %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func FuzzDecodeTimestamptz(f *testing.F) {
	for _, s := range []string{"2024-02-29 13:14:15.123456+00", "0001-01-01 00:00:00+05:30:12 BC", "infinity", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = decodeTimestamptz([]byte(s))
		_, _ = decodeDate([]byte(s))
		_, _ = decodeTime([]byte(s))
	})
}

func FuzzDecodeArray(f *testing.F) {
	for _, s := range []string{`{a,NULL,"b,c"}`, "{}", `{"\\"}`, "[1:2]={1,2}"} {
		f.Add(s)
	}
	text, _ := decoderFor(connectors.Type{Kind: connectors.KindString})
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = decodeArray([]byte(s), text)
	})
}
