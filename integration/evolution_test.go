package integration

import (
	"context"
	binenc "encoding/binary"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/schema"
)

// readRecords reads a topic from the beginning to its current end.
func readRecords(ctx context.Context, brokers []string, topic string) ([]*kgo.Record, error) {
	// As a read_committed consumer; the markers of transactions
	// (delivery: exactly_once) are kept only to see where the log ends.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// latestSchema returns the subject's latest schema and its version, parsed
// from the registry's text as a consumer would.
func latestSchema(ctx context.Context, reg *schema.Registry, subject string) (avro.Schema, int, error) {
	ss, err := reg.Client().SchemaByVersion(ctx, subject, -1)
	if err != nil {
		return nil, 0, err
	}
	s, err := avro.ParseWithCache(ss.Schema.Schema, "", &avro.SchemaCache{})
	return s, ss.Version, err
}

// decodeLatest is a downstream reader on the subject's latest schema: it
// decodes a value written with any earlier schema through Avro schema
// resolution, so that fields the writer did not have take their defaults.
func decodeLatest(ctx context.Context, reg *schema.Registry, latest avro.Schema, wire []byte) (map[string]any, error) {
	if len(wire) < 5 {
		return nil, fmt.Errorf("value of %d bytes", len(wire))
	}
	writer, err := reg.SchemaByID(ctx, int(binenc.BigEndian.Uint32(wire[1:5])))
	if err != nil {
		return nil, err
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(latest, writer)
	if err != nil {
		return nil, fmt.Errorf("the latest schema cannot read schema %d: %w", binenc.BigEndian.Uint32(wire[1:5]), err)
	}
	var v map[string]any
	if err := avro.Unmarshal(resolved, wire[5:], &v); err != nil {
		return nil, err
	}
	return v, nil
}

// replayLatest is replayTopic with every value read through the value
// subject's latest schema.
func replayLatest(ctx context.Context, brokers []string, reg *schema.Registry, topic string) (rowSet, error) {
	latest, _, err := latestSchema(ctx, reg, topic+"-value")
	if err != nil {
		return nil, err
	}
	recs, err := readRecords(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := rowSet{}
	for _, r := range recs {
		k, err := reg.Decode(ctx, r.Key)
		if err != nil {
			return nil, fmt.Errorf("decode key at offset %d: %w", r.Offset, err)
		}
		if r.Value == nil {
			delete(out, canon(k))
			continue
		}
		v, err := decodeLatest(ctx, reg, latest, r.Value)
		if err != nil {
			return nil, fmt.Errorf("decode value at offset %d: %w", r.Offset, err)
		}
		row := map[string]string{}
		for name, fv := range v {
			row[name] = canon(unwrapUnion(fv))
		}
		out[canon(k)] = row
	}
	return out, nil
}

// requireLatestReadsEveryEvent decodes every event of topic twice, with its
// own schema and with the subject's latest one, and checks that each field
// the event has reads the same, and that each field it lacks reads as the
// latest schema's default. It returns how many events lacked a field.
func requireLatestReadsEveryEvent(t *testing.T, ctx context.Context, brokers []string, reg *schema.Registry, topic string) int {
	t.Helper()
	latest, version, err := latestSchema(ctx, reg, topic+"-value")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readRecords(ctx, brokers, topic)
	if err != nil {
		t.Fatal(err)
	}
	filled := 0
	for _, r := range recs {
		if r.Value == nil {
			continue
		}
		own, err := reg.Decode(ctx, r.Value)
		if err != nil {
			t.Fatalf("offset %d: %v", r.Offset, err)
		}
		got, err := decodeLatest(ctx, reg, latest, r.Value)
		if err != nil {
			t.Fatalf("offset %d: a reader on version %d: %v", r.Offset, version, err)
		}
		ownRec := own.(map[string]any)
		lacked := false
		for _, f := range latest.(*avro.RecordSchema).Fields() {
			want, ok := ownRec[f.Name()]
			if !ok {
				lacked = true
				want = fieldDefault(f)
			}
			if canonLoose(want) != canonLoose(unwrapUnion(got[f.Name()])) {
				t.Errorf("offset %d: field %s reads %s with version %d, want %s", r.Offset, f.Name(), canonLoose(unwrapUnion(got[f.Name()])), version, canonLoose(want))
			}
		}
		if lacked {
			filled++
		}
	}
	return filled
}

// fieldDefault is a field's default as a decoder returns the value: a
// decimal's default bytes as the number they stand for.
func fieldDefault(f *avro.Field) any {
	def := f.Default()
	b, ok := def.([]byte)
	if !ok {
		return def
	}
	typ := f.Type()
	if u, ok := typ.(*avro.UnionSchema); ok {
		typ = u.Types()[0]
	}
	ls, ok := typ.(avro.LogicalTypeSchema)
	if !ok || ls.Logical() == nil {
		return def
	}
	d, ok := ls.Logical().(*avro.DecimalLogicalSchema)
	if !ok {
		return def
	}
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return new(big.Rat).SetFrac(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.Scale())), nil))
}

