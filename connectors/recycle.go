package connectors

import "sync"

// ChangeSlices is what a Recycler keeps of the Changes slices it lends:
// which of them are out, and those handed back. Lend and Take are called
// from the goroutine that builds batches, GiveBack from any.
type ChangeSlices struct {
	mu sync.Mutex
	// out are the first elements of the slices lent and not yet back;
	// the oldest is forgotten when more are out, and not taken back.
	out  [lentSlices]*Change
	next int
	// free are slices handed back: empty, every element zero.
	free [][]Change
}

// lentSlices is how many lent slices ChangeSlices remembers: more than a
// source queues for Read, and the batch its caller is producing.
const lentSlices = 8

// freeSlices is how many handed-back slices ChangeSlices keeps.
const freeSlices = 4

// Lend records that c leaves with a batch. A nil or empty-capacity c is
// not recorded.
func (l *ChangeSlices) Lend(c []Change) {
	if cap(c) == 0 {
		return
	}
	l.mu.Lock()
	l.out[l.next] = &c[:1][0]
	l.next = (l.next + 1) % lentSlices
	l.mu.Unlock()
}

// Take returns an empty slice with room for n changes: one handed back,
// or a new one.
func (l *ChangeSlices) Take(n int) []Change {
	l.mu.Lock()
	for i := len(l.free) - 1; i >= 0; i-- {
		if c := l.free[i]; cap(c) >= n {
			l.free = append(l.free[:i], l.free[i+1:]...)
			l.mu.Unlock()
			return c
		}
	}
	l.mu.Unlock()
	return make([]Change, 0, n)
}

// GiveBack takes back c, a slice Lend recorded, once nothing refers to its
// changes. It clears them, so that a kept slice holds no row alive. A
// slice it did not lend, or has forgotten, is left alone.
func (l *ChangeSlices) GiveBack(c []Change) {
	if cap(c) == 0 {
		return
	}
	first := &c[:1][0]
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, p := range l.out {
		if p != first {
			continue
		}
		l.out[i] = nil
		if len(l.free) < freeSlices {
			clear(c[:cap(c)])
			l.free = append(l.free, c[:0])
		}
		return
	}
}
