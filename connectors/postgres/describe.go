package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

var _ connectors.Describer = (*Source)(nil)

// Describe describes the configured tables, and those that Config.Patterns
// take, as the catalog has them now, over a connection of its own. It may
// be called before Open.
func (s *Source) Describe(ctx context.Context) ([]*connectors.Table, error) {
	pgcfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("source.dsn: %w", err)
	}
	for k, v := range sessionParams {
		pgcfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, pgcfg)
	if err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("connect to postgres: %w", err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	cat := newCatalog(conn).withKeys(s.cfg.KeyColumns).withPublished(s.cfg.PublishedColumns)
	var tables []*connectors.Table
	var errs []error
	names := make([]tableName, 0, len(s.cfg.Tables))
	have := map[tableName]bool{}
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		names = append(names, tn)
		have[tn] = true
	}
	found, err := matchingTables(ctx, conn, s.cfg.Patterns, have)
	if err != nil {
		return nil, err
	}
	names = append(names, found...)
	for _, tn := range names {
		cols, key, identity, err := cat.describe(ctx, tn)
		if err != nil {
			// A table that a pattern takes but that cannot be captured is
			// left out, as Open leaves it out.
			if have[tn] || !uncapturable(err) {
				errs = append(errs, err)
			}
			continue
		}
		rel, err := cat.buildRelation(ctx, tn, cols, key, identity)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tables = append(tables, rel.table)
	}
	return tables, errors.Join(errs...)
}
