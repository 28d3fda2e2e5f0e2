package mysql

import (
	"encoding/binary"
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
	// kept says that the bytes string is given are never written again
	// (row packets read into blocks of their own, packetBlocks): a string
	// is then made of those bytes, without a copy.
	kept bool
}

// arenaBlock is the size of an arena's allocations. Values larger than a
// quarter of it get their own.
const arenaBlock = 32 << 10

// string returns b as a string.
func (a *textArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if a == nil {
		return string(b)
	}
	if a.kept {
		return unsafe.String(&b[0], len(b))
	}
	if len(b) > arenaBlock/4 {
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

// isASCII reports whether b is 7-bit ASCII, eight bytes at a time.
func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