// canonLoose is canon that also equates an Avro default's JSON form with
// the decoded value: a JSON number with an int or long, a date default
// (days) with the decoded time.
func canonLoose(v any) string {
	switch v := unwrapUnion(v).(type) {
	case int:
		return fmt.Sprint(v)
	case int32:
		return fmt.Sprint(v)
	case int64:
		return fmt.Sprint(v)
	case float64:
		return canonFloat(v, 64)
	case float32:
		return canonFloat(float64(v), 32)
	case []byte:
		return canon(v)
	}
	return canon(unwrapUnion(v))
}

// subjectVersions lists a subject's versions.
func subjectVersions(t *testing.T, ctx context.Context, reg *schema.Registry, subject string) []int {
	t.Helper()
	vs, err := reg.Client().SubjectVersions(ctx, subject)
	if err != nil {
		t.Fatalf("versions of %s: %v", subject, err)
	}
	sort.Ints(vs)
	return vs
}

// offsetsTopicPosition reads the position liberator stored under name in
// the offsets topic.
func offsetsTopicPosition(t *testing.T, ctx context.Context, brokers []string, name string) []byte {
	t.Helper()
	cfg := kafka.Config{Brokers: brokers, TopicPrefix: "test"}
	cfg.Defaults()
	sink, err := kafka.New(cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	st, err := sink.ReadOffset(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return nil
	}
	return []byte(st.Position)
}

// requireTopicEquals waits until replaying topic (with each event's own
// schema) gives want.
func requireTopicEquals(t *testing.T, ctx context.Context, brokers []string, reg *schema.Registry, topic string, want func() rowSet) {
	t.Helper()
	requireRows(t, ctx, "topic "+topic, want, func() (rowSet, error) { return replayTopic(ctx, brokers, reg, topic) })
}

// requireRows waits until got gives want.
func requireRows(t *testing.T, ctx context.Context, what string, want func() rowSet, got func() (rowSet, error)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		g, err := got()
		d := ""
		if err != nil {
			d = err.Error()
		} else {
			d = cmp.Diff(want(), g)
		}
		if d == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not match (-want +got):\n%s", what, truncate(d, 6000))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitExit waits for the daemon to exit by itself and checks the code and
// that its log says each of says.
func waitExit(t *testing.T, d *daemon, code int, says ...string) {
	t.Helper()
	if got := d.wait(90 * time.Second); got != code {
		t.Fatalf("liberator exited %d, want %d; log:\n%s", got, code, d.logTail())
	}
	for _, s := range says {
		if !d.logContains(s) {
			t.Errorf("log does not say %q:\n%s", s, d.logTail())
		}
	}
}

// waitLog waits until the daemon's log says s.
func waitLog(t *testing.T, d *daemon, s string) {
	t.Helper()
	require.Eventually(t, func() bool { return d.logContains(s) || d.exited() }, 60*time.Second, 100*time.Millisecond)
	if !d.logContains(s) {
		t.Fatalf("log does not say %q:\n%s", s, d.logTail())
	}
}
