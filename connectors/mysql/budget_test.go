package mysql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestEventBudgetHoldsTheReaderUntilEventsAreTaken(t *testing.T) {
	b := newEventBudget(context.Background(), 2<<20)
	defer b.close()
	first, second := &replication.RowsEvent{}, &replication.RowsEvent{}
	if err := b.take(first, 3<<19); err != nil {
		t.Fatal(err)
	}
	took := make(chan error, 1)
	go func() { took <- b.take(second, 3<<19) }()
	select {
	case err := <-took:
		t.Fatalf("a second event of 1.5 MB was decoded ahead within 2 MB (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	b.give(first)
	if err := <-took; err != nil {
		t.Fatalf("the second event still waits after the first was taken: %v", err)
	}
	b.give(second)
	// An event larger than the whole budget takes all of it, then goes.
	huge := &replication.RowsEvent{}
	if err := b.take(huge, 5<<20); err != nil {
		t.Fatal(err)
	}
	b.give(huge)
	// An event that took nothing gives nothing back.
	b.give(&replication.RowsEvent{})
	if err := b.take(first, 2<<20); err != nil {
		t.Fatal(err)
	}
}

func TestEventBudgetLetsTheReaderGoWhenClosed(t *testing.T) {
	b := newEventBudget(context.Background(), 1<<20)
	if err := b.take(&replication.RowsEvent{}, 1<<20); err != nil {
		t.Fatal(err)
	}
	took := make(chan error, 1)
	go func() { took <- b.take(&replication.RowsEvent{}, 1) }()
	b.close()
	if err := <-took; !errors.Is(err, context.Canceled) {
		t.Errorf("a waiting reader got %v after close, want context.Canceled", err)
	}
}

func TestAnXATransactionKeepsAtMostABatchOfBytes(t *testing.T) {
	table := &connectors.Table{Schema: "d", Name: "t", Columns: []connectors.Column{{Name: "id"}, {Name: "doc"}}, Key: []int{0}}
	row := func(n int) connectors.Change {
		return connectors.Change{Op: connectors.OpCreate, Table: table, After: []any{int64(1), strings.Repeat("x", n)}}
	}
	x := &xaTx{}
	x.add(row(3<<20), 2<<20)
	if x.overflow || len(x.changes) != 1 {
		t.Fatalf("one change larger than the budget: overflow %v, %d kept; want it kept", x.overflow, len(x.changes))
	}
	x = &xaTx{}
	for range 2 {
		x.add(row(1<<20), 5<<19)
	}
	if x.overflow || len(x.changes) != 2 {
		t.Fatalf("two 1 MB changes within 2.5 MB: overflow %v, %d kept", x.overflow, len(x.changes))
	}
	x.add(row(1<<20), 5<<19)
	if !x.overflow || x.changes != nil || x.bytes != 0 {
		t.Errorf("a third 1 MB change: overflow %v, %d kept, %d bytes; want every change dropped", x.overflow, len(x.changes), x.bytes)
	}
	if !x.tables["d.t"] {
		t.Error("an overflowed transaction forgot the table it changed")
	}
}
