package mysql

import (
	"context"
	"fmt"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/google/uuid"

	"github.com/liberator-cdc/liberator/connectors"
)

var (
	_ connectors.Identifier = (*Source)(nil)
	_ connectors.Resetter   = (*Source)(nil)
)

// identityTable is the table, in the database of snapshot.signal_table,
// that holds a MariaDB server's identity.
const identityTable = "identity"

// Identity names the binary log that positions point into, so that the
// pipeline refuses a position stored against another server.
//
// MySQL: "mysql:" and @@server_uuid, which MySQL generates at the first
// start of a data directory. A clone of the data directory that kept
// auto.cnf shares it; MySQL's own replication refuses such a clone too.
//
// MariaDB has no server UUID, and @@server_id and @@gtid_domain_id are
// small numbers that default to 1 and 0 on every server, so they would not
// tell two servers apart. Liberator instead writes a random UUID once into
// a table of the signal database (liberator.identity by default, created
// if missing) and reads it back: "mariadb:" and that UUID. The row
// replicates, so a replica promoted after a fail-over keeps the identity,
// and MariaDB GTID positions stay valid across such a fail-over. A server
// restored from a backup, or a clone of one, keeps it too; its binary log
// then refuses a GTID it lacks (an error that quotes the server), or
// reports it purged (a re-snapshot with reconcile). Give a clone that
// should become a new stream its own identity by deleting the row
// (DELETE FROM liberator.identity) before liberator first connects.
//
// Identity connects on its own and may run before Open.
func (s *Source) Identity(ctx context.Context) (string, error) {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return "", fmt.Errorf("read server identity: %w", err)
	}
	defer conn.Close()
	if s.cfg.Flavor == FlavorMySQL {
		rows, err := run(ctx, conn, "SELECT @@server_uuid")
		if err != nil {
			return "", fmt.Errorf("read server identity: %w", connectors.MarkRetryable(err))
		}
		return parseServerUUID(rows)
	}
	id, err := s.mariadbIdentity(ctx, conn)
	if err != nil {
		return "", fmt.Errorf("read server identity: %w", err)
	}
	return "mariadb:" + id, nil
}

// parseServerUUID reads SELECT @@server_uuid.
func parseServerUUID(rows [][]string) (string, error) {
	if len(rows) != 1 || len(rows[0]) != 1 {
		return "", fmt.Errorf("read server identity: SELECT @@server_uuid returned %d rows", len(rows))
	}
	u, err := uuid.Parse(rows[0][0])
	if err != nil {
		return "", fmt.Errorf("read server identity: @@server_uuid %q: %w", rows[0][0], err)
	}
	return "mysql:" + u.String(), nil
}

// mariadbIdentity reads the UUID of the identity table, creating the
// table and its row when they are missing.
func (s *Source) mariadbIdentity(ctx context.Context, conn *client.Conn) (string, error) {
	sig, _ := parseTableName(s.cfg.Snapshots.WithDefaults().SignalTable)
	table := quoteIdent(sig.db) + "." + quoteIdent(identityTable)
	read := func() (string, bool, error) {
		rows, err := run(ctx, conn, "SELECT server_uuid FROM "+table+" WHERE id = 1")
		if err != nil {
			return "", false, err
		}
		if len(rows) == 0 {
			return "", false, nil
		}
		u, err := uuid.Parse(rows[0][0])
		if err != nil {
			return "", false, fmt.Errorf("%s holds %q, which is not a UUID", table, rows[0][0])
		}
		return u.String(), true, nil
	}
	id, ok, err := read()
	if err == nil && ok {
		return id, nil
	}
	if err != nil && myErrorCode(err) == 0 {
		return "", connectors.MarkRetryable(err)
	}
	// The table or its row is missing: write them. INSERT IGNORE keeps
	// the row of another liberator that got there first.
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + quoteIdent(sig.db),
		"CREATE TABLE IF NOT EXISTS " + table +
			" (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, server_uuid CHAR(36) NOT NULL) COMMENT 'liberator: the identity of this server''s binary log'",
		"INSERT IGNORE INTO " + table + " (id, server_uuid) VALUES (1, '" + uuid.NewString() + "')",
	} {
		if _, err := run(ctx, conn, q); err != nil {
			if myErrorCode(err) == 0 {
				return "", connectors.MarkRetryable(err)
			}
			return "", fmt.Errorf("%w (MariaDB has no server UUID: liberator keeps one in %s; create it with CREATE TABLE %s (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, server_uuid CHAR(36) NOT NULL) and INSERT INTO %s VALUES (1, UUID()), or grant the liberator user CREATE and INSERT on %s)",
				err, table, table, table, quoteIdent(sig.db))
		}
	}
	if id, ok, err = read(); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s has no row after writing one", table)
		}
		return "", err
	}
	return id, nil
}

// Reset returns the position that liberator reset stores. MySQL and
// MariaDB keep nothing for a replica, so nothing is dropped on the server:
// opened from the position, the source streams from the end of the binary
// log as it is then, and re-snapshots every table with reconcile, which
// tombstones the keys its topics hold but its tables no longer do.
func (s *Source) Reset(context.Context) (connectors.Position, error) {
	return Position{Flavor: s.cfg.Flavor, Reset: true}, nil
}
