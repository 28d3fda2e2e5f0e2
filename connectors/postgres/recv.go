package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// deadlineReceiver receives replication messages until a deadline, which it
// sets on the connection itself rather than through a context: pgconn
// watches a receive's context with a callback registered and removed per
// message, which a busy stream pays for hundreds of thousands of times a
// second. A context.Background receive is not watched. The parent context's
// end sets a deadline of now, which ends a receive under way.
type deadlineReceiver struct {
	parent   context.Context
	conn     *pgconn.PgConn
	deadline time.Time
	stopCtx  func() bool
}

func newDeadlineReceiver(ctx context.Context, conn *pgconn.PgConn) *deadlineReceiver {
	r := &deadlineReceiver{parent: ctx, conn: conn}
	r.stopCtx = context.AfterFunc(ctx, func() { _ = conn.Conn().SetReadDeadline(time.Now()) })
	return r
}

// receive receives the next message, or a timeout error (pgconn.Timeout)
// at until, or when the parent context ends.
func (r *deadlineReceiver) receive(until time.Time) (pgproto3.BackendMessage, error) {
	if !until.Equal(r.deadline) {
		r.deadline = until
		_ = r.conn.Conn().SetReadDeadline(until)
		if r.parent.Err() != nil {
			// Ended before the deadline was set: the callback's
			// deadline of now may have been overwritten.
			_ = r.conn.Conn().SetReadDeadline(time.Now())
		}
	}
	return r.conn.ReceiveMessage(context.Background())
}

// stop stops watching the parent context and clears the deadline.
func (r *deadlineReceiver) stop() {
	r.stopCtx()
	_ = r.conn.Conn().SetReadDeadline(time.Time{})
}
