package mysql

import (
	"unsafe"
)

// textArena holds the bytes of many decoded strings in a few large
// allocations instead of one each: a row's text values cost one
// allocation per arenaBlock bytes rather than one per value. A string
// made from the arena is never written again; a block lives while any of
// its strings does, which for the rows of a batch is about as long as the
// batch. An arena belongs to one goroutine.
type textArena struct {
	buf []byte
}

// arenaBlock is the size of an arena's allocations. Values larger than a
// quarter of it get their own.
const arenaBlock = 32 << 10

// string returns b as a string.
func (a *textArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if a == nil || len(b) > arenaBlock/4 {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaBlock)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// decodeIn decodes b like d.decode, keeping the text in a when it needs
// no conversion: valid UTF-8 in a UTF-8 character set, ASCII in latin1 or
// ascii.
func (d *textDecoder) decodeIn(a *textArena, b []byte) string {
	if d.verbatim != nil && d.verbatim(b) {
		return a.string(b)
	}
	return d.decode(b)
}

// isASCII reports whether b is 7-bit ASCII.
func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// rowSlab hands out rows of values cut from a few large slices instead of
// one allocation each. A row's capacity is its length, so an append to it
// never reaches the next row. A slab's slice lives while any of its rows
// does, and keeps the values of all its rows alive with it: used bounds
// the bytes those values hold. A slab belongs to one goroutine.
type rowSlab struct {
	buf   []any
	bytes int
}

const (
	// slabValues is the number of values of a slab's allocations.
	slabValues = 1024
	// slabBytes bounds the bytes of the values of one slab's rows.
	slabBytes = 64 << 10
)

// used counts n bytes of values in the last row: past slabBytes, the next
// row starts a new slice.
func (s *rowSlab) used(n int) {
	if s == nil {
		return
	}
	s.bytes += n
	if s.bytes >= slabBytes {
		s.buf, s.bytes = nil, 0
	}
}

// row returns a row of n nil values.
func (s *rowSlab) row(n int) []any {
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
