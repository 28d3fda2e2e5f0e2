package pipeline

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/connectors"
)

// cutListener wraps the broker's listener so that a test can cut Kafka
// off for real: cut closes every live connection and refuses new ones
// until restore.
type cutListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	down  bool
}

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.down {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		return c, nil
	}
}

func (l *cutListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

func (l *cutListener) restore() {
	l.mu.Lock()
	l.down = false
	l.mu.Unlock()
}

func TestRunIsNotReadyWhileKafkaIsUnreachableAndAcksNothingItDidNotAcknowledge(t *testing.T) {
	defer func(d time.Duration) { stallAfter = d }(stallAfter)
	stallAfter = 300 * time.Millisecond
	var lis *cutListener
	e := newLoopEnv(t, kfake.ListenFn(func(network, addr string) (net.Listener, error) {
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		lis = &cutListener{Listener: l}
		return lis, nil
	}))
	src := newFakeSource()
	stop, _, _ := e.run(t, src)
	a := table("a")
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 1, "x", 1)}, Checkpoint: fakePos(1)}
	waitFor(t, "position 1 acked", func() bool { return src.lastAck() == fakePos(1) })
	if st, _ := e.p.State(); st != "running" {
		t.Fatalf("state = %q before the outage, want running", st)
	}

	lis.cut()
	src.batches <- connectors.Batch{Changes: []connectors.Change{upsert(a, 2, "y", 2)}, Checkpoint: fakePos(2)}
	waitFor(t, "the pipeline to leave running", func() bool { st, _ := e.p.State(); return st != "running" })
	if got := gauge(e.p.metrics.ready); got != 0 {
		t.Errorf("liberator_ready = %v during the outage, want 0", got)
	}
	if got := gauge(e.p.metrics.retrying); got != 1 {
		t.Errorf("liberator_retrying = %v during the outage, want 1", got)
	}
	if got := src.lastAck(); got != fakePos(1) {
		t.Errorf("last ack = %v during the outage, want fake:1", got)
	}

	lis.restore()
	waitFor(t, "position 2 acked once Kafka is back", func() bool { return src.lastAck() == fakePos(2) })
	waitFor(t, "the pipeline to run again", func() bool { st, _ := e.p.State(); return st == "running" })
	if got := gauge(e.p.metrics.ready); got != 1 {
		t.Errorf("liberator_ready = %v after the outage, want 1", got)
	}
	if got := gauge(e.p.metrics.retrying); got != 0 {
		t.Errorf("liberator_retrying = %v after the outage, want 0", got)
	}
	var keys []string
	for _, r := range e.records(t, "t.s.a") {
		keys = append(keys, string(r.Key))
	}
	if len(keys) < 2 {
		t.Errorf("topic t.s.a has %d records after the outage, want both rows", len(keys))
	}
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
}

// gauge reads the value of g.
func gauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}
