package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liberator-cdc/liberator/connectors"
)

// errReplicationEnded is wrapped when the server ends the replication
// stream without an error, as it does when it shuts down (pg_ctl stop or
// restart): the walsender sends CopyDone and CommandComplete.
var errReplicationEnded = errors.New("the server ended the replication stream")

// connLost reports whether err is what a server restart, a server shutdown
// or a cut connection produces: the same statement may succeed on a new
// connection.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", // admin_shutdown: terminating connection due to administrator command
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: the database system is starting up / shutting down
			"53300": // too_many_connections, while old connections are still going away
			return true
		}
		// Class 08: connection exception.
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) ||
		errors.Is(err, errReplicationEnded) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		connectors.NetworkLost(err) ||
		pgconn.SafeToRetry(err)
}

// retryableIfConnLost marks err retryable when the connection was lost, so
// that the pipeline reconnects and resumes from its stored position.
func retryableIfConnLost(err error) error {
	if connLost(err) && !connectors.IsRetryable(err) {
		return connectors.MarkRetryable(err)
	}
	return err
}
