package mysql

import (
	"errors"
	"io"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// Error codes that a server restart or a cut connection produces. The
// client-side ones (2006, 2013) are those of libmysqlclient; go-mysql
// reports a broken socket as ErrBadConn or a network error instead, but a
// server or proxy may still send them.
const (
	erConCount        = 1040 // ER_CON_COUNT_ERROR, while old connections are going away
	erServerShutdown  = 1053 // ER_SERVER_SHUTDOWN: Server shutdown in progress
	erQueryKilled     = 1317 // ER_QUERY_INTERRUPTED, as at shutdown
	erConnectionKill  = 1927 // ER_CONNECTION_KILLED (MariaDB): Connection was killed
	crServerGoneError = 2006 // CR_SERVER_GONE_ERROR: MySQL server has gone away
	crServerLost      = 2013 // CR_SERVER_LOST: Lost connection to MySQL server during query
)

// connLost reports whether err is what a server restart, a server shutdown
// or a cut connection produces: the same statement may succeed on a new
// connection.
func connLost(err error) bool {
	if err == nil {
		return false
	}
	var me *gomysql.MyError
	if errors.As(err, &me) {
		switch me.Code {
		case erConCount, erServerShutdown, erQueryKilled, erConnectionKill, crServerGoneError, crServerLost:
			return true
		}
		return false
	}
	return errors.Is(err, gomysql.ErrBadConn) || connectors.NetworkLost(err)
}

// retryableIfConnLost marks err retryable when the connection was lost, so
// that the pipeline reconnects and resumes from its stored position. The
// bare io.EOF that ends a snapshot-only run is left alone.
func retryableIfConnLost(err error) error {
	if err != io.EOF && connLost(err) && !connectors.IsRetryable(err) {
		return connectors.MarkRetryable(err)
	}
	return err
}
