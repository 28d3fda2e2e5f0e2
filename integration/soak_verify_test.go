package integration

import (
	"context"
	"fmt"
	"sort"

	"github.com/liberator-cdc/liberator/schema"
)

// soakEntry is one row of the ledger: a change that a committed
// transaction made to soak.items. Kind "u" is an insert or update that left
// the row with this version; kind "d" is a delete of the row that had this
// version. A key change is a "d" of the old id and a "u" of the new one.
// Txn identifies the transaction that made the change.
type soakEntry struct {
	ID, Version, Txn int64
	Kind             string
}

// soakEvent is one record of the soak topic for a key: a row at a version
// written by transaction txn, or a tombstone.
type soakEvent struct {
	offset       int64
	version, txn int64
	tombstone    bool
}

// readSoakTopic reads every record of topic, from the first offset to the
// end, and decodes it with the registry. It fails if the topic has lost
// records (compaction, or a gap), since the checks need the whole history.
func readSoakTopic(ctx context.Context, brokers []string, reg *schema.Registry, topic string) (map[int64][]soakEvent, int, error) {
	recs, err := readRecords(ctx, brokers, topic)
	if err != nil {
		return nil, 0, err
	}
	events := map[int64][]soakEvent{}
	// The markers of transactions take offsets too (delivery:
	// exactly_once), as do the records of aborted transactions, which a
	// read_committed reader skips; with no transaction in the topic every
	// offset holds a record.
	txns := false
	for _, r := range recs {
		txns = txns || r.Attrs.IsTransactional()
	}
	for i, r := range recs {
		if !txns && r.Offset != int64(i) {
			return nil, 0, fmt.Errorf("record %d of %s is at offset %d: the topic was compacted or has a gap, so its history cannot be checked", i, topic, r.Offset)
		}
		k, err := reg.Decode(ctx, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("decode key at offset %d: %w", r.Offset, err)
		}
		id, err := soakField(k, "id")
		if err != nil {
			return nil, 0, fmt.Errorf("key at offset %d: %w", r.Offset, err)
		}
		ev := soakEvent{offset: r.Offset, tombstone: r.Value == nil}
		if !ev.tombstone {
			v, err := reg.Decode(ctx, r.Value)
			if err != nil {
				return nil, 0, fmt.Errorf("decode value at offset %d: %w", r.Offset, err)
			}
			if ev.version, err = soakField(v, "version"); err != nil {
				return nil, 0, fmt.Errorf("value at offset %d: %w", r.Offset, err)
			}
			if ev.txn, err = soakField(v, "txn"); err != nil {
				return nil, 0, fmt.Errorf("value at offset %d: %w", r.Offset, err)
			}
			if vid, err := soakField(v, "id"); err != nil || vid != id {
				return nil, 0, fmt.Errorf("value at offset %d has id %d (%v), its key %d", r.Offset, vid, err, id)
			}
		}
		events[id] = append(events[id], ev)
	}
	return events, len(recs), nil
}

// soakField returns the bigint field name of a decoded Avro record.
func soakField(v any, name string) (int64, error) {
	rec, ok := v.(map[string]any)
	if !ok {
		return 0, fmt.Errorf("%T is not a record", v)
	}
	n, ok := unwrapUnion(rec[name]).(int64)
	if !ok {
		return 0, fmt.Errorf("field %s is %T, not a long", name, rec[name])
	}
	return n, nil
}

// soakReport is what checking the topic against the ledger found.
type soakReport struct {
	upsertsChecked, deletesChecked, keysChecked int
	duplicates                                  int
	problems                                    []string
}

