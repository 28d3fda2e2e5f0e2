package connectors

import "unsafe"

// RowSlab hands out rows of values cut from a few large slices instead of
// one allocation per row, and the values themselves: the text of strings
// (Text), and boxed int64, int32 and string values (Int64, Int32, String)
// whose bytes come from slices of their own type rather than one
// allocation each. A row's capacity is its length: appending to it never
// reaches the next row. A slab's slices live while any of their rows or
// values does, and keep the values of all the slab's rows alive with them,
// so Used bounds the bytes those values hold: past slabBytes every slice
// that can hold or reach a value's bytes starts afresh, and rows of large
// values do not keep each other alive. A value larger than a quarter of a
// text block gets an allocation of its own. A RowSlab belongs to one
// goroutine; its zero value is ready, and a nil *RowSlab allocates every
// row and value on its own.
type RowSlab struct {
	buf   []any
	bytes int
	// text is the current text block; its length is what was handed out.
	text   []byte
	ints   []int64
	int32s []int32
	strs   []string
}

const (
	// slabValues is the number of values of a slab's allocations.
	slabValues = 1024
	// slabBytes bounds the bytes of the values of one slab's rows.
	slabBytes = 64 << 10
	// textBlock is the size of a slab's text allocations.
	textBlock = 32 << 10
	// slabScalars is the number of int64, int32 or string values of a
	// slab's allocations of them.
	slabScalars = 512
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
// row, text and string start new slices.
func (s *RowSlab) Used(n int) {
	if s == nil {
		return
	}
	s.bytes += n
	if s.bytes >= slabBytes {
		s.buf, s.bytes, s.text, s.strs = nil, 0, nil, nil
	}
}

// Text returns an empty buffer of capacity n for text that, once
// appended, is never written again: strings made from it (unsafe.String)
// share the slab's text block.
func (s *RowSlab) Text(n int) []byte {
	if s == nil || n > textBlock/4 {
		return make([]byte, 0, n)
	}
	if cap(s.text)-len(s.text) < n {
		s.text = make([]byte, 0, textBlock)
	}
	at := len(s.text)
	s.text = s.text[:at+n]
	return s.text[at : at : at+n]
}

// eface is the layout of an interface value without methods: the
// runtime's eface. A value that is not a pointer is held through a
// pointer to its bytes, which is what lets Int64, Int32 and String point
// into a slice instead of allocating.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	int64Type  = typeOf(int64(0))
	int32Type  = typeOf(int32(0))
	stringType = typeOf("")
)

// box makes an interface value of type typ whose bytes are at p; they
// must never be written again.
func box(typ, p unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, p
	return v
}

// Int64 returns v as a value (an int64).
func (s *RowSlab) Int64(v int64) any {
	if s == nil || uint64(v) < 256 {
		// The runtime boxes small values without allocating.
		return v
	}
	return slabBox(&s.ints, int64Type, v)
}

// Int32 returns v as a value (an int32).
func (s *RowSlab) Int32(v int32) any {
	if s == nil || uint32(v) < 256 {
		return v
	}
	return slabBox(&s.int32s, int32Type, v)
}

// String returns v as a value (a string).
func (s *RowSlab) String(v string) any {
	if s == nil || len(v) == 0 || len(v) > textBlock/4 {
		return v
	}
	return slabBox(&s.strs, stringType, v)
}

// slabBox stores v in the next element of *slab, a new slice of
// slabScalars when it is used up, and returns it boxed as typ, which must
// be T's type.
func slabBox[T int64 | int32 | string](slab *[]T, typ unsafe.Pointer, v T) any {
	if len(*slab) == 0 {
		*slab = make([]T, slabScalars)
	}
	p := &(*slab)[0]
	*p, *slab = v, (*slab)[1:]
	return box(typ, unsafe.Pointer(p))
}
