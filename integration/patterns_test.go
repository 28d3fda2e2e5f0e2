package integration

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/schema"
)

// patternDB is what the pattern tests need of a database: run a statement,
// read a table as replayTopic reads its topic, and the config of a
// daemon.
type patternDB struct {
	exec    func(t *testing.T, sql string)
	read    func(t *testing.T, table string) rowSet
	brokers []string
	replay  func(ctx context.Context, topic string) (rowSet, error)
	// rename is the statement that renames shop.tmp_c to shop.c.
	rename string
	// reg is the registry liberator registers its schemas with.
	reg *schema.Registry
}

// publishings counts the lines of d's log that say the pipeline set up a
// shape of table: its topic and its schemas.
func publishings(d *daemon, table string) int {
	b, _ := os.ReadFile(d.log)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `msg="publishing table"`) && strings.Contains(line, " table="+table+" ") {
			n++
		}
	}
	return n
}

// ledger is what the workload committed to a table: each id's last
// version. Every entry must be in the topic, with that version.
type ledger map[int64]int64

// requireLedger waits until the topic holds the table's rows and every
// ledger entry at its version.
func (db *patternDB) requireLedger(t *testing.T, ctx context.Context, topic, table string, l ledger) {
	t.Helper()
	requireRows(t, ctx, "topic "+topic, func() rowSet { return db.read(t, table) }, func() (rowSet, error) { return db.replay(ctx, topic) })
	got, err := db.replay(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]string{}
	for _, row := range got {
		byID[row["id"]] = row
	}
	var missing []string
	for id, v := range l {
		row := byID[canon(id)]
		if row == nil || row["v"] != canon(v) {
			missing = append(missing, fmt.Sprintf("id %d v %d (topic has %v)", id, v, row))
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("topic %s lacks %d committed changes of the ledger: %v", topic, len(missing), missing)
	}
}

// testPatterns runs the pattern scenario on a database whose schema (or
// database) shop holds:
//
//   - shop.a, with rows, which shop.* takes at the start;
//   - shop.tmp_x, which source.tables_exclude leaves out;
//   - shop.nokey, without a primary key, which is left out with a warning;
//   - other.b, which no pattern matches; and named.n, named one by one.
//
// While the daemon runs, a table is filled under an excluded name
// (shop.tmp_c), renamed into the pattern (shop.c), and written to while
// liberator picks it up and after: every committed change arrives, the rows
// written before the pickup through the incremental snapshot. A table
// created afterwards (shop.d) arrives too. After a restart nothing is
// snapshotted again and changes go on arriving.
func testPatterns(t *testing.T, ctx context.Context, db *patternDB, cfg, idType string) {
	d := startDaemon(t, "run", cfg)
	for _, table := range []string{"shop.a", "named.n"} {
		requireRows(t, ctx, "topic of "+table, func() rowSet { return db.read(t, table) }, func() (rowSet, error) { return db.replay(ctx, "evo."+table) })
	}
	waitLog(t, d, "shop.nokey")
	topics := topicNames(t, ctx, db.brokers, "evo.")
	for _, unwanted := range []string{"evo.shop.tmp_x", "evo.shop.nokey", "evo.other.b"} {
		if slices.Contains(topics, unwanted) {
			t.Errorf("topic %s exists; its table is not captured (topics: %v)", unwanted, topics)
		}
	}

	l := ledger{}
	db.exec(t, "CREATE TABLE shop.tmp_c (id "+idType+" PRIMARY KEY, v BIGINT NOT NULL)")
	for id := int64(1); id <= 20; id++ {
		db.exec(t, fmt.Sprintf("INSERT INTO shop.tmp_c VALUES (%d, 1)", id))
		l[id] = 1
	}
	renamed := time.Now()
	db.exec(t, db.rename)
	// Rows written while liberator finds the table, then after.
	id := int64(21)
	for !d.logContains(`shop.c`) && time.Since(renamed) < 60*time.Second {
		db.exec(t, fmt.Sprintf("INSERT INTO shop.c VALUES (%d, 1)", id))
		l[id] = 1
		id++
	}
	waitLog(t, d, "new tables match source.tables patterns")
	for end := id + 20; id < end; id++ {
		db.exec(t, fmt.Sprintf("INSERT INTO shop.c VALUES (%d, 1)", id))
		l[id] = 1
	}
	for _, u := range []int64{1, 5, 21, id - 1} {
		db.exec(t, fmt.Sprintf("UPDATE shop.c SET v = 2 WHERE id = %d", u))
		l[u] = 2
	}
	db.exec(t, "DELETE FROM shop.c WHERE id = 2")
	delete(l, 2)
	db.requireLedger(t, ctx, "evo.shop.c", "shop.c", l)

	// A table created now, written to at once.
	created := time.Now()
	db.exec(t, "CREATE TABLE shop.d (id "+idType+" PRIMARY KEY, v BIGINT NOT NULL)")
	db.exec(t, "INSERT INTO shop.d VALUES (1, 1)")
	db.requireLedger(t, ctx, "evo.shop.d", "shop.d", ledger{1: 1})
	t.Logf("a table created while running: its first row was in Kafka, and read back, %v after the CREATE TABLE", time.Since(created).Round(time.Millisecond))

	// A restart resolves the patterns again: the tables found while
	// running, once their snapshot is read, are in the stored position
	// and are not snapshotted again. (Its first row may have come from
	// the log before the snapshot was done; a stop then would rightly
	// go on with the snapshot after the restart.)
	waitLog(t, d, "table=shop.d rows=")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d on SIGTERM:\n%s", code, d.logTail())
	}
	d = startDaemon(t, "run", cfg)
	waitLog(t, d, "source.tables patterns resolved")
	db.exec(t, "INSERT INTO shop.d VALUES (2, 1)")
	db.exec(t, "UPDATE shop.c SET v = 3 WHERE id = 3")
	l[3] = 3
	db.requireLedger(t, ctx, "evo.shop.d", "shop.d", ledger{1: 1, 2: 1})
	db.requireLedger(t, ctx, "evo.shop.c", "shop.c", l)
	for _, again := range []string{"snapshotting them while streaming", "snapshot started"} {
		if d.logContains(again) {
			t.Errorf("after a restart, liberator's log says %q: a table was snapshotted again\n%s", again, d.logTail())
		}
	}

	// A table created now and left empty: once liberator takes it, its
	// topic and its subjects exist before its first change, and that
	// change sets up nothing again.
	db.exec(t, "CREATE TABLE shop.e (id "+idType+" PRIMARY KEY, v BIGINT NOT NULL)")
	waitLog(t, d, "new tables match source.tables patterns")
	requireEmptyTableReady(t, ctx, d, db.brokers, db.reg, "evo.shop.e")
	db.exec(t, "INSERT INTO shop.e VALUES (1, 1)")
	db.requireLedger(t, ctx, "evo.shop.e", "shop.e", ledger{1: 1})
	if n := publishings(d, "shop.e"); n != 1 {
		t.Errorf("liberator set up shop.e %d times, want once, when it took it: its first change did not find its schemas\n%s", n, d.logTail())
	}
}

