package snapshot

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func canonicalName(s string) (string, error) { return s, nil }

func TestTablesNeverSnapshottedAreLeftOutOfEverySnapshot(t *testing.T) {
	var sn Manager
	opts := connectors.SnapshotOptions{Never: []string{"shop.outbox"}}
	if err := sn.Init(opts, []string{"shop.orders", "shop.outbox"}, canonicalName); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"shop.orders"}, sn.Tables); d != "" {
		t.Errorf("snapshotted tables (-want +got):\n%s", d)
	}
	sn.StartInitial()
	if d := cmp.Diff([]TableState{{Table: "shop.orders"}}, sn.State.Tables); d != "" {
		t.Errorf("initial snapshot (-want +got):\n%s", d)
	}
	err := sn.RequestTables(connectors.SnapshotRequest{Tables: []string{"shop.outbox"}}, connectors.SnapshotInitial, canonicalName)
	if !errors.Is(err, connectors.ErrSnapshotRefused) || !strings.Contains(err.Error(), "outbox table") {
		t.Errorf("a request for the outbox table: got %v", err)
	}
	sn.Reconcile(sn.Tables...)
	sn.TakeRequests(slog.Default())
	for _, ts := range sn.State.Tables {
		if ts.Table == "shop.outbox" {
			t.Error("a reconcile reads the outbox table")
		}
	}
}

func TestAPositionOfOnlyTablesNeverSnapshottedReadsBack(t *testing.T) {
	var sn Manager
	if err := sn.Init(connectors.SnapshotOptions{Never: []string{"shop.outbox"}}, []string{"shop.outbox"}, canonicalName); err != nil {
		t.Fatal(err)
	}
	b := PositionState{Tables: sn.Tables}.Encode()
	st, err := ParsePositionState(b, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	if st.Tables == nil || len(st.Tables) != 0 {
		t.Errorf("tables %#v, want an empty list", st.Tables)
	}
}
