package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// queryPGSchema has a table for each mode, a view, soft deletes and a
// ledger of every order placed.
const queryPGSchema = `
CREATE TABLE customers (
  id bigserial PRIMARY KEY, name text NOT NULL, n int NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
CREATE INDEX ON customers (updated_at, id);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE orders (id bigserial PRIMARY KEY, customer bigint NOT NULL, amount numeric(12,2) NOT NULL);
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL, at timestamp NOT NULL DEFAULT now());
CREATE INDEX ON events (at);
CREATE VIEW even_customers AS SELECT id, name FROM customers WHERE n % 2 = 0 AND deleted_at IS NULL;
`

type queryPG struct {
	pg    *harness.PostgresServer
	kafka *harness.KafkaCluster
	reg   *harness.RegistryServer
	dsn   string
	conn  *pgx.Conn
}

func newQueryPG(t *testing.T, ctx context.Context) *queryPG {
	t.Helper()
	e := &queryPG{pg: harness.Postgres(t), kafka: harness.Kafka(t), reg: harness.Registry(t)}
	var err error
	if e.dsn, err = e.pg.CreateDatabase("app"); err != nil {
		t.Fatal(err)
	}
	if e.conn, err = pgx.Connect(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	if _, err := e.conn.Exec(ctx, queryPGSchema); err != nil {
		t.Fatal(err)
	}
	// A user that may only read: no REPLICATION, owns nothing.
	if _, err := e.conn.Exec(ctx, `CREATE ROLE reader LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader`); err != nil {
		t.Fatal(err)
	}
	return e
}

// readerDSN is the DSN of the user that may only SELECT.
func (e *queryPG) readerDSN() string {
	u, _ := url.Parse(e.dsn)
	u.User = url.User("reader")
	return u.String()
}

func (e *queryPG) config(t *testing.T, dsn, query string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  capture: query
  dsn: %s
  tables: [public.customers, public.orders, public.events, public.even_customers, public.big_orders]
  query:
%s
kafka:
  brokers: [%s]
  topic_prefix: q
registry:
  url: %s
http:
  listen: 127.0.0.1:0
log:
  level: debug
commit_interval: 100ms
`, dsn, query, strings.Join(e.kafka.Brokers, ","), e.reg.URL))
}

const queryPGTables = `    poll_interval: 200ms
    page_size: 50
    reconcile_every: 2s
    soft_delete: {column: deleted_at}
    tables:
      public.customers: {mode: timestamp+incrementing, timestamp: updated_at, incrementing: id}
      public.orders: {mode: incrementing, incrementing: id}
      public.events: {mode: timestamp, timestamp: at}
      public.even_customers: {mode: bulk, key: [id], every: 1s}
      public.big_orders: {mode: incrementing, incrementing: id, key: [id], query: "SELECT id, amount FROM orders WHERE amount > 500"}`

// queryPGWorkload writes every table from several connections at once:
// inserts, updates, soft deletes (deleted_at set) and hard deletes, in
// transactions of a few statements that interleave.
func queryPGWorkload(t *testing.T, ctx context.Context, dsn string, writers, steps int, seed uint64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(context.Background())
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range steps {
				tx, err := conn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				for range 1 + rng.IntN(3) {
					var sql string
					var args []any
					switch r := rng.IntN(100); {
					case r < 30:
						sql, args = `INSERT INTO customers (name, n) VALUES ($1, $2)`, []any{fmt.Sprintf("c%d-%d", w, i), rng.IntN(10)}
					case r < 55:
						sql, args = `UPDATE customers SET n = n + 1, name = name || '+' WHERE id = (SELECT id FROM customers WHERE deleted_at IS NULL ORDER BY random() LIMIT 1)`, nil
					case r < 62:
						sql = `UPDATE customers SET deleted_at = now() WHERE id = (SELECT id FROM customers WHERE deleted_at IS NULL ORDER BY random() LIMIT 1)`
					case r < 67:
						sql = `DELETE FROM customers WHERE id = (SELECT id FROM customers ORDER BY random() LIMIT 1)`
					case r < 85:
						sql, args = `INSERT INTO orders (customer, amount) VALUES ($1, $2)`, []any{rng.IntN(100), fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(100))}
					case r < 93:
						sql, args = `INSERT INTO events (id, kind) VALUES ($1, 'new') ON CONFLICT (id) DO UPDATE SET kind = events.kind || '+', at = now()`, []any{rng.IntN(300)}
					default:
						sql, args = `DELETE FROM events WHERE id = $1`, []any{rng.IntN(300)}
					}
					if _, err = tx.Exec(ctx, sql, args...); err != nil {
						_ = tx.Rollback(ctx)
						err = fmt.Errorf("%s: %w", sql, err)
						break
					}
				}
				if err != nil {
					// Writers that pick rows at random deadlock at times;
					// the transaction is rolled back and the next begins.
					// 40P01 is deadlock_detected, 40001 serialization_failure.
					var pe *pgconn.PgError
					if errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
						continue
					}
					errs <- err
					return
				}
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// requireQueryPGConverges waits until each topic equals its table: the
// customers that are not soft-deleted, every order, every event, and the
// view.
func (e *queryPG) requireConverges(t *testing.T, ctx context.Context) {
	t.Helper()
	tables := map[string]string{
		"public.customers":      "(SELECT * FROM customers WHERE deleted_at IS NULL) AS t",
		"public.orders":         "orders",
		"public.events":         "events",
		"public.even_customers": "even_customers",
		"public.big_orders":     "(SELECT id, amount FROM orders WHERE amount > 500) AS t",
	}
	client := e.registry(t)
	read := func(table string) (rowSet, error) { return readTable(ctx, e.conn, tables[table], []string{"id"}) }
	requireTopicsEqual(t, ctx, e.kafka.Brokers, client, read, func(table string) string { return "q." + table }, keysOf(map[string][]string{
		"public.customers": nil, "public.orders": nil, "public.events": nil, "public.even_customers": nil, "public.big_orders": nil,
	}), 120*time.Second)
}

// TestIntegrationPostgresQueryCapture polls a table in each mode, a view and
// a query
// while several writers insert, update, soft-delete and hard-delete rows;
// liberator is killed with SIGKILL half way and started again. In the end
// every topic equals its table (soft- and hard-deleted rows tombstoned, the
// latter by the reconcile), and every order ever placed is in the orders
// topic. liberator check warns about a poll without an index.
func TestIntegrationPostgresQueryCapture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newQueryPG(t, ctx)
	queryPGWorkload(t, ctx, e.dsn, 2, 100, 1)
	cfg := e.config(t, e.dsn, queryPGTables)
	code, out := runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "ok    column updated_at of public.customers has an index")
	require.Contains(t, out, "WARN  the poll of public.big_orders can use an index\n      public.big_orders is a query")
	e.exec(t, ctx, "DROP INDEX events_at_idx")
	_, out = runCheck(t, cfg)
	require.Contains(t, out, "WARN  column at of public.events has an index\n      no index of public.events begins with at, so every poll scans the whole table: CREATE INDEX CONCURRENTLY ON \"public\".\"events\" (\"at\")")
	e.exec(t, ctx, "CREATE INDEX events_at_idx ON events (at)")

	d := startDaemon(t, "run", cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		queryPGWorkload(t, ctx, e.dsn, 3, 1500, 2)
	}()
	// SIGKILL while the writers write and the polls read.
	waitLog(t, d, "position stored")
	require.Eventually(t, func() bool { return strings.Count(readFile(d.log), "position stored") > 10 }, time.Minute, 10*time.Millisecond)
	d.kill()
	d = startDaemon(t, "run", cfg)
	<-done
	queryPGWorkload(t, ctx, e.dsn, 2, 100, 3)
	e.requireConverges(t, ctx)
	e.requireEveryOrder(t, ctx)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
	var live, soft, orders int
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL), (SELECT count(*) FROM orders) FROM customers").Scan(&live, &soft, &orders))
	t.Logf("customers: %d live, %d soft-deleted; orders: %d", live, soft, orders)
}

// readFile is the content of a file, or "" when it cannot be read.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// requireEveryOrder checks that every order the table holds has its event:
// orders are never deleted, so nothing lost shows as a missing id.
func (e *queryPG) requireEveryOrder(t *testing.T, ctx context.Context) {
	t.Helper()
	var n int
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count(*) FROM orders").Scan(&n))
	got, err := replayTopic(ctx, e.kafka.Brokers, e.registry(t), "q.public.orders")
	require.NoError(t, err)
	require.Len(t, got, n)
}

func (e *queryPG) registry(t *testing.T) *schema.Registry {
	t.Helper()
	r, err := schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL})
	require.NoError(t, err)
	return r
}

// TestIntegrationPostgresQueryLongTransaction is the missed row of
// timestamp polling: transaction A begins (its now() is fixed then), B
// writes a row and commits, polls run, and only then A writes its row, with
// the older timestamp, and commits. A's row must arrive. So must A's row of
// a sequence-keyed table in mode incrementing, where A took the lower id
// and B the higher one and committed first. liberator runs as
// a user that may only SELECT, so it sees the transactions in progress
// through pg_locks alone; and liberator check, as that user, passes query
// capture and says what log capture would need. At the end a hard delete is
// tombstoned by a requested snapshot with reconcile.
func TestIntegrationPostgresQueryLongTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newQueryPG(t, ctx)
	e.exec(t, ctx, `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
		CREATE INDEX ON accounts (updated_at); GRANT SELECT ON accounts TO reader;
		INSERT INTO accounts (id, owner) VALUES (0, 'before');
		CREATE TABLE ledger (id bigserial PRIMARY KEY, note text NOT NULL); GRANT SELECT ON ledger TO reader;
		INSERT INTO ledger (note) VALUES ('before')`)
	cfg := writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  capture: query
  dsn: %s
  tables: [public.accounts, public.ledger]
  query:
    poll_interval: 100ms
    tables:
      public.accounts: {mode: timestamp, timestamp: updated_at}
      public.ledger: {mode: incrementing, incrementing: id}
kafka:
  brokers: [%s]
  topic_prefix: q
registry:
  url: %s
http:
  listen: 127.0.0.1:0
log:
  level: debug
commit_interval: 100ms
`, e.readerDSN(), strings.Join(e.kafka.Brokers, ","), e.reg.URL))

	code, outText := runCheck(t, cfg)
	require.Equal(t, 0, code, outText)
	require.Contains(t, outText, "WARN  log capture (source.capture: log) would need: the user may replicate")
	require.Contains(t, outText, "WARN  log capture (source.capture: log) would need: the publication can be created")

	d := startDaemon(t, "run", cfg)
	reg := e.registry(t)
	accounts := func() rowSet {
		rows, err := readTable(ctx, e.conn, "accounts", []string{"id"})
		require.NoError(t, err)
		return rows
	}
	ledger := func() rowSet {
		rows, err := readTable(ctx, e.conn, "ledger", []string{"id"})
		require.NoError(t, err)
		return rows
	}
	requireTopicEquals(t, ctx, e.kafka.Brokers, reg, "q.public.accounts", accounts)
	requireTopicEquals(t, ctx, e.kafka.Brokers, reg, "q.public.ledger", ledger)

	a, err := pgx.Connect(ctx, e.dsn)
	require.NoError(t, err)
	defer a.Close(context.Background())
	txA, err := a.Begin(ctx)
	require.NoError(t, err)
	var startA time.Time
	require.NoError(t, txA.QueryRow(ctx, "SELECT now()").Scan(&startA))
	// A takes the lower ledger id, B the higher one and commits first.
	_, err = txA.Exec(ctx, `INSERT INTO ledger (note) VALUES ('A')`)
	require.NoError(t, err)
	e.exec(t, ctx, `INSERT INTO accounts (id, owner) VALUES (2, 'B, committed first'); INSERT INTO ledger (note) VALUES ('B')`)
	// Polls run while A is open: each one sees B's row committed, with a
	// timestamp after A's start.
	polls := strings.Count(readFile(d.log), "msg=poll ")
	require.Eventually(t, func() bool { return strings.Count(readFile(d.log), "msg=poll ") >= polls+10 }, time.Minute, 20*time.Millisecond)
	_, err = txA.Exec(ctx, `INSERT INTO accounts (id, owner) VALUES (1, 'A, begun first, committed last')`)
	require.NoError(t, err)
	require.NoError(t, txA.Commit(ctx))
	var tsA, tsB time.Time
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT (SELECT updated_at FROM accounts WHERE id = 1), (SELECT updated_at FROM accounts WHERE id = 2)").Scan(&tsA, &tsB))
	require.True(t, tsA.Before(tsB), "A's row (%s) is older than B's (%s)", tsA, tsB)
	require.True(t, tsA.Equal(startA))
	requireTopicEquals(t, ctx, e.kafka.Brokers, reg, "q.public.accounts", accounts)
	requireTopicEquals(t, ctx, e.kafka.Brokers, reg, "q.public.ledger", ledger)

	// A hard delete leaves nothing to poll; a requested snapshot reads the
	// table in full and tombstones the key it no longer has.
	e.exec(t, ctx, "DELETE FROM accounts WHERE id = 0")
	out, err := exec.CommandContext(ctx, binary, "snapshot", "--config", cfg, "--admin", d.adminAddr(), "--table", "public.accounts", "--reconcile").CombinedOutput()
	require.NoError(t, err, "%s", out)
	requireTopicEquals(t, ctx, e.kafka.Brokers, reg, "q.public.accounts", accounts)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
}

func (e *queryPG) exec(t *testing.T, ctx context.Context, sql string) {
	t.Helper()
	if _, err := e.conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestIntegrationPostgresQuerySnapshotOnly runs liberator snapshot under
// query capture: every table, view and query is read once, in full, and
// liberator exits 0; a second run finds them read and exits at once.
func TestIntegrationPostgresQuerySnapshotOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newQueryPG(t, ctx)
	queryPGWorkload(t, ctx, e.dsn, 2, 100, 5)
	cfg := e.config(t, e.dsn, queryPGTables)
	waitExit(t, startDaemon(t, "snapshot", cfg), 0)
	e.requireConverges(t, ctx)
	d := startDaemon(t, "snapshot", cfg)
	waitExit(t, d, 0, "source finished")
	require.False(t, d.logContains("full read begins"), "a second snapshot read a table again:\n%s", d.logTail())
}
