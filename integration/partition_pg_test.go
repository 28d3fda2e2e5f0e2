package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// partRows is the number of rows public.events holds before liberator
// starts.
const partRows = 3000

// pgPartitionedSQL makes public.events, partitioned by list on region,
// with two partitions and a DEFAULT one, and fills it. v is the row's
// version: every change of a row raises it, so that each committed change
// can be found in the topic. One row in ten has a payload stored out of
// line (TOAST), which updates that leave it alone send as unchanged.
const pgPartitionedSQL = `
CREATE TABLE events (
	region  text,
	id      bigint,
	v       integer NOT NULL,
	note    text,
	payload text,
	PRIMARY KEY (region, id)
) PARTITION BY LIST (region);
CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
CREATE TABLE events_other PARTITION OF events DEFAULT;
INSERT INTO events
SELECT (ARRAY['eu', 'us', 'xx'])[1 + g %% 3], g, 0, md5(g::text),
       CASE WHEN g %% 10 = 0 THEN (SELECT string_agg(chr(65 + (random() * 57)::int), '') FROM generate_series(1, 4000 + g %% 7)) END
FROM generate_series(1, %d) g;
ANALYZE events_eu, events_us, events_other;
`

// partTable is the partitioned table and its key.
var partTable = map[string][]string{"public.events": {"region", "id"}}

type partEnv struct {
	pg     *harness.PostgresServer
	kafka  *harness.KafkaCluster
	reg    *harness.RegistryServer
	dsn    string
	conn   *pgx.Conn
	client *schema.Registry
}

