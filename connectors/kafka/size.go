package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors"
)

// Kafka measures a record batch against max.message.bytes. A record alone
// in its batch adds the batch header (61 bytes) and its own framing: a
// handful of varints (at most 5 bytes each, 10 for the timestamp) and two
// per header. recordOverhead and headerOverhead are generous bounds of
// those, so that a record the size check passes fits its topic alone.
const (
	recordOverhead = 128
	headerOverhead = 10
)

// recordSize is the most bytes a record of key, value and headers takes in
// a batch of its own, uncompressed.
func recordSize(key, value []byte, headers []kgo.RecordHeader) int {
	n := len(key) + len(value) + recordOverhead
	for _, h := range headers {
		n += len(h.Key) + len(h.Value) + headerOverhead
	}
	return n
}

// TooLargeError says that a record is larger than its topic takes. The
// sizes are uncompressed: a record that only compression would make fit
// is too large.
type TooLargeError struct {
	// Topic is the record's topic.
	Topic string
	// Size is the record's size in a batch of its own: key, value,
	// headers and the batch's framing.
	Size int
	// Limit is the topic's limit as the sink knew it (Limit).
	Limit int
	// Err is Kafka's refusal, when Kafka (or the producer) refused the
	// record; nil when CheckSize caught it before it was produced.
	Err error
}

func (e *TooLargeError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("Kafka refused a record of %d bytes for topic %q as too large: %v", e.Size, e.Topic, e.Err)
	}
	return fmt.Sprintf("the record is %d bytes, more than topic %q takes (%d bytes: the smaller of kafka.max_message_bytes and the topic's max.message.bytes; sizes are uncompressed)", e.Size, e.Topic, e.Limit)
}

// Unwrap returns e.Err.
func (e *TooLargeError) Unwrap() error { return e.Err }

// refusal is a record Kafka refused as too large while the sink took
// its topic's limit to be limit.
type refusal struct{ size, limit int }

// Limit returns the most bytes a record batch of topic may have: the
// smaller of kafka.max_message_bytes and the topic's max.message.bytes,
// once EnsureTopic has learnt it, and lowered below a record Kafka
// refused (Refused). It is safe to call from any goroutine.
func (s *Sink) Limit(topic string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := s.cfg.MaxMessageBytes
	if l, ok := s.limits[topic]; ok {
		limit = min(limit, l)
	}
	// A refusal that the limit as described now still admits means the
	// topic takes less than it says (a broker's limit that describing the
	// topic does not show): the refused record, and any as large, is too
	// large. A limit that went down since explains the refusal.
	if r, ok := s.refused[topic]; ok && limit >= r.limit && r.size <= limit {
		limit = r.size - 1
	}
	return limit
}

// Refused tells the sink that in an earlier run Kafka refused a record of
// size bytes for topic as too large, while the topic's limit was taken to
// be limit (TooLargeError). If the topic's limit is still described as
// limit or more, records of size bytes or more are too large from now on,
// so that CheckSize catches the refused record and a restart does not
// produce it again. Call it before producing to topic.
func (s *Sink) Refused(topic string, size, limit int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.refused[topic]; !ok || size < r.size {
		s.refused[topic] = refusal{size: size, limit: limit}
		s.limitsGen.Add(1)
	}
}

// batchLimit is the producer's batch limit of topic: its Limit, within
// the bounds franz-go takes.
func (s *Sink) batchLimit(topic string) int32 {
	return int32(max(s.Limit(topic), 512))
}

// brokerWriteBytes is the largest produce request the producer writes: at
// least Kafka's default socket.request.max.bytes (100 MiB), and room for a
// batch of max bytes.
func brokerWriteBytes(limit int) int32 {
	return int32(max(100<<20, limit+1<<20))
}

// CheckSize returns a *TooLargeError if ev's record, with its headers,
// would not fit its topic's Limit in a batch of its own. The size is the
// uncompressed size. It is called from Produce's goroutine.
//
// When Produce is next called with the same ev, unchanged, it takes the
// headers CheckSize found rather than asking again whether ev shares the
// last event's: comparing positions is a cost of every event.
func (s *Sink) CheckSize(ev *connectors.Event) error {
	s.hdr.checked = 0
	// The headers are what Produce sends: the common ones, cached per
	// transaction with their size, and the event's own, counted where
	// they are.
	s.commonHeaders(ev)
	n := len(ev.Key) + len(ev.Value) + recordOverhead + s.hdr.size
	for _, h := range ev.Headers {
		n += len(h.Key) + len(h.Value) + headerOverhead
	}
	if limit := s.topicLimit(ev.Topic); n > limit {
		return &TooLargeError{Topic: ev.Topic, Size: n, Limit: limit}
	}
	s.hdr.checked = eventAddr(ev)
	return nil
}

// checkedLimit is the Limit of a topic as of a limitsGen.
type checkedLimit struct {
	topic string
	gen   uint64
	limit int
}

// topicLimit is Limit(topic), asked again only when the topic differs
// from the last one checked or a limit changed since: the lock and the
// lookups of Limit are a cost of every event otherwise.
func (s *Sink) topicLimit(topic string) int {
	c := &s.checked
	// Loaded before Limit reads the limits: a change in between makes
	// the next call ask again.
	gen := s.limitsGen.Load()
	if c.topic != topic || c.gen != gen || c.limit == 0 {
		*c = checkedLimit{topic: topic, gen: gen, limit: s.Limit(topic)}
	}
	return c.limit
}
