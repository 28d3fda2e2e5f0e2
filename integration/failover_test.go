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
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
// of the ledger, and its compacted view must equal the table. Under
// at_least_once a failover may write changes again (see the README's
// high availability section); their number is logged.
func TestIntegrationFailover(t *testing.T) {
	for _, src := range failoverSources {
		t.Run(src.name, func(t *testing.T) { testFailover(t, src.open, atLeastOnce) })
	}
}

// TestIntegrationFailoverExactlyOnce is TestIntegrationFailover under
// delivery: exactly_once: the standby that takes over fences the killed
// replica's producer, aborts its open transaction and resumes from the
// position committed with the last events, so a read_committed reader
// finds every change of the ledger exactly once: none lost, none doubled.
// The figure is the time from the kill to the first event the new active
// replica commits, as a read_committed reader sees it.
func TestIntegrationFailoverExactlyOnce(t *testing.T) {
	for _, src := range failoverSources {
		t.Run(src.name, func(t *testing.T) { testFailover(t, src.open, exactlyOnce) })
	}
}

var failoverSources = []struct {
	name string
	open func(*testing.T, context.Context, int) *soakSource
}{
	{"postgres", openPGSoak},
	{"mariadb", openMariaDBSoak},
}

// delivery is the delivery setting a failover test runs under.
type delivery string

const (
	atLeastOnce delivery = "at_least_once"
	exactlyOnce delivery = "exactly_once"
)

func testFailover(t *testing.T, open func(*testing.T, context.Context, int) *soakSource, mode delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"),
		harness.KafkaBrokerConfig("group.min.session.timeout.ms", "500"))
	reg := harness.Registry(t)
	src := open(t, ctx, 1000)
	cfg := soakConfig(t, src.kind, src.dsn, src.section, k.Brokers, reg.URL,
		fmt.Sprintf("delivery: %s\nha:\n  mode: standby\n  session_timeout: %s\n", mode, haSessionTimeout))
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	const topic = "soak.soak.items"
	offsets, err := newTopicOffsets(k.Brokers, topic)
	require.NoError(t, err)
	defer offsets.close()

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
	var killedAt []int64  // the end of the log at each kill
	var storedAt []string // the position stored at each kill
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
		// What the killed replica left in the topic: the end of the
		// log, with its open transaction (exactly_once) in it.
		ends, err := offsets.ends(ctx)
		require.NoError(t, err)
		require.Len(t, ends, 1, "the partitions of %s", topic)
		killedAt = append(killedAt, ends[0])
		storedAt = append(storedAt, string(offsetsTopicPosition(t, ctx, k.Brokers, "soak")))
		var what string
		if mode == exactlyOnce {
			// The standby's first committed event: the last stable
			// offset of a partition moves past the killed replica's
			// records, the marker that aborts its open transaction
			// and one record of the standby's own.
			what = "committed"
			require.Eventually(t, func() bool {
				if s.d.exited() {
					return true
				}
				stable, err := offsets.stable(ctx)
				return err == nil && committedPast(ends, stable)
			}, haSessionTimeout+time.Minute, 5*time.Millisecond, "the standby committed nothing after kill %d:\n%s", i+1, s.d.logTail())
		} else {
			what = "acknowledged"
			require.Eventually(t, func() bool {
				st, ok := readHAStatus(s.base)
				return s.d.exited() || ok && st.Role == "active" && st.acked() > seen
			}, haSessionTimeout+time.Minute, 5*time.Millisecond, "the standby did not take over after kill %d:\n%s", i+1, s.d.logTail())
		}
		require.False(t, s.d.exited(), "the standby exited:\n%s", s.d.logTail())
		took = append(took, time.Since(killed))
		t.Logf("kill %d: the standby's first %s event %s after the active replica was killed", i+1, what, took[i].Round(time.Millisecond))
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
	t.Logf("%s, %d failovers (ha.session_timeout %s): kill to the standby's first event took %s at the median, %s at most; %d transactions, %d changes",
		mode, len(took), haSessionTimeout, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), figs.committed, figs.changes)

	requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
		func(string) string { return topic }, []string{"soak.items"}, 2*time.Minute)
	ledger, err := src.readLedger(ctx)
	require.NoError(t, err)
	require.Equal(t, figs.changes, len(ledger), "the ledger against the changes the workload committed")
	events, records, err := readSoakTopic(ctx, k.Brokers, client, topic)
	require.NoError(t, err)
	rep := checkSoakLedger(ledger, events, 1000, figs.rolledBackTxns)
	t.Logf("checked %d ledger upserts and %d deletes; a read_committed reader finds %d records, %d of them duplicates (%.1f a failover)",
		rep.upsertsChecked, rep.deletesChecked, records, rep.duplicates, float64(rep.duplicates)/float64(len(took)))
	perKill, reach, txns := failoverDuplicates(events, killedAt)
	for i := range perKill {
		t.Logf("kill %d (the log ended at offset %d, stored position %s): %d records of %d transactions written again, from as far as %d offsets before the kill",
			i+1, killedAt[i], storedAt[i], perKill[i], txns[i], reach[i])
	}
	if len(rep.problems) > 0 {
		t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
	}
	if mode == exactlyOnce && rep.duplicates != 0 {
		t.Errorf("a read_committed reader finds %d duplicates after %d failovers under exactly_once, want none", rep.duplicates, len(took))
	}
	for _, r := range replicas {
		require.Equal(t, 0, r.d.stop(30*time.Second), "exit code after SIGTERM")
	}
}

