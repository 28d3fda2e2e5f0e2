package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// logSource is a source over a fixed log of batches that obeys the
// contract across runs: Open resumes after the batch whose checkpoint it
// is given, and Read hands out the batches the test has released.
type logSource struct {
	mu       sync.Mutex
	log      []connectors.Batch
	released int
	next     int
	resumes  []string // what each Open was given
	acked    []connectors.Position
	wake     chan struct{} // closed and replaced when released grows
}

func newLogSource(log ...connectors.Batch) *logSource {
	return &logSource{log: log, wake: make(chan struct{})}
}

// release lets Read hand out the first n batches of the log.
func (s *logSource) release(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = n
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *logSource) Open(_ context.Context, resume []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resumes = append(s.resumes, string(resume))
	s.next = 0
	for i, b := range s.log {
		if b.Checkpoint != nil && string(b.Checkpoint.Encode()) == string(resume) {
			s.next = i + 1
		}
	}
	return nil
}

func (s *logSource) Read(ctx context.Context) (connectors.Batch, error) {
	for {
		s.mu.Lock()
		if s.next < s.released {
			b := s.log[s.next]
			s.next++
			s.mu.Unlock()
			return b, nil
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return connectors.Batch{}, ctx.Err()
		}
	}
}

func (s *logSource) Ack(_ context.Context, pos connectors.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acked = append(s.acked, pos)
	return nil
}

func (s *logSource) Close(context.Context) error { return nil }

func (s *logSource) lastAck() connectors.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acked) == 0 {
		return nil
	}
	return s.acked[len(s.acked)-1]
}

func (s *logSource) opened() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.resumes)
}

// priced is a table with a numeric(10,2) column.
func priced() *connectors.Table {
	return table("a", connectors.Column{Name: "price", Type: connectors.Type{Kind: connectors.KindDecimal, Precision: 10, Scale: 2}, Nullable: true, SQLType: "numeric(10,2)"})
}

func withPrice(c connectors.Change, price string) connectors.Change {
	c.After[2] = price
	return c
}

// badRowLog is three batches; the second holds a good row (id 2) and a
// row whose price is NaN (id 3).
func badRowLog(a *connectors.Table) []connectors.Batch {
	return []connectors.Batch{
		{Changes: []connectors.Change{withPrice(upsert(a, 1, "x", 1), "1.50")}, Checkpoint: fakePos(1)},
		{Changes: []connectors.Change{withPrice(upsert(a, 2, "x", 2), "2.50"), withPrice(upsert(a, 3, "bad", 2), "NaN")}, Checkpoint: fakePos(2)},
		{Changes: []connectors.Change{withPrice(upsert(a, 4, "x", 3), "4.50")}, Checkpoint: fakePos(3)},
	}
}

// ids are the ids of the records of an entity topic, decoded.
func (e *loopEnv) ids(t *testing.T, topic string) []int64 {
	t.Helper()
	var out []int64
	for _, r := range e.records(t, topic) {
		k, err := e.reg.Decode(context.Background(), r.Key)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(map[string]any)["id"].(int64))
	}
	return out
}

func (e *loopEnv) badRows(table, action string) float64 {
	var m dto.Metric
	if err := e.p.metrics.badRows.WithLabelValues(table, action).Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func TestBadRowFailStopsBeforeTheRowNamingTableKeyAndColumn(t *testing.T) {
	e := newLoopEnv(t)
	src := newLogSource(badRowLog(priced())...)
	src.release(3)
	_, done, runErr := e.run(t, src)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop at the bad row")
	}
	var bre *BadRowError
	if !errors.As(*runErr, &bre) {
		t.Fatalf("Run = %v, want a *BadRowError", *runErr)
	}
	if connectors.IsRetryable(*runErr) {
		t.Errorf("a bad row under fail is retryable: %v", *runErr)
	}
	for _, want := range []string{"bad row in table s.a, key id=3, column \"price\", at position fake:2", `decimal value "NaN"`, "set errors.on_bad_row to skip or dead_letter"} {
		if !strings.Contains(bre.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, bre)
		}
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1: the position stays before the row", got)
	}
	if got := e.badRows("s.a", "failed"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=failed} = %v, want 1", got)
	}
}

