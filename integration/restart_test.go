package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// restartSource is a source database set up with the soak's tables, which
// the test restarts.
type restartSource struct {
	kind, dsn, section string
	restart            func() error
	connect            func(ctx context.Context) (soakConn, error)
	// committed reports whether transaction txn of the writer committed,
	// read from the ledger on a new connection.
	committed func(ctx context.Context, txn int64) (bool, error)
	// readTable and readLedger read soak.items and soak.ledger on a new
	// connection.
	readTable  func(ctx context.Context) (rowSet, error)
	readLedger func(ctx context.Context) ([]soakEntry, error)
}

// openPGRestart starts PostgreSQL with soak.items holding preload rows
// (ids 1 to preload, at version 1, transaction 0).
func openPGRestart(t *testing.T, ctx context.Context, preload int) *restartSource {
	pg := harness.Postgres(t)
	dsn, err := pg.CreateDatabase("shop")
	require.NoError(t, err)
	require.NoError(t, pgExec(ctx, dsn, fmt.Sprintf(pgSoakSQL, preload)))
	withConn := func(ctx context.Context, f func(*pgx.Conn) error) error {
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		return f(c)
	}
	return &restartSource{
		kind: "postgres", dsn: dsn, section: "  postgres:\n    heartbeat_interval: 200ms",
		restart: func() error { return errors.Join(pg.Stop(), pg.Start()) },
		connect: func(ctx context.Context) (soakConn, error) {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return nil, err
			}
			return &pgSoakConn{conn: c}, nil
		},
		committed: func(ctx context.Context, txn int64) (ok bool, err error) {
			err = withConn(ctx, func(c *pgx.Conn) error {
				return c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM soak.ledger WHERE txn = $1)", txn).Scan(&ok)
			})
			return ok, err
		},
		readTable: func(ctx context.Context) (rows rowSet, err error) {
			err = withConn(ctx, func(c *pgx.Conn) error {
				rows, err = readTable(ctx, c, "soak.items", []string{"id"})
				return err
			})
			return rows, err
		},
		readLedger: func(ctx context.Context) (out []soakEntry, err error) {
			err = withConn(ctx, func(c *pgx.Conn) error {
				rows, _ := c.Query(ctx, "SELECT id, version, txn, kind FROM soak.ledger")
				out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[soakEntry])
				return err
			})
			return out, err
		},
	}
}

