package postgres

import (
	"fmt"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// slotInfo is what pg_replication_slots says about the configured slot.
type slotInfo struct {
	Exists   bool
	Plugin   string
	Database string
	// ConfirmedFlush is the slot's confirmed_flush_lsn: PostgreSQL streams
	// from there when asked for an earlier start, without a word.
	ConfirmedFlush pglogrepl.LSN
	// WALStatus is reserved, extended, unreserved or lost; lost means the
	// server removed WAL the slot still needed, so it cannot stream.
	WALStatus string
	// ActivePID is the walsender streaming from the slot, 0 when none.
	ActivePID int
}

// startInput is everything the choice of where to start depends on.
type startInput struct {
	// Stored is the stored position, nil when none is stored.
	Stored   *Position
	Slot     slotInfo
	SlotName string
	// Database is the database liberator connects to.
	Database string
	Mode     connectors.SnapshotMode
	OnGap    GapAction
}

// startKind is what Open does with the slot.
type startKind string

const (
	// startFail: Open returns startAction.Err.
	startFail startKind = "fail"
	// startCreate: create the slot; with Export its exported snapshot is
	// read as the initial snapshot before streaming.
	startCreate startKind = "create slot"
	// startResume: stream from the stored position, continuing the
	// snapshot it records.
	startResume startKind = "resume"
	// startFromSlot: stream from the slot's confirmed_flush_lsn (From),
	// ignoring what the stored position recorded.
	startFromSlot startKind = "stream from slot"
)

// startAction is what prepareStart does.
type startAction struct {
	Kind startKind
	// Export is set with startCreate when the slot's exported snapshot is
	// the initial snapshot.
	Export bool
	// From is where streaming starts in an existing slot.
	From pglogrepl.LSN
	// Reconcile re-snapshots every table with reconcile while streaming.
	Reconcile bool
	// Initial reads every table in an initial snapshot before streaming,
	// without an exported snapshot (startFromSlot in snapshot mode only).
	Initial bool
	// Warn, when set, is logged as a warning before the action is taken.
	Warn string
	Err  error
}

// resetLSN is the LSN of the position that Reset returns. No slot streams
// from 0/0, so a stored position at it can only come from a reset: its
// slot was dropped on purpose and every table is read again.
const resetLSN pglogrepl.LSN = 0

// resetCmd is how the messages spell the command that starts over.
const resetCmd = "liberator reset --config <config file>"

// decideStart chooses where streaming starts and which snapshot is due. It
// does no I/O, so that every case has a table test; prepareStart carries
// it out.
//
//   - a slot of another plugin or database, or one that PostgreSQL has
//     invalidated (wal_status lost): fail.
//   - no stored position: create the slot, with an exported snapshot that
//     is read first unless the mode is never. If the slot exists, liberator
//     did not create it in this run and cannot tell what was consumed from
//     it: fail with connectors.ErrStreamWithoutPosition, in every mode.
//   - a position stored by Reset: stream from a new slot (or from the slot
//     a run after the reset created), re-snapshotting every table with
//     reconcile (in mode only, as an initial snapshot; in mode never, not
//     at all).
//   - a stored position without its slot (dropped, or never created on
//     this server): the changes since are lost. Create a new slot and
//     re-snapshot every table with reconcile; in mode only, as an initial
//     snapshot of the new slot; in mode never, fail with connectors.ErrGap.
//   - a stored position behind the slot's confirmed_flush_lsn: the slot
//     moved on without liberator, and the changes in between are lost.
//     With on_gap fail, fail with connectors.ErrGap; with resnapshot (mode
//     initial only), stream from the slot and re-snapshot with reconcile.
//   - otherwise resume from the stored position.
//
// Liberator itself never moves the slot past the stored position: it acks
// a position to the slot only after storing it (heartbeat and keepalive
// positions too), and the initial snapshot stores the slot's consistent
// point, which is where a new slot's confirmed_flush_lsn starts.
func decideStart(in startInput) startAction {
	slot, sl := in.SlotName, in.Slot
	fail := func(err error) startAction { return startAction{Kind: startFail, Err: err} }
	if sl.Exists && (sl.Plugin != "pgoutput" || sl.Database != in.Database) {
		return fail(fmt.Errorf("source.postgres.slot: slot %q exists for plugin %q in database %q; liberator needs pgoutput in %q (choose another slot name)",
			slot, sl.Plugin, sl.Database, in.Database))
	}
	if sl.Exists && sl.WALStatus == "lost" {
		return fail(fmt.Errorf("%w: replication slot %q is invalidated (wal_status lost): the server removed WAL the slot still needed, because the slot fell more than max_slot_wal_keep_size behind, so it cannot stream. Run %s to drop it and re-snapshot every table with reconcile, or drop it yourself (SELECT pg_drop_replication_slot('%s')), and liberator creates a new slot and re-snapshots with reconcile",
			connectors.ErrGap, slot, resetCmd, slot))
	}
	if in.Stored == nil {
		if sl.Exists {
			return fail(fmt.Errorf("%w: replication slot %q exists, but liberator did not create it in this run and cannot tell what was read from it. Run %s to drop it and re-snapshot every table with reconcile; if another pipeline uses the slot, give this one its own source.postgres.slot",
				connectors.ErrStreamWithoutPosition, slot, resetCmd))
		}
		return startAction{Kind: startCreate, Export: in.Mode != connectors.SnapshotNever}
	}
	stored := in.Stored.LSN
	if stored == resetLSN {
		a := startAction{Kind: startCreate}
		if sl.Exists {
			a = startAction{Kind: startFromSlot, From: sl.ConfirmedFlush}
		}
		switch in.Mode {
		case connectors.SnapshotInitial:
			a.Reconcile = true
		case connectors.SnapshotOnly:
			a.Export = !sl.Exists
			a.Initial = sl.Exists
			a.Warn = "starting over after a reset: snapshotting every table again; rows deleted meanwhile stay in the topics (reconcile is for the streaming modes)"
		case connectors.SnapshotNever:
			a.Warn = "starting over after a reset: streaming from the slot; snapshot.mode is never, so the tables are not read again and changes made before are missing from the topics"
		}
		return a
	}
	if !sl.Exists {
		switch in.Mode {
		case connectors.SnapshotNever:
			return fail(fmt.Errorf("%w: replication slot %q is gone, so the changes since the stored position %s cannot be read, and snapshot.mode is never. Set snapshot.mode: initial to create a new slot and re-snapshot every table with reconcile, or run %s",
				connectors.ErrGap, slot, stored, resetCmd))
		case connectors.SnapshotOnly:
			return startAction{Kind: startCreate, Export: true,
				Warn: "replication slot lost: changes since the stored position cannot be read; creating a new slot and snapshotting every table again. Rows deleted meanwhile stay in the topics (reconcile is for the streaming modes)"}
		}
		return startAction{Kind: startCreate, Reconcile: true,
			Warn: "replication slot lost: changes since the stored position cannot be read; creating a new slot and re-snapshotting every table with reconcile while streaming, so that rows deleted meanwhile are tombstoned"}
	}
	if sl.ConfirmedFlush > stored {
		if in.OnGap == GapResnapshot && in.Mode == connectors.SnapshotInitial {
			return startAction{Kind: startFromSlot, From: sl.ConfirmedFlush, Reconcile: true,
				Warn: "replication slot moved past the stored position: the changes in between cannot be read; streaming from the slot and re-snapshotting every table with reconcile (source.postgres.on_gap: resnapshot)"}
		}
		note := "set source.postgres.on_gap: resnapshot to stream from the slot and re-snapshot every table with reconcile"
		if in.OnGap == GapResnapshot {
			note = fmt.Sprintf("source.postgres.on_gap: resnapshot re-snapshots only in snapshot.mode initial, and the mode is %s", in.Mode)
		}
		return fail(fmt.Errorf("%w: replication slot %q has confirmed_flush_lsn %s, past the stored position %s, so the changes in between cannot be read (another consumer of the slot, pg_replication_slot_advance, or the slot dropped and created again). Make sure nothing else reads the slot, then either %s, or run %s",
			connectors.ErrGap, slot, sl.ConfirmedFlush, stored, note, resetCmd))
	}
	return startAction{Kind: startResume, From: stored}
}
