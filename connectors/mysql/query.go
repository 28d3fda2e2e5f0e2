package mysql

// # Query capture
//
// With source.capture: query, MySQL and MariaDB are polled with SELECTs
// (see connectors/query for the modes) by a user that needs nothing but
// SELECT. Neither server lets a user without PROCESS see which
// transactions are open, nor when they began, so a poll reads behind a
// lag (source.query.lag, default 5s) of the server's clock:
//
//   - the timestamp modes read rows whose timestamp is more than lag in
//     the past (NOW(6) - lag; UTC for a TIMESTAMP column, the server's
//     time zone for a DATETIME column); rows with the same timestamp are
//     ordered by the key (or the incrementing column), the tie-breaker;
//   - the incrementing mode reads ids up to the highest id seen committed
//     at least lag ago (it is looked up at each poll and ten times between
//     polls).
//
// What can still be missed: a row whose transaction commits more than lag
// after the row got its timestamp (or its id was assigned), when rows
// later in the order were committed and read meanwhile. A transaction
// that writes early and commits late by more than lag (a long batch, a
// session left open) is the case to watch: raise lag above the longest
// transaction that writes the table, or use log capture.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
	cq "github.com/liberator-cdc/liberator/connectors/query"
)

// NewQuery returns a Source of query capture (source.capture: query). It
// does no I/O beyond reading the files of cfg.TLS.
func NewQuery(cfg Config, opts cq.Options) (*cq.Source, error) {
	src, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range cfg.Tables {
		id, _ := canonicalName(t)
		ids = append(ids, id)
	}
	opts = opts.WithDefaults()
	return cq.New(cq.Config{
		Kind: cfg.Flavor, Tables: ids, Options: opts, Canon: canonicalName, Snapshot: cfg.Snapshot,
		Logger: cfg.Logger, Memory: cfg.Memory,
		NewDB: func() cq.DB { return &queryDB{src: src, opts: opts, tops: map[*cq.Plan][]top{}} },
		Check: func(ctx context.Context) []connectors.Check { return src.checkQuery(ctx, opts) },
	})
}

// queryDB is the MySQL and MariaDB side of query capture.
type queryDB struct {
	src  *Source
	opts cq.Options
	meta *client.Conn // descriptions and the clock, in the server's time zone
	read *client.Conn // the polls: UTC, strings in their own character sets
	rels map[*cq.Plan]*queryTable
	// tops are, per incrementing plan, the highest ids seen committed,
	// oldest first; incr are the incrementing plans of the last poll.
	tops map[*cq.Plan][]top
	incr []*cq.Plan
}

type top struct {
	at time.Time // the server's clock
	id *int64
}

// queryTable is what the reads of a plan need.
type queryTable struct {
	table  *connectors.Table
	cols   []column
	keys   keyset // in key order
	order  keyset // in the plan's order
	orderE error  // why the plan's order cannot be read in pages
	keysE  error
}

func (d *queryDB) Open(ctx context.Context) error {
	var err error
	if d.meta, err = connect(ctx, d.src.dsn); err != nil {
		return err
	}
	if d.read, err = d.src.snapshotConn(ctx); err != nil {
		return err
	}
	if _, err := run(ctx, d.read, "SET character_set_results = NULL"); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("poll: %w", err))
	}
	d.rels = map[*cq.Plan]*queryTable{}
	return nil
}

