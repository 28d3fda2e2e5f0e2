package postgres

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pglogrepl"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
)

// testRelation is a relation of columns c0, c1, ... of the given types,
// keyed by the first, with the decoders buildRelation would give them.
func testRelation(t *testing.T, types ...connectors.Type) *relation {
	t.Helper()
	tab := &connectors.Table{Schema: "public", Name: "t", Key: []int{0}}
	rel := &relation{table: tab}
	for i, typ := range types {
		dec, err := decoderFor(typ)
		require.NoError(t, err)
		tab.Columns = append(tab.Columns, connectors.Column{Name: fmt.Sprintf("c%d", i), Type: typ, Nullable: i > 0})
		rel.decoders = append(rel.decoders, dec)
		rel.skipped = append(rel.skipped, false)
	}
	rel.text = textColumns(tab, rel.skipped)
	return rel
}

// tupleCol is one column of a TupleData: its kind ('n', 'u', 't') and text.
type tupleCol struct {
	kind byte
	text string
}

func appendTuple(dst []byte, cols ...tupleCol) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cols)))
	for _, c := range cols {
		dst = append(dst, c.kind)
		if c.kind == 't' {
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.text)))
			dst = append(dst, c.text...)
		}
	}
	return dst
}

func txt(s string) tupleCol { return tupleCol{'t', s} }

var (
	null  = tupleCol{kind: 'n'}
	toast = tupleCol{kind: 'u'}
)

func TestRawTuplesDecodeAsPglogreplTuplesDo(t *testing.T) {
	i32 := connectors.Type{Kind: connectors.KindInt32}
	rel := testRelation(t,
		connectors.Type{Kind: connectors.KindInt64},
		i32,
		connectors.Type{Kind: connectors.KindString},
		connectors.Type{Kind: connectors.KindDecimal, Precision: 12, Scale: 2},
		connectors.Type{Kind: connectors.KindTimestamp},
		connectors.Type{Kind: connectors.KindBool},
		connectors.Type{Kind: connectors.KindJSON},
		connectors.Type{Kind: connectors.KindBytes},
		connectors.Type{Kind: connectors.KindArray, Elem: &i32},
		connectors.Type{Kind: connectors.KindUUID},
	)
	old := []any{int64(7), int32(1), "old", "1.00", int64(0), true, `{"a":1}`, []byte{1}, []any{int32(1)}, "x"}
	tests := []struct {
		name    string
		cols    []tupleCol
		fromOld []any
	}{
		{"a row of every kind", []tupleCol{txt("7"), txt("-3"), txt("item 7 \"é\""), txt("-12.30"), txt("2024-02-29 13:14:15.123456+00"), txt("t"), txt(`{"b": [1, 2]}`), txt(`\x00ff`), txt("{1,NULL,3}"), txt("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")}, nil},
		{"a row of NULLs but its key", []tupleCol{txt("7"), null, null, null, null, null, null, null, null, null}, nil},
		{"empty strings", []tupleCol{txt("7"), null, txt(""), null, null, null, txt(""), txt(`\x`), txt("{}"), null}, nil},
		{"unchanged TOAST values without an old row", []tupleCol{txt("7"), txt("1"), toast, txt("1.5"), null, txt("f"), toast, null, null, null}, nil},
		{"unchanged TOAST values taken from the old row", []tupleCol{txt("7"), txt("1"), toast, txt("1.5"), null, txt("f"), toast, null, null, null}, old},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := appendTuple(nil, tt.cols...)
			var want pglogrepl.TupleData
			_, err := want.Decode(data)
			require.NoError(t, err)
			wantRow, wantUnchanged, wantErr := rel.decodeTuple(&want, tt.fromOld)

			var raw rawTuple
			rest, err := raw.parse(data)
			require.NoError(t, err)
			require.Empty(t, rest)
			row, unchanged, err := rel.decodeRaw(&raw, tt.fromOld, &connectors.RowSlab{})
			require.Equal(t, wantErr, err)
			require.Equal(t, wantUnchanged, unchanged)
			if diff := cmp.Diff(wantRow, row); diff != "" {
				t.Errorf("row differs from pglogrepl's (-want +got):\n%s", diff)
			}
			require.Equal(t, len(row), cap(row), "a row's capacity is its length")
		})
	}
}

