package integration

import (
	"context"
	binenc "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/schema"
)

// TestIntegrationEmbeddedDataDir runs liberator with the embedded broker
// and registry keeping their data in kafka.embedded.data_dir, kills it with
// SIGKILL while a workload writes, and starts it again on the same data
// dir. The restart must resume from the stored position: no second
// snapshot, every change of the ledger in the topic, the compacted topic
// equal to the table, and the records before and after the kill under the
// same schema ids, which the restarted registry still resolves.
func TestIntegrationEmbeddedDataDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T, context.Context, int) *restartSource
	}{{"postgres", openPGRestart}, {"mariadb", openMariaDBRestart}} {
		t.Run(tc.name, func(t *testing.T) { testEmbeddedDataDir(t, tc.open) })
	}
}

func testEmbeddedDataDir(t *testing.T, open func(*testing.T, context.Context, int) *restartSource) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const preload = 300
	src := open(t, ctx, preload)
	dir := filepath.Join(t.TempDir(), "data")
	cfg := writeConfig(t, fmt.Sprintf(`
source:
  kind: %s
  dsn: %s
  tables: [soak.items, soak.notes]
%s
kafka:
  brokers: [embedded]
  topic_prefix: soak
  embedded:
    data_dir: %s
registry:
  url: embedded
http:
  listen: 127.0.0.1:0
commit_interval: 20ms
`, src.kind, src.dsn, src.section, dir))
	const topic, notes = "soak.soak.items", "soak.soak.notes"
	// soak.notes changes its shape: a second value schema, registered
	// after the first, which a registry that forgot its schemas at the
	// restart would give another id.
	sql := func(stmts ...string) {
		t.Helper()
		c, err := src.connect(ctx)
		require.NoError(t, err)
		defer c.close()
		for _, q := range stmts {
			require.NoError(t, errors.Join(c.begin(ctx), c.exec(ctx, q), c.commit(ctx)), q)
		}
	}
	sql("CREATE TABLE soak.notes (id bigint PRIMARY KEY, body text)", "INSERT INTO soak.notes (id, body) VALUES (1, 'one')")

	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	w := newRestartWriter(src, preload)
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, stop) }()

	// Kill once a position past some of the writes is stored: the kill
	// cuts a stream that is moving, and events Kafka has may be past the
	// stored position.
	base := "http://" + d.adminAddr()
	first := storedPosition(base)
	require.Eventually(t, func() bool { return d.exited() || (storedPosition(base) != first && w.changes > 50) }, time.Minute, 10*time.Millisecond,
		"no position stored after the writes began:\n%s", d.logTail())
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	sql("ALTER TABLE soak.notes ADD COLUMN extra text", "INSERT INTO soak.notes (id, body, extra) VALUES (2, 'two', 'x')")
	brokers, _ := embeddedEndpoints(t, base)
	var notesBefore []*kgo.Record
	require.Eventually(t, func() bool {
		var err error
		notesBefore, err = readRecords(ctx, brokers, notes)
		return err == nil && len(notesBefore) == 2
	}, time.Minute, 20*time.Millisecond, "soak.notes did not reach its topic:\n%s", d.logTail())
	require.Len(t, schemaIDs(t, notesBefore), 3, "the schema ids of soak.notes before and after its new column")
	latest := lastValueID(notesBefore)
	before, err := readRecords(ctx, brokers, topic)
	require.NoError(t, err)
	idsBefore := schemaIDs(t, before)
	d.kill()
	t.Logf("killed with %d records in %s, schema ids %v", len(before), topic, idsBefore)

	d = startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	base = "http://" + d.adminAddr()
	resumed := storedPosition(base)
	require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != resumed }, time.Minute, 10*time.Millisecond,
		"no position stored after the restart:\n%s", d.logTail())
	sql("INSERT INTO soak.notes (id, body, extra) VALUES (3, 'three', 'y')")
	soakPause(t, d, 300*time.Millisecond)
	close(stop)
	require.NoError(t, <-werr)
	t.Logf("%d transactions, %d changes committed", w.txn, w.changes)

	for _, s := range []string{"snapshot started", "snapshot reading", "starts over"} {
		require.False(t, d.logContains(s), "the restart logged %q: it snapshotted again instead of resuming:\n%s", s, d.logTail())
	}
	require.True(t, d.logContains("its topics and positions are those kept in kafka.embedded.data_dir"), "the restart does not say it took up the data dir:\n%s", d.logTail())

	brokers, registryURL := embeddedEndpoints(t, base)
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: registryURL})
	require.NoError(t, err)
	requireTopicsEqual(t, ctx, brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
		func(string) string { return topic }, []string{"soak.items"}, time.Minute)
	ledger, err := src.readLedger(ctx)
	require.NoError(t, err)
	require.Equal(t, w.changes, len(ledger), "ledger rows against the changes the writer saw committed")
	events, n, err := readSoakTopic(ctx, brokers, client, topic)
	require.NoError(t, err)
	require.Greater(t, n, len(before), "no record was written after the restart")
	rep := checkSoakLedger(ledger, events, preload, nil)
	if len(rep.problems) > 0 {
		t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
	}
	// A second snapshot would write each preloaded row that no transaction
	// changed once more, at version 1 of transaction 0.
	for id := int64(1); id <= preload; id++ {
		snap := 0
		for _, ev := range events[id] {
			if !ev.tombstone && ev.txn == 0 {
				snap++
			}
		}
		require.LessOrEqual(t, snap, 1, "row %d was snapshotted %d times", id, snap)
	}
	after, err := readRecords(ctx, brokers, topic)
	require.NoError(t, err)
	require.Equal(t, idsBefore, schemaIDs(t, after), "the schema ids of the records before the kill and after the restart")
	var notesAfter []*kgo.Record
	require.Eventually(t, func() bool {
		notesAfter, err = readRecords(ctx, brokers, notes)
		return err == nil && len(notesAfter) >= 3
	}, time.Minute, 20*time.Millisecond, "the row of soak.notes written after the restart did not reach its topic:\n%s", d.logTail())
	require.Equal(t, latest, lastValueID(notesAfter), "the value schema id of soak.notes before the kill and after the restart")
	for _, r := range notesAfter {
		_, err := client.Decode(ctx, r.Value)
		require.NoError(t, err, "decode the soak.notes record at offset %d with the restarted registry", r.Offset)
	}
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// embeddedEndpoints asks the daemon's admin listener where its embedded
// broker and registry listen.
func embeddedEndpoints(t *testing.T, base string) (brokers []string, registry string) {
	t.Helper()
	_, body, err := get(base + "/status")
	require.NoError(t, err)
	var st struct {
		Endpoints struct {
			Brokers  []string `json:"brokers"`
			Registry string   `json:"registry"`
		} `json:"endpoints"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.NotEmpty(t, st.Endpoints.Brokers, "/status names no broker: %s", body)
	return st.Endpoints.Brokers, st.Endpoints.Registry
}

// lastValueID is the schema id of the last value of recs.
func lastValueID(recs []*kgo.Record) uint32 {
	for i := len(recs) - 1; i >= 0; i-- {
		if len(recs[i].Value) >= 5 {
			return binenc.BigEndian.Uint32(recs[i].Value[1:5])
		}
	}
	return 0
}

// schemaIDs are the schema ids of the keys and values of records, as
// "key N" and "value N".
func schemaIDs(t *testing.T, recs []*kgo.Record) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range recs {
		for side, b := range map[string][]byte{"key": r.Key, "value": r.Value} {
			if b == nil {
				continue
			}
			require.GreaterOrEqual(t, len(b), 5, "%s at offset %d is shorter than the wire format's header", side, r.Offset)
			out[fmt.Sprintf("%s %d", side, binenc.BigEndian.Uint32(b[1:5]))] = true
		}
	}
	return out
}

// TestIntegrationEmbeddedStartsOverAndResets runs liberator on PostgreSQL
// with the embedded broker. Without a data dir, a second run finds the
// slot the first left and no stored position (its Kafka is gone): it
// starts over, dropping the slot and snapshotting again, and says so. With
// a data dir, reset refuses while a liberator holds the data dir, and
// once it stopped stores the reset position there, from which the next run
// re-snapshots.
func TestIntegrationEmbeddedStartsOverAndResets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const rows = 50
	src := openPGRestart(t, ctx, rows)
	config := func(kafka string) string {
		return writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [soak.items]
kafka:
  brokers: [embedded]
  topic_prefix: soak
%sregistry:
  url: embedded
http:
  listen: 127.0.0.1:0
commit_interval: 20ms
`, src.dsn, kafka))
	}
	const topic = "soak.soak.items"
	run := func(cfg string, want ...string) {
		t.Helper()
		d := startDaemon(t, "run", cfg)
		waitStoredPosition(t, d)
		brokers, _ := embeddedEndpoints(t, "http://"+d.adminAddr())
		require.Eventually(t, func() bool {
			recs, err := readRecords(ctx, brokers, topic)
			return err == nil && len(recs) >= rows
		}, time.Minute, 20*time.Millisecond, "the table did not reach its topic:\n%s", d.logTail())
		for _, s := range want {
			require.True(t, d.logContains(s), "the log does not say %q:\n%s", s, d.logTail())
		}
		require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
	}

	inMemory := config("")
	run(inMemory, "snapshot started")
	run(inMemory, "this run starts over", "dropped replication slot", "snapshot started")
	out, err := exec.CommandContext(ctx, binary, "reset", "--config", inMemory).CombinedOutput()
	require.Error(t, err, "reset without a data dir:\n%s", out)
	require.Contains(t, string(out), "each run starts over by itself")

	withDir := config("  embedded:\n    data_dir: " + filepath.Join(t.TempDir(), "data") + "\n")
	// A new data dir holds no position for the slot the runs above left.
	run(withDir, "this run starts over", "dropped replication slot", "snapshot started")
	d := startDaemon(t, "run", withDir)
	waitStoredPosition(t, d)
	out, err = exec.CommandContext(ctx, binary, "reset", "--config", withDir).CombinedOutput()
	require.Error(t, err, "reset while liberator runs on the data dir:\n%s", out)
	require.Contains(t, string(out), "is in use by another liberator process")
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
	out, err = exec.CommandContext(ctx, binary, "reset", "--config", withDir).CombinedOutput()
	require.NoError(t, err, "reset:\n%s", out)
	require.Contains(t, string(out), `stored under key "soak"`)
	d = startDaemon(t, "run", withDir)
	waitStoredPosition(t, d)
	require.False(t, d.logContains("this run starts over"), "the run after the reset started over instead of taking up the reset position:\n%s", d.logTail())
	require.Eventually(t, func() bool { return d.logContains("snapshot of table read") }, time.Minute, 20*time.Millisecond,
		"the run after the reset did not snapshot again:\n%s", d.logTail())
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}
