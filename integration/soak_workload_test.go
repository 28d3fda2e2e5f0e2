package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/jackc/pgx/v5"
)

// soakConn is one database connection of the soak workload, on either
// database. Queries are written with ? placeholders.
type soakConn interface {
	begin(ctx context.Context) error
	exec(ctx context.Context, query string, args ...any) error
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
	close()
}

// pgSoakConn is a soakConn on PostgreSQL.
type pgSoakConn struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

func (c *pgSoakConn) begin(ctx context.Context) (err error) {
	c.tx, err = c.conn.Begin(ctx)
	return err
}

func (c *pgSoakConn) exec(ctx context.Context, query string, args ...any) error {
	_, err := c.tx.Exec(ctx, dollarParams(query), args...)
	return err
}

func (c *pgSoakConn) commit(ctx context.Context) error   { return c.tx.Commit(ctx) }
func (c *pgSoakConn) rollback(ctx context.Context) error { return c.tx.Rollback(ctx) }
func (c *pgSoakConn) close()                             { c.conn.Close(context.Background()) }

// dollarParams numbers the ? placeholders of query as PostgreSQL's $1, $2,
// and so on. The soak's queries have no ? in literals.
func dollarParams(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdbSoakConn is a soakConn on MariaDB. go-mysql's client takes no
// context; the soak's statements are short.
type mdbSoakConn struct {
	conn *client.Conn
}

func (c *mdbSoakConn) begin(context.Context) error { return c.conn.Begin() }

func (c *mdbSoakConn) exec(_ context.Context, query string, args ...any) error {
	_, err := c.conn.Execute(query, args...)
	return err
}

func (c *mdbSoakConn) commit(context.Context) error   { return c.conn.Commit() }
func (c *mdbSoakConn) rollback(context.Context) error { return c.conn.Rollback() }
func (c *mdbSoakConn) close()                         { _ = c.conn.Close() }

// soakWorker changes soak.items on its own connection. It alone writes the
// ids it owns, so it knows each row's version without reading it, and the
// workers never wait on each other's locks.
type soakWorker struct {
	conn    soakConn
	rng     *rand.Rand
	txns    *atomic.Int64 // shared: every transaction gets its own number
	ids     []int64
	at      map[int64]int   // index of an id in ids
	version map[int64]int64 // current version of each owned row
	nextID  int64
	stride  int64

	committed, rolledBack, bigTxns, changes int
	rolledBackTxns                          []int64
}

// newSoakWorker makes worker w of n. It owns the preloaded ids (1 to
// preload, all at version 1) that are w modulo n, and makes new ids
// preload+1+w, preload+1+w+n, and so on.
func newSoakWorker(conn soakConn, seed uint64, w, n, preload int, txns *atomic.Int64) *soakWorker {
	sw := &soakWorker{
		conn: conn, rng: rand.New(rand.NewPCG(seed, uint64(w))), txns: txns,
		at: map[int64]int{}, version: map[int64]int64{},
		nextID: int64(preload + 1 + w), stride: int64(n),
	}
	for id := int64(1); id <= int64(preload); id++ {
		if id%int64(n) == int64(w) {
			sw.add(id, 1)
		}
	}
	return sw
}

func (w *soakWorker) add(id, version int64) {
	w.at[id] = len(w.ids)
	w.ids = append(w.ids, id)
	w.version[id] = version
}

func (w *soakWorker) remove(id int64) {
	i, last := w.at[id], w.ids[len(w.ids)-1]
	w.ids[i] = last
	w.at[last] = i
	w.ids = w.ids[:len(w.ids)-1]
	delete(w.at, id)
	delete(w.version, id)
}

func (w *soakWorker) newID() int64 {
	id := w.nextID
	w.nextID += w.stride
	return id
}

// payload is NULL now and then, else short text (never TOASTed, so every
// update carries it) with some multi-byte characters.
func (w *soakWorker) payload(txn int64) any {
	if w.rng.IntN(10) == 0 {
		return nil
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz 0123456789 éΩ漢🙂'\""
	r := []rune(alphabet)
	var b strings.Builder
	fmt.Fprintf(&b, "txn %d: ", txn)
	for range w.rng.IntN(120) {
		b.WriteRune(r[w.rng.IntN(len(r))])
	}
	return b.String()
}

// run makes transactions, at most rate a second, until stop is closed.
func (w *soakWorker) run(ctx context.Context, stop <-chan struct{}, rate int) error {
	pace := time.NewTicker(time.Second / time.Duration(rate))
	defer pace.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-pace.C:
		}
		if err := w.transaction(ctx); err != nil {
			return err
		}
	}
}

