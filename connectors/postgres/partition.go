package postgres

// # Partitioned tables
//
// A partitioned table is captured as one table: its snapshot reads the
// parent (a SELECT on a partitioned table reads every partition, and keyset
// chunks run on the parent's primary key, which PostgreSQL makes include the
// partition key), and its changes stream under the parent's name because the
// publication is made WITH (publish_via_partition_root = true). Without that
// option pgoutput reports each change under the leaf partition's name, which
// is not a captured table, and every streamed change would be dropped while
// the slot moves on. An existing publication without it is therefore refused.
//
// With the option, pgoutput sends an UPDATE that moves a row to another
// partition (it changes the partition key, so the primary key) as a DELETE
// of the old key and an INSERT of the new one, both under the parent: a
// tombstone and a create. Partitions created or attached later are covered
// by the parent's publication membership. Rows that a table already holds
// when it is attached were never inserted through the parent, so no change
// carries them: an incremental snapshot of the parent brings them in.
//
// A partition captured as a table of its own beside an ancestor would be
// published once, under the topmost published ancestor, so its own topic
// would miss every change; that is refused.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotPublishedViaRoot is wrapped by the error for a publication that
// lacks publish_via_partition_root while a captured table is partitioned:
// the table's changes would arrive under its partitions' names and be lost.
var ErrNotPublishedViaRoot = errors.New("publication does not publish via the partition root")

// ErrPartitionCapturedTwice is wrapped by the error for a captured table
// that is a partition of another captured table.
var ErrPartitionCapturedTwice = errors.New("a partition of a captured table is captured too")

// partitionInfo is a captured table's place among partitions.
type partitionInfo struct {
	table tableName
	// partitioned is true for a partitioned table (relkind 'p').
	partitioned bool
	// ancestors are the tables the table is a partition of, nearest first;
	// empty unless it is a partition.
	ancestors []tableName
}

// readPartitionInfo reads whether a table is partitioned and which tables
// it is a partition of.
func readPartitionInfo(ctx context.Context, conn *pgx.Conn, tn tableName) (partitionInfo, error) {
	info := partitionInfo{table: tn}
	rows, err := conn.Query(ctx, `SELECT c.relkind = 'p', coalesce(an.nspname, ''), coalesce(ac.relname, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN LATERAL pg_partition_ancestors(c.oid) WITH ORDINALITY a(relid, ord) ON a.relid <> c.oid
		LEFT JOIN pg_class ac ON ac.oid = a.relid
		LEFT JOIN pg_namespace an ON an.oid = ac.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2
		ORDER BY a.ord`, tn.schema, tn.name)
	if err != nil {
		return info, fmt.Errorf("describe partitions of %s: %w", tn, err)
	}
	defer rows.Close()
	for rows.Next() {
		var anc tableName
		if err := rows.Scan(&info.partitioned, &anc.schema, &anc.name); err != nil {
			return info, fmt.Errorf("describe partitions of %s: %w", tn, err)
		}
		if anc.name != "" {
			info.ancestors = append(info.ancestors, anc)
		}
	}
	if err := rows.Err(); err != nil {
		return info, fmt.Errorf("describe partitions of %s: %w", tn, err)
	}
	return info, nil
}

// readPartitionInfos reads the partition info of each table.
func readPartitionInfos(ctx context.Context, conn *pgx.Conn, tables []tableName) ([]partitionInfo, error) {
	out := make([]partitionInfo, 0, len(tables))
	for _, tn := range tables {
		info, err := readPartitionInfo(ctx, conn, tn)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// viaRootProblem reports a partitioned table that an existing publication
// without publish_via_partition_root would publish under its partitions'
// names.
func viaRootProblem(pub string, viaRoot bool, info partitionInfo) error {
	if viaRoot || !info.partitioned {
		return nil
	}
	return fmt.Errorf("%w: publication %q lacks publish_via_partition_root, so the changes of the partitioned table %s would arrive under its partitions' names and be lost: ALTER PUBLICATION %s SET (publish_via_partition_root = true);",
		ErrNotPublishedViaRoot, pub, info.table, pub)
}

// capturedTwiceProblem reports a table that is a partition of another
// captured table: pgoutput publishes each change once, under one of them.
func capturedTwiceProblem(info partitionInfo, captured map[tableName]bool) error {
	for _, anc := range info.ancestors {
		if captured[anc] {
			return fmt.Errorf("%w: %s is a partition of %s, whose topic carries its rows and changes; remove %s from source.tables",
				ErrPartitionCapturedTwice, info.table, anc, info.table)
		}
	}
	return nil
}

// createPublicationSQL is the statement that creates the publication for
// the tables. publish_via_partition_root makes the changes of a
// partitioned table arrive under its own name; it changes nothing for
// other tables.
func createPublicationSQL(pub string, tables []tableName) string {
	list := make([]string, len(tables))
	for i, tn := range tables {
		list[i] = pgx.Identifier{tn.schema, tn.name}.Sanitize()
	}
	return "CREATE PUBLICATION " + pgx.Identifier{pub}.Sanitize() + " FOR TABLE " + strings.Join(list, ", ") +
		" WITH (publish_via_partition_root = true)"
}
