package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestRetryableIfConnLost(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a server shutting down is retried", &gomysql.MyError{Code: erServerShutdown, Message: "Server shutdown in progress"}, true},
		{"a lost connection is retried", &gomysql.MyError{Code: crServerLost, Message: "Lost connection to MySQL server during query"}, true},
		{"a server gone away is retried", &gomysql.MyError{Code: crServerGoneError, Message: "MySQL server has gone away"}, true},
		{"a killed connection is retried", &gomysql.MyError{Code: erConnectionKill, Message: "Connection was killed"}, true},
		{"a bad connection is retried", fmt.Errorf("query: %w", gomysql.ErrBadConn), true},
		{"a wrapped EOF is retried", fmt.Errorf("read packet: %w", io.EOF), true},
		{"a reset connection is retried", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"the end of a snapshot-only run is not retried", io.EOF, false},
		{"a missing table is not retried", &gomysql.MyError{Code: 1146, Message: "Table doesn't exist"}, false},
		{"a cancelled context is not retried", context.Canceled, false},
		{"a plain error is not retried", errors.New("bad"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connectors.IsRetryable(retryableIfConnLost(tt.err)); got != tt.want {
				t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
