package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// haSessionTimeout is the replicas' ha.session_timeout in the failover
// test: the broker lets it go down to 500ms.
const haSessionTimeout = 2 * time.Second

// haStatus is what a replica's /status says of it.
type haStatus struct {
	State  string                      `json:"state"`
	Role   string                      `json:"role"`
	Events map[string]map[string]int64 `json:"events"`
}

// acked is how many events this process has had acknowledged.
func (s haStatus) acked() int64 {
	var n int64
	for _, ops := range s.Events {
		for _, c := range ops {
			n += c
		}
	}
	return n
}

func readHAStatus(base string) (haStatus, bool) {
	_, body, err := get(base + "/status")
	if err != nil {
		return haStatus{}, false
	}
	var st haStatus
	return st, json.Unmarshal([]byte(body), &st) == nil
}

// replica is a daemon of the failover test and its admin address.
type replica struct {
	d    *daemon
	base string
}

func startReplica(t *testing.T, cfg string) *replica {
	d := startDaemon(t, "run", cfg)
	return &replica{d: d, base: "http://" + d.adminAddr()}
}

func (r *replica) role() string {
	st, _ := readHAStatus(r.base)
	return st.Role
}

// failoverKills is how many times the failover test kills the active
// replica: LIBERATOR_SOAK=long (make soak) kills it 10 times.
func failoverKills() int {
	if os.Getenv("LIBERATOR_SOAK") == "long" {
		return 10
	}
	return 3
}

// TestIntegrationFailover runs two replicas in ha.mode standby under a
// continuous workload, kills the active one with SIGKILL again and again
// (alternating which replica dies, as the survivor becomes active and the
// killed one comes back as the standby), and measures how long the
// standby takes to produce. In the end the topic must hold every change
// of the ledger, and its compacted view must equal the table.
func TestIntegrationFailover(t *testing.T) {
	for _, src := range []struct {
		name string
		open func(*testing.T, context.Context, int) *soakSource
	}{
		{"postgres", openPGSoak},
		{"mariadb", openMariaDBSoak},
	} {
		t.Run(src.name, func(t *testing.T) { testFailover(t, src.open) })
	}
}

func testFailover(t *testing.T, open func(*testing.T, context.Context, int) *soakSource) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"),
		harness.KafkaBrokerConfig("group.min.session.timeout.ms", "500"))
	reg := harness.Registry(t)
	src := open(t, ctx, 1000)
	cfg := soakConfig(t, src.kind, src.dsn, src.section, k.Brokers, reg.URL,
		fmt.Sprintf("ha:\n  mode: standby\n  session_timeout: %s\n", haSessionTimeout))
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)

	replicas := []*replica{startReplica(t, cfg), startReplica(t, cfg)}
	active := func() (*replica, *replica) {
		t.Helper()
		var a, s *replica
		require.Eventually(t, func() bool {
			a, s = nil, nil
			for _, r := range replicas {
				require.False(t, r.d.exited(), "a replica exited by itself:\n%s", r.d.logTail())
				switch r.role() {
				case "active":
					a = r
				case "standby":
					s = r
				}
			}
			return a != nil && s != nil
		}, time.Minute, 10*time.Millisecond, "not one active replica and one standby")
		return a, s
	}
	a, s := active()
	waitStoredPosition(t, a.d)
	// A standby is ready for Kubernetes, but not active.
	code, body, err := get(s.base + "/readyz")
	require.NoError(t, err)
	require.Equal(t, 200, code, "GET /readyz of the standby: %s", body)

	wl, err := startSoakWorkload(ctx, src.connect, soakSeed(t), 2, 1000, 40)
	require.NoError(t, err)

	var took []time.Duration
	for i := range failoverKills() {
		// Kill once the active one has stored a position past the
		// writes so far: the stream is moving.
		before := storedPosition(a.base)
		require.Eventually(t, func() bool { return a.d.exited() || storedPosition(a.base) != before }, 30*time.Second, 10*time.Millisecond,
			"the active replica stored no position before kill %d:\n%s", i+1, a.d.logTail())
		require.False(t, a.d.exited(), "the active replica exited by itself:\n%s", a.d.logTail())
		st, _ := readHAStatus(s.base)
		require.Equal(t, "standby", st.Role)
		seen := st.acked()
		killed := time.Now()
		a.d.kill()
		require.Eventually(t, func() bool {
			st, ok := readHAStatus(s.base)
			return s.d.exited() || ok && st.Role == "active" && st.acked() > seen
		}, haSessionTimeout+time.Minute, 5*time.Millisecond, "the standby did not take over after kill %d:\n%s", i+1, s.d.logTail())
		require.False(t, s.d.exited(), "the standby exited:\n%s", s.d.logTail())
		took = append(took, time.Since(killed))
		t.Logf("kill %d: the standby produced %s after the active replica was killed", i+1, took[i].Round(time.Millisecond))
		// The killed replica comes back as the standby.
		replicas = slices.DeleteFunc(replicas, func(r *replica) bool { return r == a })
		replicas = append(replicas, startReplica(t, cfg))
		a, s = active()
	}
	soakPause(t, a.d, time.Second)
	if errs := wl.halt(); len(errs) > 0 {
		t.Fatalf("workload: %v", errors.Join(errs...))
	}
	figs := wl.figures()
	slices.Sort(took)
	t.Logf("%d failovers (ha.session_timeout %s): kill to the standby's first acknowledged event took %s at the median, %s at most; %d transactions, %d changes",
		len(took), haSessionTimeout, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), figs.committed, figs.changes)

	requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
		func(string) string { return "soak.soak.items" }, []string{"soak.items"}, 2*time.Minute)
	ledger, err := src.readLedger(ctx)
	require.NoError(t, err)
	require.Equal(t, figs.changes, len(ledger), "the ledger against the changes the workload committed")
	events, records, err := readSoakTopic(ctx, k.Brokers, client, "soak.soak.items")
	require.NoError(t, err)
	rep := checkSoakLedger(ledger, events, 1000, figs.rolledBackTxns)
	t.Logf("checked %d ledger upserts and %d deletes; the topic has %d records, %d of them duplicates", rep.upsertsChecked, rep.deletesChecked, records, rep.duplicates)
	if len(rep.problems) > 0 {
		t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
	}
	for _, r := range replicas {
		require.Equal(t, 0, r.d.stop(30*time.Second), "exit code after SIGTERM")
	}
}
