package connectors

import (
	"strings"
	"testing"
)

func TestChangeSizeCountsTheBytesOfItsValues(t *testing.T) {
	mb := strings.Repeat("x", 1<<20)
	tests := []struct {
		name     string
		change   Change
		min, max int64
	}{
		{"a delete of a small key costs the fixed overhead", Change{Op: OpDelete, Before: []any{int64(7)}}, 150, 300},
		{"a row of a 1 MB string counts the megabyte", Change{Op: OpCreate, After: []any{int64(1), mb}}, 1 << 20, 1<<20 + 300},
		{"a 1 MB byte slice counts the megabyte", Change{Op: OpCreate, After: []any{int64(1), []byte(mb)}}, 1 << 20, 1<<20 + 300},
		{"an array counts its elements", Change{Op: OpCreate, After: []any{[]any{mb, mb}}}, 2 << 20, 2<<20 + 300},
		{"a key-changing update counts both images", Change{Op: OpUpdate, After: []any{mb}, Before: []any{mb}}, 2 << 20, 2<<20 + 300},
		{"many small values count for their number", Change{Op: OpCreate, After: make([]any, 100)}, 100 * 16, 100*16 + 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.change.Size(); got < tt.min || got > tt.max {
				t.Errorf("Size() = %d, want between %d and %d", got, tt.min, tt.max)
			}
		})
	}
}

func TestMemorySplitsBetweenBatchesAndReadAhead(t *testing.T) {
	tests := []struct {
		name             string
		m                Memory
		queued           int
		batch, readAhead int64
	}{
		{"64MB with 4 queued batches gives each of 6 a sixth of half", 64 << 20, 4, (32 << 20) / 6, 32 << 20},
		{"zero means the default", 0, 2, int64(DefaultMemory) / 2 / 4, int64(DefaultMemory) / 2},
		{"a tiny budget keeps a floor", 1 << 10, 2, minBatchBytes, minBatchBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.BatchBytes(tt.queued); got != tt.batch {
				t.Errorf("BatchBytes(%d) = %d, want %d", tt.queued, got, tt.batch)
			}
			if got := tt.m.ReadAheadBytes(); got != tt.readAhead {
				t.Errorf("ReadAheadBytes() = %d, want %d", got, tt.readAhead)
			}
		})
	}
}
