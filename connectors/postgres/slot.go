package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// prepareStart decides where streaming starts and which snapshot is due:
//   - a stored position and its slot: stream from the position. An initial
//     snapshot it records as unfinished is read first, from where it
//     stopped; an incremental snapshot continues while streaming; tables
//     added to the config since are snapshotted incrementally.
//   - a stored position without its slot (the slot was dropped, or
//     invalidated by max_slot_wal_keep_size): a new slot is created and
//     every table is snapshotted again, incrementally while streaming (in
//     snapshot mode only, as an initial snapshot of the new slot).
//   - no position, a slot, snapshot mode initial or only: the slot is left
//     from a snapshot that never stored a position; drop it and start over;
//   - no position, a slot, mode never: stream from the slot;
//   - no position, no slot: create it, with an exported snapshot that is
//     read first unless the mode is never.
func (s *Source) prepareStart(ctx context.Context, resume []byte) error {
	sn := &s.snaps
	sn.Opts = s.cfg.Snapshots.WithDefaults()
	sn.Tables = nil
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		sn.Tables = append(sn.Tables, tn.String())
	}
	slot := s.cfg.Slot
	var plugin, db string
	var confirmed *string
	err := s.conn.QueryRow(ctx,
		`SELECT coalesce(plugin, ''), coalesce(database, ''), confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, slot).
		Scan(&plugin, &db, &confirmed)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("describe replication slot %q: %w", slot, err)
	}
	if exists && (plugin != "pgoutput" || db != s.conn.Config().Database) {
		return fmt.Errorf("source.postgres.slot: slot %q exists for plugin %q in database %q; liberator needs pgoutput in %q (choose another slot name)", slot, plugin, db, s.conn.Config().Database)
	}
	if resume != nil {
		pos, err := ParsePosition(resume)
		if err != nil {
			return fmt.Errorf("read stored position: %w", err)
		}
		if !exists {
			return s.replaceLostSlot(ctx, pos)
		}
		s.startAt = pos.LSN
		s.lastCP = pos.LSN
		s.acked.Store(uint64(pos.LSN))
		if pos.Snapshot != nil && pos.Snapshot.Initial {
			sn.State = pos.Snapshot.Reconcile(s.snaps.Tables, true)
			sn.Initial = true
			s.log.Info("resuming the initial snapshot where it stopped; streaming follows from the slot's consistent point",
				"slot", slot, "position", pos.String())
			return nil
		}
		sn.State = pos.Snapshot.Reconcile(s.snaps.Tables, false)
		if pos.Tables != nil {
			var added []string
			for _, t := range sn.Tables {
				if !slices.Contains(pos.Tables, t) {
					added = append(added, t)
				}
			}
			if len(added) > 0 {
				sn.State = sn.State.With(added...)
				s.log.Info("tables added to the config; snapshotting them while streaming", "tables", added)
			}
		}
		if sn.State != nil {
			for _, t := range sn.State.Tables {
				sn.Progress.Add(t.Table, true)
			}
		}
		s.log.Info("resuming stream", "slot", slot, "position", pos.String())
		return nil
	}
	if exists {
		if s.cfg.Snapshot == connectors.SnapshotNever {
			lsn, _ := pglogrepl.ParseLSN(deref(confirmed))
			s.startAt, s.lastCP = lsn, lsn
			s.acked.Store(uint64(lsn))
			s.log.Info("streaming from existing slot", "slot", slot, "position", lsn.String())
			return nil
		}
		s.log.Warn("dropping replication slot left by an unfinished snapshot", "slot", slot)
		if err := pglogrepl.DropReplicationSlot(ctx, s.repl, slot, pglogrepl.DropReplicationSlotOptions{Wait: true}); err != nil {
			return fmt.Errorf("drop replication slot %q: %w", slot, err)
		}
	}
	return s.createSlot(ctx, s.cfg.Snapshot != connectors.SnapshotNever)
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
		s.snaps.State = (*connectors.SnapshotState)(nil).Reconcile(s.snaps.Tables, true)
		s.snaps.Initial = true
	}
	s.log.Info("created replication slot", "slot", slot, "consistent_point", lsn.String())
	return nil
}

// replaceLostSlot handles a stored position whose slot is gone: the
// changes since the position can no longer be read, so a new slot is
// created and every table is read again.
func (s *Source) replaceLostSlot(ctx context.Context, pos Position) error {
	const lost = "replication slot lost: changes since the stored position cannot be read"
	switch s.cfg.Snapshot {
	case connectors.SnapshotNever:
		s.log.Warn(lost+"; snapshot.mode is never, so the tables are not read again and those changes are missing from the topics",
			"slot", s.cfg.Slot, "position", pos.String())
		return s.createSlot(ctx, false)
	case connectors.SnapshotOnly:
		s.log.Warn(lost+"; creating a new slot and snapshotting every table again. Rows deleted meanwhile stay in the topics",
			"slot", s.cfg.Slot, "position", pos.String())
		return s.createSlot(ctx, true)
	}
	s.log.Warn(lost+"; creating a new slot and snapshotting every table again while streaming. Rows deleted meanwhile stay in the topics",
		"slot", s.cfg.Slot, "position", pos.String())
	if err := s.createSlot(ctx, false); err != nil {
		return err
	}
	s.snaps.State = (*connectors.SnapshotState)(nil).With(s.snaps.Tables...)
	for _, t := range s.snaps.Tables {
		s.snaps.Progress.Add(t, true)
	}
	return nil
}
