package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/query"
)

// checkQuery checks, without changing anything, what query capture needs:
// the server answers, each table, view or query can be read, and each
// column a poll orders by has an index (a warning: without one every poll
// scans the table). It then runs the checks of log capture and reports
// what fails there as warnings: what log capture would need.
func checkQuery(ctx context.Context, cfg Config, opts query.Options) []connectors.Check {
	pgcfg, err := pgx.ParseConfig(cfg.DSN)
	if err != nil {
		return []connectors.Check{{Name: "source.dsn parses", Err: err}}
	}
	conn, err := pgx.ConnectConfig(ctx, pgcfg)
	if err != nil {
		return []connectors.Check{{Name: "PostgreSQL is reachable", Err: fmt.Errorf("connect to postgres: %w (check source.dsn, the network, and pg_hba.conf)", err)}}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	out := []connectors.Check{{Name: "PostgreSQL is reachable"}}
	add := func(c connectors.Check) { out = append(out, c) }
	user := pgx.Identifier{pgcfg.User}.Sanitize()
	cat := newCatalog(conn)
	for _, t := range cfg.Tables {
		tn, _ := parseTableName(t)
		to, _ := opts.Lookup(tn.String(), canonicalName)
		ident := pgx.Identifier{tn.schema, tn.name}.Sanitize()
		if to.Query != "" {
			_, err := conn.PgConn().Prepare(ctx, "", "SELECT * FROM ("+to.Query+") AS q", nil)
			add(connectors.Check{Name: "the query of " + tn.String() + " can be run", Err: wrapIf(err, "source.query.tables.%s.query: %w", tn)})
			if to.Mode != query.Bulk {
				add(connectors.Check{Name: "the poll of " + tn.String() + " can use an index", Warning: true,
					Err: fmt.Errorf("%s is a query: liberator cannot see which index serves it; make sure the tables it reads have an index on the columns it is polled by (%s)", tn, pollColumns(to))})
			}
			continue
		}
		relid, _, err := cat.relation(ctx, tn, "'r', 'p', 'v', 'm', 'f'")
		if err != nil {
			add(connectors.Check{Name: "table " + tn.String() + " exists", Err: err})
			continue
		}
		var canSelect bool
		var kind string
		if err := conn.QueryRow(ctx, `SELECT has_table_privilege($1::oid, 'SELECT'), relkind::text FROM pg_class WHERE oid = $1::oid`, relid).Scan(&canSelect, &kind); err != nil {
			add(connectors.Check{Name: "table " + tn.String() + " is readable", Err: err})
			continue
		}
		add(connectors.Check{Name: "the user may read " + tn.String(), Err: when(!canSelect, "no SELECT on %s: GRANT SELECT ON %s TO %s", tn, ident, user)})
		if to.Mode == query.Bulk {
			continue
		}
		if kind == "v" || kind == "f" {
			add(connectors.Check{Name: "the poll of " + tn.String() + " can use an index", Warning: true,
				Err: fmt.Errorf("%s is a view: liberator cannot see which index serves it; make sure the tables under it have an index on %s", tn, pollColumns(to))})
			continue
		}
		for _, col := range []string{to.Timestamp, to.Incrementing} {
			if col == "" || (col == to.Incrementing && to.Mode == query.TimestampIncrementing) {
				continue
			}
			var indexed bool
			err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
				WHERE i.indrelid = $1::oid AND a.attname = $2 AND i.indisvalid)`, relid, col).Scan(&indexed)
			if err != nil {
				add(connectors.Check{Name: "the indexes of " + tn.String() + " are readable", Err: err})
				continue
			}
			fix := pgx.Identifier{col}.Sanitize()
			if to.Mode == query.TimestampIncrementing {
				fix += ", " + pgx.Identifier{to.Incrementing}.Sanitize()
			}
			add(connectors.Check{Name: "column " + col + " of " + tn.String() + " has an index", Warning: true,
				Err: when(!indexed, "no index of %s begins with %s, so every poll scans the whole table: CREATE INDEX CONCURRENTLY ON %s (%s)", tn, col, ident, fix)})
		}
	}
	logSrc, err := New(cfg)
	if err != nil {
		return out
	}
	for _, c := range query.LogCaptureChecks(logSrc.Check(ctx)) {
		add(c)
	}
	return out
}

// pollColumns names the columns a table is polled by.
func pollColumns(t query.TableOptions) string {
	switch t.Mode {
	case query.Incrementing:
		return t.Incrementing
	case query.Timestamp:
		return t.Timestamp
	}
	return t.Timestamp + ", " + t.Incrementing
}

// wrapIf wraps err in the format when it is not nil.
func wrapIf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format, append(args, err)...)
}
