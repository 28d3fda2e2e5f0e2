package mysql

import (
	"context"
	"errors"

	"github.com/liberator-cdc/liberator/connectors"
)

var _ connectors.Describer = (*Source)(nil)

// Describe describes the configured tables, and those that Config.Patterns
// take, as information_schema has them now, over a connection of its own.
// It may be called before Open.
func (s *Source) Describe(ctx context.Context) ([]*connectors.Table, error) {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var tables []*connectors.Table
	var errs []error
	names := make([]tableName, 0, len(s.cfg.Tables))
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		names = append(names, tn)
	}
	var matched map[tableName]bool
	if !s.cfg.Patterns.Empty() {
		found, err := s.matchingTables(ctx, conn)
		if err != nil {
			return nil, err
		}
		matched = map[tableName]bool{}
		for _, tn := range found {
			matched[tn] = true
		}
		names = append(names, found...)
	}
	for _, tn := range names {
		ts, err := s.readKeyedTable(ctx, conn, tn)
		var table *connectors.Table
		if err == nil {
			table, _, err = ts.describe()
		}
		if err != nil {
			// A table that a pattern takes but that cannot be captured is
			// left out, as Open leaves it out.
			if !matched[tn] || !leftOut(err) {
				errs = append(errs, err)
			}
			continue
		}
		tables = append(tables, table)
	}
	return tables, errors.Join(errs...)
}