func pgExec(ctx context.Context, dsn, sql string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// openMariaDBRestart starts MariaDB with soak.items holding preload rows
// (ids 1 to preload, at version 1, transaction 0).
func openMariaDBRestart(t *testing.T, ctx context.Context, preload int) *restartSource {
	db := harness.MariaDB(t)
	conn, err := db.Connect(ctx)
	require.NoError(t, err)
	for _, q := range mdbSoakSQL {
		if strings.Contains(q, "%d") {
			if preload == 0 {
				continue
			}
			q = fmt.Sprintf(q, preload)
		}
		_, err := conn.Execute(q)
		require.NoError(t, err, q)
	}
	require.NoError(t, conn.Close())
	src := &restartSource{
		kind: "mariadb", dsn: db.DSN, section: "  mysql:\n    server_id: 78",
		restart: func() error { return errors.Join(db.Stop(), db.Start()) },
		connect: func(ctx context.Context) (soakConn, error) {
			c, err := db.Connect(ctx)
			if err != nil {
				return nil, err
			}
			return &mdbSoakConn{conn: c}, nil
		},
	}
	src.committed = func(ctx context.Context, txn int64) (bool, error) {
		c, err := db.Connect(ctx)
		if err != nil {
			return false, err
		}
		defer c.Close()
		res, err := c.Execute("SELECT COUNT(*) FROM soak.ledger WHERE txn = ?", txn)
		if err != nil {
			return false, err
		}
		n, err := res.GetInt(0, 0)
		return n > 0, err
	}
	src.readTable = func(ctx context.Context) (rowSet, error) {
		c, err := db.Connect(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return readMariaDBTable(c, "soak.items", []string{"id"})
	}
	src.readLedger = func(ctx context.Context) ([]soakEntry, error) {
		c, err := db.Connect(ctx)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return readMariaDBLedger(c)
	}
	return src
}

// newRestartWriter returns a writer for src whose table holds preload
// rows, which it updates and deletes too.
func newRestartWriter(src *restartSource, preload int) *restartWriter {
	w := &restartWriter{src: src, version: map[int64]int64{}, nextID: int64(preload)}
	for id := range int64(preload) {
		w.version[id+1] = 1
	}
	return w
}

// restartWriter writes transactions of inserts, updates and deletes with a
// ledger row per change, in the same transaction, on one connection. It
// goes on through a database restart: when a transaction fails it
// reconnects, and a transaction whose commit failed counts as committed
// exactly when its ledger rows are in the table.
type restartWriter struct {
	src     *restartSource
	conn    soakConn
	txn     int64
	version map[int64]int64 // live rows and their versions
	nextID  int64
	changes int // ledger rows of committed transactions
	failed  int // transactions cut by a restart
}

func (w *restartWriter) run(ctx context.Context, stop <-chan struct{}) error {
	defer func() {
		if w.conn != nil {
			w.conn.close()
			w.conn = nil // run may be called again
		}
	}()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond): // a steady pace, not a flood
		}
		if w.conn == nil {
			c, err := w.src.connect(ctx)
			if err != nil {
				continue // the database is restarting
			}
			w.conn = c
		}
		if err := w.transaction(ctx); err != nil {
			return err
		}
	}
}

// transaction makes one transaction. It returns an error only when the
// outcome of a commit cannot be learnt.
func (w *restartWriter) transaction(ctx context.Context) error {
	w.txn++
	txn := w.txn
	type change struct {
		e      soakEntry
		insert bool
	}
	var changes []change
	next := map[int64]int64{}
	stmt := func() error {
		id := int64(-1)
		if len(w.version) > 0 && txn%3 != 0 {
			for k := range w.version { // any live row
				id = k
				break
			}
		}
		v, live := w.version[id]
		if nv, ok := next[id]; ok {
			v, live = nv, nv > 0
		}
		switch {
		case !live:
			// Ids are never reused: each key has one life.
			w.nextID++
			id = w.nextID
			next[id] = 1
			changes = append(changes, change{e: soakEntry{ID: id, Version: 1, Txn: txn, Kind: "u"}, insert: true})
			return w.conn.exec(ctx, "INSERT INTO soak.items (id, version, txn, payload) VALUES (?, 1, ?, 'x')", id, txn)
		case txn%5 == 0:
			next[id] = -1
			changes = append(changes, change{e: soakEntry{ID: id, Version: v, Txn: txn, Kind: "d"}})
			return w.conn.exec(ctx, "DELETE FROM soak.items WHERE id = ?", id)
		default:
			next[id] = v + 1
			changes = append(changes, change{e: soakEntry{ID: id, Version: v + 1, Txn: txn, Kind: "u"}})
			return w.conn.exec(ctx, "UPDATE soak.items SET version = ?, txn = ? WHERE id = ?", v+1, txn, id)
		}
	}
	lost := func() error {
		w.conn.close()
		w.conn = nil
		w.failed++
		return nil
	}
	if err := w.conn.begin(ctx); err != nil {
		return lost()
	}
	for range 1 + txn%3 {
		if err := stmt(); err != nil {
			return lost()
		}
	}
	for _, c := range changes {
		if err := w.conn.exec(ctx, "INSERT INTO soak.ledger (id, version, txn, kind) VALUES (?, ?, ?, ?)", c.e.ID, c.e.Version, c.e.Txn, c.e.Kind); err != nil {
			return lost()
		}
	}
	if err := w.conn.commit(ctx); err != nil {
		_ = lost()
		var ok bool
		deadline := time.Now().Add(30 * time.Second)
		for {
			if ok, err = w.src.committed(ctx, txn); err == nil || time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("learn whether transaction %d committed: %w", txn, err)
		}
		if !ok {
			return nil
		}
	}
	for id, v := range next {
		if v < 0 {
			delete(w.version, id)
		} else {
			w.version[id] = v
		}
	}
	w.changes += len(changes)
	return nil
}

