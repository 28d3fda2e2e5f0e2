package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// TestIntegrationPostgresStreamedTransactions runs transactions larger than
// logical_decoding_work_mem (64kB here) under source.postgres.streaming:
// two streamed at once, a small one committed between their chunks, a
// subtransaction rolled back after it was streamed, a released one kept, a
// restart of liberator while both are still running, then one commit and
// one rollback. The topic ends up holding exactly the committed rows, and
// never held a row of the aborted transaction or subtransaction.
func TestIntegrationPostgresStreamedTransactions(t *testing.T) {
	for _, delivery := range []string{"at_least_once", "exactly_once"} {
		t.Run(delivery, func(t *testing.T) { testStreamedTransactions(t, delivery) })
	}
}

func testStreamedTransactions(t *testing.T, delivery string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pg := harness.Postgres(t, harness.PostgresSetting("logical_decoding_work_mem", "64kB"))
	k, reg := harness.Kafka(t), harness.Registry(t)
	dsn, err := pg.CreateDatabase("shop")
	require.NoError(t, err)
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	main, connA, connB := connect(), connect(), connect()
	exec := func(c *pgx.Conn, sql string, args ...any) {
		t.Helper()
		_, err := c.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	insert := func(c *pgx.Conn, from, to int) {
		t.Helper()
		exec(c, "INSERT INTO big SELECT g, repeat(md5(g::text), 3) FROM generate_series($1::bigint, $2::bigint) g", from, to)
	}
	exec(main, "CREATE TABLE big (id bigint PRIMARY KEY, body text NOT NULL)")
	insert(main, 0, 0)

	cfg := writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [public.big]
  postgres:
    streaming: true
    heartbeat_interval: 200ms
kafka:
  brokers: [%s]
  topic_prefix: shop
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
delivery: %s
`, dsn, strings.Join(k.Brokers, ","), reg.URL, delivery))
	const topic = "shop.public.big"
	d := startDaemon(t, "run", cfg)
	waitEndOffset(t, ctx, k.Brokers, topic, 1, d)

	streamed := func() int64 {
		var n int64
		require.NoError(t, main.QueryRow(ctx, "SELECT coalesce(sum(stream_txns), 0) FROM pg_stat_replication_slots WHERE slot_name = 'liberator'").Scan(&n))
		return n
	}
	// A and B run at once; each is far above 64kB, so the server streams
	// their chunks interleaved.
	exec(connA, "BEGIN")
	exec(connB, "BEGIN")
	insert(connA, 1, 3000)
	insert(connB, 100_001, 103_000)
	insert(main, 200_001, 200_001) // committed between the chunks
	exec(connA, "SAVEPOINT s1")
	insert(connA, 5001, 8000) // streamed, then rolled back
	exec(connA, "ROLLBACK TO SAVEPOINT s1")
	insert(connA, 9001, 9100)
	exec(connA, "SAVEPOINT s2")
	insert(connA, 9201, 9300) // kept: the savepoint is released
	exec(connA, "RELEASE SAVEPOINT s2")
	insert(connB, 103_001, 106_000)
	require.Eventually(t, func() bool { return streamed() >= 2 }, time.Minute, 50*time.Millisecond,
		"the server never streamed both transactions (pg_stat_replication_slots.stream_txns)")
	waitEndOffset(t, ctx, k.Brokers, topic, 2, d) // the small one is not held up

	// A restart mid-stream: the spooled chunks are gone, the stored
	// position is before both commits, and the server streams both
	// transactions again from their first change.
	require.Equal(t, 0, d.stop(30*time.Second))
	before := streamed()
	d = startDaemon(t, "run", cfg)
	insert(connA, 9401, 9500)
	insert(connB, 106_001, 109_000)
	require.Eventually(t, func() bool { return streamed() > before }, time.Minute, 50*time.Millisecond,
		"the server did not stream the open transactions again after the restart")
	exec(connA, "COMMIT")
	exec(connB, "ROLLBACK")
	insert(main, 300_001, 300_001)

	var want []int64
	add := func(from, to int64) {
		for i := from; i <= to; i++ {
			want = append(want, i)
		}
	}
	add(0, 0)
	add(1, 3000)
	add(9001, 9100)
	add(9201, 9300)
	add(9401, 9500)
	add(200_001, 200_001)
	add(300_001, 300_001)
	waitEndOffset(t, ctx, k.Brokers, topic, int64(len(want)), d)
	require.Equal(t, 0, d.stop(30*time.Second))

	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	recs, err := readRecords(ctx, k.Brokers, topic)
	require.NoError(t, err)
	seen := map[int64]bool{}
	for _, r := range recs {
		if r.Attrs.IsControl() {
			continue
		}
		key, err := client.Decode(ctx, r.Key)
		require.NoError(t, err)
		id := key.(map[string]any)["id"].(int64)
		switch {
		case id >= 5001 && id <= 8000:
			t.Errorf("offset %d holds id %d of the rolled back subtransaction", r.Offset, id)
		case id >= 100_001 && id <= 109_000:
			t.Errorf("offset %d holds id %d of the rolled back transaction", r.Offset, id)
		}
		require.NotNil(t, r.Value, "offset %d is a tombstone", r.Offset)
		seen[id] = true
	}
	var got []int64
	for id := range seen {
		got = append(got, id)
	}
	slices.Sort(got)
	require.Equal(t, want, got, "ids in %s", topic)
	t.Logf("%s: %d records for %d committed rows", delivery, len(recs), len(want))
}