// topicOffsets lists the offsets of a topic's partitions.
type topicOffsets struct {
	cl    *kgo.Client
	adm   *kadm.Client
	topic string
}

func newTopicOffsets(brokers []string, topic string) (*topicOffsets, error) {
	// A short MetadataMinAge: the topic is created after the first look.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &topicOffsets{cl: cl, adm: kadm.NewClient(cl), topic: topic}, nil
}

func (o *topicOffsets) close() { o.cl.Close() }

// ends returns each partition's high watermark: the end of the log,
// records of open transactions included.
func (o *topicOffsets) ends(ctx context.Context) (map[int32]int64, error) {
	return o.list(ctx, o.adm.ListEndOffsets)
}

// stable returns each partition's last stable offset: what a
// read_committed reader reads up to.
func (o *topicOffsets) stable(ctx context.Context) (map[int32]int64, error) {
	return o.list(ctx, o.adm.ListCommittedOffsets)
}

func (o *topicOffsets) list(ctx context.Context, fn func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	listed, err := fn(qctx, o.topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets of %s: %w", o.topic, err)
	}
	out := map[int32]int64{}
	listed.Each(func(l kadm.ListedOffset) { out[l.Partition] = l.Offset })
	return out, nil
}

// committedPast reports whether a partition's last stable offset shows a
// transaction committed after the log ended at ends: past the end, the
// marker that aborts a transaction left open there takes one offset, and
// a committed transaction at least two (a record and its marker).
func committedPast(ends, stable map[int32]int64) bool {
	for p, end := range ends {
		if stable[p] >= end+2 {
			return true
		}
	}
	return false
}

// failoverDuplicates finds the records that repeat an earlier one (a
// version of a key, or a key's tombstone) and counts them by the kill
// after which they were written, given the end of the log at each kill.
// reach is, per kill, how far before the kill the first copy of its
// earliest repeated record was: the stretch the new active replica wrote
// again; txns is how many source transactions the repeated records are of.
func failoverDuplicates(events map[int64][]soakEvent, killedAt []int64) (perKill []int, reach []int64, txns []int) {
	perKill = make([]int, len(killedAt))
	reach = make([]int64, len(killedAt))
	txnSets := make([]map[int64]bool, len(killedAt))
	for _, evs := range events {
		first := map[int64]int64{} // version -> offset of its first copy
		firstTombstone := int64(-1)
		for _, ev := range evs {
			at := int64(-1)
			if ev.tombstone {
				if firstTombstone >= 0 {
					at = firstTombstone
				} else {
					firstTombstone = ev.offset
				}
			} else if o, ok := first[ev.version]; ok {
				at = o
			} else {
				first[ev.version] = ev.offset
			}
			if at < 0 {
				continue
			}
			i, _ := slices.BinarySearch(killedAt, ev.offset+1)
			if i--; i < 0 {
				continue
			}
			perKill[i]++
			reach[i] = max(reach[i], killedAt[i]-at)
			if txnSets[i] == nil {
				txnSets[i] = map[int64]bool{}
			}
			txnSets[i][ev.txn] = true
		}
	}
	txns = make([]int, len(killedAt))
	for i, set := range txnSets {
		txns[i] = len(set)
	}
	return perKill, reach, txns
}
