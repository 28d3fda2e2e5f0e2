package ha

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sessionTimeout = time.Second

// member is one replica taking part in the election.
type member struct {
	name   string
	active atomic.Bool
	terms  atomic.Int32
	cancel context.CancelFunc
	done   chan error
}

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// join starts a member whose active function runs until its context ends.
func join(t *testing.T, name string, clientOpts ...kgo.Opt) *member {
	t.Helper()
	m := &member{name: name, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	cfg := Config{
		ClientOptions:  clientOpts,
		Topic:          "_liberator_ha",
		Group:          GroupName("orders"),
		SessionTimeout: sessionTimeout,
		StopTimeout:    time.Second,
		Log:            slog.New(slog.DiscardHandler).With("member", name),
	}
	go func() {
		m.done <- Run(ctx, cfg, func(ctx context.Context) error {
			m.active.Store(true)
			m.terms.Add(1)
			<-ctx.Done()
			m.active.Store(false)
			return nil
		})
	}()
	t.Cleanup(func() { m.stop(t) })
	return m
}

func (m *member) stop(t *testing.T) {
	t.Helper()
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("member %s did not stop", m.name)
	}
}

func TestElection(t *testing.T) {
	t.Run("exactly one of two members is active, and the other takes over when it stops", func(t *testing.T) {
		c := newCluster(t)
		a := join(t, "a", kgo.SeedBrokers(c.ListenAddrs()...))
		require.Eventually(t, a.active.Load, 10*time.Second, 10*time.Millisecond, "the only member never became active")
		b := join(t, "b", kgo.SeedBrokers(c.ListenAddrs()...))
		// b joins, the group rebalances, and a keeps the partition.
		requireNever(t, func() bool { return b.active.Load() || !a.active.Load() }, 3*sessionTimeout)

		began := time.Now()
		a.stop(t)
		require.Eventually(t, b.active.Load, sessionTimeout+5*time.Second, 10*time.Millisecond, "the standby did not take over")
		t.Logf("the standby became active %s after the active left", time.Since(began).Round(time.Millisecond))
		require.False(t, a.active.Load())
		require.EqualValues(t, 1, b.terms.Load())
	})

	t.Run("an active member cut off from Kafka stops, and the standby takes over within the session timeout", func(t *testing.T) {
		c := newCluster(t)
		cut := &cutter{}
		a := join(t, "a", kgo.SeedBrokers(c.ListenAddrs()...), kgo.Dialer(cut.dial))
		require.Eventually(t, a.active.Load, 10*time.Second, 10*time.Millisecond)
		b := join(t, "b", kgo.SeedBrokers(c.ListenAddrs()...))
		requireNever(t, b.active.Load, 2*sessionTimeout)

		began := time.Now()
		cut.cut()
		// The cut-off member hears nothing: its session expires on the
		// broker, which gives the partition to b; a finds out when its
		// heartbeats fail, and stops.
		require.Eventually(t, b.active.Load, sessionTimeout+5*time.Second, 10*time.Millisecond, "the standby did not take over")
		t.Logf("the standby became active %s after the active was cut off", time.Since(began).Round(time.Millisecond))
		require.Eventually(t, func() bool { return !a.active.Load() }, 2*sessionTimeout+5*time.Second, 10*time.Millisecond, "the cut-off member did not stop")
		t.Logf("the cut-off member stopped %s after the cut", time.Since(began).Round(time.Millisecond))
	})
}

func TestAnErrorOfTheActiveRunEndsRunWithIt(t *testing.T) {
	c := newCluster(t)
	failed := errors.New("the pipeline failed")
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Config{
			ClientOptions:  []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)},
			Topic:          "_liberator_ha",
			Group:          GroupName("orders"),
			SessionTimeout: sessionTimeout,
			StopTimeout:    time.Second,
			Log:            slog.New(slog.DiscardHandler),
		}, func(context.Context) error { return failed })
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, failed)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end")
	}
}

// requireNever fails if cond holds at any check within d.
func requireNever(t *testing.T, cond func() bool, d time.Duration) {
	t.Helper()
	require.Never(t, cond, d, 10*time.Millisecond)
}

// cutter dials a member's connections to the broker until cut: then it
// closes every connection and refuses new ones, as a network partition
// would.
type cutter struct {
	mu   sync.Mutex
	cutd bool
	live []net.Conn
}

func (c *cutter) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cutd {
		return nil, errors.New("cut off")
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, network, host)
	if err == nil {
		c.live = append(c.live, conn)
	}
	return conn, err
}

func (c *cutter) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutd = true
	for _, conn := range c.live {
		conn.Close()
	}
	c.live = nil
}
