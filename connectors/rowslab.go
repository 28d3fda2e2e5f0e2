package connectors

// RowSlab hands out rows of values cut from a few large slices instead of
// one allocation per row. A row's capacity is its length: appending to it
// never reaches the next row. A slab's slice lives while any of its rows
// does, and keeps the values of all its rows alive with it, so Used
// bounds the bytes those values hold: rows of large values do not keep
// each other alive. A RowSlab belongs to one goroutine; its zero value is
// ready, and a nil *RowSlab allocates every row on its own.
type RowSlab struct {
	buf   []any
	bytes int
}

const (
	// slabValues is the number of values of a slab's allocations.
	slabValues = 1024
	// slabBytes bounds the bytes of the values of one slab's rows.
	slabBytes = 64 << 10
)

// Row returns a row of n nil values.
func (s *RowSlab) Row(n int) []any {
	if s == nil || n > slabValues/4 {
		return make([]any, n)
	}
	if len(s.buf) < n {
		s.buf, s.bytes = make([]any, slabValues), 0
	}
	r := s.buf[:n:n]
	s.buf = s.buf[n:]
	return r
}

// Used counts n bytes of values in the last row: past slabBytes, the next
// row starts a new slice.
func (s *RowSlab) Used(n int) {
	if s == nil {
		return
	}
	s.bytes += n
	if s.bytes >= slabBytes {
		s.buf, s.bytes = nil, 0
	}
}
