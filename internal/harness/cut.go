package harness

import (
	"net"
	"sync"
)

// Cutter cuts a server off its clients for real, at the network level:
// Cut closes every live connection and, until Restore, accepts new ones
// only to close them at once, as a broker behind a broken network or
// a restarting proxy would. Clients see connection errors, not answers.
//
// Give Listen to kfake.ListenFn (through KafkaClusterOptions) to cut a
// Kafka cluster:
//
//	cut := harness.NewCutter()
//	k := harness.Kafka(t, harness.KafkaClusterOptions(kfake.ListenFn(cut.Listen)))
//	cut.Cut()
//	defer cut.Restore()
type Cutter struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	down  bool
}

// NewCutter returns a Cutter that lets connections through.
func NewCutter() *Cutter { return &Cutter{conns: map[net.Conn]struct{}{}} }

// Listen listens on network and addr, like net.Listen, and wraps the
// listener so that Cut reaches its connections. It may be called for
// several listeners (one per broker).
func (c *Cutter) Listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &cutListener{Listener: l, c: c}, nil
}

// Cut closes every live connection and refuses new ones until Restore.
func (c *Cutter) Cut() {
	c.mu.Lock()
	c.down = true
	live := make([]net.Conn, 0, len(c.conns))
	for conn := range c.conns {
		live = append(live, conn)
	}
	c.mu.Unlock()
	for _, conn := range live {
		conn.Close()
	}
}

// Restore lets connections through again.
func (c *Cutter) Restore() {
	c.mu.Lock()
	c.down = false
	c.mu.Unlock()
}

// IsCut reports whether connections are being refused.
func (c *Cutter) IsCut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

type cutListener struct {
	net.Listener
	c *Cutter
}

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.c.mu.Lock()
		if l.c.down {
			l.c.mu.Unlock()
			conn.Close()
			continue
		}
		tc := &trackedConn{Conn: conn, c: l.c}
		l.c.conns[tc] = struct{}{}
		l.c.mu.Unlock()
		return tc, nil
	}
}

// trackedConn forgets itself when closed, so that a long run does not
// keep every connection it ever accepted.
type trackedConn struct {
	net.Conn
	c    *Cutter
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.conns, t)
		t.c.mu.Unlock()
	})
	return t.Conn.Close()
}
