package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/liberator-cdc/liberator/connectors"
)

// sqlstateObjectInUse is what START_REPLICATION fails with while another
// walsender streams from the slot.
const sqlstateObjectInUse = "55006"

// SlotActiveError is the error of a START_REPLICATION refused because
// another process streams from the slot. After a network blip that
// process is usually liberator's own earlier walsender, which the server
// ends once wal_sender_timeout passes without a reply; the source waits
// for it (see startReplication), and returns this error only when the
// slot stays busy.
type SlotActiveError struct {
	Slot string
	// PID is the process streaming from the slot, 0 if it was not known.
	PID int
	// Waited is how long the source waited for the slot to become free.
	Waited time.Duration
	Err    error
}

func (e *SlotActiveError) Error() string {
	return fmt.Sprintf("start replication from slot %q: the slot is still active for PID %d after %s: another process streams from it; stop it (SELECT pg_terminate_backend(%d) if it is a stale liberator), or give this pipeline its own source.postgres.slot: %v",
		e.Slot, e.PID, e.Waited.Round(time.Second), e.PID, e.Err)
}

// Unwrap returns the server's refusal and connectors.ErrSourceBusy.
func (e *SlotActiveError) Unwrap() []error { return []error{e.Err, connectors.ErrSourceBusy} }

// slotActiveWait bounds the wait for a busy slot: at least a minute, and
// longer than wal_sender_timeout, after which the server ends a walsender
// whose client went away without a word.
func slotActiveWait(walSenderTimeout time.Duration) time.Duration {
	return max(time.Minute, walSenderTimeout+15*time.Second)
}

// startReplication runs START_REPLICATION. While the slot is active for
// another process it retries with backoff, logging each retry, for up to
// slotActiveWait; then it returns a *SlotActiveError.
func (s *Source) startReplication(ctx context.Context) error {
	start := time.Now()
	wait := 250 * time.Millisecond
	var bound time.Duration
	for attempt := 1; ; attempt++ {
		err := pglogrepl.StartReplication(ctx, s.repl, s.cfg.Slot, s.startAt, pglogrepl.StartReplicationOptions{
			PluginArgs: s.pluginArgs(),
		})
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != sqlstateObjectInUse {
			if err != nil {
				return fmt.Errorf("start replication from slot %q: %w", s.cfg.Slot, err)
			}
			return nil
		}
		// The refusal is followed by ReadyForQuery, which the next
		// START_REPLICATION must not mistake for its answer.
		if err := s.awaitReady(ctx); err != nil {
			return err
		}
		if bound == 0 {
			bound = slotActiveWait(s.walSenderTimeout(ctx))
		}
		sl, _ := readSlot(ctx, s.conn, s.cfg.Slot)
		waited := time.Since(start)
		if waited+wait > bound {
			return &SlotActiveError{Slot: s.cfg.Slot, PID: sl.ActivePID, Waited: waited, Err: err}
		}
		s.log.Warn("replication slot is active for another process; waiting for it to end (after a lost connection, the server ends the old walsender within wal_sender_timeout)",
			"slot", s.cfg.Slot, "active_pid", sl.ActivePID, "attempt", attempt, "retry_in", wait, "gives_up_after", bound)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// awaitReady reads the replication connection up to its ReadyForQuery.
func (s *Source) awaitReady(ctx context.Context) error {
	for {
		msg, err := s.repl.ReceiveMessage(ctx)
		if err != nil {
			return connectors.MarkRetryable(fmt.Errorf("start replication from slot %q: %w", s.cfg.Slot, err))
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return nil
		}
	}
}

// walSenderTimeout reads the server's wal_sender_timeout, 0 when it is off
// or cannot be read.
func (s *Source) walSenderTimeout(ctx context.Context) time.Duration {
	var ms int64
	if err := s.conn.QueryRow(ctx, `SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout'`).Scan(&ms); err != nil {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}
