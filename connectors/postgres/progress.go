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

// estimateRows reads a table's row count from its statistics (a
// partitioned table's is the sum over its partitions), or -1 when it has
// never been analyzed.
func estimateRows(ctx context.Context, conn *pgx.Conn, tn tableName) int64 {
	var n float64
	err := conn.QueryRow(ctx, estimateRowsSQL, tn.schema, tn.name).Scan(&n)
	if err != nil || n < 0 {
		return -1
	}
	return int64(n)
}

// estimateRowsSQL reads a table's row count from its statistics: for a
// partitioned table, whose own reltuples is -1 until the parent itself is
// analyzed (autovacuum analyzes only the partitions), the sum over its
// analyzed leaf partitions; -1 when nothing is analyzed.
const estimateRowsSQL = `SELECT CASE WHEN c.relkind = 'p' THEN coalesce(
		(SELECT sum(l.reltuples) FILTER (WHERE l.reltuples >= 0) FROM pg_partition_tree(c.oid) t JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf),
		c.reltuples)
	ELSE c.reltuples END::float8
	FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2`