// transaction runs one transaction of one to five changes, or one time in
// fifty of a few hundred, and appends a ledger row per change in the same
// transaction. One time in twenty it rolls back instead of committing.
func (w *soakWorker) transaction(ctx context.Context) error {
	txn := w.txns.Add(1)
	n := 1 + w.rng.IntN(5)
	big := w.rng.IntN(50) == 0
	if big {
		n = 200 + w.rng.IntN(200)
	}
	rollback := w.rng.IntN(20) == 0
	if err := w.conn.begin(ctx); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	var ledger []soakEntry
	var undo []func()
	for range n {
		entries, u, err := w.statement(ctx, txn)
		if err != nil {
			return errJoinRollback(ctx, w.conn, err)
		}
		ledger = append(ledger, entries...)
		undo = append(undo, u)
	}
	var q strings.Builder
	q.WriteString("INSERT INTO soak.ledger (id, version, txn, kind) VALUES ")
	args := make([]any, 0, 4*len(ledger))
	for i, e := range ledger {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?)")
		args = append(args, e.ID, e.Version, e.Txn, e.Kind)
	}
	if err := w.conn.exec(ctx, q.String(), args...); err != nil {
		return errJoinRollback(ctx, w.conn, fmt.Errorf("append to the ledger: %w", err))
	}
	if rollback {
		if err := w.conn.rollback(ctx); err != nil {
			return fmt.Errorf("roll back: %w", err)
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		w.rolledBack++
		w.rolledBackTxns = append(w.rolledBackTxns, txn)
		return nil
	}
	if err := w.conn.commit(ctx); err != nil {
		// The outcome is unknown: the ledger can no longer be trusted.
		return fmt.Errorf("commit: %w", err)
	}
	w.committed++
	w.changes += len(ledger)
	if big {
		w.bigTxns++
	}
	return nil
}

func errJoinRollback(ctx context.Context, c soakConn, err error) error {
	if rerr := c.rollback(ctx); rerr != nil {
		return fmt.Errorf("%w (and roll back: %v)", err, rerr)
	}
	return err
}

// statement makes one change: an insert, an update, a key change or a
// delete. It returns the ledger entries of the change and how to undo it in
// the worker's own bookkeeping.
func (w *soakWorker) statement(ctx context.Context, txn int64) ([]soakEntry, func(), error) {
	op := w.rng.IntN(100)
	switch {
	case op < 30 || len(w.ids) < 10:
		id := w.newID()
		if err := w.conn.exec(ctx, "INSERT INTO soak.items (id, version, txn, payload) VALUES (?, ?, ?, ?)", id, int64(1), txn, w.payload(txn)); err != nil {
			return nil, nil, fmt.Errorf("insert %d: %w", id, err)
		}
		w.add(id, 1)
		return []soakEntry{{id, 1, txn, "u"}}, func() { w.remove(id) }, nil
	case op < 70:
		id := w.ids[w.rng.IntN(len(w.ids))]
		old := w.version[id]
		if err := w.conn.exec(ctx, "UPDATE soak.items SET version = ?, txn = ?, payload = ? WHERE id = ?", old+1, txn, w.payload(txn), id); err != nil {
			return nil, nil, fmt.Errorf("update %d: %w", id, err)
		}
		w.version[id] = old + 1
		return []soakEntry{{id, old + 1, txn, "u"}}, func() { w.version[id] = old }, nil
	case op < 80:
		id := w.ids[w.rng.IntN(len(w.ids))]
		old := w.version[id]
		to := w.newID()
		if err := w.conn.exec(ctx, "UPDATE soak.items SET id = ?, version = ?, txn = ?, payload = ? WHERE id = ?", to, old+1, txn, w.payload(txn), id); err != nil {
			return nil, nil, fmt.Errorf("change key %d to %d: %w", id, to, err)
		}
		w.remove(id)
		w.add(to, old+1)
		return []soakEntry{{id, old, txn, "d"}, {to, old + 1, txn, "u"}}, func() { w.remove(to); w.add(id, old) }, nil
	default:
		id := w.ids[w.rng.IntN(len(w.ids))]
		old := w.version[id]
		if err := w.conn.exec(ctx, "DELETE FROM soak.items WHERE id = ?", id); err != nil {
			return nil, nil, fmt.Errorf("delete %d: %w", id, err)
		}
		w.remove(id)
		return []soakEntry{{id, old, txn, "d"}}, func() { w.add(id, old) }, nil
	}
}

// soakWorkload is the workers running together.
type soakWorkload struct {
	workers []*soakWorker
	stop    chan struct{}
	wg      sync.WaitGroup
	errs    []error
}

// startSoakWorkload starts n workers, each on a connection of its own.
func startSoakWorkload(ctx context.Context, connect func(context.Context) (soakConn, error), seed uint64, n, preload, rate int) (*soakWorkload, error) {
	wl := &soakWorkload{stop: make(chan struct{}), errs: make([]error, n)}
	var txns atomic.Int64
	for i := range n {
		conn, err := connect(ctx)
		if err != nil {
			for _, w := range wl.workers {
				w.conn.close()
			}
			return nil, err
		}
		wl.workers = append(wl.workers, newSoakWorker(conn, seed, i, n, preload, &txns))
	}
	for i, w := range wl.workers {
		wl.wg.Add(1)
		go func() {
			defer wl.wg.Done()
			defer w.conn.close()
			if err := w.run(ctx, wl.stop, rate); err != nil {
				wl.errs[i] = fmt.Errorf("worker %d: %w", i, err)
			}
		}()
	}
	return wl, nil
}

// halt stops the workers after their current transaction and returns
// their errors.
func (wl *soakWorkload) halt() []error {
	close(wl.stop)
	wl.wg.Wait()
	var errs []error
	for _, err := range wl.errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// soakFigures are what the workload did.
type soakFigures struct {
	committed, rolledBack, bigTxns, changes int
	rolledBackTxns                          map[int64]bool
}

func (wl *soakWorkload) figures() soakFigures {
	f := soakFigures{rolledBackTxns: map[int64]bool{}}
	for _, w := range wl.workers {
		f.committed += w.committed
		f.rolledBack += w.rolledBack
		f.bigTxns += w.bigTxns
		f.changes += w.changes
		for _, txn := range w.rolledBackTxns {
			f.rolledBackTxns[txn] = true
		}
	}
	return f
}
