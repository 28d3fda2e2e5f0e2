package postgres

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
)

// tcpPair is a connected loopback TCP pair: what the test writes to w, c
// reads.
func tcpPair(t *testing.T) (c *lowatConn, w net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := ln.Accept()
		accepted <- conn
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	w = <-accepted
	require.NotNil(t, w)
	c = newLowatConn(conn.(*net.TCPConn))
	t.Cleanup(func() { c.Close(); w.Close() })
	return c, w
}

func TestLowatConn(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the mark is raised on Linux only")
	}
	t.Run("a read under the raised mark returns fewer bytes than the mark when no more come", func(t *testing.T) {
		c, w := tcpPair(t)
		c.raise()
		require.True(t, c.raised.Load())
		go func() { _, _ = w.Write(make([]byte, 100)) }()
		began := time.Now()
		n, err := io.ReadAtLeast(c, make([]byte, 8192), 100)
		require.NoError(t, err)
		require.Equal(t, 100, n)
		require.Less(t, time.Since(began), time.Second, "the read waited for bytes that were not coming")
	})
	t.Run("a read under the raised mark takes a buffer's worth at once", func(t *testing.T) {
		c, w := tcpPair(t)
		c.raise()
		_, err := w.Write(make([]byte, 2*lowatBytes))
		require.NoError(t, err)
		n, err := io.ReadAtLeast(c, make([]byte, replReadBuffer), lowatBytes)
		require.NoError(t, err)
		require.GreaterOrEqual(t, n, lowatBytes)
		require.True(t, c.raised.Load())
	})
	t.Run("a wait for bytes that do not come lowers the mark, and the caller's deadline still ends it", func(t *testing.T) {
		c, _ := tcpPair(t)
		c.raise()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(20*lowatWait)))
		_, err := c.Read(make([]byte, 8192))
		require.Error(t, err)
		require.True(t, pgconn.Timeout(err) || isNetTimeout(err), "not a timeout: %v", err)
		require.False(t, c.raised.Load(), "the mark stays raised after a wait that timed out")
	})
	t.Run("a deadline of now set while a read waits ends it", func(t *testing.T) {
		c, _ := tcpPair(t)
		c.raise()
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 8192))
			if err == nil {
				_, err = c.Read(make([]byte, 8192))
			}
			done <- err
		}()
		// The read may or may not be waiting yet: both must end.
		require.NoError(t, c.SetReadDeadline(time.Now()))
		select {
		case err := <-done:
			require.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("the read did not end at the deadline")
		}
	})
}

func isNetTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// A large transaction is read under the raised mark; its end, and a small
// transaction after it, arrive although what is left of them is less than
// the mark.
func TestLowatLargeTransactionEndsWithoutStall(t *testing.T) {
	e := newGapEnv(t, 0)
	src := e.source(t, connectors.SnapshotNever, "")
	require.NoError(t, e.open(src, nil))
	const rows = 6000 // well past lowatSpan of WAL
	e.exec(t, fmt.Sprintf(`INSERT INTO t SELECT g, repeat('v', 100) FROM generate_series(1, %d) g`, rows))
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	readUntil := func(want int) {
		t.Helper()
		n := 0
		for n < want {
			b, err := src.Read(ctx)
			require.NoError(t, err)
			n += len(b.Changes)
		}
		require.Equal(t, want, n)
	}
	readUntil(rows)
	require.NotNil(t, src.replNet)
	require.False(t, src.replNet.raised.Load(), "the mark is still raised after the commit")
	began := time.Now()
	e.exec(t, `INSERT INTO t VALUES (0, 'small')`)
	readUntil(1)
	require.Less(t, time.Since(began), 5*time.Second)
}
