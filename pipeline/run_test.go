package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"go.uber.org/goleak"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePos is the fake source's position: the number of its batch.
type fakePos int

func (p fakePos) String() string { return "fake:" + strconv.Itoa(int(p)) }
func (p fakePos) Encode() []byte { return []byte(p.String()) }
func (p fakePos) Equal(o connectors.Position) bool {
	q, ok := o.(fakePos)
	return ok && p == q
}

// fakeSource is an in-memory source that obeys the contract: Read hands
// out the batches a test sends, in order, and Ack records what it is told.
type fakeSource struct {
	batches chan connectors.Batch

	mu     sync.Mutex
	resume []byte
	acked  []connectors.Position
	closed bool
}

func newFakeSource() *fakeSource { return &fakeSource{batches: make(chan connectors.Batch, 16)} }

func (f *fakeSource) Open(_ context.Context, resume []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resume = resume
	return nil
}

func (f *fakeSource) Read(ctx context.Context) (connectors.Batch, error) {
	select {
	case b, ok := <-f.batches:
		if !ok {
			return connectors.Batch{}, io.EOF
		}
		return b, nil
	case <-ctx.Done():
		return connectors.Batch{}, ctx.Err()
	}
}

func (f *fakeSource) Ack(_ context.Context, pos connectors.Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.acked); n > 0 && int(pos.(fakePos)) < int(f.acked[n-1].(fakePos)) {
		return fmt.Errorf("ack %v after %v: acks go backwards", pos, f.acked[n-1])
	}
	f.acked = append(f.acked, pos)
	return nil
}

func (f *fakeSource) Close(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeSource) lastAck() connectors.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.acked) == 0 {
		return nil
	}
	return f.acked[len(f.acked)-1]
}

// table is a captured table of the fake source: an int64 key and a text.
func table(name string, extra ...connectors.Column) *connectors.Table {
	cols := []connectors.Column{
		{Name: "id", Type: connectors.Type{Kind: connectors.KindInt64}, SQLType: "bigint"},
		{Name: "v", Type: connectors.Type{Kind: connectors.KindString}, Nullable: true, SQLType: "text"},
	}
	return &connectors.Table{Schema: "s", Name: name, Key: []int{0}, Columns: append(cols, extra...)}
}

func upsert(t *connectors.Table, id int64, v string, pos int) connectors.Change {
	row := []any{id, v}
	for range len(t.Columns) - 2 {
		row = append(row, nil)
	}
	return connectors.Change{Op: connectors.OpCreate, Table: t, After: row, Pos: fakePos(pos), CommitTime: time.Unix(1_700_000_000, 0)}
}

// loopEnv is a kfake broker, a fake registry and a config for them.
type loopEnv struct {
	cluster *kfake.Cluster
	cfg     *config.Config
	reg     *schema.Registry
	p       *Pipeline // of the last run
}

