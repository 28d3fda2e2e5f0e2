package mysql

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

func TestPositionStateRoundTrips(t *testing.T) {
	p := Position{Flavor: FlavorMariaDB, File: "binlog.000002", Offset: 591, GTID: "0-1-5", State: &snapshot.PositionState{
		Tables: []string{"shop.items", "shop.big"},
		Snapshot: &snapshot.State{Initial: true, Tables: []snapshot.TableState{
			{Table: "shop.items", Done: true},
			{Table: "shop.big", After: []string{"x:7ae9", "i:42"}},
		}},
	}}
	back, err := ParsePosition(p.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(p, back); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got, want := p.String(), "binlog.000002:591 gtid=0-1-5 (initial snapshot, 1 of 2 tables done, shop.big read up to key (x:7ae9, i:42))"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	plain := Position{Flavor: FlavorMariaDB, File: "binlog.000002", Offset: 591}
	if strings.Contains(string(plain.Encode()), "state") {
		t.Errorf("a position without state encodes as before: %s", plain.Encode())
	}
}

func TestParsePositionRefusesBadState(t *testing.T) {
	for _, tt := range []struct{ name, state, says string }{
		{"not JSON", "x", "state"},
		{"no tables", `{"tables":null}`, "no tables"},
		{"a table twice", `{"tables":["a.b","a.b"]}`, "listed twice"},
		{"a snapshot of nothing", `{"tables":["a.b"],"snapshot":{"tables":[]}}`, "a snapshot of no tables"},
		{"a bad key", `{"tables":["a.b"],"snapshot":{"tables":[{"table":"a.b","after":["i:x"]}]}}`, "not a key value"},
		{"an unknown field", `{"tables":["a.b"],"later":true}`, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePosition([]byte("mysql:file=b.1&flavor=mariadb&offset=4&state=" + tt.state))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %v does not say %q", err, tt.says)
			}
		})
	}
}
