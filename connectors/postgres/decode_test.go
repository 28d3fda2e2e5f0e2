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
		{"PostgreSQL's last date", connectors.Type{Kind: connectors.KindDate}, "5874897-12-31", int32(2145042905)},
		{"PostgreSQL's first date", connectors.Type{Kind: connectors.KindDate}, "4714-11-24 BC", int32(-2440588)},
		{"PostgreSQL's first timestamp", connectors.Type{Kind: connectors.KindLocalTimestamp}, "4714-11-24 00:00:00 BC", int64(-2440588 * 86_400_000_000)},
		{"the last timestamp that timestamp-micros holds", connectors.Type{Kind: connectors.KindLocalTimestamp}, "294247-01-10 04:00:54.775806", int64(math.MaxInt64 - 1)},
		{"the last timestamptz that timestamp-micros holds", connectors.Type{Kind: connectors.KindTimestamp}, "294247-01-10 04:00:54.775806+00", int64(math.MaxInt64 - 1)},
		{"the last timestamptz, written an hour east", connectors.Type{Kind: connectors.KindTimestamp}, "294247-01-10 05:00:54.775806+01", int64(math.MaxInt64 - 1)},
		{"the first timestamp that timestamp-micros holds", connectors.Type{Kind: connectors.KindLocalTimestamp}, "290309-12-21 19:59:05.224193 BC", int64(math.MinInt64 + 1)},
		{"the first timestamptz, written an hour west", connectors.Type{Kind: connectors.KindTimestamp}, "290309-12-21 18:59:05.224193-01 BC", int64(math.MinInt64 + 1)},
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
	tests := []struct {
		name string
		typ  connectors.Type
		in   string
		want error
	}{
		{"an integer out of range", connectors.Type{Kind: connectors.KindInt32}, "2147483648", errBadText},
		{"a year of ten digits", connectors.Type{Kind: connectors.KindDate}, "1000000000-01-01", errBadText},
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

// TestDecodersOutOfRange checks that a value which its Avro type cannot
// hold becomes a connectors.BadValue, for the encoder to refuse as a bad
// row, rather than a wrapped number or an error that stops the stream.
func TestDecodersOutOfRange(t *testing.T) {
	text := connectors.Type{Kind: connectors.KindString}
	ts := connectors.Type{Kind: connectors.KindLocalTimestamp}
	bad := func(text, reason string) connectors.BadValue { return connectors.BadValue{Text: text, Reason: reason} }
	tests := []struct {
		name string
		typ  connectors.Type
		in   string
		want any
	}{
		{"PostgreSQL's last timestamp", ts, "294276-12-31 23:59:59.999999", bad("294276-12-31 23:59:59.999999", localTimestampRange)},
		{"PostgreSQL's last timestamptz", connectors.Type{Kind: connectors.KindTimestamp}, "294276-12-31 23:59:59.999999+00", bad("294276-12-31 23:59:59.999999+00", timestampRange)},
		{"the microsecond that stands for infinity", ts, "294247-01-10 04:00:54.775807", bad("294247-01-10 04:00:54.775807", localTimestampRange)},
		{"a timestamptz that its offset takes past the last", connectors.Type{Kind: connectors.KindTimestamp}, "294247-01-10 04:00:54.775806-01", bad("294247-01-10 04:00:54.775806-01", timestampRange)},
		{"the microsecond that stands for -infinity", ts, "290309-12-21 19:59:05.224192 BC", bad("290309-12-21 19:59:05.224192 BC", localTimestampRange)},
		{"a timestamp far past int64", ts, "999999999-01-01 00:00:00", bad("999999999-01-01 00:00:00", localTimestampRange)},
		{"the day that stands for infinity", connectors.Type{Kind: connectors.KindDate}, "5881580-07-11", bad("5881580-07-11", dateRange)},
		{"a date far past int32", connectors.Type{Kind: connectors.KindDate}, "999999999-01-01", bad("999999999-01-01", dateRange)},
		{"an array element", connectors.Type{Kind: connectors.KindArray, Elem: &ts}, `{"2024-01-01 00:00:00","294276-12-31 23:59:59.999999"}`,
			[]any{int64(1704067200000000), bad("294276-12-31 23:59:59.999999", localTimestampRange)}},
		{"a multi-dimensional array", connectors.Type{Kind: connectors.KindArray, Elem: &text}, "{{a},{b}}",
			bad("{{a},{b}}", "a multi-dimensional array, which an Avro array of the element type cannot hold")},
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
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("decode %q (-want +got):\n%s", tt.in, d)
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
