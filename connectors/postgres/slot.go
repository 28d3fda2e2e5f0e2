package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// prepareStart reads the slot, decides where streaming starts and which
// snapshot is due (decideStart), and carries the decision out.
func (s *Source) prepareStart(ctx context.Context, resume []byte) error {
	sn := &s.snaps
	if err := sn.Init(s.cfg.Snapshots, s.cfg.Tables, canonicalName); err != nil {
		return err
	}
	in := startInput{SlotName: s.cfg.Slot, Database: s.conn.Config().Database, Mode: s.cfg.Snapshot, OnGap: s.cfg.OnGap}
	if resume != nil {
		pos, err := ParsePosition(resume)
		if err != nil {
			return fmt.Errorf("read stored position: %w", err)
		}
		in.Stored = &pos
	}
	var err error
	if in.Slot, err = readSlot(ctx, s.conn, s.cfg.Slot); err != nil {
		return err
	}
	a := decideStart(in)
	if a.Warn != "" {
		args := []any{"slot", s.cfg.Slot}
		if in.Stored != nil {
			args = append(args, "stored_position", in.Stored.String())
		}
		if in.Slot.Exists {
			args = append(args, "confirmed_flush_lsn", in.Slot.ConfirmedFlush.String())
		}
		s.log.Warn(a.Warn, args...)
	}
	switch a.Kind {
	case startFail:
		return a.Err
	case startResume:
		return s.resume(*in.Stored)
	case startFromSlot:
		s.startAt = a.From
		s.acked.Store(uint64(a.From))
		s.log.Info("streaming from the slot's confirmed_flush_lsn", "slot", s.cfg.Slot, "position", a.From.String())
	case startCreate:
		if err := s.createSlot(ctx, a.Export); err != nil {
			return err
		}
	}
	// lastCP stays 0, so that the position streaming starts from is
	// stored before anything else (readAll).
	switch {
	case a.Reconcile:
		sn.State = nil
		sn.Reconcile(sn.Tables...)
	case a.Initial:
		sn.StartInitial()
	}
	return nil
}

// readSlot describes the slot; Exists is false if there is none.
func readSlot(ctx context.Context, conn *pgx.Conn, slot string) (slotInfo, error) {
	var sl slotInfo
	var confirmed string
	err := conn.QueryRow(ctx, `SELECT coalesce(plugin, ''), coalesce(database, ''), coalesce(confirmed_flush_lsn::text, ''),
		coalesce(wal_status, ''), coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1`, slot).
		Scan(&sl.Plugin, &sl.Database, &confirmed, &sl.WALStatus, &sl.ActivePID)
	if errors.Is(err, pgx.ErrNoRows) {
		return slotInfo{}, nil
	}
	if err != nil {
		return slotInfo{}, fmt.Errorf("describe replication slot %q: %w", slot, err)
	}
	sl.Exists = true
	if confirmed != "" {
		if sl.ConfirmedFlush, err = pglogrepl.ParseLSN(confirmed); err != nil {
			return slotInfo{}, fmt.Errorf("describe replication slot %q: confirmed_flush_lsn: %w", slot, err)
		}
	}
	return sl, nil
}

// resume streams from a stored position whose slot is still there. An
// initial snapshot it records as unfinished is read first, from where it
// stopped; an incremental snapshot continues while streaming; tables added
// to the config since are snapshotted incrementally.
func (s *Source) resume(pos Position) error {
	slot := s.cfg.Slot
	s.startAt = pos.LSN
	s.lastCP = pos.LSN
	s.acked.Store(uint64(pos.LSN))
	if s.snaps.Resume(&snapshot.PositionState{Tables: pos.Tables, Snapshot: pos.Snapshot}, true, s.log) {
		s.log.Info("resuming the initial snapshot where it stopped; streaming follows from the slot's consistent point",
			"slot", slot, "position", pos.String())
		return nil
	}
	s.log.Info("resuming stream", "slot", slot, "position", pos.String())
	return nil
}

// createSlot creates the slot; with export, its exported snapshot is read
// as the initial snapshot before streaming.
func (s *Source) createSlot(ctx context.Context, export bool) error {
	slot := s.cfg.Slot
	action := "NOEXPORT_SNAPSHOT"
	if export {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, s.repl, slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: action})
	if err != nil {
		return fmt.Errorf("source.postgres.slot: create replication slot %q: %w (the user needs the REPLICATION attribute, and max_replication_slots a free slot)", slot, err)
	}
	lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("create replication slot %q: %w", slot, err)
	}
	s.startAt = lsn
	if export {
		s.snapshotName = res.SnapshotName
		s.snaps.StartInitial()
	}
	s.log.Info("created replication slot", "slot", slot, "consistent_point", lsn.String())
	return nil
}
