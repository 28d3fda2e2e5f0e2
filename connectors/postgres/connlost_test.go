package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestRetryableIfConnLost(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"an administrator's shutdown is retried", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{"a server starting up is retried", &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{"a connection exception is retried", &pgconn.PgError{Code: "08006"}, true},
		{"the end of the replication stream is retried", fmt.Errorf("replication: %w", errReplicationEnded), true},
		{"a closed connection is retried", fmt.Errorf("describe: %w", pgconn.ErrConnClosed), true},
		{"an EOF inside a wrapped error is retried", fmt.Errorf("receive message failed: %w", io.ErrUnexpectedEOF), true},
		{"a reset connection is retried", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"a missing table is not retried", &pgconn.PgError{Code: "42P01"}, false},
		{"a missing privilege is not retried", &pgconn.PgError{Code: "42501"}, false},
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
