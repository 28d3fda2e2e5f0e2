package postgres

// # Tables that patterns take
//
// Patterns (Config.Patterns) are resolved against the catalog at Open:
// every ordinary or partitioned table they match that is not a partition
// (a partition's rows are captured through its root) joins Config.Tables,
// and from there is described, added to the publication and snapshotted
// like a named one. A table that a pattern matches but that cannot be
// captured (no primary key, no key columns in the mapping) is left out with
// a warning rather than stopping liberator.
//
// While streaming, the reader goroutine reads the catalog again every
// PatternPoll, between transactions. A new table it finds is added to the
// publication with ALTER PUBLICATION ... ADD TABLE, joins the captured
// tables and is snapshotted incrementally (DBLog windows). pgoutput
// publishes the table's changes committed after the ALTER; the rows
// committed before it, including those written before liberator noticed
// the table, are in the table when the snapshot reads it, so none is lost.
// The new tables are handed to Read at once (Batch.Tables), with the batch
// pending or in one of their own, so that their topics and schemas are
// ready before their first change or snapshot row.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// listTablesSQL lists the tables a pattern may take: ordinary and
// partitioned tables, not partitions, outside the system schemas.
const listTablesSQL = `SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 1, 2`

// matchingTables returns the tables of the catalog that the patterns take
// and that are not in have.
func matchingTables(ctx context.Context, conn *pgx.Conn, f connectors.TableFilter, have map[tableName]bool) ([]tableName, error) {
	if f.Empty() {
		return nil, nil
	}
	rows, err := conn.Query(ctx, listTablesSQL)
	if err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("list tables for source.tables patterns: %w", err))
	}
	var out []tableName
	for rows.Next() {
		var tn tableName
		if err := rows.Scan(&tn.schema, &tn.name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables for source.tables patterns: %w", err)
		}
		if !have[tn] && f.Match(tn.schema, tn.name) {
			out = append(out, tn)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("list tables for source.tables patterns: %w", err))
	}
	return out, nil
}

// uncapturable reports whether err says that a table cannot be captured
// as it is, which a pattern's table is skipped for.
func uncapturable(err error) bool {
	return errors.Is(err, ErrNoPrimaryKey)
}

// resolvePatterns adds the tables that the patterns take to Config.Tables
// and s.want, at Open.
func (s *Source) resolvePatterns(ctx context.Context) error {
	found, err := matchingTables(ctx, s.conn, s.cfg.Patterns, s.want)
	if err != nil {
		return err
	}
	var added []string
	for _, tn := range found {
		cols, key, identity, err := s.cat.describe(ctx, tn)
		if err == nil {
			_, err = s.cat.buildRelation(ctx, tn, cols, key, identity)
		}
		if err != nil {
			if uncapturable(err) {
				s.log.Warn("a table that source.tables patterns match cannot be captured; leaving it out", "table", tn.String(), "reason", err)
				continue
			}
			return err
		}
		s.want[tn] = true
		s.cfg.Tables = append(s.cfg.Tables, tn.String())
		added = append(added, tn.String())
	}
	if len(found) > 0 || !s.cfg.Patterns.Empty() {
		s.log.Info("source.tables patterns resolved", "tables", added)
	}
	if len(s.cfg.Tables) == 0 {
		return s.cfg.Patterns.ErrNoMatch()
	}
	return nil
}

// discoverTables looks for new tables that the patterns take, every
// PatternPoll, between transactions. Each is added to the publication,
// described, captured from now on and queued for an incremental
// snapshot.
func (s *Source) discoverTables(ctx context.Context) error {
	if s.cfg.Patterns.Empty() || s.inTx || time.Since(s.discovered) < s.cfg.PatternPoll {
		return nil
	}
	s.discovered = time.Now()
	found, err := matchingTables(ctx, s.conn, s.cfg.Patterns, s.want)
	if err != nil {
		return err
	}
	found = slices.DeleteFunc(found, func(tn tableName) bool { return s.skipped[tn] })
	if len(found) == 0 {
		return nil
	}
	var added []string
	var tables []*connectors.Table
	for _, tn := range found {
		cols, key, identity, err := s.cat.describe(ctx, tn)
		var rel *relation
		if err == nil {
			if rel, err = s.cat.buildRelation(ctx, tn, cols, key, identity); err == nil {
				s.byName[tn] = rel
			}
		}
		if err != nil {
			if !uncapturable(err) {
				return err
			}
			// Not looked at again until a restart: a table without a key
			// stays without one, usually.
			if s.skipped == nil {
				s.skipped = map[tableName]bool{}
			}
			s.skipped[tn] = true
			s.log.Warn("a new table that source.tables patterns match cannot be captured; leaving it out", "table", tn.String(), "reason", err)
			continue
		}
		if err := s.publish(ctx, tn); err != nil {
			return err
		}
		s.want[tn] = true
		added = append(added, tn.String())
		// The relation message before the table's first change keeps
		// this *Table while the shape holds (handleRelation), and the
		// snapshot reads with it (s.byName).
		tables = append(tables, rel.table)
	}
	if len(added) == 0 {
		return nil
	}
	s.snaps.AddTables(added, s.log)
	s.log.Info("new tables match source.tables patterns; capturing them and snapshotting them while streaming", "tables", added)
	s.pending.Tables = append(s.pending.Tables, tables...)
	return s.flush(ctx)
}

// publish adds a table to the publication, unless the publication takes
// every table or has it already.
func (s *Source) publish(ctx context.Context, tn tableName) error {
	pub := s.cfg.Publication
	var has bool
	err := s.conn.QueryRow(ctx, `SELECT p.puballtables OR EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3)
FROM pg_publication p WHERE p.pubname = $1`, pub, tn.schema, tn.name).Scan(&has)
	if err != nil {
		return connectors.MarkRetryable(fmt.Errorf("describe publication %q: %w", pub, err))
	}
	if has {
		return nil
	}
	ident := pgx.Identifier{tn.schema, tn.name}.Sanitize()
	if _, err := s.conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+ident); err != nil {
		return fmt.Errorf("source.postgres.publication: add new table %s to publication %q: %w (the user must own the table, or create the publication FOR ALL TABLES)", tn, pub, err)
	}
	s.log.Info("added table to publication", "publication", pub, "table", tn.String())
	return nil
}