// newPartEnv starts the servers and makes public.events. Compaction is left
// to kfake's default hour, so that every event stays in the topic for the
// per-key check.
func newPartEnv(t *testing.T, ctx context.Context) *partEnv {
	t.Helper()
	e := &partEnv{pg: harness.Postgres(t), kafka: harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000")), reg: harness.Registry(t)}
	var err error
	if e.dsn, err = e.pg.CreateDatabase("shop"); err != nil {
		t.Fatal(err)
	}
	if e.conn, err = pgx.Connect(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	if _, err := e.conn.Exec(ctx, fmt.Sprintf(pgPartitionedSQL, partRows)); err != nil {
		t.Fatal(err)
	}
	if e.client, err = schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *partEnv) config(t *testing.T, tables ...string) string {
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [%s]
  postgres:
    heartbeat_interval: 200ms
snapshot:
  chunk_size: 500
  parallelism: 2
kafka:
  brokers: [%s]
  topic_prefix: shop
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 50ms
`, e.dsn, strings.Join(tables, ", "), strings.Join(e.kafka.Brokers, ","), e.reg.URL))
}

func (e *partEnv) exec(t *testing.T, ctx context.Context, sql string) {
	t.Helper()
	if _, err := e.conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// partKey is a row's key in the canonical form of the topic's keys.
func partKey(region string, id int64) string {
	return canon(map[string]any{"region": region, "id": id})
}

// partRow is a row of public.events as the workload knows it.
type partRow struct {
	region string
	id     int64
	v      int
	toast  bool // the payload is stored out of line
}

// ledgerEntry is what a committed change must put in the topic: "v=N" for
// a row, "delete" for a tombstone.
type ledgerEntry struct {
	what string
	// unchangedToast marks an update that left an out-of-line payload
	// alone. Under the default replica identity liberator reads the
	// payload by key, and skips the update if the row is gone by then, as
	// the postgres package documents: a later delete of the key follows.
	unchangedToast bool
}

// partWorkload changes public.events at random, in transactions of one to
// three statements: inserts, updates (some leaving the TOASTed payload
// alone), deletes, and updates of region that move a row to another
// partition. It keeps a ledger, per key, of what each committed change
// must put in the topic.
type partWorkload struct {
	rng     *rand.Rand
	regions []string
	rows    []partRow
	nextID  int64
	ledger  map[string][]ledgerEntry
	moves   int
}

func newPartWorkload(seed uint64, regions ...string) *partWorkload {
	w := &partWorkload{rng: rand.New(rand.NewPCG(seed, seed+1)), regions: regions, nextID: partRows + 1, ledger: map[string][]ledgerEntry{}}
	for g := int64(1); g <= partRows; g++ {
		w.rows = append(w.rows, partRow{region: []string{"eu", "us", "xx"}[g%3], id: g, toast: g%10 == 0})
	}
	return w
}

func (w *partWorkload) text(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('A' + w.rng.IntN(58))
	}
	return string(b)
}

// step runs one transaction and, once it committed, records it.
func (w *partWorkload) step(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	rows := slices.Clone(w.rows)
	type keyed struct {
		key string
		ledgerEntry
	}
	var entries []keyed
	note := func(region string, id int64, what string, unchangedToast bool) {
		entries = append(entries, keyed{partKey(region, id), ledgerEntry{what, unchangedToast}})
	}
	for range 1 + w.rng.IntN(3) {
		op := w.rng.IntN(100)
		switch {
		case op < 30 || len(rows) < 10:
			r := partRow{region: w.regions[w.rng.IntN(len(w.regions))], id: w.nextID, v: 1}
			w.nextID++
			var payload any
			if w.rng.IntN(4) == 0 {
				payload = w.text(3000 + w.rng.IntN(2000))
				r.toast = true
			}
			if _, err := tx.Exec(ctx, `INSERT INTO events VALUES ($1, $2, $3, $4, $5)`, r.region, r.id, r.v, w.text(10), payload); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
			rows = append(rows, r)
			note(r.region, r.id, fmt.Sprint("v=", r.v), false)
		case op < 65:
			i := w.rng.IntN(len(rows))
			rows[i].v++
			r := rows[i]
			if _, err := tx.Exec(ctx, `UPDATE events SET v = $3, note = $4 WHERE region = $1 AND id = $2`, r.region, r.id, r.v, w.text(12)); err != nil {
				return fmt.Errorf("update: %w", err)
			}
			note(r.region, r.id, fmt.Sprint("v=", r.v), r.toast)
		case op < 85:
			i := w.rng.IntN(len(rows))
			r := rows[i]
			to := w.regions[w.rng.IntN(len(w.regions))]
			if to == r.region {
				continue
			}
			rows[i].region, rows[i].v = to, r.v+1
			if _, err := tx.Exec(ctx, `UPDATE events SET region = $3, v = $4 WHERE region = $1 AND id = $2`, r.region, r.id, to, r.v+1); err != nil {
				return fmt.Errorf("move: %w", err)
			}
			note(r.region, r.id, "delete", false)
			note(to, r.id, fmt.Sprint("v=", r.v+1), false)
			w.moves++
		default:
			i := w.rng.IntN(len(rows))
			r := rows[i]
			if _, err := tx.Exec(ctx, `DELETE FROM events WHERE region = $1 AND id = $2`, r.region, r.id); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
			rows = slices.Delete(rows, i, i+1)
			note(r.region, r.id, "delete", false)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	w.rows = rows
	for _, en := range entries {
		w.ledger[en.key] = append(w.ledger[en.key], en.ledgerEntry)
	}
	return nil
}

func (w *partWorkload) run(t *testing.T, ctx context.Context, conn *pgx.Conn, n int) {
	t.Helper()
	for range n {
		if err := w.step(ctx, conn); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
}

// requireLedgerInTopic checks that, for every key, the changes the
// workload committed appear in the topic in commit order: each version,
// and a tombstone after each delete. Other events (snapshot reads) may lie
// between them. An update that left a TOASTed payload alone may be missing
// only if the key was deleted after it.
func requireLedgerInTopic(t *testing.T, ctx context.Context, e *partEnv, topic string, ledger map[string][]ledgerEntry) {
	t.Helper()
	recs, err := readRecords(ctx, e.kafka.Brokers, topic)
	require.NoError(t, err)
	got := map[string][]string{}
	for _, r := range recs {
		k, err := e.client.Decode(ctx, r.Key)
		require.NoError(t, err)
		key := canon(k)
		if r.Value == nil {
			got[key] = append(got[key], "delete")
			continue
		}
		v, err := e.client.Decode(ctx, r.Value)
		require.NoError(t, err)
		rec, ok := v.(map[string]any)
		require.True(t, ok, "value at offset %d is %T", r.Offset, v)
		got[key] = append(got[key], fmt.Sprint("v=", unwrapUnion(rec["v"])))
	}
	missing, skipped := 0, 0
	var report []string
	for key, entries := range ledger {
		events := got[key]
		var want []string
		for n, en := range entries {
			deletedLater := slices.ContainsFunc(entries[n+1:], func(l ledgerEntry) bool { return l.what == "delete" })
			if en.unchangedToast && deletedLater && !slices.Contains(events, en.what) {
				skipped++
				continue
			}
			want = append(want, en.what)
		}
		i := 0
		for _, ev := range events {
			if i < len(want) && ev == want[i] {
				i++
			}
		}
		if i < len(want) {
			missing++
			if len(report) < 10 {
				report = append(report, fmt.Sprintf("%s: committed %v, topic has %v (first missing: %s)", key, want, events, want[i]))
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d changed keys miss committed changes in %s:\n%s", missing, len(ledger), topic, strings.Join(report, "\n"))
	}
	t.Logf("every change of %d keys is in %s (%d events; %d updates of rows deleted before their TOAST look-up skipped)", len(ledger), topic, len(recs), skipped)
}

// TestIntegrationPostgresPartitionedTableStreams captures a partitioned
// table: the snapshot reads it in chunks through the parent, and inserts,
// updates, deletes and rows moved between partitions stream into the
// parent's topic, also for a partition attached and one created while
// streaming. The topic ends equal to the table, and every committed change
// is in it. A table attached with rows in it is brought in by an
// incremental snapshot of the parent.
func TestIntegrationPostgresPartitionedTableStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := newPartEnv(t, ctx)
	cfg := e.config(t, "public.events")
	topic := "shop.public.events"
	converges := func() {
		t.Helper()
		requireConverges(t, ctx, e.kafka.Brokers, e.client, e.conn, func(string) string { return topic }, partTable, 2*time.Minute)
	}

	d := startDaemon(t, "run", cfg)
	base := "http://" + d.adminAddr()
	// Changes committed before the slot exists are in the snapshot only;
	// the ledger starts once the daemon is ready.
	waitReady(t, d)
	w := newPartWorkload(21, "eu", "us", "xx", "yy")
	w.run(t, ctx, e.conn, 300)

	require.Eventually(t, func() bool {
		p, err := snapshotProgress(base)
		return err == nil && len(p.Tables) == 1 && p.Tables[0].Done
	}, time.Minute, 20*time.Millisecond, "the initial snapshot did not finish:\n%s", d.logTail())

	// A partition attached while streaming, with its columns in another
	// order than the parent's, and one created as a partition.
	e.exec(t, ctx, `CREATE TABLE events_ap (payload text, note text, v integer NOT NULL, id bigint NOT NULL, region text NOT NULL, PRIMARY KEY (region, id))`)
	e.exec(t, ctx, `ALTER TABLE events ATTACH PARTITION events_ap FOR VALUES IN ('ap')`)
	e.exec(t, ctx, `CREATE TABLE events_sa PARTITION OF events FOR VALUES IN ('sa')`)
	w.regions = append(w.regions, "ap", "sa")
	w.run(t, ctx, e.conn, 400)
	converges()
	requireLedgerInTopic(t, ctx, e, topic, w.ledger)
	require.Greater(t, w.moves, 50, "too few rows moved between partitions")
	p, err := snapshotProgress(base)
	require.NoError(t, err)
	require.Equal(t, int64(partRows), p.Tables[0].Rows)
	require.Equal(t, int64(partRows), p.Tables[0].Estimated, "the row estimate of the partitioned table is not the sum over its partitions")

	// Rows already in a table when it is attached were never inserted
	// through the parent: no change carries them. An incremental snapshot
	// of the parent does.
	e.exec(t, ctx, `CREATE TABLE events_jp (LIKE events INCLUDING ALL);
		INSERT INTO events_jp SELECT 'jp', g, 0, 'attached with rows', NULL FROM generate_series(1000000, 1000099) g;
		ALTER TABLE events ATTACH PARTITION events_jp FOR VALUES IN ('jp')`)
	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", cfg, "--admin", d.adminAddr(), "--table", "public.events").CombinedOutput()
	require.NoError(t, err, "liberator snapshot --table: %s", out)
	w.run(t, ctx, e.conn, 100)
	converges()
	requireLedgerInTopic(t, ctx, e, topic, w.ledger)
	require.Equal(t, 0, d.stop(30*time.Second))
}

// TestIntegrationPostgresPartitionPublicationWithoutRoot gives liberator
// an existing publication without publish_via_partition_root: check and
// run refuse it with the ALTER PUBLICATION that fixes it, and run starts
// once it is fixed. A partition captured beside its parent is refused too.
func TestIntegrationPostgresPartitionPublicationWithoutRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newPartEnv(t, ctx)
	e.exec(t, ctx, `CREATE PUBLICATION liberator FOR TABLE events`)
	cfg := e.config(t, "public.events")
	fix := "ALTER PUBLICATION liberator SET (publish_via_partition_root = true);"

	code, out := runCheck(t, cfg)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "FAIL  the publication publishes public.events under its own name")
	require.Contains(t, out, `publication "liberator" lacks publish_via_partition_root`)
	require.Contains(t, out, fix)

	d := startDaemon(t, "run", cfg)
	waitExit(t, d, 1, fix, "public.events")

	code, out = runCheck(t, e.config(t, "public.events", "public.events_eu"))
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "FAIL  public.events_eu is not a partition of a captured table")
	require.Contains(t, out, "remove public.events_eu from source.tables")

	e.exec(t, ctx, fix)
	code, out = runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	d = startDaemon(t, "run", cfg)
	waitReady(t, d)
	e.exec(t, ctx, `UPDATE events SET v = 1 WHERE id % 5 = 0; UPDATE events SET region = 'us' WHERE region = 'eu' AND id % 7 = 0`)
	requireConverges(t, ctx, e.kafka.Brokers, e.client, e.conn, func(string) string { return "shop.public.events" }, partTable, 2*time.Minute)
	require.Equal(t, 0, d.stop(30*time.Second))
}
