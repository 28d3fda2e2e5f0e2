package postgres

// # Query capture
//
// With source.capture: query, PostgreSQL is polled with SELECTs (see
// connectors/query for the modes) over one connection that needs nothing
// but SELECT: no replication, no slot, no publication.
//
// The classic flaw of timestamp polling is a row that a long transaction
// commits late, with a timestamp older than rows already read: the
// watermark has passed it, and it is skipped for good. A poll here reads
// only below a horizon that no transaction still open can write under.
// Every observation, made at each poll and ten times between polls,
//
//  1. notes the time (clock_timestamp()) and, for each incrementing table,
//     the highest id committed, in autocommit;
//  2. then lists the transactions in progress in the database: the
//     virtualxid locks of pg_locks, which every transaction holds from its
//     first statement to its end, readable by any user.
//
// A poll then begins a REPEATABLE READ transaction and fixes its snapshot
// with pg_current_snapshot(); every page of the poll reads that snapshot.
//
// A transaction that commits after the snapshot either was in progress at
// the poll's observation, or began after it. One that began after
// observation k writes timestamps (now() is its start) after that
// observation's time and ids above its highest ids. So the horizon is the
// time and the ids of the newest observation that every transaction still
// open began after: for each, the observation before the first one that
// saw it, or its xact_start where pg_stat_activity shows it (the user's own
// sessions, or with pg_read_all_stats). A transaction already open at the
// first observation after a start has no such observation: nothing is read
// past the watermark until it ends. The timestamp horizon lies clockMargin
// before that time, for the moment between a transaction's start and its
// lock.
//
// For the incrementing mode the ids must be assigned by the database while
// the row is written (a sequence without CACHE, an identity column): an id
// chosen by the client before its transaction begins may be below what an
// observation saw.
//
// The snapshot's xmin alone would not do: a transaction has an xid only
// from its first write, and writes its BEGIN's time, so a transaction that
// begins, waits, and then writes is below no xmin when the poll runs, yet
// writes a timestamp older than the rows read.
//
// A prepared transaction (two-phase commit) holds back the horizon until
// it is committed or rolled back: its start cannot be known.

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/query"
)

// clockMargin is how far before an observation's time the horizon of the
// timestamp modes lies: a transaction's now() is its first statement's
// start, a moment (microseconds) before its lock shows in pg_locks.
const clockMargin = 100 * time.Millisecond

// queryApplicationName names the sessions of query capture. Their
// transactions are READ ONLY, so they never hold back a horizon: the
// polls of one pipeline do not delay another's.
const queryApplicationName = "liberator-query"

// NewQuery returns a Source of query capture (source.capture: query). It
// does no I/O.
func NewQuery(cfg Config, opts query.Options) (*query.Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	var ids []string
	for _, t := range cfg.Tables {
		id, _ := canonicalName(t)
		ids = append(ids, id)
	}
	return query.New(query.Config{
		Kind: "postgres", Tables: ids, Options: opts, Canon: canonicalName, Snapshot: cfg.Snapshot,
		Logger: cfg.Logger, Memory: cfg.Memory,
		NewDB: func() query.DB { return &queryDB{cfg: cfg, opts: opts.WithDefaults()} },
		Check: func(ctx context.Context) []connectors.Check { return checkQuery(ctx, cfg, opts) },
	})
}

// queryDB is PostgreSQL's side of query capture.
type queryDB struct {
	cfg  Config
	opts query.Options
	conn *pgx.Conn
	cat  *catalog
	rels map[*query.Plan]*queryRelation
	// serverTZ is the server's default TimeZone, in which a timestamp
	// without time zone column holds now().
	serverTZ string

	// Observations of the transactions in progress (the package doc).
	last   *observation
	open   map[string]*observation // vxid -> the observation it began after, nil if unknown
	starts map[string]*time.Time   // vxid -> its xact_start, where pg_stat_activity shows it
	// incr are the plans of the last poll in mode incrementing.
	incr []*query.Plan
}

// observation is what a poll noted before its snapshot.
type observation struct {
	at   time.Time
	tops map[*query.Plan]*int64 // highest committed id per incrementing plan; nil: none
}

