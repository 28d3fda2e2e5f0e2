package integration

import (
	"strings"
	"testing"
)

// TestSoakLedgerCheck feeds checkSoakLedger made-up histories, so that each
// of its checks is known to catch what it claims to, without a database.
func TestSoakLedgerCheck(t *testing.T) {
	// Id 1 is preloaded at version 1 and updated to 2 by transaction 10;
	// id 5 is inserted by 11, updated by 12 and moved to id 6 by 13.
	ledger := []soakEntry{
		{1, 2, 10, "u"},
		{5, 1, 11, "u"}, {5, 2, 12, "u"},
		{5, 2, 13, "d"}, {6, 3, 13, "u"},
	}
	rec := func(off, v, txn int64) soakEvent { return soakEvent{offset: off, version: v, txn: txn} }
	tomb := func(off int64) soakEvent { return soakEvent{offset: off, tombstone: true} }
	rolledBack := map[int64]bool{99: true}
	for _, tc := range []struct {
		name   string
		events map[int64][]soakEvent
		want   string // a problem that must be reported; "" for none
	}{
		{"a history in commit order passes", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10)}, 5: {rec(1, 1, 11), rec(3, 2, 12), tomb(4)}, 6: {rec(5, 3, 13)},
		}, ""},
		{"a replay of a stretch after a crash passes", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10)}, 5: {rec(1, 1, 11), rec(3, 2, 12), tomb(4), rec(6, 2, 12), tomb(7)}, 6: {rec(5, 3, 13), rec(8, 3, 13)},
		}, ""},
		{"a newer snapshot read before the stream's replay passes", map[int64][]soakEvent{
			// Read at version 1, killed before the chunk was stored,
			// read again at version 2, then version 2 from the stream.
			1: {rec(0, 1, 0), rec(1, 2, 10), rec(2, 2, 10)}, 5: {rec(3, 1, 11), rec(4, 2, 12), tomb(5)}, 6: {rec(6, 3, 13)},
		}, ""},
		{"an update hidden by a later one is found missing", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10)}, 5: {rec(3, 2, 12), tomb(4)}, 6: {rec(5, 3, 13)},
		}, "ledger upsert of id 5 version 1 (transaction 11) is not in the topic"},
		{"a missing tombstone is found", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10)}, 5: {rec(1, 1, 11), rec(3, 2, 12)}, 6: {rec(5, 3, 13)},
		}, "ledger delete of id 5 at version 2 (transaction 13) has no tombstone"},
		{"a tombstone before the deleted version is found", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10)}, 5: {rec(1, 1, 11), tomb(3), rec(4, 2, 12)}, 6: {rec(5, 3, 13)},
		}, "the last tombstone, at offset 3, comes before the record of that version at offset 4"},
		{"versions out of order are found", map[int64][]soakEvent{
			1: {rec(0, 2, 10), rec(2, 1, 0)}, 5: {rec(1, 1, 11), rec(3, 2, 12), tomb(4)}, 6: {rec(5, 3, 13)},
		}, "id 1: version 1 last appears at offset 2, after the later version 2"},
		{"a rolled-back change is found", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10), rec(3, 3, 99)}, 5: {rec(1, 1, 11), rec(4, 2, 12), tomb(5)}, 6: {rec(6, 3, 13)},
		}, "id 1 version 3 at offset 3 was written by transaction 99, which rolled back"},
		{"a tombstone of a row never deleted is found", map[int64][]soakEvent{
			1: {rec(0, 1, 0), rec(2, 2, 10), tomb(3)}, 5: {rec(1, 1, 11), rec(4, 2, 12), tomb(5)}, 6: {rec(6, 3, 13)},
		}, "tombstone for id 1 at offset 3, but the ledger never deleted it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := checkSoakLedger(ledger, tc.events, 4, rolledBack)
			got := strings.Join(rep.problems, "\n")
			if tc.want == "" && got != "" {
				t.Fatalf("problems reported for a good history:\n%s", got)
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("want a problem saying %q, got:\n%s", tc.want, got)
			}
		})
	}
}
