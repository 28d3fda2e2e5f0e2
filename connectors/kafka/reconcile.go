package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// BeginReconcile creates topic if it is missing and returns where it
// stands now: the end offset of each partition. Records produced from
// then on are at or past it.
func (s *Sink) BeginReconcile(ctx context.Context, topic string) (ReconcileStart, error) {
	if err := s.EnsureTopic(ctx, topic); err != nil {
		return ReconcileStart{}, err
	}
	ends, err := s.endOffsets(ctx, topic)
	if err != nil {
		return ReconcileStart{}, err
	}
	return ReconcileStart{Topic: topic, Start: ends}, nil
}

func (s *Sink) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	ends, err := s.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("list end offsets of topic %q: %w", topic, err))
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// Ghosts returns the keys whose latest record in rs.Topic is a row, not a
// tombstone, and that no record at or past rs.Start wrote: the rows that a
// re-snapshot begun at rs did not find in the table, and that no streamed
// change touched since. Call it once every record produced before it is
// acknowledged.
//
// Keys compare by their Avro body, without the registry's five-byte
// header, so that a key written under another schema ID of the same key
// schema counts as the same key. Memory: eight bytes for each record
// written since rs.Start (about one per row of the table), and the keys
// and hashes of the rows live before rs.Start that nothing wrote since:
// the ghosts themselves, and, while the scan passes them, rows not yet
// superseded.
func (s *Sink) Ghosts(ctx context.Context, rs ReconcileStart) ([][]byte, error) {
	topic := rs.Topic
	ends, err := s.endOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	// Pass 1: the keys written since the start.
	since := map[int32][2]int64{}
	before := map[int32][2]int64{}
	for p, end := range ends {
		start, ok := rs.Start[p]
		if !ok {
			// A partition added since: everything in it is new.
			start = 0
		}
		start = min(start, end)
		since[p] = [2]int64{start, end}
		before[p] = [2]int64{0, start}
	}
	var touched []uint64
	if err := s.scan(ctx, topic, since, func(r *kgo.Record) {
		touched = append(touched, KeyHash(r.Key))
	}); err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("reconcile topic %q: read the records since the re-snapshot began: %w", topic, err))
	}
	slices.Sort(touched)
	touched = slices.Compact(touched)
	// Pass 2: the keys live before the start that nothing touched since.
	live := map[uint64][]byte{}
	if err := s.scan(ctx, topic, before, func(r *kgo.Record) {
		h := KeyHash(r.Key)
		if _, ok := slices.BinarySearch(touched, h); ok {
			return
		}
		if r.Value == nil {
			delete(live, h)
		} else {
			live[h] = r.Key
		}
	}); err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("reconcile topic %q: read the records before the re-snapshot began: %w", topic, err))
	}
	out := make([][]byte, 0, len(live))
	for _, k := range live {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b []byte) int { return slices.Compare(a, b) })
	return out, nil
}

// keyHash hashes a key's Avro body: the bytes after the Confluent wire
// format's magic byte and schema ID, when it has them.
func KeyHash(k []byte) uint64 {
	if len(k) >= 5 && k[0] == 0 {
		k = k[5:]
	}
	return xxhash.Sum64(k)
}