func TestBadRowSkipLogsCountsAndGoesOn(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.Errors.OnBadRow = config.OnBadRowSkip
	src := newLogSource(badRowLog(priced())...)
	src.release(3)
	stop, _, _ := e.run(t, src)
	waitFor(t, "position 3 acked", func() bool { return src.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := e.ids(t, "t.s.a"); !slices.Equal(got, []int64{1, 2, 4}) {
		t.Errorf("ids in the topic = %v, want [1 2 4]: every row but the bad one", got)
	}
	if got := e.badRows("s.a", "skipped"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=skipped} = %v, want 1", got)
	}
}

func TestBadRowDeadLetterWritesJSONAndHoldsThePositionUntilKafkaHasIt(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.Errors.OnBadRow = config.OnBadRowDeadLetter
	e.cfg.Errors.DeadLetterTopic = "t.bad"
	log := badRowLog(priced())
	log[1].Changes[1].After[1] = strings.Repeat("v", 3000)
	src := newLogSource(log...)
	src.release(1)
	stop, done, runErr := e.run(t, src)
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// Kafka now refuses the dead letter with its row: the run that
	// produced it must not store position 2, though the good rows of
	// that batch are in. The next run leaves the row out.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("2000")}}, "t.bad"); err != nil {
		t.Fatal(err)
	}
	src.release(3)
	waitFor(t, "position 3 acked", func() bool {
		select {
		case <-done:
			t.Fatalf("Run = %v", *runErr)
		default:
		}
		return src.lastAck() == fakePos(3)
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := src.opened(); !slices.Equal(got, []string{"", "fake:1"}) {
		t.Errorf("the runs resumed from %q, want a second run from fake:1: the dead letter Kafka refused held the position", got)
	}
	if got := e.ids(t, "t.s.a"); !slices.Contains(got, 4) || slices.Contains(got, 3) {
		t.Errorf("ids in the entity topic = %v, want 4 and never 3", got)
	}
	recs := e.records(t, "t.bad")
	if len(recs) != 1 {
		t.Fatalf("%d dead letters, want 1", len(recs))
	}
	var dl kafka.DeadLetter
	if err := json.Unmarshal(recs[0].Value, &dl); err != nil {
		t.Fatal(err)
	}
	if dl.Table != "s.a" || dl.Column != "price" || dl.Reason != kafka.ReasonEncode || dl.Position != "fake:2" || !dl.RowOmitted || string(recs[0].Key) != `{"id":3}` {
		t.Errorf("dead letter = %s, key %s", recs[0].Value, recs[0].Key)
	}
	// Each run that read the row dead-lettered it: the one whose dead
	// letter Kafka refused, and the next.
	if got := e.badRows("s.a", "dead_lettered"); got != 2 {
		t.Errorf("liberator_bad_rows_total{action=dead_lettered} = %v, want 2", got)
	}
}

func TestARecordKafkaRefusesAfterItsTopicShrankGoesToThePolicy(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.Errors.OnBadRow = config.OnBadRowSkip
	a := table("a")
	src := newLogSource(
		connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)},
		connectors.Batch{Changes: []connectors.Change{upsert(a, 2, strings.Repeat("z", 5000), 2)}, Checkpoint: fakePos(2)},
		connectors.Batch{Changes: []connectors.Change{upsert(a, 3, "x", 3)}, Checkpoint: fakePos(3)},
	)
	src.release(1)
	stop, _, _ := e.run(t, src)
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	// The topic liberator created takes 1 MB; it shrinks under the run's
	// feet, so that only Kafka can refuse the row.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.cluster.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).AlterTopicConfigs(context.Background(),
		[]kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("2000")}}, "t.s.a"); err != nil {
		t.Fatal(err)
	}
	src.release(3)
	waitFor(t, "position 3 acked", func() bool { return src.lastAck() == fakePos(3) })
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := src.opened(); !slices.Equal(got, []string{"", "fake:1"}) {
		t.Errorf("the runs resumed from %q, want a second run from fake:1", got)
	}
	if got := e.ids(t, "t.s.a"); !slices.Equal(got, []int64{1, 3}) {
		t.Errorf("ids in the topic = %v, want [1 3]", got)
	}
	if got := e.badRows("s.a", "skipped"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=skipped} = %v, want 1", got)
	}
}

func TestBadRowThatNoDeadLetterCanHoldStopsTheRun(t *testing.T) {
	e := newLoopEnv(t)
	e.cfg.Errors.OnBadRow = config.OnBadRowDeadLetter
	e.cfg.Kafka.MaxMessageBytes = 4096
	// A text key, and a row whose key is too large for any dead letter
	// of 4 KiB: the row cannot be left out of it.
	a := &connectors.Table{Schema: "s", Name: "a", Key: []int{0}, Columns: []connectors.Column{
		{Name: "code", Type: connectors.Type{Kind: connectors.KindString}, SQLType: "text"},
		{Name: "price", Type: connectors.Type{Kind: connectors.KindDecimal, Precision: 10, Scale: 2}, Nullable: true, SQLType: "numeric(10,2)"},
	}}
	at := time.Unix(1_700_000_000, 0)
	src := newLogSource(
		connectors.Batch{Changes: []connectors.Change{{Op: connectors.OpCreate, Table: a, After: []any{"one", "1.50"}, Pos: fakePos(1), CommitTime: at}}, Checkpoint: fakePos(1)},
		connectors.Batch{Changes: []connectors.Change{{Op: connectors.OpCreate, Table: a, After: []any{strings.Repeat("k", 5000), "NaN"}, Pos: fakePos(2), CommitTime: at}}, Checkpoint: fakePos(2)},
	)
	src.release(2)
	_, done, runErr := e.run(t, src)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	var bre *BadRowError
	if !errors.As(*runErr, &bre) || bre.DeadLetter == nil || bre.Column != "price" || !strings.Contains(bre.Error(), "cannot be written to the dead-letter topic") {
		t.Fatalf("Run = %v, want a BadRowError of column price that says the dead letter failed", *runErr)
	}
	if got := e.stored(t); got != "fake:1" {
		t.Errorf("stored position = %q, want fake:1", got)
	}
	if got := e.badRows("s.a", "failed"); got != 1 {
		t.Errorf("liberator_bad_rows_total{action=failed} = %v, want 1", got)
	}
}
