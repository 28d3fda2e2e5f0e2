package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ensurePublication creates the publication, or adds missing tables to it.
// An existing publication must publish partitioned tables via their root.
func (s *Source) ensurePublication(ctx context.Context, parts []partitionInfo) error {
	pub := s.cfg.Publication
	var all, viaRoot bool
	err := s.conn.QueryRow(ctx, `SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1`, pub).Scan(&all, &viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		create := createPublicationSQL(pub, s.tableNames())
		if _, err := s.conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("source.postgres.publication: create publication %q: %w (create it as a superuser or the tables' owner: %s)", pub, err, create)
		}
		s.log.Info("created publication", "publication", pub, "tables", s.cfg.Tables)
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	var errs []error
	for _, p := range parts {
		errs = append(errs, viaRootProblem(pub, viaRoot, p))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("source.postgres.publication: %w", err)
	}
	if all {
		return nil
	}
	rows, err := s.conn.Query(ctx, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
	if err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	have := map[tableName]bool{}
	for rows.Next() {
		var tn tableName
		if err := rows.Scan(&tn.schema, &tn.name); err != nil {
			rows.Close()
			return fmt.Errorf("describe publication %q: %w", pub, err)
		}
		have[tn] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	for tn := range s.want {
		if have[tn] {
			continue
		}
		ident := pgx.Identifier{tn.schema, tn.name}.Sanitize()
		if _, err := s.conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+ident); err != nil {
			return fmt.Errorf("source.postgres.publication: add %s to publication %q: %w", tn, pub, err)
		}
		s.log.Info("added table to publication", "publication", pub, "table", tn.String())
	}
	return nil
}

// tableNames are the configured tables, in config order.
func (s *Source) tableNames() []tableName {
	out := make([]tableName, 0, len(s.cfg.Tables))
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		out = append(out, tn)
	}
	return out
}

func quoteLiteral(s string) string {
	return "'" + s + "'"
}