// TestIntegrationRestart restarts the source database twice while a
// workload writes and liberator streams. liberator must reconnect and go
// on without exiting, and in the end the topic must hold every change of
// the ledger in commit order and its compacted view must equal the table.
func TestIntegrationRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(*testing.T, context.Context, int) *restartSource
	}{{"postgres", openPGRestart}, {"mariadb", openMariaDBRestart}} {
		t.Run(tc.name, func(t *testing.T) { testRestart(t, tc.open) })
	}
}

func testRestart(t *testing.T, open func(*testing.T, context.Context, int) *restartSource) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := harness.Kafka(t, harness.KafkaBrokerConfig("log.cleaner.backoff.ms", "3600000"))
	reg := harness.Registry(t)
	src := open(t, ctx, 0)
	cfg := soakConfig(t, src.kind, src.dsn, src.section, k.Brokers, reg.URL, "")
	client, err := schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)

	d := startDaemon(t, "run", cfg)
	waitStoredPosition(t, d)
	w := newRestartWriter(src, 0)
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() { werr <- w.run(ctx, stop) }()

	base := "http://" + d.adminAddr()
	for i := range 2 {
		// Restart once liberator has stored a position past the writes so
		// far, so that each restart cuts a stream that is moving.
		before := storedPosition(base)
		require.Eventually(t, func() bool { return d.exited() || storedPosition(base) != before }, 30*time.Second, 10*time.Millisecond,
			"no position stored before restart %d:\n%s", i+1, d.logTail())
		require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
		require.NoError(t, src.restart(), "restart %d", i+1)
		t.Logf("restart %d done", i+1)
	}
	// Writes go on after the last restart, and liberator must store them.
	soakPause(t, d, 500*time.Millisecond)
	close(stop)
	require.NoError(t, <-werr)
	t.Logf("%d transactions, %d changes committed, %d cut by a restart", w.txn, w.changes, w.failed)

	requireTopicsEqual(t, ctx, k.Brokers, client, func(string) (rowSet, error) { return src.readTable(ctx) },
		func(string) string { return "soak.soak.items" }, []string{"soak.items"}, time.Minute)
	ledger, err := src.readLedger(ctx)
	require.NoError(t, err)
	require.Equal(t, w.changes, len(ledger), "ledger rows against the changes the writer saw committed")
	events, _, err := readSoakTopic(ctx, k.Brokers, client, "soak.soak.items")
	require.NoError(t, err)
	rep := checkSoakLedger(ledger, events, 0, nil)
	if len(rep.problems) > 0 {
		t.Errorf("the topic does not match the ledger (%d problems):\n%s", len(rep.problems), strings.Join(rep.problems[:min(len(rep.problems), 30)], "\n"))
	}
	require.False(t, d.exited(), "liberator exited by itself:\n%s", d.logTail())
	t.Logf("liberator's log after the restarts:\n%s", d.logTail())
	require.Equal(t, 0, d.stop(30*time.Second), "liberator's exit code after SIGTERM")
}

// soakConfig writes the config of a daemon that captures soak.items from
// the source section src into brokers, with the registry at registryURL,
// the admin listener on a free port, and extra top-level keys.
func soakConfig(t testing.TB, kind, dsn, section string, brokers []string, registryURL, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: %s
  dsn: %s
  tables: [soak.items]
%s
kafka:
  brokers: [%s]
  topic_prefix: soak
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 20ms
%s`, kind, dsn, section, strings.Join(brokers, ","), registryURL, extra))
}
