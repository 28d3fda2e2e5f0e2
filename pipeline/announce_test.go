package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/schema"
)

// describingSource is a fake source that describes its tables before it
// opens, and notes the subjects the registry held when it was opened.
type describingSource struct {
	*fakeSource
	tables []*connectors.Table
	reg    *schema.Registry

	mu             sync.Mutex
	subjectsAtOpen []string
}

func (d *describingSource) Describe(context.Context) ([]*connectors.Table, error) {
	return d.tables, nil
}

func (d *describingSource) Open(ctx context.Context, resume []byte) error {
	subjects, err := d.reg.Subjects(ctx, "t.")
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.subjectsAtOpen = subjects
	d.mu.Unlock()
	return d.fakeSource.Open(ctx, resume)
}

func (e *loopEnv) topics(t *testing.T) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return td.Names()
}

func TestRunCreatesEveryTopicAndRegistersItsSchemasBeforeOpening(t *testing.T) {
	e := newLoopEnv(t)
	odd := &connectors.Table{Schema: "s", Name: "some|test@data", Key: []int{0}, Columns: table("x").Columns}
	e.cfg.Source.Tables = []string{"s.a", "s.some|test@data"}
	src := &describingSource{fakeSource: newFakeSource(), tables: []*connectors.Table{table("a"), odd}, reg: e.reg}
	stop, _, _ := e.run(t, src)
	waitFor(t, "the source opened", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.subjectsAtOpen != nil
	})
	src.mu.Lock()
	got := src.subjectsAtOpen
	src.mu.Unlock()
	want := []string{"t.s.a-key", "t.s.a-value", "t.s.some_test_data-key", "t.s.some_test_data-value"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("subjects when the source opened (-want +got):\n%s", d)
	}
	topics := e.topics(t)
	for _, topic := range []string{"t.s.a", "t.s.some_test_data"} {
		if !slices.Contains(topics, topic) {
			t.Errorf("topic %s does not exist before the first row (topics %q)", topic, topics)
		}
	}
	if d := cmp.Diff(map[string]string{"s.a": "t.s.a", "s.some|test@data": "t.s.some_test_data"}, e.p.TableTopics()); d != "" {
		t.Errorf("table topics (-want +got):\n%s", d)
	}
	// The first row goes where the schemas were registered.
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(odd, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if n := len(e.records(t, "t.s.some_test_data")); n != 1 {
		t.Errorf("%d records in t.s.some_test_data, want 1", n)
	}
	if n := len(e.records(t, "t.s.a")); n != 0 {
		t.Errorf("%d records in t.s.a, want 0", n)
	}
}

func TestRunLeavesATableThatChangedIncompatiblyToItsFirstChange(t *testing.T) {
	e := newLoopEnv(t)
	// The subject holds a shape whose v was a bigint: today's text is
	// incompatible with it.
	old := table("b")
	old.Columns[1].Type = connectors.Type{Kind: connectors.KindInt64}
	codec, err := schema.NewCodec(schema.Namespace("t.s.b"), old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Register(context.Background(), "t.s.b-value", codec.Value); err != nil {
		t.Fatal(err)
	}
	src := &describingSource{fakeSource: newFakeSource(), tables: []*connectors.Table{table("a"), table("b")}, reg: e.reg}
	stop, _, _ := e.run(t, src)
	waitFor(t, "the source opened", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.subjectsAtOpen != nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if d := cmp.Diff([]string{"t.s.a-key", "t.s.a-value", "t.s.b-value"}, src.subjectsAtOpen); d != "" {
		t.Errorf("subjects when the source opened (-want +got):\n%s", d)
	}
	if topics := e.topics(t); slices.Contains(topics, "t.s.b") {
		t.Errorf("topic t.s.b was created for a shape that cannot be registered (topics %q)", topics)
	}
}

// countingRegistry is a fake registry that counts the requests it serves.
type countingRegistry struct {
	h        http.Handler
	requests atomic.Int64
}

func (c *countingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Add(1)
	c.h.ServeHTTP(w, r)
}

func TestRunAnnouncesATableTakenWhileRunningBeforeItsFirstChange(t *testing.T) {
	for _, delivery := range []string{config.DeliveryAtLeastOnce, config.DeliveryExactlyOnce} {
		t.Run(delivery, func(t *testing.T) {
			e := newLoopEnv(t)
			e.cfg.Delivery = delivery
			e.cfg.Source.Tables = []string{"s.a", "s.new"}
			counting := &countingRegistry{h: srfake.NewRegistry().Handler()}
			srv := httptest.NewServer(counting)
			t.Cleanup(srv.Close)
			reg, err := e.cfg.NewRegistry(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			e.reg = reg
			src := newFakeSource()
			stop, _, _ := e.run(t, src)
			a := table("a")
			src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
			waitFor(t, "position 1 stored", func() bool { return src.lastAck() == fakePos(1) })

			// The source takes a table while running: a batch of the
			// table alone, with no change and no checkpoint.
			n := table("new")
			src.batches <- connectors.Batch{Tables: []*connectors.Table{n}}
			waitFor(t, "the new table's topic", func() bool { return e.p.TableTopics()["s.new"] == "t.s.new" })
			subjects, err := reg.Subjects(context.Background(), "t.s.new")
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff([]string{"t.s.new-key", "t.s.new-value"}, subjects); d != "" {
				t.Errorf("subjects before the table's first change (-want +got):\n%s", d)
			}
			if topics := e.topics(t); !slices.Contains(topics, "t.s.new") {
				t.Errorf("topic t.s.new does not exist before the table's first change (topics %q)", topics)
			}
			if got := src.lastAck(); got != fakePos(1) {
				t.Errorf("after a batch of tables alone, the last ack is %v, want 1", got)
			}

			// Its first change asks the registry nothing.
			before := counting.requests.Load()
			src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(n, 1, "y", 2)}, Checkpoint: fakePos(2)}
			waitFor(t, "position 2 stored", func() bool { return src.lastAck() == fakePos(2) })
			if d := counting.requests.Load() - before; d != 0 {
				t.Errorf("the announced table's first change made %d registry requests, want 0", d)
			}
			if err := stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if got := e.stored(t); got != "fake:2" {
				t.Errorf("stored position %q, want fake:2", got)
			}
			if n := len(e.records(t, "t.s.new")); n != 1 {
				t.Errorf("%d records in t.s.new, want 1", n)
			}
		})
	}
}

func TestRunGivesNoEntityTopicToAnOutboxTableTakenWhileRunning(t *testing.T) {
	e := newLoopEnv(t)
	e.withOutbox(t)
	e.cfg.Source.Tables = []string{"s.a", "s.b", "s.ob"}
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	b := table("b")
	src.batches <- connectors.Batch{Tables: []*connectors.Table{outboxRows, b}}
	waitFor(t, "the new table's topic", func() bool { return e.p.TableTopics()["s.b"] == "t.s.b" })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if _, ok := e.p.TableTopics()["s.ob"]; ok {
		t.Errorf("outbox table s.ob has an entity topic: %v", e.p.TableTopics())
	}
	subjects, err := e.reg.Subjects(context.Background(), "t.s.")
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"t.s.b-key", "t.s.b-value"}, subjects); d != "" {
		t.Errorf("subjects (-want +got):\n%s", d)
	}
}
