package connectors

import "testing"

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
