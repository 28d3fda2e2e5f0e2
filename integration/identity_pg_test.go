package integration

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIntegrationPostgresForeignPositionAndLostOffsetsThenReset runs the
// ways a stored position goes astray:
//   - a second pipeline with the same name but its own slot finds the
//     first one's position, and refuses it;
//   - the offsets topic is deleted: the slot exists without a position, and
//     liberator refuses to drop it;
//   - liberator reset then drops the slot, and the next run re-snapshots with
//     reconcile, so the rows deleted meanwhile get their tombstones.
func TestIntegrationPostgresForeignPositionAndLostOffsetsThenReset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newPGEnv(t, ctx, "")
	_, err := e.conn.Exec(ctx, `INSERT INTO items (id, account, name) SELECT g, g, 'row ' || g FROM generate_series(1, 1000) g;
		INSERT INTO accounts (region, num, label) VALUES ('eu', 1, 'one')`)
	require.NoError(t, err)
	d := startDaemon(t, "run", e.cfgPath)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(time.Minute))

	// Another pipeline, another slot, the same name.
	b, err := os.ReadFile(e.cfgPath)
	require.NoError(t, err)
	other := writeConfig(t, strings.Replace(string(b), "slot: liberator", "slot: other", 1))
	d = startDaemon(t, "run", other)
	require.Equal(t, 1, d.wait(time.Minute), "a foreign position must stop liberator")
	require.True(t, d.logContains("belongs to postgres system"), "the error names the identities:\n%s", d.logTail())
	require.True(t, d.logContains("slot liberator"), "the error names the stored stream:\n%s", d.logTail())

	// The offsets topic is lost, and rows are deleted meanwhile.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).DeleteTopics(ctx, "_liberator_offsets")
	require.NoError(t, err)
	_, err = e.conn.Exec(ctx, `DELETE FROM items WHERE id % 10 = 0; UPDATE items SET name = 'later' WHERE id % 10 = 1`)
	require.NoError(t, err)
	d = startDaemon(t, "run", e.cfgPath)
	require.Equal(t, 1, d.wait(time.Minute), "a slot without a stored position must stop liberator")
	for _, want := range []string{`slot \"liberator\"`, `offsets topic \"_liberator_offsets\"`, `key \"shop\"`, "liberator reset"} {
		require.True(t, d.logContains(want), "the error does not say %s:\n%s", want, d.logTail())
	}
	var slots int
	require.NoError(t, e.conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'liberator'`).Scan(&slots))
	require.Equal(t, 1, slots, "the slot must be kept")

	out, err := exec.CommandContext(ctx, binary, "reset", "--config", e.cfgPath).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "re-snapshots every table")
	d = startDaemon(t, "run", e.cfgPath)
	require.Eventually(t, func() bool { return d.logContains("re-snapshot with reconcile done") }, 2*time.Minute, 50*time.Millisecond)
	e.requireConverges(t, ctx)
	require.Equal(t, 0, d.stop(time.Minute))
}
