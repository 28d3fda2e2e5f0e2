package mysql

import (
	"context"
	"errors"

	"github.com/liberator-cdc/liberator/connectors"
)

var _ connectors.Describer = (*Source)(nil)

// Describe describes the configured tables as information_schema has them
// now, over a connection of its own. It may be called before Open.
func (s *Source) Describe(ctx context.Context) ([]*connectors.Table, error) {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var tables []*connectors.Table
	var errs []error
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		ts, err := s.readKeyedTable(ctx, conn, tn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		table, _, err := ts.describe()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tables = append(tables, table)
	}
	return tables, errors.Join(errs...)
}
