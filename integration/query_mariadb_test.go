package integration

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

func init() {
	mdbKinds["updated_at"] = "time"
	mdbKinds["deleted_at"] = "time"
	mdbKinds["seen"] = "time"
}

const queryMariaDBSchema = `CREATE DATABASE shop;
CREATE TABLE shop.customers (
	id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, n INT NOT NULL,
	updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
	deleted_at TIMESTAMP(6) NULL,
	INDEX (updated_at, id)) DEFAULT CHARSET = utf8mb4;
CREATE TABLE shop.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer INT NOT NULL, amount DECIMAL(12,2) NOT NULL);
CREATE TABLE shop.events (id INT PRIMARY KEY, kind VARCHAR(200) NOT NULL,
	seen DATETIME(6) NOT NULL DEFAULT NOW(6) ON UPDATE NOW(6), INDEX (seen));
CREATE VIEW shop.even_customers AS SELECT id, name FROM shop.customers WHERE n % 2 = 0 AND deleted_at IS NULL;
CREATE USER reader@'%';
GRANT SELECT ON shop.* TO reader@'%'`

type queryMariaDB struct {
	db    *harness.MariaDBServer
	kafka *harness.KafkaCluster
	reg   *harness.RegistryServer
	conn  *client.Conn
}

func newQueryMariaDB(t *testing.T, ctx context.Context) *queryMariaDB {
	t.Helper()
	e := &queryMariaDB{db: harness.MariaDB(t), kafka: harness.Kafka(t), reg: harness.Registry(t)}
	var err error
	if e.conn, err = e.db.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	for _, q := range append([]string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"}, strings.Split(queryMariaDBSchema, ";\n")...) {
		if _, err := e.conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return e
}

func (e *queryMariaDB) config(t *testing.T, dsn string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: mariadb
  capture: query
  dsn: %s
  tables: [shop.customers, shop.orders, shop.events, shop.even_customers, shop.big_orders]
  query:
    poll_interval: 200ms
    page_size: 50
    lag: 1s
    reconcile_every: 2s
    soft_delete: {column: deleted_at}
    tables:
      shop.customers: {mode: timestamp+incrementing, timestamp: updated_at, incrementing: id}
      shop.orders: {mode: incrementing, incrementing: id}
      shop.events: {mode: timestamp, timestamp: seen}
      shop.even_customers: {mode: bulk, key: [id], every: 1s}
      shop.big_orders: {mode: incrementing, incrementing: id, key: [id], query: "SELECT id, amount FROM shop.orders WHERE amount > 500"}
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
`, dsn, strings.Join(e.kafka.Brokers, ","), e.reg.URL))
}

// workload writes every table from several connections at once, as
// queryPGWorkload does.
func (e *queryMariaDB) workload(t *testing.T, ctx context.Context, writers, steps int, seed uint64) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := e.db.Connect(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range steps {
				if _, err := conn.Execute("BEGIN"); err != nil {
					errs <- err
					return
				}
				for range 1 + rng.IntN(3) {
					var sql string
					var args []any
					switch r := rng.IntN(100); {
					case r < 30:
						sql, args = `INSERT INTO shop.customers (name, n) VALUES (?, ?)`, []any{fmt.Sprintf("c%d-%d", w, i), rng.IntN(10)}
					case r < 55:
						sql, args = `UPDATE shop.customers SET n = n + 1, name = CONCAT(name, '+') WHERE deleted_at IS NULL ORDER BY RAND() LIMIT 1`, nil
					case r < 62:
						sql = `UPDATE shop.customers SET deleted_at = NOW(6) WHERE deleted_at IS NULL ORDER BY RAND() LIMIT 1`
					case r < 67:
						sql = `DELETE FROM shop.customers ORDER BY RAND() LIMIT 1`
					case r < 85:
						sql, args = `INSERT INTO shop.orders (customer, amount) VALUES (?, ?)`, []any{rng.IntN(100), fmt.Sprintf("%d.%02d", rng.IntN(1000), rng.IntN(100))}
					case r < 93:
						sql, args = `INSERT INTO shop.events (id, kind) VALUES (?, 'new') ON DUPLICATE KEY UPDATE kind = CONCAT(kind, '+')`, []any{rng.IntN(300)}
					default:
						sql, args = `DELETE FROM shop.events WHERE id = ?`, []any{rng.IntN(300)}
					}
					if _, err = conn.Execute(sql, args...); err != nil {
						_, _ = conn.Execute("ROLLBACK")
						break
					}
				}
				if err != nil {
					// Writers that pick rows at random deadlock at times;
					// the transaction is rolled back and the next begins.
					var me *gomysql.MyError
					if errors.As(err, &me) && (me.Code == gomysql.ER_LOCK_DEADLOCK || me.Code == gomysql.ER_LOCK_WAIT_TIMEOUT) {
						continue
					}
					errs <- err
					return
				}
				if _, err := conn.Execute("COMMIT"); err != nil {
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

// TestIntegrationMariaDBQueryCapture is TestIntegrationPostgresQueryCapture
// on MariaDB, as a user that may only SELECT: every mode, a view and a
// query under
// concurrent writers, soft and hard deletes, SIGKILL half way; and
// liberator check, as that user, passes query capture and says what log
// capture would need.
func TestIntegrationMariaDBQueryCapture(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newQueryMariaDB(t, ctx)
	cfg := e.config(t, "mysql://reader@"+e.db.Addr+"/")
	code, out := runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "WARN  log capture (source.capture: log) would need: the user has REPLICATION SLAVE")
	require.Contains(t, out, "ok    column seen of shop.events has an index")
	require.Contains(t, out, "ok    the query of shop.big_orders can be run")

	e.workload(t, ctx, 2, 100, 1)
	d := startDaemon(t, "run", cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.workload(t, ctx, 3, 600, 2)
	}()
	require.Eventually(t, func() bool { return strings.Count(readFile(d.log), "position stored") > 10 }, time.Minute, 10*time.Millisecond)
	// Every reconcile_every a full read writes each row again as op r,
	// and the broker compacts within 100 ms: a row's c record lasts only
	// until the next full read. The ops are counted as they are
	// produced, not in what the compacted topics keep at the end.
	opsSeen := watchOps(t, ctx, e.kafka.Brokers, "q.shop.orders", "q.shop.events", "q.shop.customers", "q.shop.even_customers")
	d.kill()
	d = startDaemon(t, "run", cfg)
	<-done
	e.workload(t, ctx, 2, 100, 3)

	reg, err := schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL})
	require.NoError(t, err)
	tables := map[string]string{
		"shop.customers":      "shop.customers WHERE deleted_at IS NULL",
		"shop.orders":         "shop.orders",
		"shop.events":         "shop.events",
		"shop.even_customers": "shop.even_customers",
		"shop.big_orders":     "(SELECT id, amount FROM shop.orders WHERE amount > 500) AS t",
	}
	read := func(table string) (rowSet, error) { return readMariaDBTable(e.conn, tables[table], []string{"id"}) }
	requireTopicsEqual(t, ctx, e.kafka.Brokers, reg, read, func(table string) string { return "q." + table }, keysOf(map[string][]string{
		"shop.customers": nil, "shop.orders": nil, "shop.events": nil, "shop.even_customers": nil, "shop.big_orders": nil,
	}), 120*time.Second)
	rows, err := e.conn.Execute("SELECT COUNT(*) FROM shop.orders")
	require.NoError(t, err)
	n, _ := rows.GetInt(0, 0)
	got, err := replayTopic(ctx, e.kafka.Brokers, reg, "q.shop.orders")
	require.NoError(t, err)
	require.Len(t, got, int(n))
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())

	// The op header says what a query can tell; pos is the row's watermark.
	seen := opsSeen()
	for topic, want := range map[string]string{"q.shop.orders": "cr", "q.shop.events": "urd", "q.shop.customers": "urd", "q.shop.even_customers": "rd"} {
		recs, err := readRecords(ctx, e.kafka.Brokers, topic)
		require.NoError(t, err)
		ops := seen[topic]
		for _, r := range recs {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			ops[h["op"]]++
			switch {
			case topic == "q.shop.events" && h["op"] == "u":
				require.Regexp(t, `^shop\.events@\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6},\d+$`, h["pos"])
			case h["op"] == "c" || h["op"] == "u":
				require.Regexp(t, `^shop\.\w+@`, h["pos"], "pos header of %s", topic)
			}
		}
		for _, op := range want {
			require.Positive(t, ops[string(op)], "no op %c in %s: %v", op, topic, ops)
		}
		require.Len(t, ops, len(want), "ops of %s: %v", topic, ops)
	}
}

// watchOps counts the op headers of every record of topics, from their
// start, as they are produced, until the function it returns is called;
// that function returns the counts by topic.
func watchOps(t *testing.T, ctx context.Context, brokers []string, topics ...string) func() map[string]map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(ctx)
	counts := map[string]map[string]int{}
	for _, topic := range topics {
		counts[topic] = map[string]int{}
	}
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				for _, h := range r.Headers {
					if h.Key == "op" {
						counts[r.Topic][string(h.Value)]++
					}
				}
			})
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			cl.Close()
		})
	}
	t.Cleanup(stop)
	return func() map[string]map[string]int {
		stop()
		mu.Lock()
		defer mu.Unlock()
		return counts
	}
}