func newLoopEnv(t *testing.T, opts ...kfake.Opt) *loopEnv {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	srv := httptest.NewServer(srfake.NewRegistry().Handler())
	t.Cleanup(srv.Close)
	cfg := &config.Config{
		Name:           "loop",
		Source:         config.SourceConfig{Kind: "postgres", Tables: []string{"s.a", "s.b"}},
		Kafka:          kafka.Config{Brokers: c.ListenAddrs(), TopicPrefix: "t"},
		Registry:       config.RegistryConfig{URL: srv.URL},
		CommitInterval: 10 * time.Millisecond,
	}
	cfg.Defaults()
	cfg.ShutdownTimeout = 5 * time.Second
	reg, err := cfg.NewRegistry(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &loopEnv{cluster: c, cfg: cfg, reg: reg}
}

// run runs a pipeline over src. stop ends it and returns Run's error;
// done is closed when Run returns, and err then holds its error.
func (e *loopEnv) run(t *testing.T, src connectors.Source) (stop func() error, done <-chan struct{}, err *error) {
	t.Helper()
	p := New(e.cfg, Deps{
		Source: func() (connectors.Source, error) { return src, nil },
		Sink: func(m prometheus.Registerer) (*kafka.Sink, error) {
			opts := []kafka.Option{kafka.WithMetrics(m)}
			if e.cfg.ExactlyOnce() {
				opts = append(opts, kafka.WithTransactions(kafka.TransactionalID(e.cfg.Name)))
			}
			return kafka.New(e.cfg.Kafka, slog.New(slog.DiscardHandler), opts...)
		},
		Registry: e.reg,
		Log:      slog.New(slog.DiscardHandler),
	})
	e.p = p
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	var runErr error
	go func() {
		defer close(finished)
		runErr = p.Run(ctx)
	}()
	stop = func() error {
		cancel()
		select {
		case <-finished:
			return runErr
		case <-time.After(e.cfg.ShutdownTimeout + 5*time.Second):
			return errors.New("Run did not return within the shutdown timeout")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return stop, finished, &runErr
}

// stored reads the position stored in the offsets topic.
func (e *loopEnv) stored(t *testing.T) string {
	t.Helper()
	s, err := kafka.New(e.cfg.Kafka, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.ReadOffset(context.Background(), e.cfg.Name)
	if err != nil {
		t.Fatal(err)
	}
	if st == nil {
		return ""
	}
	return st.Position
}

// records reads every record of topic (a read_uncommitted consumer's
// view, without the markers of transactions).
func (e *loopEnv) records(t *testing.T, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
		})
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunStoresAndAcksEachPositionOnceKafkaHasItsBatch(t *testing.T) {
	e := newLoopEnv(t)
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a, b := table("a"), table("b")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1), upsert(b, 1, "y", 1)}, Checkpoint: fakePos(1)}
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "x", 2)}} // inside a transaction
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(b, 2, "y", 3)}, Checkpoint: fakePos(3)}
	waitFor(t, "position 3 acked", func() bool { return src.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := e.stored(t); got != "fake:3" {
		t.Errorf("stored position = %q, want fake:3", got)
	}
	if n := len(e.records(t, "t.s.a")) + len(e.records(t, "t.s.b")); n != 4 {
		t.Errorf("%d records in the topics, want 4", n)
	}
}

func TestRunNeverPassesARecordKafkaRefused(t *testing.T) {
	e := newLoopEnv(t)
	// Topic b takes no record over 100 bytes: a row of 1000 fails for good.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 1, 1,
		map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "max.message.bytes": kadm.StringPtr("100")}, "t.s.b"); err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	_, done, runErr := e.run(t, src)
	a, b := table("a"), table("b")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// The failing record's batch, and one on another topic after it.
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(b, 1, strings.Repeat("z", 1000), 2)}, Checkpoint: fakePos(2)}
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "x", 3)}, Checkpoint: fakePos(3)}
	select {
	case <-done:
		err := *runErr
		var tle *kafka.TooLargeError
		if !errors.As(err, &tle) || tle.Topic != "t.s.b" || tle.Limit != 100 {
			t.Fatalf("Run = %v, want the row too large for topic t.s.b (100 bytes)", err)
		}
		if connectors.IsRetryable(err) {
			t.Errorf("a record too large under errors.on_bad_row: fail is not retryable: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on a record Kafka refused")
	}
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v, want fake:1: nothing at or after the refused record", got)
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1", got)
	}
}

func TestRunNeverStoresAnAbandonedBatch(t *testing.T) {
	e := newLoopEnv(t)
	src := newFakeSource()
	_, done, runErr := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	bad := upsert(a, 3, "x", 2)
	bad.After[1] = 42 // not a string: the row cannot be encoded
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "x", 2), bad}, Checkpoint: fakePos(2)}
	select {
	case <-done:
		err := *runErr
		if err == nil || !strings.Contains(err.Error(), "encode row of table s.a") {
			t.Fatalf("Run = %v, want the encoding failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop on a row it cannot encode")
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1: the abandoned batch is never stored", got)
	}
}

