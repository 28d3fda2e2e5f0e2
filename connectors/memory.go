package connectors

// Memory is how many bytes of decoded changes a source may hold at once:
// the batch it is filling, the batches waiting for Read, the batch the
// pipeline is working on, and what it reads ahead of its batches (snapshot
// rows on their way from the chunk readers, binary log events not yet
// turned into changes). Sizes are estimates (Change.Size). The zero value
// means DefaultMemory.
//
// A source cuts a batch at its change limit or at BatchBytes, whichever
// comes first, and a batch always holds at least one change, so a single
// change larger than the budget still goes through, alone.
type Memory int64

// DefaultMemory is a source's Memory when none is given.
const DefaultMemory Memory = 64 << 20

// minBatchBytes keeps a tiny budget from cutting every batch of small rows
// into batches of a few changes.
const minBatchBytes = 64 << 10

func (m Memory) orDefault() int64 {
	if m <= 0 {
		return int64(DefaultMemory)
	}
	return int64(m)
}

// BatchBytes is the most bytes of changes one batch may hold, for a source
// that queues up to queued batches between its reader and Read. Half of m
// is shared by those batches, the one being filled and the one the
// pipeline works on; the other half is ReadAheadBytes.
func (m Memory) BatchBytes(queued int) int64 {
	return max(m.orDefault()/2/int64(max(queued, 0)+2), minBatchBytes)
}

// ReadAheadBytes is what a source may hold ahead of its batches: half of m.
func (m Memory) ReadAheadBytes() int64 { return max(m.orDefault()/2, minBatchBytes) }

// Fixed costs that Size counts besides the bytes of strings and slices: a
// value in an interface, and a Change with its slice headers. They make a
// row of many small values count for what it holds.
const (
	valueOverhead  = 16
	sliceOverhead  = 24
	changeOverhead = 160
)

// Size estimates the bytes that c holds in memory: the bytes of its
// strings, byte slices and arrays, plus a fixed cost per value and per
// change. Values shared by After and Before count twice. It is meant for
// budgets, not for accounting to the byte.
func (c *Change) Size() int64 {
	n := changeOverhead + RowSize(c.After) + RowSize(c.Before)
	if c.Message != nil {
		n += int64(len(c.Message.Prefix) + len(c.Message.Content))
	}
	return n
}

// RowSize estimates the bytes of a row of neutral values (see Kind); nil
// counts for nothing.
func RowSize(row []any) int64 {
	if row == nil {
		return 0
	}
	n := int64(sliceOverhead)
	for _, v := range row {
		n += valueSize(v)
	}
	return n
}

func valueSize(v any) int64 {
	switch v := v.(type) {
	case string:
		return valueOverhead + int64(len(v))
	case []byte:
		return valueOverhead + sliceOverhead + int64(len(v))
	case []any:
		return valueOverhead + RowSize(v)
	}
	return valueOverhead
}
