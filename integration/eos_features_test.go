package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// eosFeatureTables are the tables the features test adds beside the
// soak's: soak.snap, static, for an incremental snapshot requested while
// streaming; soak.evolve, changed incompatibly under new_topic; soak.bad,
// for a row larger than its topic takes; soak.outbox, an outbox table.
var eosFeatureTables = map[string][]string{
	"postgres": {
		`CREATE TABLE soak.snap (id bigint PRIMARY KEY, v text NOT NULL)`,
		`INSERT INTO soak.snap SELECT g, md5(g::text) FROM generate_series(1, 40000) g`,
		`CREATE TABLE soak.evolve (id bigint PRIMARY KEY, a integer NOT NULL)`,
		`INSERT INTO soak.evolve SELECT g, g FROM generate_series(1, 10) g`,
		`CREATE TABLE soak.bad (id bigint PRIMARY KEY, note text)`,
		`CREATE TABLE soak.outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb NOT NULL)`,
	},
	"mariadb": {
		`CREATE TABLE soak.snap (id BIGINT PRIMARY KEY, v VARCHAR(40) NOT NULL)`,
		`INSERT INTO soak.snap SELECT seq, MD5(seq) FROM soak.seq_1_to_40000`,
		`CREATE TABLE soak.evolve (id BIGINT PRIMARY KEY, a INT NOT NULL)`,
		`INSERT INTO soak.evolve SELECT seq, seq FROM soak.seq_1_to_10`,
		`CREATE TABLE soak.bad (id BIGINT PRIMARY KEY, note LONGTEXT)`,
		`CREATE TABLE soak.outbox (id CHAR(36) PRIMARY KEY, aggregatetype VARCHAR(50) NOT NULL, aggregateid VARCHAR(50) NOT NULL, type VARCHAR(50) NOT NULL, payload JSON NOT NULL)`,
	},
}

// eosSnapRows is how many rows soak.snap holds.
const eosSnapRows = 40000

// eosIncompatible is the statement that changes soak.evolve's column a
// from an integer to a string, which its value schema cannot take.
var eosIncompatible = map[string]string{
	"postgres": `ALTER TABLE soak.evolve ALTER COLUMN a TYPE text USING 'n' || a`,
	"mariadb":  `ALTER TABLE soak.evolve MODIFY a VARCHAR(20) NOT NULL`,
}

