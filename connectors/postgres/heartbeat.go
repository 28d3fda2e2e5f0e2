package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// Lag reports the WAL between the acknowledged LSN and the server's WAL end
// as last reported on the replication connection, and the commit time of the
// newest transaction seen.
func (s *Source) Lag() connectors.Lag {
	lag := connectors.Lag{Bytes: -1}
	if end := s.walEnd.Load(); end != 0 {
		lag.Bytes = max(0, int64(end)-int64(s.acked.Load()))
	}
	if us := s.lastCommit.Load(); us != 0 {
		lag.LastCommit = time.UnixMicro(us)
	}
	return lag
}

var _ connectors.LagReporter = (*Source)(nil)

// noteWALEnd records the server's WAL end from a keepalive or XLogData.
func (s *Source) noteWALEnd(lsn pglogrepl.LSN) {
	if uint64(lsn) > s.walEnd.Load() {
		s.walEnd.Store(uint64(lsn))
	}
}

// watch runs beside the reader while streaming, on a connection of its own:
// every heartbeat interval it writes a heartbeat, and every minute (or
// heartbeat interval, if shorter) it checks the WAL the slot retains.
//
// A heartbeat matters when the captured tables are idle: WAL written by other
// tables, or other databases of the cluster, would otherwise pile up behind
// the slot. The heartbeat is a logical decoding message in the slot's own
// database (pg_logical_emit_message), or, when heartbeat_query is set, that
// statement (for instance an UPDATE of a heartbeat table). Either moves the
// stream forward, and the position after it is acknowledged like any other.
func (s *Source) watch(ctx context.Context, cfg *pgx.ConnConfig) error {
	if *s.cfg.HeartbeatInterval <= 0 && s.cfg.RetainedWALLimit <= 0 && s.cfg.RetainedWALWarn <= 0 {
		return nil
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres for heartbeats: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	every := time.Minute
	if *s.cfg.HeartbeatInterval > 0 {
		every = min(every, *s.cfg.HeartbeatInterval)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if *s.cfg.HeartbeatInterval > 0 {
			q := s.cfg.HeartbeatQuery
			if q == "" {
				q = "SELECT pg_logical_emit_message(false, 'liberator.heartbeat', now()::text)"
			}
			if _, err := conn.Exec(ctx, q); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return connectors.MarkRetryable(fmt.Errorf("source.postgres.heartbeat_query: %w", err))
			}
		}
		if s.cfg.RetainedWALLimit > 0 || s.cfg.RetainedWALWarn > 0 {
			var retained int64
			err := conn.QueryRow(ctx, `SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint FROM pg_replication_slots WHERE slot_name = $1`, s.cfg.Slot).Scan(&retained)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return connectors.MarkRetryable(fmt.Errorf("read retained WAL of slot %q: %w", s.cfg.Slot, err))
			}
			if err := s.checkRetained(retained, &warned); err != nil {
				return err
			}
		}
	}
}

// ErrRetainedWAL is returned when the slot retains more WAL than
// source.postgres.retained_wal_limit allows.
var ErrRetainedWAL = fmt.Errorf("replication slot retains too much WAL")

func (s *Source) checkRetained(retained int64, warned *bool) error {
	if lim := s.cfg.RetainedWALLimit; lim > 0 && retained > int64(lim) {
		return fmt.Errorf("%w: slot %q retains %s, over source.postgres.retained_wal_limit %s; liberator stops so that the server's disk does not fill. Find why it falls behind (Kafka down? too slow?), raise the limit, or drop the slot and take a new snapshot",
			ErrRetainedWAL, s.cfg.Slot, ByteSize(retained), s.cfg.RetainedWALLimit)
	}
	if w := s.cfg.RetainedWALWarn; w > 0 && retained > int64(w) {
		if !*warned {
			s.log.Warn("replication slot retains much WAL", "slot", s.cfg.Slot, "retained", ByteSize(retained).String(), "warn_at", s.cfg.RetainedWALWarn.String(), "limit", s.cfg.RetainedWALLimit.String())
		}
		*warned = true
	} else {
		*warned = false
	}
	return nil
}
