package postgres

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestDecideStart(t *testing.T) {
	const (
		stored = 0x1000
		ahead  = 0x2000
	)
	at := func(lsn uint64) *Position {
		return &Position{LSN: pglogrepl.LSN(lsn), Tables: []string{"public.t"}}
	}
	slot := func(confirmed uint64) slotInfo {
		return slotInfo{Exists: true, Plugin: "pgoutput", Database: "shop", ConfirmedFlush: pglogrepl.LSN(confirmed), WALStatus: "reserved"}
	}
	lost := slot(stored)
	lost.WALStatus = "lost"
	other := slot(stored)
	other.Plugin = "wal2json"
	otherDB := slot(stored)
	otherDB.Database = "crm"

	cases := []struct {
		name  string
		in    startInput
		want  startAction
		isErr error    // errors.Is target of the error, when it fails
		says  []string // in the error message
	}{
		{
			name: "no position and no slot creates a slot and reads its exported snapshot",
			in:   startInput{Mode: connectors.SnapshotInitial},
			want: startAction{Kind: startCreate, Export: true},
		},
		{
			name: "no position and no slot in mode only reads the exported snapshot",
			in:   startInput{Mode: connectors.SnapshotOnly},
			want: startAction{Kind: startCreate, Export: true},
		},
		{
			name: "no position and no slot in mode never creates a slot without a snapshot",
			in:   startInput{Mode: connectors.SnapshotNever},
			want: startAction{Kind: startCreate},
		},
		{
			name:  "no position but a slot fails in mode initial, and the slot is kept",
			in:    startInput{Mode: connectors.SnapshotInitial, Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrStreamWithoutPosition,
			says:  []string{`"liberator"`, "liberator reset"},
		},
		{
			name:  "no position but a slot fails in mode never too",
			in:    startInput{Mode: connectors.SnapshotNever, Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrStreamWithoutPosition,
		},
		{
			name:  "no position but a slot fails in mode only too",
			in:    startInput{Mode: connectors.SnapshotOnly, Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrStreamWithoutPosition,
		},
		{
			name: "a position and its slot at the same LSN resume",
			in:   startInput{Mode: connectors.SnapshotInitial, Stored: at(stored), Slot: slot(stored)},
			want: startAction{Kind: startResume, From: pglogrepl.LSN(stored)},
		},
		{
			name: "a position ahead of its slot resumes: liberator stores before it acks",
			in:   startInput{Mode: connectors.SnapshotInitial, Stored: at(ahead), Slot: slot(stored)},
			want: startAction{Kind: startResume, From: pglogrepl.LSN(ahead)},
		},
		{
			name:  "a slot past the position fails by default, naming both LSNs",
			in:    startInput{Mode: connectors.SnapshotInitial, OnGap: GapFail, Stored: at(stored), Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
			says:  []string{`"liberator"`, "0/2000", "0/1000", "on_gap: resnapshot", "liberator reset"},
		},
		{
			name: "a slot past the position with on_gap resnapshot streams from the slot and reconciles",
			in:   startInput{Mode: connectors.SnapshotInitial, OnGap: GapResnapshot, Stored: at(stored), Slot: slot(ahead)},
			want: startAction{Kind: startFromSlot, From: pglogrepl.LSN(ahead), Reconcile: true},
		},
		{
			name:  "a slot past the position with on_gap resnapshot fails in mode never",
			in:    startInput{Mode: connectors.SnapshotNever, OnGap: GapResnapshot, Stored: at(stored), Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
			says:  []string{"snapshot.mode initial"},
		},
		{
			name:  "a slot past the position fails in mode only",
			in:    startInput{Mode: connectors.SnapshotOnly, OnGap: GapFail, Stored: at(stored), Slot: slot(ahead)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
		},
		{
			name: "a position whose slot is gone creates a slot and re-snapshots with reconcile",
			in:   startInput{Mode: connectors.SnapshotInitial, Stored: at(stored)},
			want: startAction{Kind: startCreate, Reconcile: true},
		},
		{
			name: "a position whose slot is gone in mode only reads the new slot's exported snapshot",
			in:   startInput{Mode: connectors.SnapshotOnly, Stored: at(stored)},
			want: startAction{Kind: startCreate, Export: true},
		},
		{
			name:  "a position whose slot is gone fails in mode never",
			in:    startInput{Mode: connectors.SnapshotNever, Stored: at(stored)},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
			says:  []string{`"liberator"`, "0/1000", "snapshot.mode: initial", "liberator reset"},
		},
		{
			name:  "an invalidated slot fails whatever is stored",
			in:    startInput{Mode: connectors.SnapshotInitial, OnGap: GapResnapshot, Stored: at(stored), Slot: lost},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
			says:  []string{"wal_status lost", "max_slot_wal_keep_size", "liberator reset", "pg_drop_replication_slot('liberator')"},
		},
		{
			name:  "an invalidated slot fails without a position too",
			in:    startInput{Mode: connectors.SnapshotInitial, Slot: lost},
			want:  startAction{Kind: startFail},
			isErr: connectors.ErrGap,
		},
		{
			name: "a slot of another plugin fails",
			in:   startInput{Mode: connectors.SnapshotInitial, Stored: at(stored), Slot: other},
			want: startAction{Kind: startFail},
			says: []string{"wal2json"},
		},
		{
			name: "a slot of another database fails",
			in:   startInput{Mode: connectors.SnapshotInitial, Slot: otherDB},
			want: startAction{Kind: startFail},
			says: []string{`"crm"`},
		},
		{
			name: "a reset position without a slot creates one and re-snapshots with reconcile",
			in:   startInput{Mode: connectors.SnapshotInitial, Stored: at(0)},
			want: startAction{Kind: startCreate, Reconcile: true},
		},
		{
			name: "a reset position with a slot created since streams from it and re-snapshots with reconcile",
			in:   startInput{Mode: connectors.SnapshotInitial, OnGap: GapFail, Stored: at(0), Slot: slot(ahead)},
			want: startAction{Kind: startFromSlot, From: pglogrepl.LSN(ahead), Reconcile: true},
		},
		{
			name: "a reset position in mode only reads the new slot's exported snapshot",
			in:   startInput{Mode: connectors.SnapshotOnly, Stored: at(0)},
			want: startAction{Kind: startCreate, Export: true},
		},
		{
			name: "a reset position with a slot in mode only reads an initial snapshot without export",
			in:   startInput{Mode: connectors.SnapshotOnly, Stored: at(0), Slot: slot(ahead)},
			want: startAction{Kind: startFromSlot, From: pglogrepl.LSN(ahead), Initial: true},
		},
		{
			name: "a reset position in mode never streams from a new slot",
			in:   startInput{Mode: connectors.SnapshotNever, Stored: at(0)},
			want: startAction{Kind: startCreate},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			in.SlotName, in.Database = "liberator", "shop"
			if in.OnGap == "" {
				in.OnGap = GapFail
			}
			got := decideStart(in)
			if diff := cmp.Diff(c.want, got, cmpopts.IgnoreFields(startAction{}, "Warn", "Err")); diff != "" {
				t.Errorf("decideStart (-want +got):\n%s", diff)
			}
			if (got.Kind == startFail) != (got.Err != nil) {
				t.Fatalf("kind %s with error %v", got.Kind, got.Err)
			}
			if c.isErr != nil && !errors.Is(got.Err, c.isErr) {
				t.Errorf("error %v does not wrap %v", got.Err, c.isErr)
			}
			for _, s := range c.says {
				if got.Err == nil || !strings.Contains(got.Err.Error(), s) {
					t.Errorf("error %v does not say %q", got.Err, s)
				}
			}
		})
	}
}

func TestDecideStartWarnsOfEveryGap(t *testing.T) {
	stored := &Position{LSN: pglogrepl.LSN(0x1000)}
	for _, in := range []startInput{
		{Mode: connectors.SnapshotInitial, OnGap: GapResnapshot, Stored: stored, Slot: slotInfo{Exists: true, Plugin: "pgoutput", ConfirmedFlush: pglogrepl.LSN(0x2000)}},
		{Mode: connectors.SnapshotInitial, Stored: stored},
		{Mode: connectors.SnapshotOnly, Stored: stored},
	} {
		if a := decideStart(in); a.Warn == "" || a.Kind == startFail {
			t.Errorf("decideStart(%+v) = %+v: want a warning", in, a)
		}
	}
}