// eosConfig is the soak's config for tables, under exactly_once, with
// extra top-level lines.
func eosConfig(t *testing.T, src *soakSource, brokers []string, registryURL string, tables []string, commitInterval, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: %s
  dsn: %s
  tables: [%s]
%s
kafka:
  brokers: [%s]
  topic_prefix: soak
%s
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: %s
delivery: exactly_once
snapshot:
  chunk_size: 500
%s`, src.kind, src.dsn, strings.Join(tables, ", "), src.section, strings.Join(brokers, ","), oneMB, registryURL, commitInterval, extra))
}

// sqlOn runs each statement in a transaction of its own.
func sqlOn(ctx context.Context, src *soakSource, stmts ...string) error {
	c, err := src.connect(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	for _, s := range stmts {
		if err := c.begin(ctx); err != nil {
			return err
		}
		if err := c.exec(ctx, s); err != nil {
			return errJoinRollback(ctx, c, fmt.Errorf("%s: %w", s, err))
		}
		if err := c.commit(ctx); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// outboxWriter writes one outbox event per transaction, in the outbox
// table and, on PostgreSQL, as a logical decoding message, until halted.
type outboxWriter struct {
	stop chan struct{}
	done chan struct{}
	err  error

	mu sync.Mutex
	// committed are the ids of the committed events, by topic.
	committed map[string][]string
}

func startOutboxWriter(ctx context.Context, src *soakSource, messages bool) (*outboxWriter, error) {
	c, err := src.connect(ctx)
	if err != nil {
		return nil, err
	}
	w := &outboxWriter{stop: make(chan struct{}), done: make(chan struct{}), committed: map[string][]string{}}
	go func() {
		defer close(w.done)
		defer c.close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				w.err = ctx.Err()
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			payload := fmt.Sprintf(`{"order_id": "o-%d", "seq": %d, "note": "event %d"}`, i%6, i, i)
			stmts := []string{
				fmt.Sprintf("INSERT INTO soak.outbox VALUES ('%s', 'Order', 'o-%d', 'OrderChanged', '%s')", id, i%6, payload),
				fmt.Sprintf("DELETE FROM soak.outbox WHERE id = '%s'", id),
			}
			topic := "soak.Order"
			if messages && i%2 == 0 {
				msg, _ := json.Marshal(map[string]any{"id": id, "aggregate_type": "Payment", "aggregate_id": fmt.Sprintf("o-%d", i%6), "type": "PaymentChanged", "payload": json.RawMessage(payload)})
				stmts = []string{fmt.Sprintf("SELECT pg_logical_emit_message(true, 'liberator.outbox', '%s')", msg)}
				topic = "soak.Payment"
			}
			if err := c.begin(ctx); err != nil {
				w.err = err
				return
			}
			for _, s := range stmts {
				if err := c.exec(ctx, s); err != nil {
					w.err = errJoinRollback(ctx, c, fmt.Errorf("%s: %w", s, err))
					return
				}
			}
			if err := c.commit(ctx); err != nil {
				w.err = err
				return
			}
			w.mu.Lock()
			w.committed[topic] = append(w.committed[topic], id)
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *outboxWriter) halt() error {
	close(w.stop)
	<-w.done
	return w.err
}

// outboxIDs counts the events of topic by their id header, as a
// read_committed reader finds them.
func outboxIDs(ctx context.Context, brokers []string, topic string) (map[string]int, error) {
	recs, err := readRecords(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		out[header(r, "id")]++
	}
	return out, nil
}

// idCounts counts the records of topic by their key's id, as a
// read_committed reader finds them.
func idCounts(ctx context.Context, brokers []string, reg *schema.Registry, topic string) (map[int64]int, error) {
	recs, err := readRecords(ctx, brokers, topic)
	if err != nil {
		return nil, err
	}
	out := map[int64]int{}
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		k, err := reg.Decode(ctx, r.Key)
		if err != nil {
			return nil, fmt.Errorf("decode key at offset %d of %s: %w", r.Offset, topic, err)
		}
		id, err := soakField(k, "id")
		if err != nil {
			return nil, err
		}
		out[id]++
	}
	return out, nil
}

// requireEachTimes requires ids from to to, and nothing else, n times
// each.
func requireEachTimes(t *testing.T, got map[int64]int, from, to int64, n int, what string) {
	t.Helper()
	var problems []string
	for id := from; id <= to; id++ {
		if got[id] != n {
			problems = append(problems, fmt.Sprintf("id %d: %d records", id, got[id]))
		}
	}
	for id := range got {
		if id < from || id > to {
			problems = append(problems, fmt.Sprintf("id %d: %d records, want none", id, got[id]))
		}
	}
	if len(problems) > 0 {
		t.Errorf("%s: want %d records of each id %d..%d (%d problems): %s", what, n, from, to, len(problems), strings.Join(problems[:min(len(problems), 20)], "; "))
	}
}

// eventsOf returns the count of events of op r of table that the daemon
// reports Kafka acknowledged.
func eventsOf(d *daemon, table string) int {
	_, body, err := get("http://" + d.adminAddr() + "/metrics")
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`liberator_events_total\{op="r",table="` + regexp.QuoteMeta(table) + `"\} (\d+)`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// unescaped is a stored position in a readable form (MySQL's is
// URL-encoded).
func unescaped(stored []byte) string {
	if s, err := url.QueryUnescape(string(stored)); err == nil {
		return s
	}
	return string(stored)
}

// TestIntegrationExactlyOnceFeatures runs liberator with delivery:
// exactly_once under the soak's workload (with its ledger) and an outbox
// writer, and SIGKILLs it while each feature is at work: an incremental
// snapshot requested while streaming, killed in its middle; outbox rows
// (and, on PostgreSQL, logical decoding messages) flowing all the time; a
// table changed incompatibly under schema.on_incompatible: new_topic; a
// row too large for its topic under errors.on_bad_row: dead_letter. A
// read_committed reader then finds each ledger change, each outbox event,
// each snapshot row and the dead letter exactly once, and the compacted
// views equal the tables.
func TestIntegrationExactlyOnceFeatures(t *testing.T) {
	for _, src := range soakSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			runEOSFeatures(t, src.open)
		})
	}
}

func runEOSFeatures(t *testing.T, open func(*testing.T, context.Context, int) *soakSource) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const preload = 2000
	seed := soakSeed(t)
	t.Logf("seed %d (LIBERATOR_SOAK_SEED repeats the workload)", seed)
	rng := rand.New(rand.NewPCG(seed, 0xfea))

	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
	reg := harness.Registry(t)
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	for _, subject := range []string{"soak.Order-value", "soak.Payment-value"} {
		_, err := client.Register(ctx, subject, avro.MustParse(outboxEventSchema))
		require.NoError(t, err)
	}
	src := open(t, ctx, preload)
	require.NoError(t, sqlOn(ctx, src, eosFeatureTables[src.kind]...))
	messages := src.kind == "postgres"
	outboxSection := "outbox:\n  - table: soak.outbox\n"
	if messages {
		outboxSection += "  - message_prefix: liberator.outbox\n"
	}
	cfg := eosConfig(t, src, k.Brokers, reg.URL, []string{"soak.items", "soak.snap", "soak.evolve", "soak.bad"}, "20ms",
		"schema:\n  on_incompatible: new_topic\nerrors:\n  on_bad_row: dead_letter\n"+outboxSection)

	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	require.Eventually(t, func() bool {
		return d.exited() || !soakInSnapshot(offsetsTopicPosition(t, ctx, k.Brokers, "soak"))
	}, 3*time.Minute, 50*time.Millisecond, "the initial snapshot did not finish")
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())

	wl, err := startSoakWorkload(ctx, src.connect, seed, 2, preload, 40)
	require.NoError(t, err)
	ow, err := startOutboxWriter(ctx, src, messages)
	require.NoError(t, err)
	restart := func(what string) {
		t.Helper()
		d.kill()
		t.Logf("killed %s", what)
		d = startDaemon(t, "run", cfg)
		waitReady(t, d)
	}

	// Outbox rows flow from now on.
	soakPause(t, d, time.Duration(300+rng.IntN(700))*time.Millisecond)
	restart("while outbox events flow")

	// An incremental snapshot, killed once part of it is committed.
	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", cfg, "--admin", d.adminAddr(), "--table", "soak.snap").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Eventually(t, func() bool {
		if d.exited() || eventsOf(d, "soak.snap") >= eosSnapRows {
			return true
		}
		s := unescaped(offsetsTopicPosition(t, ctx, k.Brokers, "soak"))
		return strings.Contains(s, `"snapshot":`) && strings.Contains(s, `"after":`)
	}, 2*time.Minute, 20*time.Millisecond, "the incremental snapshot stored no progress")
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	midSnapshot := eventsOf(d, "soak.snap") < eosSnapRows
	restart(fmt.Sprintf("in the incremental snapshot of soak.snap (mid-way: %v)", midSnapshot))
	require.True(t, midSnapshot, "the incremental snapshot of %d rows finished before the kill", eosSnapRows)

	// An incompatible change under new_topic, killed while the rows after
	// it flow.
	require.NoError(t, sqlOn(ctx, src, eosIncompatible[src.kind]))
	for i := 11; i <= 20; i++ {
		require.NoError(t, sqlOn(ctx, src, fmt.Sprintf("INSERT INTO soak.evolve VALUES (%d, 'n%d')", i, i)))
		if i == 15 {
			restart("after the incompatible change")
		}
	}

	// A row too large for its topic, then a good one; killed right after.
	require.NoError(t, sqlOn(ctx, src, fmt.Sprintf("INSERT INTO soak.bad VALUES (1, REPEAT('x', %d))", poisonRowBytes),
		"INSERT INTO soak.bad VALUES (2, 'fine')"))
	soakPause(t, d, time.Duration(rng.IntN(300))*time.Millisecond)
	restart("around the bad row")
	soakPause(t, d, time.Duration(300+rng.IntN(700))*time.Millisecond)
	restart("once more under the workload")
	soakPause(t, d, time.Second)

	if errs := wl.halt(); len(errs) > 0 {
		t.Fatalf("workload: %v", errors.Join(errs...))
	}
	require.NoError(t, ow.halt(), "outbox writer")
	figs := wl.figures()
	t.Logf("workload: %d transactions committed, %d rolled back, %d changes; outbox events: %d table, %d messages",
		figs.committed, figs.rolledBack, figs.changes, len(ow.committed["soak.Order"]), len(ow.committed["soak.Payment"]))

	read := func(table string) (rowSet, error) { return src.read(ctx, table) }
	requireTopicsEqual(t, ctx, k.Brokers, client, read, func(table string) string { return "soak." + table },
		[]string{"soak.items", "soak.snap"}, 3*time.Minute)

	t.Run("each ledger change once", func(t *testing.T) {
		ledger, err := src.readLedger(ctx)
		require.NoError(t, err)
		events, records, err := readSoakTopic(ctx, k.Brokers, client, "soak.soak.items")
		require.NoError(t, err)
		rep := checkSoakLedger(ledger, events, preload, figs.rolledBackTxns)
		t.Logf("checked %d ledger upserts and %d deletes; %d committed records, %d duplicates", rep.upsertsChecked, rep.deletesChecked, records, rep.duplicates)
		if len(rep.problems) > 0 {
			t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
		}
		require.Zero(t, rep.duplicates, "duplicates a read_committed reader sees")
	})
	t.Run("each outbox event once", func(t *testing.T) {
		for topic, ids := range ow.committed {
			var got map[string]int
			require.Eventually(t, func() bool {
				got, err = outboxIDs(ctx, k.Brokers, topic)
				if err != nil {
					return false
				}
				for _, id := range ids {
					if got[id] == 0 {
						return false
					}
				}
				return true
			}, time.Minute, 100*time.Millisecond, "events of %s missing", topic)
			for _, id := range ids {
				require.Equal(t, 1, got[id], "records of event %s in %s", id, topic)
			}
			require.Len(t, got, len(ids), "events in %s", topic)
		}
	})
	t.Run("each row of the requested snapshot once", func(t *testing.T) {
		got, err := idCounts(ctx, k.Brokers, client, "soak.soak.snap")
		require.NoError(t, err)
		// The initial snapshot's and the requested one's.
		requireEachTimes(t, got, 1, eosSnapRows, 2, "soak.soak.snap")
	})
	t.Run("new_topic: each row once, in the topic of its schema", func(t *testing.T) {
		var got map[int64]int
		require.Eventually(t, func() bool {
			got, err = idCounts(ctx, k.Brokers, client, "soak.soak.evolve.v2")
			return err == nil && len(got) >= 10
		}, time.Minute, 100*time.Millisecond, "soak.soak.evolve.v2 has not got rows 11..20")
		requireEachTimes(t, got, 11, 20, 1, "soak.soak.evolve.v2")
		old, err := idCounts(ctx, k.Brokers, client, "soak.soak.evolve")
		require.NoError(t, err)
		requireEachTimes(t, old, 1, 10, 1, "soak.soak.evolve")
	})
	t.Run("the dead letter once", func(t *testing.T) {
		good, err := idCounts(ctx, k.Brokers, client, "soak.soak.bad")
		require.NoError(t, err)
		requireEachTimes(t, good, 2, 2, 1, "soak.soak.bad")
		recs, err := readRecords(ctx, k.Brokers, "soak.dead_letter")
		require.NoError(t, err)
		var letters []kafka.DeadLetter
		for _, r := range recs {
			if r.Attrs.IsControl() {
				continue
			}
			var dl kafka.DeadLetter
			require.NoError(t, json.Unmarshal(r.Value, &dl), "dead letter %q", r.Value)
			letters = append(letters, dl)
		}
		require.Len(t, letters, 1, "dead letters a read_committed reader finds")
		require.Equal(t, "soak.bad", letters[0].Table)
	})
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// TestIntegrationExactlyOnceReconcileKilledAtItsEnd kills liberator right
// after a re-snapshot with reconcile read its topic and produced its last
// rows, before the transaction holding them commits (commit_interval is
// long). The read needs the records before it committed; the commit it
// makes for that must carry a position that covers every record in it, so
// that the next start does not send the re-snapshot's last rows again: a
// read_committed reader finds each row twice (the initial snapshot's and
// the re-snapshot's), never three times.
func TestIntegrationExactlyOnceReconcileKilledAtItsEnd(t *testing.T) {
	for _, src := range soakSources {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// Not a multiple of chunk_size: the last chunk, shorter than
			// the others, comes in the batch that ends the re-snapshot.
			const rows = 3250
			k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
			reg := harness.Registry(t)
			client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
			require.NoError(t, err)
			s := src.open(t, ctx, rows)
			tables := []string{"soak.items"}
			fast := eosConfig(t, s, k.Brokers, reg.URL, tables, "20ms", "")
			slow := eosConfig(t, s, k.Brokers, reg.URL, tables, "30s", "")

			d := startDaemon(t, "run", fast)
			require.Eventually(t, func() bool {
				p := offsetsTopicPosition(t, ctx, k.Brokers, "soak")
				return d.exited() || p != nil && !soakInSnapshot(p)
			}, 2*time.Minute, 50*time.Millisecond, "the initial snapshot did not finish")
			require.Equal(t, 0, d.stop(30*time.Second), "exit code after SIGTERM:\n%s", d.logTail())

			// No transaction commits by the clock for 30 s: only the
			// reconcile's read commits.
			d = startDaemon(t, "run", slow)
			waitReady(t, d)
			out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", slow, "--admin", d.adminAddr(),
				"--table", "soak.items", "--reconcile").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Eventually(t, func() bool { return d.exited() || d.logContains("re-snapshot with reconcile done") },
				time.Minute, 2*time.Millisecond, "the re-snapshot did not end")
			d.kill()

			d = startDaemon(t, "run", fast)
			require.Eventually(t, func() bool { return d.exited() || d.logContains("re-snapshot with reconcile done") },
				time.Minute, 20*time.Millisecond, "the resumed re-snapshot did not end:\n%s", d.logTail())
			requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return s.readTable(ctx) },
				func(string) string { return "soak.soak.items" }, []string{"soak.items"}, time.Minute)
			got, err := idCounts(ctx, k.Brokers, client, "soak.soak.items")
			require.NoError(t, err)
			requireEachTimes(t, got, 1, rows, 2, "soak.soak.items")
			require.Equal(t, 0, d.stop(30*time.Second), "exit code after SIGTERM")
		})
	}
}