func (d *queryDB) Close(context.Context) error {
	var errs []error
	for _, c := range []*client.Conn{d.meta, d.read} {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// Describe describes a table or a view from information_schema.
func (d *queryDB) Describe(ctx context.Context, p *cq.Plan) (*connectors.Table, error) {
	t, err := d.describe(ctx, p)
	return t, retryableIfConnLost(err)
}

func (d *queryDB) describe(ctx context.Context, p *cq.Plan) (*connectors.Table, error) {
	tn, _ := parseTableName(p.ID)
	var ts tableSchema
	var err error
	var collations map[string]string
	if p.Options.Query != "" {
		ts, collations, err = d.describeQuery(ctx, tn, p.Options)
	} else {
		ts, err = readTable(ctx, d.meta, d.src.cfg.Flavor, tn)
	}
	ts.published = d.src.cfg.PublishedColumns[tn.String()]
	switch {
	case len(p.Options.Key) > 0 && (err == nil || errors.Is(err, ErrNoPrimaryKey)):
		ts.key, err = p.Options.Key, nil
	case errors.Is(err, ErrNoPrimaryKey) && len(d.src.cfg.KeyColumns[tn.String()]) > 0:
		ts.key, err = d.src.cfg.KeyColumns[tn.String()], nil
	case errors.Is(err, ErrNoPrimaryKey):
		err = fmt.Errorf("%w (a view never has one): name the columns that identify its rows in source.query.tables.%s.key", err, tn)
	}
	if err != nil {
		return nil, err
	}
	t, cols, err := ts.describe()
	if err != nil {
		return nil, err
	}
	if old := d.rels[p]; old != nil && connectors.SameShape(old.table, t) {
		t = old.table
	}
	charsets := map[string]string{}
	if collations == nil {
		rows, err := run(ctx, d.meta, `SELECT COLUMN_NAME, COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, '')
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, tn.db, tn.name)
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", tn, err)
		}
		collations = map[string]string{}
		for _, r := range rows {
			charsets[r[0]], collations[r[0]] = r[1], r[2]
		}
	} else {
		for _, c := range ts.columns {
			charsets[c.Name] = c.Charset
		}
	}
	qt := &queryTable{table: t, cols: cols}
	qt.keys, qt.keysE = newKeyset(tn, t, cols, charsets, collations)
	if p.Options.Mode != cq.Bulk {
		order, err := orderOf(t, p.Options)
		if err != nil {
			return nil, err
		}
		ordered := *t
		ordered.Key = order
		qt.order, qt.orderE = newKeyset(tn, &ordered, cols, charsets, collations)
	}
	if p.Options.Query != "" {
		from := "(" + p.Options.Query + ") AS q"
		qt.keys.from, qt.order.from = from, from
	}
	d.rels[p] = qt
	return t, nil
}

// describeQuery describes the result columns of a query from the catalog:
// the server reports, for each column of a prepared statement, the table
// column it comes from, whose information_schema row gives its type. A
// column computed by an expression has no such row, and is refused. It
// also returns each column's collation, for the keyset.
func (d *queryDB) describeQuery(ctx context.Context, tn tableName, o cq.TableOptions) (tableSchema, map[string]string, error) {
	key := "source.query.tables." + tn.String() + ".query"
	stmt, err := d.meta.Prepare(o.Query)
	if err != nil {
		return tableSchema{}, nil, fmt.Errorf("%s: %w", key, err)
	}
	raw := stmt.RawColumnFields
	_ = stmt.Close()
	ts := tableSchema{name: tn}
	collations := map[string]string{}
	bases := map[tableName]map[string]infoColumn{}
	baseCollations := map[tableName]map[string]string{}
	for _, data := range raw {
		var f gomysql.Field
		if err := f.Parse(data); err != nil {
			return ts, nil, fmt.Errorf("%s: read its columns: %w", key, err)
		}
		name := string(f.Name)
		base := tableName{string(f.Schema), string(f.OrgTable)}
		if base.db == "" || base.name == "" || len(f.OrgName) == 0 {
			return ts, nil, fmt.Errorf("%s: column %s is computed, so the catalog has no type for it (select table columns only, or create a view of the query and name the view in source.tables)", key, name)
		}
		if bases[base] == nil {
			bts, err := readTable(ctx, d.meta, d.src.cfg.Flavor, base)
			if err != nil && !errors.Is(err, ErrNoPrimaryKey) {
				return ts, nil, fmt.Errorf("%s: describe %s: %w", key, base, err)
			}
			bases[base] = bts.byName()
			rows, err := run(ctx, d.meta, `SELECT COLUMN_NAME, COALESCE(COLLATION_NAME, '') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, base.db, base.name)
			if err != nil {
				return ts, nil, fmt.Errorf("%s: describe %s: %w", key, base, err)
			}
			baseCollations[base] = map[string]string{}
			for _, r := range rows {
				baseCollations[base][r[0]] = r[1]
			}
		}
		ic, ok := bases[base][string(f.OrgName)]
		if !ok {
			return ts, nil, fmt.Errorf("%s: column %s comes from %s.%s, which information_schema does not list", key, name, base, f.OrgName)
		}
		collations[name] = baseCollations[base][ic.Name]
		ic.Name = name
		// An outer join may make a NOT NULL column NULL; the result says.
		ic.Nullable = f.Flag&gomysql.NOT_NULL_FLAG == 0
		ts.columns = append(ts.columns, ic)
	}
	ts.key = o.Key
	return ts, collations, nil
}

// orderOf is the plan's order (cq.Plan.Order), worked out here too
// because the core works it out from the table this returns.
func orderOf(t *connectors.Table, o cq.TableOptions) ([]int, error) {
	idx := func(name string) int {
		for i, c := range t.Columns {
			if c.Name == name {
				return i
			}
		}
		return -1
	}
	var order []int
	switch o.Mode {
	case cq.Incrementing:
		order = []int{idx(o.Incrementing)}
	case cq.Timestamp:
		order = append([]int{idx(o.Timestamp)}, t.Key...)
	case cq.TimestampIncrementing:
		order = []int{idx(o.Timestamp), idx(o.Incrementing)}
	}
	for _, i := range order {
		if i < 0 {
			// The core names the missing column.
			return nil, nil
		}
	}
	return order, nil
}

// BeginPoll reads the server's clock and, for each incrementing table, its
// highest id, and begins the poll's consistent snapshot.
func (d *queryDB) BeginPoll(ctx context.Context, plans []*cq.Plan) ([]cq.Bound, error) {
	b, err := d.beginPoll(ctx, plans)
	return b, retryableIfConnLost(err)
}

const timeFormat = "%Y-%m-%d %H:%i:%s.%f"

func (d *queryDB) beginPoll(ctx context.Context, plans []*cq.Plan) ([]cq.Bound, error) {
	lag := strconv.FormatInt(d.opts.Lag.Microseconds(), 10)
	rows, err := run(ctx, d.meta, "SELECT DATE_FORMAT(UTC_TIMESTAMP(6) - INTERVAL "+lag+" MICROSECOND, '"+timeFormat+"'), "+
		"DATE_FORMAT(NOW(6) - INTERVAL "+lag+" MICROSECOND, '"+timeFormat+"'), UNIX_TIMESTAMP(NOW(6))")
	if err != nil || len(rows) != 1 {
		return nil, fmt.Errorf("poll: read the clock: %w", err)
	}
	utc, local := rows[0][0], rows[0][1]
	secs, _ := strconv.ParseFloat(rows[0][2], 64)
	now := time.UnixMicro(int64(secs * 1e6))
	bounds := make([]cq.Bound, len(plans))
	for i, p := range plans {
		qt := d.rels[p]
		if qt.orderE != nil {
			return nil, fmt.Errorf("source.query.tables.%s: %w", p.ID, qt.orderE)
		}
		if p.Options.Mode != cq.Incrementing {
			v := local
			if qt.table.Columns[p.Order[0]].Type.Kind == connectors.KindTimestamp {
				v = utc
			}
			bounds[i] = cq.Bound{Value: v}
			continue
		}
		if err := d.observeTop(ctx, p, now); err != nil {
			return nil, err
		}
		hist := d.tops[p]
		// The bound is the newest top seen at least lag ago; older ones
		// are no longer needed.
		bound := -1
		for j, h := range hist {
			if now.Sub(h.at) >= d.opts.Lag {
				bound = j
			}
		}
		if bound < 0 || hist[bound].id == nil {
			bounds[i] = cq.Bound{None: true}
		} else {
			bounds[i] = cq.Bound{Value: "i:" + strconv.FormatInt(*hist[bound].id, 10), Inclusive: true}
		}
		if bound > 0 {
			hist = hist[bound:]
		}
		d.tops[p] = hist
	}
	if _, err := run(ctx, d.read, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, fmt.Errorf("poll: begin: %w", err)
	}
	d.incr = d.incr[:0]
	for _, p := range plans {
		if p.Options.Mode == cq.Incrementing {
			d.incr = append(d.incr, p)
		}
	}
	return bounds, nil
}

// Observe notes the highest id of each incrementing table between polls,
// so that a poll's bound is an id seen committed little more than lag ago
// rather than a poll interval more.
func (d *queryDB) Observe(ctx context.Context) error {
	if len(d.incr) == 0 {
		return nil
	}
	rows, err := run(ctx, d.meta, "SELECT UNIX_TIMESTAMP(NOW(6))")
	if err != nil || len(rows) != 1 {
		return retryableIfConnLost(fmt.Errorf("poll: read the clock: %w", err))
	}
	secs, _ := strconv.ParseFloat(rows[0][0], 64)
	now := time.UnixMicro(int64(secs * 1e6))
	for _, p := range d.incr {
		if err := d.observeTop(ctx, p, now); err != nil {
			return retryableIfConnLost(err)
		}
	}
	return nil
}

// observeTop notes the highest id of an incrementing plan at now.
func (d *queryDB) observeTop(ctx context.Context, p *cq.Plan, now time.Time) error {
	qt := d.rels[p]
	col := quoteIdent(qt.table.Columns[p.Order[0]].Name)
	rows, err := run(ctx, d.meta, "SELECT MAX("+col+") FROM "+qt.keys.from)
	if err != nil || len(rows) != 1 {
		return fmt.Errorf("poll: read the highest %s of %s: %w", col, p.ID, err)
	}
	t := top{at: now}
	if rows[0][0] != "" {
		n, err := strconv.ParseInt(rows[0][0], 10, 64)
		if err != nil {
			return fmt.Errorf("poll: the highest %s of %s: %w", col, p.ID, err)
		}
		t.id = &n
	}
	d.tops[p] = append(d.tops[p], t)
	return nil
}

// Read reads one page in keyset order.
func (d *queryDB) Read(ctx context.Context, pg cq.Page) ([]cq.Row, error) {
	rows, err := d.readPage(ctx, pg)
	return rows, retryableIfConnLost(err)
}

func (d *queryDB) readPage(ctx context.Context, pg cq.Page) ([]cq.Row, error) {
	qt := d.rels[pg.Plan]
	ks, kerr := qt.order, qt.orderE
	if pg.Full {
		ks, kerr = qt.keys, qt.keysE
	}
	if kerr != nil {
		return nil, fmt.Errorf("%s cannot be read in pages: %w", pg.Plan.ID, kerr)
	}
	order := pg.Plan.OrderOf(pg.Full)
	where, porder := ks.where(pg.After != nil, false)
	q := query{sql: "SELECT " + ks.columns + " FROM " + ks.from + where, order: porder, nkeys: len(ks.keyCols)}
	args, err := q.args(pg.After, nil)
	if err != nil {
		return nil, err
	}
	if !pg.Full {
		op := " < "
		if pg.Bound.Inclusive {
			op = " <= "
		}
		c := qt.cols[order[0]]
		param := "?"
		var arg any = pg.Bound.Value
		switch c.conv {
		case convDate:
			param = "CAST(? AS DATE)"
		case convDatetime, convTimestamp:
			param = "CAST(? AS DATETIME(6))"
		default:
			if arg, err = parseKeyValue(pg.Bound.Value); err != nil {
				return nil, err
			}
		}
		if where == "" {
			q.sql += " WHERE "
		} else {
			q.sql += " AND "
		}
		q.sql += ks.keyCols[0] + op + param
		args = append(args, arg)
	}
	q.sql += ks.orderBy() + " LIMIT " + strconv.Itoa(pg.Limit)
	var out []cq.Row
	err = selectRows(ctx, d.read, q.sql, args, func(row []gomysql.FieldValue) error {
		vals := make([]any, len(qt.cols))
		for i := range qt.cols {
			v, err := qt.cols[i].fromSnapshot(&row[i])
			if err != nil {
				return fmt.Errorf("column %s (%s): %w", qt.cols[i].Name, qt.cols[i].SQLType, err)
			}
			vals[i] = v
		}
		after := make([]string, len(order))
		shown := make([]string, len(order))
		for n, i := range order {
			v, err := keyValue(&row[i])
			if err != nil {
				return fmt.Errorf("column %s: %w", qt.cols[i].Name, err)
			}
			after[n], shown[n] = v, shownKeyValue(v)
		}
		out = append(out, cq.Row{Values: vals, After: after, Shown: shown})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pg.Plan.ID, err)
	}
	return out, nil
}

// shownKeyValue is a key value as keyValue encodes it, as a person reads
// it: the number, or the text of printable UTF-8 bytes (a DATETIME, a
// VARCHAR); other bytes stay in their encoding.
func shownKeyValue(v string) string {
	tag, rest, _ := strings.Cut(v, ":")
	if tag != "x" {
		return rest
	}
	b, err := hex.DecodeString(rest)
	if err != nil || !utf8.Valid(b) || strings.ContainsFunc(string(b), func(r rune) bool { return !unicode.IsPrint(r) }) {
		return v
	}
	return string(b)
}

// EndPoll ends the poll's snapshot.
func (d *queryDB) EndPoll(ctx context.Context) error {
	if _, err := run(ctx, d.read, "COMMIT"); err != nil {
		return retryableIfConnLost(fmt.Errorf("poll: commit: %w", err))
	}
	return nil
}

// checkQuery checks, without changing anything, what query capture needs:
// the server answers, each table or view can be read, and each column a
// poll orders by leads an index (a warning: without one every poll scans
// the table). It then runs the checks of log capture and reports what
// fails there as warnings: what log capture would need.
func (s *Source) checkQuery(ctx context.Context, opts cq.Options) []connectors.Check {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return []connectors.Check{{Name: "the server is reachable", Err: fmt.Errorf("connect to %s: %w (check source.dsn and the network)", s.cfg.Flavor, err)}}
	}
	defer conn.Close()
	out := []connectors.Check{{Name: "the server is reachable"}}
	add := func(c connectors.Check) { out = append(out, c) }
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		to, _ := opts.Lookup(tn.String(), canonicalName)
		if to.Query != "" {
			stmt, err := conn.Prepare(to.Query)
			if err == nil {
				_ = stmt.Close()
			} else {
				err = fmt.Errorf("source.query.tables.%s.query: %w", tn, err)
			}
			add(connectors.Check{Name: "the query of " + tn.String() + " can be run", Err: err})
			if err == nil && to.Mode != cq.Bulk {
				add(connectors.Check{Name: "the poll of " + tn.String() + " can use an index", Warning: true,
					Err: fmt.Errorf("%s is a query: liberator cannot see which index serves it; make sure the tables it reads have an index on the columns it is polled by", tn)})
			}
			continue
		}
		_, err := run(ctx, conn, "SELECT 1 FROM "+quoteIdent(tn.db)+"."+quoteIdent(tn.name)+" LIMIT 0")
		if err != nil {
			err = fmt.Errorf("%w (GRANT SELECT ON %s.%s TO the user)", err, quoteIdent(tn.db), quoteIdent(tn.name))
		}
		add(connectors.Check{Name: "the user may read " + tn.String(), Err: err})
		if err != nil || to.Mode == cq.Bulk {
			continue
		}
		rows, err := run(ctx, conn, `SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, tn.db, tn.name)
		if err == nil && len(rows) == 1 && rows[0][0] == "VIEW" {
			add(connectors.Check{Name: "the poll of " + tn.String() + " can use an index", Warning: true,
				Err: fmt.Errorf("%s is a view: liberator cannot see which index serves it; make sure the tables under it have an index on the columns it is polled by", tn)})
			continue
		}
		for _, col := range []string{to.Timestamp, to.Incrementing} {
			if col == "" || (col == to.Incrementing && to.Mode == cq.TimestampIncrementing) {
				continue
			}
			rows, err := run(ctx, conn, `SELECT COUNT(*) FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND SEQ_IN_INDEX = 1 AND COLUMN_NAME = ?`, tn.db, tn.name, col)
			if err != nil {
				add(connectors.Check{Name: "the indexes of " + tn.String() + " are readable", Err: err})
				continue
			}
			fix := quoteIdent(col)
			if to.Mode == cq.TimestampIncrementing {
				fix += ", " + quoteIdent(to.Incrementing)
			}
			var missing error
			if len(rows) != 1 || rows[0][0] == "0" {
				missing = fmt.Errorf("no index of %s begins with %s, so every poll scans the whole table: ALTER TABLE %s.%s ADD INDEX (%s)", tn, col, quoteIdent(tn.db), quoteIdent(tn.name), fix)
			}
			add(connectors.Check{Name: "column " + col + " of " + tn.String() + " has an index", Err: missing, Warning: true})
		}
	}
	for _, c := range cq.LogCaptureChecks(s.Check(ctx)) {
		add(c)
	}
	return out
}