const patternTables = `  tables: [named.n, 'shop.*']
  tables_exclude: ['shop.tmp_*']
  tables_poll_interval: 200ms`

// TestIntegrationPostgresTablePatterns runs testPatterns on PostgreSQL.
func TestIntegrationPostgresTablePatterns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, `
CREATE SCHEMA shop; CREATE SCHEMA other; CREATE SCHEMA named;
CREATE TABLE shop.a (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO shop.a SELECT g, 1 FROM generate_series(1, 30) g;
CREATE TABLE shop.tmp_x (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO shop.tmp_x VALUES (1, 1);
CREATE TABLE shop.nokey (id bigint, v bigint);
CREATE TABLE other.b (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO other.b VALUES (1, 1);
CREATE TABLE named.n (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO named.n VALUES (1, 1), (2, 2);`)
	db := &patternDB{
		exec: func(t *testing.T, sql string) { e.exec(t, ctx, sql) },
		read: func(t *testing.T, table string) rowSet {
			rows, err := readTable(ctx, e.conn, table, []string{"id"})
			if err != nil {
				t.Fatal(err)
			}
			return rows
		},
		brokers: e.kafka.Brokers,
		replay: func(ctx context.Context, topic string) (rowSet, error) {
			return replayTopic(ctx, e.kafka.Brokers, e.client, topic)
		},
		rename: "ALTER TABLE shop.tmp_c RENAME TO c",
		reg:    e.client,
	}
	cfg := writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
%s
kafka:
  brokers: [%s]
  topic_prefix: evo
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
`, e.dsn, patternTables, e.kafka.Brokers[0], e.reg.URL))
	testPatterns(t, ctx, db, cfg, "bigint")
}

// TestIntegrationMariaDBTablePatterns runs testPatterns on MariaDB, where
// a schema is a database.
func TestIntegrationMariaDBTablePatterns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, nil,
		"CREATE DATABASE shop", "CREATE DATABASE other", "CREATE DATABASE named",
		"CREATE TABLE shop.a (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO shop.a SELECT seq, 1 FROM shop.seq_1_to_30",
		"CREATE TABLE shop.tmp_x (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO shop.tmp_x VALUES (1, 1)",
		"CREATE TABLE shop.nokey (id BIGINT, v BIGINT)",
		"CREATE TABLE other.b (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO other.b VALUES (1, 1)",
		"CREATE TABLE named.n (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)",
		"INSERT INTO named.n VALUES (1, 1), (2, 2)")
	db := &patternDB{
		exec: func(t *testing.T, sql string) { e.exec(t, sql) },
		read: func(t *testing.T, table string) rowSet {
			return e.read(t, table, "id")
		},
		brokers: e.kafka.Brokers,
		replay: func(ctx context.Context, topic string) (rowSet, error) {
			return replayTopic(ctx, e.kafka.Brokers, e.client, topic)
		},
		rename: "RENAME TABLE shop.tmp_c TO shop.c",
		reg:    e.client,
	}
	cfg := writeConfig(t, fmt.Sprintf(`
source:
  kind: mariadb
  dsn: %s
%s
  mysql:
    server_id: 79
kafka:
  brokers: [%s]
  topic_prefix: evo
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
`, e.db.DSN, patternTables, e.kafka.Brokers[0], e.reg.URL))
	testPatterns(t, ctx, db, cfg, "BIGINT")
}
