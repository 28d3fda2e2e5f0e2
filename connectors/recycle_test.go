package connectors

import "testing"

func TestChangeSlicesTakeBackOnlyWhatTheyLent(t *testing.T) {
	var l ChangeSlices
	c := l.Take(4)
	c = append(c, Change{Op: OpCreate, After: []any{int64(1)}}, Change{Op: OpDelete})
	l.Lend(c)

	stranger := append(make([]Change, 0, 4), Change{Op: OpCreate})
	l.GiveBack(stranger)
	if stranger[0].Op != OpCreate {
		t.Fatal("a slice that was not lent was cleared")
	}
	if got := l.Take(4); &got[:1][0] == &stranger[:1][0] {
		t.Fatal("a slice that was not lent was handed out")
	}

	l.GiveBack(c)
	got := l.Take(3)
	if &got[:1][0] != &c[:1][0] {
		t.Fatal("the slice handed back was not taken again")
	}
	if len(got) != 0 {
		t.Errorf("len = %d, want 0", len(got))
	}
	for i, ch := range got[:cap(got)] {
		if ch.Op != 0 || ch.After != nil {
			t.Errorf("change %d still holds %+v", i, ch)
		}
	}
	// Handed back twice: the second time it is no longer out.
	l.GiveBack(c)
	if n := len(l.free); n != 0 {
		t.Errorf("%d slices free after a second hand-back of one taken again", n)
	}
}

func TestChangeSlicesForgetTheOldestLent(t *testing.T) {
	var l ChangeSlices
	first := make([]Change, 1)
	l.Lend(first)
	for range lentSlices {
		l.Lend(make([]Change, 1))
	}
	l.GiveBack(first)
	if n := len(l.free); n != 0 {
		t.Errorf("a forgotten slice was taken back (%d free)", n)
	}
}
