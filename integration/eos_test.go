package integration

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// exitFenced is cmd/liberator's ExitFenced.
const exitFenced = 3

// TestIntegrationExactlyOnceSoak runs liberator with delivery:
// exactly_once under the soak's mixed workload (with its ledger written in
// the same transactions), SIGKILLs it again and again, and at the end
// starts a second instance with the same name, which fences the first.
// A read_committed reader then finds, in the topic read whole with
// compaction off, every change of the ledger exactly once and nothing
// else, and the compacted view equals the table.
//
// The workload starts once the initial snapshot is done: a DBLog snapshot
// taken while rows change repeats, by design, a version the stream already
// carried, which would hide a duplicate of a crash. Kills during the
// snapshot are checked the same way, without the workload.
// LIBERATOR_SOAK=long (make soak) kills it 30 times instead of 5.
func TestIntegrationExactlyOnceSoak(t *testing.T) {
	size := soakSizeFromEnv(t)
	size.kills, size.snapshotKills = 5, 2
	if size.name == "long" {
		size.kills, size.snapshotKills = 30, 3
	}
	for _, src := range soakSources {
		t.Run(src.name, func(t *testing.T) { runEOSSoak(t, size, src.open) })
	}
}

func runEOSSoak(t *testing.T, size soakSize, open func(*testing.T, context.Context, int) *soakSource) {
	ctx, cancel := context.WithTimeout(context.Background(), size.workload+10*time.Minute)
	defer cancel()
	seed := soakSeed(t)
	t.Logf("%s exactly-once soak, seed %d (LIBERATOR_SOAK_SEED repeats the workload)", size.name, seed)

	// kfake compacts every log.cleaner.backoff.ms; at an hour it never
	// does during the test, so the checks see every event ever written.
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
	reg := harness.Registry(t)
	src := open(t, ctx, size.preload)
	cfg := soakConfig(t, src.kind, src.dsn, src.section, k.Brokers, reg.URL,
		"delivery: exactly_once\nsnapshot:\n  chunk_size: 500\n  parallelism: 2\n")
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(seed, 0xe05))

	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	stored := offsetsTopicPosition(t, ctx, k.Brokers, "soak")
	var midSnapshot int
	for i := 0; i < size.snapshotKills && soakInSnapshot(stored); i++ {
		soakPause(t, d, time.Duration(rng.Int64N(int64(300*time.Millisecond))))
		d.kill()
		midSnapshot++
		d = startDaemon(t, "run", cfg)
		// Without the workload, a daemon past the snapshot has no new
		// position to store.
		if stored = offsetsTopicPosition(t, ctx, k.Brokers, "soak"); soakInSnapshot(stored) {
			waitStoredPosition(t, d)
			stored = offsetsTopicPosition(t, ctx, k.Brokers, "soak")
		}
	}
	require.Eventually(t, func() bool {
		return d.exited() || !soakInSnapshot(offsetsTopicPosition(t, ctx, k.Brokers, "soak"))
	}, 3*time.Minute, 50*time.Millisecond, "the initial snapshot did not finish")
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())

	wl, err := startSoakWorkload(ctx, src.connect, seed, size.workers, size.preload, size.rate)
	require.NoError(t, err)
	workloadEnd := time.Now().Add(size.workload)
	// Two thirds of the workload for the kills, the last third for the
	// takeover by a second instance.
	mean := size.workload * 2 / 3 / time.Duration(size.kills)
	for range size.kills {
		soakPause(t, d, time.Duration(float64(mean)*(0.2+1.6*rng.Float64())))
		d.kill()
		d = startDaemon(t, "run", cfg)
	}
	waitStoredPosition(t, d)

	// A second instance with the same name fences the first, which stops
	// at its next write (the workload writes all the time), with the
	// fenced exit code; it never retries.
	second := startDaemon(t, "run", cfg)
	fencedAt := time.Now()
	require.Equal(t, exitFenced, d.wait(time.Minute), "the exit code of the fenced instance; its log:\n%s", d.logTail())
	require.True(t, d.logContains("another instance"), "the fenced instance's log does not say another instance took over:\n%s", d.logTail())
	t.Logf("the first instance stopped %s after the second one started", time.Since(fencedAt).Round(time.Millisecond))
	d = second
	if left := time.Until(workloadEnd); left > 0 {
		soakPause(t, d, left)
	}
	if errs := wl.halt(); len(errs) > 0 {
		t.Fatalf("workload: %v", errors.Join(errs...))
	}
	figs := wl.figures()
	t.Logf("workload of %s on %d connections: %d transactions committed (%d of a few hundred changes), %d rolled back, %d changes",
		size.workload, size.workers, figs.committed, figs.bigTxns, figs.rolledBack, figs.changes)
	t.Logf("%d kills inside the initial snapshot, %d while streaming, then one takeover", midSnapshot, size.kills)

	t.Run("the compacted topic equals the table", func(t *testing.T) {
		requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
			func(string) string { return "soak.soak.items" }, []string{"soak.items"}, 3*time.Minute)
	})
	t.Run("a read_committed reader finds every change of the ledger exactly once", func(t *testing.T) {
		ledger, err := src.readLedger(ctx)
		require.NoError(t, err)
		require.Equal(t, figs.changes, len(ledger), "the ledger has %d rows; the workload committed %d changes", len(ledger), figs.changes)
		events, records, err := readSoakTopic(ctx, k.Brokers, client, "soak.soak.items")
		require.NoError(t, err)
		rep := checkSoakLedger(ledger, events, size.preload, figs.rolledBackTxns)
		t.Logf("checked %d ledger upserts, %d deletes against their tombstones, the order of %d keys; the topic has %d committed records, %d of them duplicates",
			rep.upsertsChecked, rep.deletesChecked, rep.keysChecked, records, rep.duplicates)
		if len(rep.problems) > 0 {
			shown := rep.problems[:min(len(rep.problems), 30)]
			t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(shown, "\n"))
		}
		if rep.duplicates != 0 {
			t.Errorf("a read_committed reader sees %d duplicates, want none", rep.duplicates)
		}
	})
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}