// queryRelation is a plan's relation and what its reads need.
type queryRelation struct {
	table *connectors.Table
	rel   *relation
	from  string // the quoted table, or the query as a subquery
}

func (d *queryDB) Open(ctx context.Context) error {
	pgcfg, err := pgx.ParseConfig(d.cfg.DSN)
	if err != nil {
		return fmt.Errorf("source.dsn: %w", err)
	}
	for k, v := range sessionParams {
		pgcfg.RuntimeParams[k] = v
	}
	pgcfg.RuntimeParams["application_name"] = queryApplicationName
	if d.conn, err = pgx.ConnectConfig(ctx, pgcfg); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres: %w", err))
	}
	d.cat = newCatalog(d.conn).withPublished(d.cfg.PublishedColumns)
	d.rels = map[*query.Plan]*queryRelation{}
	if err := d.conn.QueryRow(ctx, `SELECT reset_val FROM pg_settings WHERE name = 'TimeZone'`).Scan(&d.serverTZ); err != nil {
		return retryableIfConnLost(fmt.Errorf("read the server's TimeZone: %w", err))
	}
	return nil
}

func (d *queryDB) Close(ctx context.Context) error {
	if d.conn == nil {
		return nil
	}
	return d.conn.Close(ctx)
}

// Describe describes a table, a view, or the result of a query.
func (d *queryDB) Describe(ctx context.Context, p *query.Plan) (*connectors.Table, error) {
	t, err := d.describe(ctx, p)
	return t, retryableIfConnLost(err)
}

func (d *queryDB) describe(ctx context.Context, p *query.Plan) (*connectors.Table, error) {
	tn, err := parseTableName(p.ID)
	if err != nil {
		return nil, err
	}
	var cols []column
	var key []string
	from := pgx.Identifier{tn.schema, tn.name}.Sanitize()
	if q := p.Options.Query; q != "" {
		from = "(" + q + ") AS q"
		if cols, err = d.queryColumns(ctx, p, from); err != nil {
			return nil, err
		}
	} else {
		relid, _, err := d.cat.relation(ctx, tn, "'r', 'p', 'v', 'm', 'f'")
		if err != nil {
			return nil, err
		}
		if cols, err = d.cat.columns(ctx, tn, relid); err != nil {
			return nil, err
		}
		if key, err = d.cat.primaryKey(ctx, tn, relid); err != nil {
			return nil, err
		}
	}
	switch {
	case len(p.Options.Key) > 0:
		key = p.Options.Key
	case len(key) == 0 && len(d.cfg.KeyColumns[p.ID]) > 0:
		key = d.cfg.KeyColumns[p.ID]
	case len(key) == 0:
		return nil, fmt.Errorf("%w: %s has no primary key (a view never has one): name the columns that identify its rows in source.query.tables.%s.key", ErrNoPrimaryKey, tn, tn)
	}
	for _, k := range key {
		if !slices.ContainsFunc(cols, func(c column) bool { return c.name == k }) {
			return nil, fmt.Errorf("%w: %s: key column %q (source.query.tables.%s.key) is not one of its columns", ErrNoPrimaryKey, tn, k, tn)
		}
	}
	// A key column's NULL could not key an event; a row with one is
	// refused when it is encoded, as a bad row.
	rel, err := d.cat.buildRelation(ctx, tn, cols, key, 'd')
	if err != nil {
		return nil, err
	}
	if old := d.rels[p]; old != nil && connectors.SameShape(old.table, rel.table) {
		rel.table = old.table
	}
	d.rels[p] = &queryRelation{table: rel.table, rel: rel, from: from}
	return rel.table, nil
}

