package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// ReadOffsetTimeout bounds how long reading the stored position may take.
const ReadOffsetTimeout = 30 * time.Second

// Stored is what the offsets topic holds under a pipeline's name: the
// source's position, the identity of the stream it belongs to, and the
// re-snapshots with reconcile under way.
//
// It is stored as JSON. A value stored before liberator wrote this form is
// the bare position; it reads back with an empty Source.
type Stored struct {
	// V is the format's version, 1.
	V int `json:"v"`
	// Source is the identity of the stream (connectors.Identifier), or
	// empty when the source has none or it was not recorded.
	Source string `json:"source,omitempty"`
	// Position is the source's Position.Encode.
	Position string `json:"position"`
	// Reconcile holds, by table ("schema.name"), where the table's topic
	// stood when its re-snapshot with reconcile began.
	Reconcile map[string]ReconcileStart `json:"reconcile,omitempty"`
}

// ReconcileStart is where a topic stood when a re-snapshot with reconcile
// of its table began: the end offset of each partition. Every record at or
// past it was written after the gap that called for the reconcile.
type ReconcileStart struct {
	Topic string          `json:"topic"`
	Start map[int32]int64 `json:"start"`
}

// Encode returns the JSON stored in the offsets topic.
func (st Stored) Encode() ([]byte, error) {
	if !utf8.ValidString(st.Position) {
		return nil, fmt.Errorf("encode stored position: the position %q is not UTF-8", st.Position)
	}
	st.V = 1
	return json.Marshal(st)
}

// ParseStored reads a value of the offsets topic: what Encode wrote, or a
// bare position stored by an earlier version.
func ParseStored(b []byte) (*Stored, error) {
	if !bytes.HasPrefix(b, []byte("{")) {
		return &Stored{V: 1, Position: string(b)}, nil
	}
	var st Stored
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("parse stored position %q: %w", b, err)
	}
	if st.V != 1 {
		return nil, fmt.Errorf("parse stored position %q: format version %d is newer than this liberator's (1); upgrade liberator", b, st.V)
	}
	if st.Position == "" {
		return nil, fmt.Errorf("parse stored position %q: no position", b)
	}
	return &st, nil
}

// ensureOffsetsTopic creates the offsets topic, compacted with one
// partition, unless it exists. kafka.topic_configs are for entity topics
// and are not applied to it.
func (s *Sink) ensureOffsetsTopic(ctx context.Context) error {
	if err := s.ensureTopic(ctx, s.cfg.OffsetsTopic, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, true); err != nil {
		return fmt.Errorf("kafka.offsets_topic: %w", err)
	}
	return nil
}

// ReadOffset returns what is stored under key in the offsets topic, or
// nil if nothing is. It reads every partition, so that a topic created
// beforehand with several partitions works as one with a single partition;
// where a key is found in more than one (the partition count changed), the
// partition that writes go to now wins. It gives up after
// ReadOffsetTimeout with a retryable error: a position that cannot be read
// is never taken for no position.
func (s *Sink) ReadOffset(ctx context.Context, key string) (*Stored, error) {
	topic := s.cfg.OffsetsTopic
	ctx, cancel := context.WithTimeout(ctx, ReadOffsetTimeout)
	defer cancel()
	fail := func(err error) (*Stored, error) {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer from Kafka within %s: %w", ReadOffsetTimeout, err)
		}
		return nil, connectors.MarkRetryable(fmt.Errorf("read the stored position %q from offsets topic %q: %w", key, topic, err))
	}
	if err := s.ensureOffsetsTopic(ctx); err != nil {
		if ctx.Err() != nil {
			return fail(err)
		}
		return nil, err
	}
	starts, err := s.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return fail(err)
	}
	// The last stable offset: an open transaction's records, which may
	// yet be aborted, are not read (delivery: exactly_once).
	ends, err := s.adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fail(err)
	}
	ranges := map[int32][2]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		st, _ := starts.Lookup(topic, o.Partition)
		if o.Offset > st.Offset {
			ranges[o.Partition] = [2]int64{st.Offset, o.Offset}
		}
	})
	found := map[int32][]byte{}
	err = s.scan(ctx, topic, ranges, func(r *kgo.Record) {
		if string(r.Key) == key {
			found[r.Partition] = r.Value
		}
	})
	if err != nil {
		return fail(err)
	}
	val, ok := found[keyPartition(key, int32(len(ends[topic])))]
	if !ok {
		for _, p := range slices.Sorted(maps.Keys(found)) {
			val, ok = found[p], true
		}
	}
	if !ok || val == nil {
		return nil, nil
	}
	st, err := ParseStored(val)
	if err != nil {
		return nil, fmt.Errorf("offsets topic %q, key %q: %w", topic, key, err)
	}
	return st, nil
}

// keyPartition is the partition the producer's key partitioner picks for
// key in a topic of n partitions.
func keyPartition(key string, n int32) int32 {
	if n <= 1 {
		return 0
	}
	p := kgo.StickyKeyPartitioner(nil).ForTopic("")
	return int32(p.Partition(&kgo.Record{Key: []byte(key)}, int(n)))
}

// WriteOffset stores st under key in the offsets topic and waits for Kafka
// to acknowledge it, or for ctx to end. On a transactional sink the record
// belongs to the open transaction: it is stored once the transaction
// commits. franz-go does not fail a record
// already sent to a broker when its context ends, and retries it for as
// long as Kafka is unreachable; so WriteOffset stops waiting instead, and
// the record stays with the producer until Close fails it. Should it
// still reach Kafka, the position it stores is one Kafka had acknowledged
// everything before.
func (s *Sink) WriteOffset(ctx context.Context, key string, st Stored) error {
	if err := s.ensureOffsetsTopic(ctx); err != nil {
		return err
	}
	val, err := st.Encode()
	if err != nil {
		return err
	}
	r := &kgo.Record{Topic: s.cfg.OffsetsTopic, Key: []byte(key), Value: val}
	done := make(chan error, 1)
	s.cl.Produce(ctx, r, func(_ *kgo.Record, err error) { done <- err })
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return connectors.MarkRetryable(fmt.Errorf("write offsets topic %q: %w", s.cfg.OffsetsTopic, err))
	}
	return nil
}

// scan reads the records of topic in the offset range [from, to) of each
// partition of ranges, calling fn for each, in offset order within a
// partition. Records compacted away are skipped.
func (s *Sink) scan(ctx context.Context, topic string, ranges map[int32][2]int64, fn func(*kgo.Record)) error {
	if len(ranges) == 0 {
		return nil
	}
	opts, err := s.cfg.clientOpts()
	if err != nil {
		return err
	}
	offsets := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition -> end
	for p, r := range ranges {
		if r[1] > r[0] {
			offsets[p] = kgo.NewOffset().At(r[0])
			left[p] = r[1]
		}
	}
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			end, ok := left[p.Partition]
			if !ok {
				return
			}
			for _, r := range p.Records {
				// A range ends at a record at or past its last offset:
				// the last record of a range is never compacted away
				// unless a later one follows it, and a transaction's
				// marker, kept here, counts as a record.
				if r.Offset+1 >= end {
					delete(left, p.Partition)
				}
				if r.Offset >= end {
					break
				}
				if !r.Attrs.IsControl() {
					fn(r)
				}
			}
		})
	}
	return nil
}
