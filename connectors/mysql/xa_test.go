package mysql

import (
	"context"
	"log/slog"
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestXAPrepareEventsParse(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		onePhase bool
		xid      string
	}{
		{
			name: "MariaDB 10.11's event for XA PREPARE 'x5','b',7 (read from its binary log here)",
			data: []byte{0, 7, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 'x', '5', 'b'},
			xid:  "X'7835',X'62',7",
		},
		{
			name:     "a one-phase commit with an empty bqual",
			data:     []byte{1, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'x', '1'},
			onePhase: true,
			xid:      "X'7831',X'',1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			onePhase, xid, err := parseXAPrepare(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if onePhase != tt.onePhase || xid != tt.xid {
				t.Errorf("parseXAPrepare = %v, %q; want %v, %q", onePhase, xid, tt.onePhase, tt.xid)
			}
		})
	}
	for _, bad := range [][]byte{nil, {0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'x'}, {0, 1, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0}} {
		if _, _, err := parseXAPrepare(bad); err == nil {
			t.Errorf("parseXAPrepare(%v) succeeded", bad)
		}
	}
}

func TestXAStatementsParse(t *testing.T) {
	tests := []struct {
		name, q string
		want    xaStatement
		notXA   bool
	}{
		{name: "MariaDB's XA COMMIT (as logged here)", q: "XA COMMIT X'7831',X'',1", want: xaStatement{verb: "COMMIT", xid: "X'7831',X'',1"}},
		{name: "MariaDB's XA ROLLBACK with a bqual and format id", q: "XA ROLLBACK X'7835',X'62',7", want: xaStatement{verb: "ROLLBACK", xid: "X'7835',X'62',7"}},
		{name: "an XID written as strings matches its hex form", q: "xa commit 'x5','b',7", want: xaStatement{verb: "COMMIT", xid: "X'7835',X'62',7"}},
		{name: "a gtrid alone has format id 1", q: "XA COMMIT 'x1'", want: xaStatement{verb: "COMMIT", xid: "X'7831',X'',1"}},
		{name: "a one-phase commit", q: "XA COMMIT X'7831',X'',1 ONE PHASE", want: xaStatement{verb: "COMMIT", xid: "X'7831',X'',1", onePhase: true}},
		{name: "XA END", q: "XA END X'7831',X'',1", want: xaStatement{verb: "END"}},
		{name: "MySQL's XA START", q: "XA START X'7831',X'',1", want: xaStatement{verb: "START"}},
		{name: "a plain ROLLBACK is not XA", q: "ROLLBACK", notXA: true},
		{name: "a table called xa is not XA", q: "INSERT INTO xa VALUES (1)", notXA: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := parseXAStatement(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if ok == tt.notXA {
				t.Fatalf("parseXAStatement(%q) ok = %v", tt.q, ok)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(xaStatement{})); !tt.notXA && diff != "" {
				t.Errorf("parseXAStatement(%q) (-want +got):\n%s", tt.q, diff)
			}
		})
	}
	if _, _, err := parseXAStatement("XA COMMIT X'zz'"); err == nil {
		t.Error("a bad hex XID parsed")
	}
}

func TestEnginesThatRollBack(t *testing.T) {
	tests := []struct {
		name string
		rows [][]string
		want bool
	}{
		{"InnoDB says it has transactions", [][]string{{"InnoDB", "YES"}}, true},
		{"MyISAM says it has none", [][]string{{"MyISAM", "NO"}}, false},
		{"Aria says it has none", [][]string{{"Aria", "NO"}}, false},
		{"MEMORY without an ENGINES row", [][]string{{"MEMORY", ""}}, false},
		{"a table that is gone is taken as InnoDB", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseTransactional(tt.rows); got != tt.want {
				t.Errorf("parseTransactional(%v) = %v, want %v", tt.rows, got, tt.want)
			}
		})
	}
}

// TestARollbackGroupPublishesOnlyNonTransactionalChanges feeds the stream
// the event group MySQL writes for a rolled-back transaction whose
// statement changed an InnoDB and a MyISAM table (MariaDB 10.11 writes no
// such group in ROW format).
func TestARollbackGroupPublishesOnlyNonTransactionalChanges(t *testing.T) {
	s := &Source{cfg: Config{Flavor: FlavorMySQL}, log: slog.New(slog.DiscardHandler)}
	inno := &connectors.Table{Schema: "d", Name: "inno", Columns: []connectors.Column{{Name: "id"}}, Key: []int{0}}
	my := &connectors.Table{Schema: "d", Name: "my", Columns: []connectors.Column{{Name: "id"}}, Key: []int{0}}
	s.engines = map[tableName]bool{{"d", "inno"}: true, {"d", "my"}: false}
	h := &replication.EventHeader{LogPos: 500, EventSize: 50}
	ctx := context.Background()
	if _, err := s.handle(ctx, h, &replication.QueryEvent{Query: []byte("BEGIN")}); err != nil {
		t.Fatal(err)
	}
	s.st.pending = []connectors.Change{
		{Op: connectors.OpCreate, Table: inno, After: []any{int32(1)}},
		{Op: connectors.OpCreate, Table: my, After: []any{int32(2)}},
		{Op: connectors.OpDelete, Table: inno, Before: []any{int32(3)}},
	}
	s.st.txChanged = true
	cp, err := s.handle(ctx, h, &replication.QueryEvent{Query: []byte("ROLLBACK")})
	if err != nil {
		t.Fatal(err)
	}
	if cp == nil {
		t.Fatal("ROLLBACK ends the group without a checkpoint")
	}
	b := s.flush(cp)
	if len(b.Changes) != 1 || b.Changes[0].Table != my {
		t.Errorf("published %+v, want only the MyISAM row", b.Changes)
	}
}

func TestARollbackAfterASplitReSnapshotsItsTransactionalTables(t *testing.T) {
	s := &Source{cfg: Config{Flavor: FlavorMySQL}, log: slog.New(slog.DiscardHandler)}
	s.snaps.Tables = []string{"d.inno", "d.my"}
	inno := &connectors.Table{Schema: "d", Name: "inno", Columns: []connectors.Column{{Name: "id"}}, Key: []int{0}}
	s.engines = map[tableName]bool{{"d", "inno"}: true, {"d", "my"}: false}
	h := &replication.EventHeader{LogPos: 500, EventSize: 50}
	ctx := context.Background()
	if _, err := s.handle(ctx, h, &replication.QueryEvent{Query: []byte("BEGIN")}); err != nil {
		t.Fatal(err)
	}
	s.st.pending = []connectors.Change{{Op: connectors.OpCreate, Table: inno, After: []any{int32(1)}}}
	if b := s.flush(nil); len(b.Changes) != 1 {
		t.Fatalf("the split batch has %d changes", len(b.Changes))
	}
	if _, err := s.handle(ctx, h, &replication.QueryEvent{Query: []byte("ROLLBACK")}); err != nil {
		t.Fatal(err)
	}
	st := s.snaps.State
	if st == nil || len(st.Tables) != 1 || st.Tables[0].Table != "d.inno" || !st.Tables[0].Reconcile {
		t.Errorf("snapshot state %+v, want d.inno queued with reconcile", st)
	}
}
