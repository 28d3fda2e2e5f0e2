package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// debug prints progress while waiting (BENCH_DEBUG=1).
var debug = os.Getenv("BENCH_DEBUG") == "1"

// endOffset returns the end offset (the high watermark: records Kafka has
// acknowledged) of partition 0 of topic, or -1 if the topic does not exist
// yet.
func endOffset(ctx context.Context, adm *kadm.Client, topic string) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return -1, err
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1, nil
	}
	return o.Offset, nil
}

func newAdmin(brokerAddr string) (*kgo.Client, *kadm.Client, error) {
	// ListEndOffsets caches topic metadata for MetadataMinAge (5s by
	// default), so a topic created after the first poll would be seen
	// seconds late.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	return cl, kadm.NewClient(cl), nil
}

// waitOffset polls topic's end offset every 10 ms until it reaches want.
// It fails early if p (when given) exits.
func waitOffset(ctx context.Context, brokerAddr, topic string, want int64, timeout time.Duration, p *proc) error {
	cl, adm, err := newAdmin(brokerAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	last := int64(-1)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		off, err := endOffset(qctx, adm, topic)
		cancel()
		if err == nil {
			if debug && off != last {
				fmt.Fprintf(os.Stderr, "bench: %s %s end offset %d\n", time.Now().Format("15:04:05.000"), topic, off)
			}
			last = off
			if off >= want {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited with %d of %d events in %s (%v)\n%s", p.name(), max(last, 0), want, topic, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has %d of %d events after %s", topic, max(last, 0), want, timeout)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// checkOffset checks that topic holds exactly want records.
func checkOffset(ctx context.Context, brokerAddr, topic string, want int64) error {
	cl, adm, err := newAdmin(brokerAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	off, err := endOffset(ctx, adm, topic)
	if err != nil {
		return err
	}
	if off != want {
		return fmt.Errorf("%s holds %d records, want %d", topic, off, want)
	}
	return nil
}

// createTopic creates a compacted topic with one partition, as liberator
// would.
func createTopic(ctx context.Context, brokerAddr, topic string) error {
	cl, adm, err := newAdmin(brokerAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic)
	if err == nil {
		err = resp.Err
	}
	return err
}

// status is the part of liberator's /status that the benchmark reads.
type status struct {
	State    string                      `json:"state"`
	Role     string                      `json:"role"`
	Position string                      `json:"position"`
	Events   map[string]map[string]int64 `json:"events"` // table -> op -> count
}

func getStatus(ctx context.Context, admin string) (status, error) {
	var st status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/status", nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// waitStreaming waits until liberator reports state running and has stored
// a position: the source is open and streaming, and a restart resumes from
// a stored position. While it runs without a position, nudge is called
// every 200 ms to make the source produce one (see source.nudge).
func waitStreaming(ctx context.Context, p *proc, admin string, timeout time.Duration, nudge func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	nextNudge := time.Now()
	var st status
	for {
		if st.State == "running" && st.Position == "" && !time.Now().Before(nextNudge) {
			if err := nudge(ctx); err != nil {
				return err
			}
			nextNudge = time.Now().Add(200 * time.Millisecond)
		}
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := getStatus(qctx, admin)
		cancel()
		if err == nil {
			st = s
			if st.State == "running" && st.Position != "" {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("liberator exited before streaming (%v)\n%s", p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("liberator not streaming after %s (state %q, position %q)\n%s", timeout, st.State, st.Position, p.logTail())
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitCommitted waits until a read_committed consumer of topic (one
// partition) sees want events: the last committed record's key is id
// want, the last row inserted (keys are Avro longs after the registry's
// five-byte header). Transaction markers take offsets too, so the offsets
// alone cannot say it.
func waitCommitted(ctx context.Context, brokerAddr, topic string, want int64, timeout time.Duration, p *proc) error {
	cl, adm, err := newAdmin(brokerAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	checked := int64(-1)
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		lso := int64(-1)
		if ends, err := adm.ListCommittedOffsets(qctx, topic); err == nil {
			if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
				lso = o.Offset
			}
		}
		if lso >= want && lso != checked {
			checked = lso
			if last, err := lastCommittedKey(qctx, brokerAddr, topic, lso); err == nil && last == want {
				cancel()
				return nil
			}
		}
		cancel()
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited with %d of %d events committed in %s (%v)\n%s", p.name(), max(lso, 0), want, topic, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has committed offsets up to %d, not %d events, after %s", topic, max(lso, 0), want, timeout)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lastCommittedKey returns the id of the last committed record of topic
// below offset end.
func lastCommittedKey(ctx context.Context, brokerAddr, topic string, end int64) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(max(end-64, 0))}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	last := int64(-1)
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return 0, err
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end {
				done = true
				return
			}
			if !r.Attrs.IsControl() && len(r.Key) > 5 {
				if v, n := binary.Varint(r.Key[5:]); n > 0 {
					last = v
				}
			}
			if r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return last, nil
		}
	}
}