// queryColumns describes the result columns of a query: their types as
// the server resolved them, and NOT NULL where a column is a table's NOT
// NULL column.
func (d *queryDB) queryColumns(ctx context.Context, p *query.Plan, from string) ([]column, error) {
	sd, err := d.conn.PgConn().Prepare(ctx, "", "SELECT * FROM "+from, nil)
	if err != nil {
		return nil, fmt.Errorf("source.query.tables.%s.query: %w", p.ID, err)
	}
	var cols []column
	for _, f := range sd.Fields {
		c := column{name: f.Name, typeOID: f.DataTypeOID, typmod: f.TypeModifier}
		err := d.conn.QueryRow(ctx, `SELECT format_type($1::oid, $2::int),
			coalesce((SELECT attnotnull FROM pg_attribute WHERE attrelid = $3::oid AND attnum = $4::int2), false)`,
			f.DataTypeOID, f.TypeModifier, f.TableOID, int16(f.TableAttributeNumber)).Scan(&c.sqlType, &c.notNull)
		if err != nil {
			return nil, fmt.Errorf("describe column %q of source.query.tables.%s.query: %w", f.Name, p.ID, err)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// BeginPoll observes the transactions in progress, then begins the poll's
// REPEATABLE READ transaction (the package doc).
func (d *queryDB) BeginPoll(ctx context.Context, plans []*query.Plan) ([]query.Bound, error) {
	b, err := d.beginPoll(ctx, plans)
	return b, retryableIfConnLost(err)
}

func (d *queryDB) beginPoll(ctx context.Context, plans []*query.Plan) ([]query.Bound, error) {
	d.incr = d.incr[:0]
	for _, p := range plans {
		if p.Options.Mode == query.Incrementing {
			d.incr = append(d.incr, p)
		}
	}
	if err := d.observe(ctx); err != nil {
		return nil, err
	}
	now := d.last
	unknown := false
	tsHorizon := now.at
	var oldest string
	for vxid, since := range d.open {
		if start := d.starts[vxid]; start != nil {
			if start.Before(tsHorizon) {
				tsHorizon, oldest = *start, vxid
			}
		} else if since == nil {
			unknown = true
			oldest = vxid
		} else if since.at.Before(tsHorizon) {
			tsHorizon, oldest = since.at, vxid
		}
	}
	open := d.open

	if _, err := d.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return nil, fmt.Errorf("poll: begin: %w", err)
	}
	var snap string
	if err := d.conn.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return nil, fmt.Errorf("poll: take the snapshot: %w", err)
	}
	d.cfg.Logger.Debug("poll", "snapshot", snap, "in_progress", len(open), "horizon", tsHorizon, "held_by", oldest, "unknown_start", unknown)

	bounds := make([]query.Bound, len(plans))
	for i, p := range plans {
		if unknown {
			bounds[i] = query.Bound{None: true}
			continue
		}
		qr := d.rels[p]
		if p.Options.Mode == query.Incrementing {
			top := now.tops[p]
			for _, since := range open {
				// A transaction's xact_start says nothing of the ids it
				// may take: without an observation before it began, no
				// id is final.
				var t *int64
				ok := since != nil
				if ok {
					t, ok = since.tops[p]
				}
				if !ok || t == nil {
					top = nil
					break
				}
				if top != nil && *t < *top {
					top = t
				}
			}
			if top == nil {
				bounds[i] = query.Bound{None: true}
			} else {
				bounds[i] = query.Bound{Value: strconv.FormatInt(*top, 10), Inclusive: true}
			}
			continue
		}
		h := tsHorizon.Add(-clockMargin).UTC()
		v := h.Format("2006-01-02 15:04:05.999999-07")
		if qr.table.Columns[p.Order[0]].Type.Kind != connectors.KindTimestamp {
			v = h.In(d.location()).Format("2006-01-02 15:04:05.999999")
		}
		bounds[i] = query.Bound{Value: v}
	}
	return bounds, nil
}

// Observe notes the time, the highest ids and the transactions in progress
// between polls, so that a transaction that begins between two polls is
// known to have begun after a recent observation rather than after the
// last poll: the horizon then trails the clock by little more than the
// time between observations.
func (d *queryDB) Observe(ctx context.Context) error {
	return retryableIfConnLost(d.observe(ctx))
}

// observe notes the time and the highest id of each incrementing table,
// then lists the transactions in progress, each with the observation it
// began after (the package doc).
func (d *queryDB) observe(ctx context.Context) error {
	now := &observation{tops: map[*query.Plan]*int64{}}
	sel := []string{"clock_timestamp()"}
	for _, p := range d.incr {
		qr := d.rels[p]
		col := pgx.Identifier{qr.table.Columns[p.Order[0]].Name}.Sanitize()
		sel = append(sel, "(SELECT max("+col+")::bigint FROM "+qr.from+")")
	}
	dest := []any{&now.at}
	tops := make([]*int64, len(d.incr))
	for i := range tops {
		dest = append(dest, &tops[i])
	}
	if err := d.conn.QueryRow(ctx, "SELECT "+strings.Join(sel, ", ")).Scan(dest...); err != nil {
		return fmt.Errorf("poll: note the time and highest ids: %w", err)
	}
	for i, p := range d.incr {
		now.tops[p] = tops[i]
	}
	rows, err := d.conn.Query(ctx, `SELECT l.virtualxid, a.xact_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
		  AND a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND a.backend_type IS DISTINCT FROM 'autovacuum worker'
		  AND a.application_name IS DISTINCT FROM '`+queryApplicationName+`'
		UNION ALL
		SELECT 'prepared:' || transaction::text, NULL FROM pg_prepared_xacts WHERE database = current_database()`)
	if err != nil {
		return fmt.Errorf("poll: list the transactions in progress: %w", err)
	}
	open := map[string]*observation{}
	starts := map[string]*time.Time{}
	for rows.Next() {
		var vxid string
		var start *time.Time
		if err := rows.Scan(&vxid, &start); err != nil {
			rows.Close()
			return fmt.Errorf("poll: list the transactions in progress: %w", err)
		}
		since, seen := d.open[vxid]
		switch {
		case strings.HasPrefix(vxid, "prepared:"):
			since = nil
		case !seen && d.last != nil:
			// Not in progress at the last observation: it began after it.
			since = d.last
		}
		open[vxid], starts[vxid] = since, start
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("poll: list the transactions in progress: %w", err)
	}
	d.open, d.starts, d.last = open, starts, now
	return nil
}

// location is the server's default time zone, UTC if Go does not know it.
func (d *queryDB) location() *time.Location {
	if l, err := time.LoadLocation(d.serverTZ); err == nil {
		return l
	}
	return time.UTC
}

// Read reads one page in keyset order.
func (d *queryDB) Read(ctx context.Context, pg query.Page) ([]query.Row, error) {
	rows, err := d.read(ctx, pg)
	return rows, retryableIfConnLost(err)
}

func (d *queryDB) read(ctx context.Context, pg query.Page) ([]query.Row, error) {
	qr := d.rels[pg.Plan]
	t := qr.table
	order := pg.Plan.OrderOf(pg.Full)
	ks := keyset{from: qr.from, columns: qr.rel.selectList()}
	for _, i := range order {
		c := t.Columns[i]
		ks.keyCols = append(ks.keyCols, pgx.Identifier{c.Name}.Sanitize())
		ks.casts = append(ks.casts, "::"+c.SQLType)
	}
	var conds []string
	var params [][]byte
	if pg.After != nil {
		conds = append(conds, ks.compare(">", 1))
		for _, v := range pg.After {
			params = append(params, []byte(v))
		}
	}
	if !pg.Full {
		op := " < "
		if pg.Bound.Inclusive {
			op = " <= "
		}
		conds = append(conds, ks.keyCols[0]+op+"$"+strconv.Itoa(len(params)+1)+ks.casts[0])
		params = append(params, []byte(pg.Bound.Value))
	}
	sql := "SELECT " + ks.columns + " FROM " + ks.from
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += ks.orderBy() + " LIMIT " + strconv.Itoa(pg.Limit)
	rr := d.conn.PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	var out []query.Row
	var slab connectors.RowSlab
	for rr.NextRow() {
		vals := rr.Values()
		row, err := qr.rel.decodeValues(vals, &slab)
		if err != nil {
			rr.Close()
			return nil, err
		}
		after := make([]string, len(order))
		for n, i := range order {
			after[n] = string(vals[i])
		}
		out = append(out, query.Row{Values: row, After: after})
	}
	if _, err := rr.Close(); err != nil {
		return nil, fmt.Errorf("read %s: %w", t.ID(), err)
	}
	return out, nil
}

// EndPoll ends the poll's transaction.
func (d *queryDB) EndPoll(ctx context.Context) error {
	_, err := d.conn.Exec(ctx, "COMMIT")
	if err != nil {
		return retryableIfConnLost(fmt.Errorf("poll: commit: %w", err))
	}
	return nil
}
