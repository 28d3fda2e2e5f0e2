package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// SnapshotProgress reports the progress of the snapshots taken since Open:
// rows read per table, the estimate from pg_class.reltuples, and when each
// table started and finished.
func (s *Source) SnapshotProgress() connectors.SnapshotProgress {
	return s.snaps.Progress.Progress()
}

var _ connectors.SnapshotProgressReporter = (*Source)(nil)

// estimateRows reads a table's row count from its statistics, or -1 when
// it has never been analyzed.
func estimateRows(ctx context.Context, conn *pgx.Conn, tn tableName) int64 {
	var n float64
	err := conn.QueryRow(ctx, `SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2`,
		tn.schema, tn.name).Scan(&n)
	if err != nil || n < 0 {
		return -1
	}
	return int64(n)
}
