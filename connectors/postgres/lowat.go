package postgres

// The walsender sends every message of a transaction on its own, and a
// reader that keeps up with it wakes up and reads once per message: at
// about 250 bytes a row, a read system call and a scheduler wake-up per
// row. Inside a large transaction the replication socket's receive low
// water mark (SO_RCVLOWAT, which Linux TCP honours in poll and epoll) is
// raised, so that the reader wakes only when a buffer's worth has arrived
// and takes a hundred messages or more per read, into a read buffer larger
// than pgproto3's own (replReadBuffer). A transaction is large when its
// Begin's final LSN is at least lowatSpan past its first change; the mark
// drops again once less than lowatTail of WAL is left before the commit,
// so that its last messages are read as they come. A read never waits
// for more bytes longer than lowatWait: then the mark goes back to one
// byte and the read takes what there is, so the end of a transaction,
// which may be less than the mark, is late by at most that bound, and the
// stream never stalls. Only a plain TCP connection gets the mark
// (newLowatConn).

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// lowatBytes is the raised mark, half of the connection's read
	// buffer: a wake-up finds a hundred messages or more, and one read
	// takes them. Each wake-up of a reader waiting on the socket costs
	// the walsender too, whose send does it: with a mark of 4 KB and
	// pgproto3's buffer alone, it spent a quarter more CPU per row.
	lowatBytes = 32 << 10
	// lowatWait is the longest a read waits under the raised mark for
	// bytes that are not coming.
	lowatWait = 2 * time.Millisecond
	// lowatSpan is the least WAL between a transaction's first change and
	// its commit (a Begin's XLogData start and its final LSN) for which
	// the mark is raised: a small transaction is read as it arrives.
	lowatSpan = 256 << 10
	// lowatTail is the WAL left before a transaction's commit below which
	// the mark goes back to one byte: a change's message is about as long
	// as its WAL record, so what remains to be sent is likely less than
	// the mark.
	lowatTail = 2 * lowatBytes
)

// lowatConn is the replication connection with a receive low water mark
// that the stream raises inside large transactions. The stream goroutine
// raises and lowers the mark between reads; pgconn's background reader
// may read during a slow write, and deadlines may be set from any
// goroutine.
type lowatConn struct {
	net.Conn
	raw syscall.RawConn // the TCP socket; nil where the mark does not apply

	// raised is set while the socket's mark is lowatBytes: Read then
	// bounds each wait. It changes under mu, with the socket's mark.
	raised atomic.Bool

	mu       sync.Mutex
	deadline time.Time // the read deadline the caller set
}

// newLowatConn wraps a TCP connection. Only plain TCP gets the mark: on a
// Unix socket poll ignores it, and a TLS connection is left to pgconn as
// it is, which looks for a *tls.Conn for SCRAM's channel binding.
func newLowatConn(conn *net.TCPConn) *lowatConn {
	c := &lowatConn{Conn: conn}
	if raw, err := conn.SyscallConn(); err == nil {
		c.raw = raw
	}
	return c
}

// raise sets the mark to lowatBytes. It does nothing where the mark does
// not apply or is already raised.
func (c *lowatConn) raise() {
	if c.raw == nil || c.raised.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Raised before the socket's mark, so that a read that sees it
	// lowered never waits under the raised mark.
	c.raised.Store(true)
	if c.setMark(lowatBytes) != nil {
		c.raised.Store(false)
	}
}

// lower sets the mark back to one byte and the caller's deadline back on
// the connection.
func (c *lowatConn) lower() {
	if !c.raised.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.raised.Load() {
		return
	}
	if c.setMark(1) != nil {
		// The mark stays raised on the socket: keep bounding every
		// wait, so that no read waits for bytes that are not coming.
		return
	}
	c.raised.Store(false)
	_ = c.Conn.SetReadDeadline(c.deadline)
}

func (c *lowatConn) setMark(n int) error {
	var serr error
	err := c.raw.Control(func(fd uintptr) { serr = setRcvLowat(fd, n) })
	return errors.Join(err, serr)
}

// Read reads as the connection does. Under the raised mark it waits at
// most lowatWait (or until the caller's deadline, if sooner) for the mark's
// bytes, then lowers the mark and reads what has come.
func (c *lowatConn) Read(p []byte) (int, error) {
	if !c.raised.Load() {
		return c.Conn.Read(p)
	}
	c.mu.Lock()
	until := time.Now().Add(lowatWait)
	mine := c.deadline.IsZero() || until.Before(c.deadline)
	if !mine {
		until = c.deadline
	}
	_ = c.Conn.SetReadDeadline(until)
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	if n > 0 || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return n, err
	}
	c.mu.Lock()
	callers := !mine || !c.deadline.IsZero() && !time.Now().Before(c.deadline)
	c.mu.Unlock()
	if callers {
		return n, err
	}
	c.lower()
	return c.Conn.Read(p)
}

// SetReadDeadline sets the caller's read deadline.
func (c *lowatConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline sets the caller's read and write deadlines.
func (c *lowatConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// replReadBuffer is the replication connection's read buffer, beneath
// pgproto3's own of 8 KB: one read system call takes up to this much,
// twice the raised mark.
const replReadBuffer = 2 * lowatBytes