func TestRawTuplesRefuseWhatPglogreplRefuses(t *testing.T) {
	rel := testRelation(t, connectors.Type{Kind: connectors.KindInt64}, connectors.Type{Kind: connectors.KindDecimal, Precision: 4, Scale: 2})
	tests := []struct {
		name string
		cols []tupleCol
	}{
		{"a bad integer", []tupleCol{txt("x"), null}},
		{"an empty decimal", []tupleCol{txt("1"), txt("")}},
		{"too few columns", []tupleCol{txt("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := appendTuple(nil, tt.cols...)
			var want pglogrepl.TupleData
			_, err := want.Decode(data)
			require.NoError(t, err)
			_, _, wantErr := rel.decodeTuple(&want, nil)
			require.Error(t, wantErr)

			var raw rawTuple
			_, err = raw.parse(data)
			require.NoError(t, err)
			_, _, err = rel.decodeRaw(&raw, nil, &connectors.RowSlab{})
			require.EqualError(t, err, wantErr.Error())
		})
	}
}

func TestATruncatedTupleIsAnErrorNotAPanic(t *testing.T) {
	data := appendTuple(nil, txt("12345"), null, toast, txt("abc"))
	for n := range len(data) {
		var raw rawTuple
		_, err := raw.parse(data[:n])
		require.ErrorIs(t, err, errShortTuple, "first %d bytes", n)
	}
}

// benchInsert is an Insert message of the benchmark's table (bench/postgres.go).
func benchInsert(b *testing.B) (*relation, []byte) {
	rel := testRelation(&testing.T{},
		connectors.Type{Kind: connectors.KindInt64},
		connectors.Type{Kind: connectors.KindInt32},
		connectors.Type{Kind: connectors.KindString},
		connectors.Type{Kind: connectors.KindDecimal, Precision: 12, Scale: 2},
		connectors.Type{Kind: connectors.KindString},
		connectors.Type{Kind: connectors.KindTimestamp},
		connectors.Type{Kind: connectors.KindBool},
	)
	msg := binary.BigEndian.AppendUint32([]byte{'I'}, 16384)
	msg = append(msg, 'N')
	msg = appendTuple(msg, txt("123456"), txt("3456"), txt("item 123456 e10adc3949ba59ab"), txt("1234.56"),
		txt("note note note note note note note note note note note note note note note note note note"),
		txt("2026-11-30 15:43:31.123456+00"), txt("t"))
	return rel, msg
}

func BenchmarkInsertDecode(b *testing.B) {
	rel, msg := benchInsert(b)
	b.Run("in place", func(b *testing.B) {
		var raw rawTuple
		var slab connectors.RowSlab
		b.ReportAllocs()
		for b.Loop() {
			if _, err := raw.parse(msg[6:]); err != nil {
				b.Fatal(err)
			}
			if _, _, err := rel.decodeRaw(&raw, nil, &slab); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("through pglogrepl", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m, err := pglogrepl.Parse(msg)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := rel.decodeTuple(m.(*pglogrepl.InsertMessage).Tuple, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestValuesFromASlabAreTheDecodersValues(t *testing.T) {
	rel := testRelation(t,
		connectors.Type{Kind: connectors.KindInt64},
		connectors.Type{Kind: connectors.KindInt32},
		connectors.Type{Kind: connectors.KindTimestamp},
		connectors.Type{Kind: connectors.KindLocalTimestamp},
		connectors.Type{Kind: connectors.KindDate},
		connectors.Type{Kind: connectors.KindString},
		connectors.Type{Kind: connectors.KindDecimal, Precision: 12, Scale: 2},
	)
	tests := []struct {
		name string
		vals []string
	}{
		{"plain values", []string{"9223372036854775807", "-2147483648", "2024-02-29 13:14:15.123456+05:30", "2024-02-29 13:14:15", "2024-02-29", "é", "-12.30"}},
		{"small values", []string{"0", "255", "1970-01-01 00:00:00+00", "1970-01-01 00:00:00.000001", "1970-01-02", "", "0"}},
		{"infinities", []string{"-9223372036854775808", "-1", "infinity", "-infinity", "infinity", "x", "NaN"}},
		{"dates before Christ", []string{"1", "2", "0044-03-15 12:00:00+00 BC", "0044-03-15 12:00:00 BC", "0044-03-15 BC", "x", "1"}},
		{"values outside the Avro types", []string{"1", "2", "294276-12-31 23:59:59.999999+00", "294276-12-31 23:59:59.999999", "5874897-12-31", "x", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals := make([][]byte, len(tt.vals))
			for i, v := range tt.vals {
				vals[i] = []byte(v)
			}
			want, err := rel.decodeValues(vals, nil)
			require.NoError(t, err)
			var slab connectors.RowSlab
			got, err := rel.decodeValues(vals, &slab)
			require.NoError(t, err)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("values from a slab differ (-want +got):\n%s", diff)
			}
		})
	}
	for _, bad := range [][]string{{"x", "1"}, {"1", "2147483648"}, {"1", "1", "2024-02-29T00:00:00+00"}, {"1", "1", "1", "1", "2024-02-30x"}} {
		vals := make([][]byte, 7)
		for i, v := range bad {
			vals[i] = []byte(v)
		}
		_, want := rel.decodeValues(vals, nil)
		require.Error(t, want, "%q", bad)
		_, err := rel.decodeValues(vals, &connectors.RowSlab{})
		require.EqualError(t, err, want.Error())
	}
}

func BenchmarkSnapshotRowDecode(b *testing.B) {
	rel, msg := benchInsert(b)
	var raw rawTuple
	if _, err := raw.parse(msg[6:]); err != nil {
		b.Fatal(err)
	}
	var slab connectors.RowSlab
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rel.decodeValues(raw.vals, &slab); err != nil {
			b.Fatal(err)
		}
	}
}
