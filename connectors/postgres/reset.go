package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liberator-cdc/liberator/connectors"
)

var (
	_ connectors.Identifier = (*Source)(nil)
	_ connectors.Resetter   = (*Source)(nil)
)

// Identity runs IDENTIFY_SYSTEM on a replication connection of its own and
// returns "postgres system <system identifier> database <db> slot <slot>".
// A cluster restored from a base backup keeps its system identifier; one
// made with initdb gets a new one.
func (s *Source) Identity(ctx context.Context) (string, error) {
	cfg, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return "", fmt.Errorf("source.dsn: %w", err)
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", connectors.MarkRetryable(fmt.Errorf("connect to postgres for replication: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		return "", fmt.Errorf("identify system: %w", err)
	}
	return identity(sys, s.cfg.Slot), nil
}

func identity(sys pglogrepl.IdentifySystemResult, slot string) string {
	return fmt.Sprintf("postgres system %s database %s slot %s", sys.SystemID, sys.DBName, slot)
}

// Reset drops the slot, if it exists, and returns a position at LSN 0/0
// (resetLSN). Opened from it, the source streams from a new slot and
// re-snapshots every table with reconcile (see decideStart). Reset refuses
// to drop a slot that a process streams from: stop the running liberator
// first.
func (s *Source) Reset(ctx context.Context) (connectors.Position, error) {
	conn, err := pgx.Connect(ctx, s.cfg.DSN)
	if err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("connect to postgres: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	slot := s.cfg.Slot
	sl, err := readSlot(ctx, conn, slot)
	if err != nil {
		return nil, err
	}
	if sl.Exists {
		if sl.ActivePID != 0 {
			return nil, fmt.Errorf("reset: replication slot %q is active for PID %d: stop the running liberator (or whatever else streams from the slot) first", slot, sl.ActivePID)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot($1)`, slot); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == sqlstateObjectInUse {
				return nil, fmt.Errorf("reset: drop replication slot %q: %w (stop the running liberator first)", slot, err)
			}
			return nil, fmt.Errorf("reset: drop replication slot %q: %w", slot, err)
		}
		s.log.Info("dropped replication slot", "slot", slot, "confirmed_flush_lsn", sl.ConfirmedFlush.String(), "wal_status", sl.WALStatus)
	}
	tables := make([]string, 0, len(s.cfg.Tables))
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		tables = append(tables, tn.String())
	}
	return Position{LSN: resetLSN, Tables: tables}, nil
}