func (r *soakReport) problem(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// checkSoakLedger checks the topic's whole history against the ledger
// (check 4, the compacted topic equal to the table, is requireTopicsEqual's):
//
//  1. every upsert (id, version) of the ledger is in the topic, written by
//     the same transaction;
//  2. every delete in the ledger has a tombstone for its id after the last
//     record of the version it deleted;
//  3. per key, the versions ordered by their last occurrence in the topic
//     rise, and a deleted key ends with a tombstone: replays after a crash
//     may repeat a stretch of history, but the last copy of each event is
//     in commit order;
//  5. nothing else is in the topic: no record or tombstone of a
//     transaction that rolled back, and no version that no transaction
//     committed. Rows preloaded before liberator started are at version 1,
//     transaction 0, and are not in the ledger.
//
// Ids are never reused, so each key has one life: an insert (or the new
// side of a key change), updates, and perhaps a delete (or the old side of
// a key change).
func checkSoakLedger(ledger []soakEntry, events map[int64][]soakEvent, preload int, rolledBack map[int64]bool) *soakReport {
	r := &soakReport{}
	upserts := map[[2]int64]int64{} // (id, version) -> txn
	deletes := map[int64]soakEntry{}
	for _, e := range ledger {
		if rolledBack[e.Txn] {
			r.problem("ledger entry %+v belongs to a transaction that rolled back", e)
		}
		switch e.Kind {
		case "u":
			upserts[[2]int64{e.ID, e.Version}] = e.Txn
		case "d":
			if prev, ok := deletes[e.ID]; ok {
				r.problem("ledger deletes id %d twice (%+v, %+v): the workload reused an id", e.ID, prev, e)
			}
			deletes[e.ID] = e
		default:
			r.problem("ledger entry %+v has kind %q", e, e.Kind)
		}
	}

	// The last offset of each (id, version) and of each key's tombstones.
	last := map[[2]int64]int64{}
	lastTombstone := map[int64]int64{}
	for id, evs := range events {
		seen := map[int64]bool{}
		tombstones := 0
		for _, ev := range evs {
			if ev.tombstone {
				if _, ok := deletes[id]; !ok {
					r.problem("tombstone for id %d at offset %d, but the ledger never deleted it", id, ev.offset)
				}
				lastTombstone[id] = ev.offset
				if tombstones++; tombstones > 1 {
					r.duplicates++
				}
				continue
			}
			iv := [2]int64{id, ev.version}
			want, ok := upserts[iv]
			switch {
			case ok && want == ev.txn:
			case rolledBack[ev.txn]:
				r.problem("id %d version %d at offset %d was written by transaction %d, which rolled back", id, ev.version, ev.offset, ev.txn)
			case ok:
				r.problem("id %d version %d at offset %d was written by transaction %d; the ledger says %d", id, ev.version, ev.offset, ev.txn, want)
			case id <= int64(preload) && ev.version == 1 && ev.txn == 0:
				// A preloaded row, read by the snapshot.
			default:
				r.problem("id %d version %d (transaction %d) at offset %d is in no ledger entry", id, ev.version, ev.txn, ev.offset)
			}
			last[iv] = ev.offset
			if seen[ev.version] {
				r.duplicates++
			}
			seen[ev.version] = true
		}
	}

	// 1. Every upsert is in the topic.
	for iv := range upserts {
		r.upsertsChecked++
		if _, ok := last[iv]; !ok {
			r.problem("ledger upsert of id %d version %d (transaction %d) is not in the topic", iv[0], iv[1], upserts[iv])
		}
	}
	// 2. Every delete has a tombstone after the version it deleted.
	for id, d := range deletes {
		r.deletesChecked++
		t, ok := lastTombstone[id]
		if !ok {
			r.problem("ledger delete of id %d at version %d (transaction %d) has no tombstone", id, d.Version, d.Txn)
			continue
		}
		if at, ok := last[[2]int64{id, d.Version}]; ok && at > t {
			r.problem("ledger delete of id %d at version %d (transaction %d): the last tombstone, at offset %d, comes before the record of that version at offset %d", id, d.Version, d.Txn, t, at)
		}
	}
	// 3. Per key, the last occurrences are in commit order.
	for id, evs := range events {
		r.keysChecked++
		type occ struct{ version, offset int64 }
		var occs []occ
		for _, ev := range evs {
			if !ev.tombstone && last[[2]int64{id, ev.version}] == ev.offset {
				occs = append(occs, occ{ev.version, ev.offset})
			}
		}
		sort.Slice(occs, func(i, j int) bool { return occs[i].offset < occs[j].offset })
		for i := 1; i < len(occs); i++ {
			if occs[i].version <= occs[i-1].version {
				r.problem("id %d: version %d last appears at offset %d, after the later version %d last appeared at offset %d; history of the key: %s",
					id, occs[i].version, occs[i].offset, occs[i-1].version, occs[i-1].offset, soakHistory(evs))
				break
			}
		}
		if _, deleted := deletes[id]; deleted && !evs[len(evs)-1].tombstone {
			r.problem("id %d was deleted but its last event is not a tombstone; history of the key: %s", id, soakHistory(evs))
		}
	}
	sort.Strings(r.problems)
	return r
}

// soakHistory renders a key's events as "v3@10 v4@12 tomb@15".
func soakHistory(evs []soakEvent) string {
	s := ""
	for i, ev := range evs {
		if i > 0 {
			s += " "
		}
		if i == 40 {
			return s + fmt.Sprintf("... (%d events)", len(evs))
		}
		if ev.tombstone {
			s += fmt.Sprintf("tomb@%d", ev.offset)
		} else {
			s += fmt.Sprintf("v%d(txn %d)@%d", ev.version, ev.txn, ev.offset)
		}
	}
	return s
}
