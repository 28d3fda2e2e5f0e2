package connectors

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRowSlabRowsDoNotOverlap(t *testing.T) {
	var s RowSlab
	var rows [][]any
	for i := range 3000 {
		r := s.Row(7)
		for j := range r {
			if r[j] != nil {
				t.Fatalf("row %d starts with a value", i)
			}
			r[j] = i
		}
		rows = append(rows, r)
	}
	// An append to a row must not reach the next one.
	rows[0] = append(rows[0], "more")
	for i, r := range rows {
		for j := range 7 {
			if r[j] != i {
				t.Fatalf("row %d value %d is %v", i, j, r[j])
			}
		}
	}
	if n := len(s.Row(slabValues)); n != slabValues {
		t.Errorf("a wide row has %d values", n)
	}
}

func TestRowSlabStartsAfreshPastItsBytes(t *testing.T) {
	var s RowSlab
	s.Row(2)
	s.Used(100)
	next := &s.buf[0]
	if b := s.Row(2); &b[0] != next {
		t.Fatal("a row below the slab's bytes does not follow the last")
	}
	next = &s.buf[0]
	s.Used(slabBytes)
	// Rows of large values share no slice: one does not keep the other's
	// values alive.
	if b := s.Row(2); &b[0] == next {
		t.Error("the row after a slab's bytes are used up shares its slice")
	}
}

func TestRowSlabTextDoesNotOverlap(t *testing.T) {
	var s RowSlab
	var bufs [][]byte
	for i := range 2000 {
		b := s.Text(37)
		if len(b) != 0 || cap(b) != 37 {
			t.Fatalf("text %d has length %d, capacity %d", i, len(b), cap(b))
		}
		for range 37 {
			b = append(b, byte(i))
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for _, c := range b {
			if c != byte(i) {
				t.Fatalf("text %d was overwritten", i)
			}
		}
	}
	if b := s.Text(textBlock); cap(b) != textBlock {
		t.Errorf("a large text has capacity %d", cap(b))
	}
}

func TestRowSlabValuesKeepTheirTypesAndValues(t *testing.T) {
	var s RowSlab
	var nilSlab *RowSlab
	for _, slab := range []*RowSlab{&s, nilSlab} {
		var vals, want []any
		for i := range 3 * slabScalars {
			vals = append(vals, slab.Int64(int64(i)*1_000_003-7), slab.Int32(int32(i)*-70_001), slab.String(strconv.Itoa(i)+"x"))
			want = append(want, int64(i)*1_000_003-7, int32(i)*-70_001, strconv.Itoa(i)+"x")
		}
		vals = append(vals, slab.Int64(5), slab.Int32(-1), slab.String(""), slab.String(strings.Repeat("y", textBlock)))
		want = append(want, int64(5), int32(-1), "", strings.Repeat("y", textBlock))
		if diff := cmp.Diff(want, vals); diff != "" {
			t.Errorf("values (-want +got):\n%s", diff)
		}
		for i, v := range vals {
			if v != want[i] {
				t.Fatalf("value %d is %#v, not %#v", i, v, want[i])
			}
		}
	}
}

func TestRowSlabValuesDoNotAllocateOneByOne(t *testing.T) {
	var s RowSlab
	str := "a string of a row"
	allocs := testing.AllocsPerRun(100, func() {
		for i := range slabScalars {
			_ = s.Int64(int64(i) << 20)
			_ = s.Int32(int32(i) << 12)
			_ = s.String(str)
			_ = s.Text(20)
		}
	})
	// One slice of each kind a run, and a text block for every 1,638
	// texts of 20 bytes.
	if allocs > 4 {
		t.Errorf("%v allocations for %d values of each kind", allocs, slabScalars)
	}
}

func TestRowSlabStartsAfreshStringsPastItsBytes(t *testing.T) {
	var s RowSlab
	s.String("v")
	s.Used(slabBytes)
	if s.strs != nil {
		t.Error("strings go on in the same slice past the slab's bytes: one value would keep all of them alive")
	}
}