func TestRunDrainsAndStoresOnShutdownWithinItsBound(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.CommitInterval = time.Hour // only the first position and the drain store
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	var changes []connectors.Change
	for i := range 2000 {
		changes = append(changes, upsert(a, int64(i), "y", 2))
	}
	src.batches <- connectors.Batch{Changes: changes, Checkpoint: fakePos(2)}
	waitFor(t, "the batch read", func() bool { return len(src.batches) == 0 })
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if took := time.Since(start); took > e.cfg.ShutdownTimeout+2*time.Second {
		t.Errorf("the drain took %s, more than shutdown_timeout %s", took, e.cfg.ShutdownTimeout)
	}
	if got := e.stored(t); got != "fake:2" {
		t.Errorf("stored position = %q, want fake:2: the drain stores what Kafka has", got)
	}
	if got := src.lastAck(); got != fakePos(2) {
		t.Errorf("last ack = %v, want fake:2", got)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if !src.closed {
		t.Error("the source was not closed")
	}
}

func TestRunFollowsASchemaChangeMidBatch(t *testing.T) {
	e := newLoopEnv(t)
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	v1 := table("a")
	v2 := table("a", connectors.Column{Name: "n", Type: connectors.Type{Kind: connectors.KindInt32}, Nullable: true, SQLType: "integer"})
	later := upsert(v2, 2, "y", 1)
	later.After[2] = int32(7)
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(v1, 1, "x", 1), later, upsert(v1, 3, "z", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	recs := e.records(t, "t.s.a")
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	ids := map[int]bool{}
	for _, r := range recs {
		ids[int(binary.BigEndian.Uint32(r.Value[1:5]))] = true
		if _, err := e.reg.Decode(context.Background(), r.Value); err != nil {
			t.Fatalf("decode %x: %v", r.Value, err)
		}
	}
	if len(ids) != 2 {
		t.Errorf("the records use %d value schemas, want 2 (before and after the change)", len(ids))
	}
}

func TestRunReconcileTombstonesTheKeysNothingWroteSinceItsBegin(t *testing.T) {
	for _, delivery := range []string{config.DeliveryAtLeastOnce, config.DeliveryExactlyOnce} {
		t.Run(delivery, func(t *testing.T) { testReconcile(t, delivery) })
	}
}

func testReconcile(t *testing.T, delivery string) {
	e := newLoopEnv(t)
	e.cfg.Delivery = delivery
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	var before []connectors.Change
	for i := range 10 {
		before = append(before, upsert(a, int64(i), "old", 1))
	}
	src.batches <- connectors.Batch{Changes: before, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// A gap: rows 0 to 4 were deleted while the log could not be read. The
	// re-snapshot finds 5 to 9; the stream inserts 20 meanwhile.
	var reread []connectors.Change
	for i := 5; i < 10; i++ {
		c := upsert(a, int64(i), "new", 2)
		c.Op = connectors.OpRead
		reread = append(reread, c)
	}
	src.batches <- connectors.Batch{Changes: reread[:2], Checkpoint: fakePos(2), Reconcile: []connectors.ReconcileMark{{Table: "s.a"}}}
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 20, "stream", 3)}, Checkpoint: fakePos(3)}
	src.batches <- connectors.Batch{Changes: reread[2:], Checkpoint: fakePos(4), Reconcile: []connectors.ReconcileMark{{Table: "s.a", End: true}}}
	waitFor(t, "position 4 acked", func() bool { return src.lastAck() == fakePos(4) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	var tombstoned []int64
	for _, r := range e.records(t, "t.s.a") {
		if r.Value != nil {
			continue
		}
		k, err := e.reg.Decode(context.Background(), r.Key)
		if err != nil {
			t.Fatal(err)
		}
		tombstoned = append(tombstoned, k.(map[string]any)["id"].(int64))
	}
	if fmt.Sprint(tombstoned) != "[0 1 2 3 4]" {
		t.Errorf("tombstoned keys = %v, want [0 1 2 3 4]", tombstoned)
	}
}

func TestRunEndsWithinItsBoundWhenKafkaIsGone(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.ShutdownTimeout = time.Second
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	e.cluster.Close()
	// More than the producer buffers: the reader blocks on a full buffer.
	go func() {
		for n := range 5 {
			var changes []connectors.Change
			for i := range 10_000 {
				changes = append(changes, upsert(a, int64(n*10_000+i), "y", 2+n))
			}
			src.batches <- connectors.Batch{Changes: changes, Checkpoint: fakePos(2 + n)}
		}
	}()
	waitFor(t, "the reader to fill the buffer", func() bool { return len(src.batches) >= 2 })
	start := time.Now()
	err := stop()
	if took, bound := time.Since(start), e.cfg.ShutdownTimeout+closeGrace+2*time.Second; took > bound {
		t.Errorf("Run took %s to stop, more than %s", took, bound)
	}
	if !errors.Is(err, ErrDrainIncomplete) {
		t.Errorf("Run = %v, want ErrDrainIncomplete", err)
	}
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v, want fake:1: nothing Kafka did not acknowledge", got)
	}
}
