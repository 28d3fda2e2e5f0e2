package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestBatchesAreCutByBytesBeforeTheirChangeLimit(t *testing.T) {
	table := &connectors.Table{Schema: "public", Name: "docs", Columns: []connectors.Column{{Name: "id"}, {Name: "body"}}, Key: []int{0}}
	mb := strings.Repeat("x", 1<<20)
	s := &Source{out: make(chan connectors.Batch, 100), batchBytes: connectors.Memory(30 << 20).BatchBytes(queuedBatches)}
	ctx := context.Background()
	s.inTx = true
	for i := range 20 {
		if err := s.add(ctx, connectors.Change{Op: connectors.OpCreate, Table: table, After: []any{int64(i), mb}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.add(ctx, connectors.Change{Op: connectors.OpCreate, Table: table, After: []any{int64(20), "small"}}); err != nil {
		t.Fatal(err)
	}
	close(s.out)
	var sizes []int
	for b := range s.out {
		if b.Checkpoint != nil {
			t.Errorf("a batch inside a transaction carries checkpoint %v", b.Checkpoint)
		}
		sizes = append(sizes, len(b.Changes))
	}
	// 30 MB: half for 6 batches of 2.5 MB, so every third 1 MB row ends
	// one; the rest waits for the commit.
	if d := cmp.Diff([]int{3, 3, 3, 3, 3, 3}, sizes); d != "" {
		t.Errorf("changes per batch (-want +got):\n%s", d)
	}
	if len(s.pending.Changes) != 3 {
		t.Errorf("%d changes wait for the commit, want 3", len(s.pending.Changes))
	}
}
