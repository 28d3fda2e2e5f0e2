package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// minServerVersion is PostgreSQL 14: pgoutput's messages option (heartbeats
// and watermarks) and pg_current_snapshot (incremental snapshots) need it.
const minServerVersion = 140000

// checkVersion checks server_version_num against minServerVersion.
func checkVersion(ctx context.Context, conn *pgx.Conn) connectors.Check {
	const name = "PostgreSQL is version 14 or later"
	var num int
	var version string
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).Scan(&num, &version); err != nil {
		return connectors.Check{Name: name, Err: fmt.Errorf("read server_version_num: %w", err)}
	}
	return connectors.Check{Name: name, Err: versionError(num, version)}
}

func versionError(num int, version string) error {
	return when(num < minServerVersion,
		"the server runs PostgreSQL %s; liberator needs 14 or later (for pgoutput's messages option and pg_current_snapshot): upgrade the server", version)
}
