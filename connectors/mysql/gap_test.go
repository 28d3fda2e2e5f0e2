package mysql

import (
	"errors"
	"io"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestBinlogErrorsAreClassifiedByTheServersMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want binlogErrorKind
	}{
		{
			name: "a purged file is lost (MariaDB 10.11, seen here)",
			msg:  "Could not find first log file name in binary log index file",
			want: binlogLost,
		},
		{
			name: "a next file purged while reading is lost",
			msg:  "could not find next log; the first event 'binlog.000001' at 4, the last event read from 'binlog.000001' at 1234, the last byte read from 'binlog.000001' at 1234.",
			want: binlogLost,
		},
		{
			name: "a purged MariaDB GTID is lost",
			msg:  "Could not find GTID state requested by slave in any binlog files. Probably the slave state is too old and required binlog files have been purged.",
			want: binlogLost,
		},
		{
			name: "a purged MySQL GTID is lost (MySQL 5.7 and 8.0 before 8.0.26)",
			msg:  "The slave is connecting using CHANGE MASTER TO MASTER_AUTO_POSITION = 1, but the master has purged binary logs containing GTIDs that the slave requires.",
			want: binlogLost,
		},
		{
			name: "a purged MySQL GTID is lost (MySQL 8.0.26 and later)",
			msg:  "Cannot replicate because the source purged required binary logs. Replicate the missing transactions from elsewhere, or provision a new replica from backup. Consider increasing the source's binary log expiration period. The GTID set sent by the replica is '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', and the missing transactions are '3e11fa47-71ca-11e1-9e33-c80aa9429562:6-9'.",
			want: binlogLost,
		},
		{
			name: "a purged MySQL GTID is lost (the wording with the replica's UUID)",
			msg:  "Cannot replicate to server with server_uuid='0b6e6a0c-0000-11ee-8c4f-0242ac120002' because the present server has purged required binary logs. The connecting server needs to replicate the missing transactions from elsewhere, or be replaced by a new server created from a more recent backup. To prevent this error in the future, consider increasing the binary log expiration period on the present server. The missing transactions are '3e11fa47-71ca-11e1-9e33-c80aa9429562:6-9'.",
			want: binlogLost,
		},
		{
			name: "an offset past the end of the file is fatal (MariaDB 10.11, seen here)",
			msg:  "Client requested master to start replication from impossible position; the first event 'binlog.000008' at 99999, the last event read from 'binlog.000008' at 4, the last byte read from 'binlog.000008' at 4.",
			want: binlogFatal,
		},
		{
			name: "an offset past the end of the file is fatal (MySQL)",
			msg:  "Client requested master to start replication from position > file size",
			want: binlogFatal,
		},
		{
			name: "an offset inside an event is fatal (MariaDB 10.11, seen here)",
			msg:  "log event entry exceeded max_allowed_packet; Increase max_allowed_packet on master; the first event 'binlog.000008' at 500, the last event read from 'binlog.000008' at 500, the last byte read from 'binlog.000008' at 519.",
			want: binlogFatal,
		},
		{
			name: "a GTID the server does not have is fatal, not lost",
			msg:  "Error: connecting slave requested to start from GTID 0-1-3, which is not in the master's binlog",
			want: binlogFatal,
		},
		{
			name: "a diverged GTID is fatal",
			msg:  "Error: connecting slave requested to start from GTID 0-2-980, which is not in the master's binlog. Since the master's binlog contains GTIDs with higher sequence numbers, it probably means that the slave has diverged due to executing extra erroneous transactions",
			want: binlogFatal,
		},
		{
			name: "a hole under gtid_strict_mode is fatal",
			msg:  "The binlog on the master is missing the GTID 0-1-7 requested by the slave (even though both a prior and a subsequent sequence number does exist), and GTID strict mode is enabled",
			want: binlogFatal,
		},
		{
			name: "a corrupted event is fatal",
			msg:  "bogus data in log event; the first event 'binlog.000002' at 4, the last event read from 'binlog.000002' at 120, the last byte read from 'binlog.000002' at 140.",
			want: binlogFatal,
		},
		{
			name: "a checksum failure is fatal",
			msg:  "Replication event checksum verification failed while reading from a log file",
			want: binlogFatal,
		},
		{
			name: "a server_id conflict is its own case (MySQL)",
			msg:  "A slave with the same server_uuid/server_id as this slave has connected to the master; the first event 'binlog.000001' at 4, the last event read from 'binlog.000001' at 154, the last byte read from 'binlog.000001' at 154.",
			want: binlogServerID,
		},
		{
			name: "a server_id conflict is its own case (MySQL 8.0.26 wording)",
			msg:  "A replica with the same server_uuid/server_id as this replica has connected to the source; the first event 'binlog.000001' at 4",
			want: binlogServerID,
		},
		{
			name: "an I/O error on the server is retried",
			msg:  "I/O error reading log event; the first event 'binlog.000001' at 4",
			want: binlogRetry,
		},
		{
			name: "an unknown message is fatal",
			msg:  "Something nobody has seen before",
			want: binlogFatal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := classifyBinlogError(tt.msg); got != tt.want {
				t.Errorf("classifyBinlogError(%q) = %d, want %d", tt.msg, got, tt.want)
			}
		})
	}
}

