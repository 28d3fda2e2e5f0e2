package integration

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slotState reads the slot's confirmed_flush_lsn and whether a walsender
// streams from it.
func (e *pgEnv) slotState(t *testing.T, ctx context.Context) (confirmed string, active, exists bool) {
	t.Helper()
	rows, err := e.conn.Query(ctx, `SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = 'liberator'`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		require.NoError(t, rows.Scan(&confirmed, &active))
		exists = true
	}
	require.NoError(t, rows.Err())
	return confirmed, active, exists
}

// waitSlotInactive waits for the walsender of a stopped liberator to end.
func (e *pgEnv) waitSlotInactive(t *testing.T, ctx context.Context) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, active, _ := e.slotState(t, ctx)
		return !active
	}, 30*time.Second, 10*time.Millisecond, "the slot stayed active")
}

// TestIntegrationPostgresAdvancedSlotStopsLiberator advances the slot with
// pg_replication_slot_advance while liberator is stopped. PostgreSQL would
// silently stream from the slot's new position; liberator refuses to start,
// naming both positions, and leaves the slot where it is.
func TestIntegrationPostgresAdvancedSlotStopsLiberator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	w := newWorkload(11)
	w.run(t, ctx, e.conn, 50)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(30*time.Second))
	e.waitSlotInactive(t, ctx)

	// A restart without a gap starts cleanly.
	d = startDaemon(t, "run", e.cfgPath)
	w.run(t, ctx, e.conn, 20)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(30*time.Second))
	e.waitSlotInactive(t, ctx)

	w.run(t, ctx, e.conn, 50)
	_, err := e.conn.Exec(ctx, `SELECT pg_replication_slot_advance('liberator', pg_current_wal_lsn())`)
	require.NoError(t, err)
	advanced, _, _ := e.slotState(t, ctx)

	d = startDaemon(t, "run", e.cfgPath)
	require.NotEqual(t, 0, d.wait(60*time.Second), "liberator started past a gap")
	for _, s := range []string{"confirmed_flush_lsn " + advanced, "past the stored position", "on_gap: resnapshot", "liberator reset"} {
		require.True(t, d.logContains(s), "the log does not say %q:\n%s", s, d.logTail())
	}
	after, _, _ := e.slotState(t, ctx)
	require.Equal(t, advanced, after, "the slot moved")
}

// TestIntegrationPostgresSlotWithoutPositionIsKept renames the pipeline,
// so that no position is stored under its name while its slot exists.
// liberator used to drop such a slot and start over; now it stops and
// keeps the slot.
func TestIntegrationPostgresSlotWithoutPositionIsKept(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	w := newWorkload(12)
	w.run(t, ctx, e.conn, 30)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(30*time.Second))
	e.waitSlotInactive(t, ctx)
	before, _, _ := e.slotState(t, ctx)

	cfg, err := os.ReadFile(e.cfgPath)
	require.NoError(t, err)
	renamed := writeConfig(t, string(cfg)+"\nname: renamed\n")
	d = startDaemon(t, "run", renamed)
	require.NotEqual(t, 0, d.wait(60*time.Second), "liberator started without a position")
	for _, s := range []string{"exists, but liberator did not create it", "liberator reset"} {
		require.True(t, d.logContains(s), "the log does not say %q:\n%s", s, d.logTail())
	}
	after, _, exists := e.slotState(t, ctx)
	require.True(t, exists, "the slot was dropped")
	require.Equal(t, before, after, "the slot moved")
}