func TestStreamErrorsQuoteTheServerAndMarkWhatIsRetried(t *testing.T) {
	start := Position{Flavor: FlavorMariaDB, File: "binlog.000001", Offset: 99999}
	fatal := func(msg string) error {
		return &gomysql.MyError{Code: gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG, Message: msg, State: "HY000"}
	}
	tests := []struct {
		name      string
		err       error
		lost      bool
		retryable bool
		busy      bool
		quotes    string
	}{
		{
			name:   "another replica with our server_id is ErrSourceBusy and not retried",
			err:    fatal("A slave with the same server_uuid/server_id as this slave has connected to the master; the first event 'binlog.000001' at 4"),
			busy:   true,
			quotes: "same server_uuid/server_id",
		},
		{
			name:   "a purged file is ErrBinlogLost",
			err:    fatal("Could not find first log file name in binary log index file"),
			lost:   true,
			quotes: "Could not find first log file name",
		},
		{
			name:   "an impossible position quotes the server and is not retried",
			err:    fatal("Client requested master to start replication from impossible position; the first event 'binlog.000001' at 99999"),
			quotes: "impossible position; the first event 'binlog.000001' at 99999",
		},
		{
			name:      "an I/O error is retried",
			err:       fatal("I/O error reading log event"),
			retryable: true,
			quotes:    "I/O error reading log event",
		},
		{
			name:      "another server error is retried",
			err:       &gomysql.MyError{Code: gomysql.ER_SERVER_SHUTDOWN, Message: "Server shutdown in progress"},
			retryable: true,
			quotes:    "Server shutdown in progress",
		},
		{
			name:      "a lost connection is retried",
			err:       io.ErrUnexpectedEOF,
			retryable: true,
			quotes:    "unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := streamError(start, tt.err)
			if got := errors.Is(err, ErrBinlogLost); got != tt.lost {
				t.Errorf("errors.Is(%v, ErrBinlogLost) = %v, want %v", err, got, tt.lost)
			}
			if got := errors.Is(err, connectors.ErrSourceBusy); got != tt.busy {
				t.Errorf("errors.Is(%v, connectors.ErrSourceBusy) = %v, want %v", err, got, tt.busy)
			}
			if got := connectors.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.quotes) {
				t.Errorf("%q does not quote %q", msg, tt.quotes)
			}
			if msg := err.Error(); myErrorCode(tt.err) == gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG && !strings.Contains(msg, start.String()) {
				t.Errorf("%q does not name the position %s", msg, start)
			}
		})
	}
}
