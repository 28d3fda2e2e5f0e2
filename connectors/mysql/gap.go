package mysql

import (
	"errors"
	"fmt"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// # Error 1236
//
// A server ends a binlog dump with ER_MASTER_FATAL_ERROR_READING_BINLOG
// (1236) for many reasons, and only some of them mean that the binary log
// at the stored position is gone. Treating every 1236 as gone would jump
// to the end of the log and skip changes for, say, a position that points
// into the middle of an event. So the message decides, and only a purged
// file or a purged GTID takes the lost-binlog path (ErrBinlogLost): the
// source then streams from the end of the log and re-snapshots every table
// with reconcile. Every other 1236 is an error that quotes the server.
//
// The messages are the servers' own texts: MariaDB 10.11 sql/sql_repl.cc
// (mysql_binlog_send and its helpers) and MySQL 8 sql/rpl_binlog_sender.cc
// and share/messages_to_clients.txt. MariaDB appends "; the first event
// 'F' at N, the last event read from ..." to most of them.

// binlogErrorKind is what a 1236 means for the stream.
type binlogErrorKind int

const (
	// binlogFatal: the position cannot be read for a reason that trying
	// again does not fix (an impossible position, a corrupted or oversized
	// event, a GTID the server never had).
	binlogFatal binlogErrorKind = iota
	// binlogLost: the binary log at the position was purged.
	binlogLost
	// binlogRetry: a passing condition on the server (an I/O or memory
	// error, a dump thread of the same server_id not yet gone).
	binlogRetry
	// binlogServerID: another replica uses our server_id.
	binlogServerID
)

// binlogMessages classify 1236 messages by a phrase of their text, in
// order: the first phrase found decides.
var binlogMessages = []struct {
	phrase string
	kind   binlogErrorKind
	hint   string
}{
	// MariaDB and MySQL: the file named by the position is not in the
	// binary log index (purged, or never there).
	{"could not find first log file name in binary log index file", binlogLost, ""},
	// Both: the next file was purged while the stream was reading.
	{"could not find next log", binlogLost, ""},
	// MariaDB: "Could not find GTID state requested by slave in any
	// binlog files. Probably the slave state is too old and required
	// binlog files have been purged."
	{"could not find gtid state requested by slave in any binlog files", binlogLost, ""},
	// MySQL before 8.0.26: "The slave is connecting using CHANGE MASTER TO
	// MASTER_AUTO_POSITION = 1, but the master has purged binary logs
	// containing GTIDs that the slave requires."
	{"purged binary logs containing gtids that the slave requires", binlogLost, ""},
	{"purged binary logs containing gtids that the replica requires", binlogLost, ""},
	// MySQL 8.0.26 and later: "Cannot replicate because the source purged
	// required binary logs. ..." and, with the replica's UUID, "Cannot
	// replicate to server with server_uuid='...' because the present
	// server has purged required binary logs. ..."
	{"purged required binary logs", binlogLost, ""},

	// MariaDB: the GTID is not in the binary log, and none after it in
	// its domain either: the server is behind the position (restored from
	// a backup, a lagging replica after a fail-over, RESET MASTER).
	// "...which is not in the master's binlog. Since the master's binlog
	// contains GTIDs with higher sequence numbers, it probably means that
	// the slave has diverged due to executing extra erroneous
	// transactions": the position is from another history.
	{"which is not in the master's binlog", binlogFatal,
		"the server's binary log does not hold the stored GTID: it is behind the position or on another history (a server restored from a backup, another server, RESET MASTER); run liberator reset to start over with a re-snapshot that reconciles the topics"},
	// MariaDB with gtid_strict_mode: "The binlog on the master is missing
	// the GTID %u-%u-%llu requested by the slave (even though both a
	// prior and a subsequent sequence number does exist), and GTID strict
	// mode is enabled".
	{"is missing the gtid", binlogFatal,
		"the server's binary log has a hole at the stored GTID; run liberator reset to start over with a re-snapshot that reconciles the topics"},
	// MySQL: "... but the replica has more GTIDs than the source has,
	// using the source's SERVER_UUID. This may indicate that the end of
	// the binary log was truncated ..."
	{"has more gtids than the", binlogFatal,
		"the stored GTID set is ahead of the server's: its binary log was truncated, or it is another server; run liberator reset to start over with a re-snapshot that reconciles the topics"},
	// Both: an offset past the end of the file. MariaDB: "Client
	// requested master to start replication from impossible position";
	// MySQL: "Client requested master to start replication from position
	// > file size".
	{"start replication from impossible position", binlogFatal,
		"the stored offset is past the end of its binlog file: the file was rewritten (RESET MASTER) or belongs to another server"},
	{"start replication from position > file size", binlogFatal,
		"the stored offset is past the end of its binlog file: the file was rewritten (RESET MASTER) or belongs to another server"},
	// Both: what an offset inside an event reads as, or an event that is
	// really larger than the server's max_allowed_packet.
	{"exceeded max_allowed_packet", binlogFatal,
		"either the stored offset is not the start of an event, or an event is larger than the server's max_allowed_packet (raise it)"},
	{"bogus data in log event", binlogFatal,
		"the stored offset is not the start of an event, or the binary log is corrupted"},
	{"invalid event in binary log", binlogFatal, "the binary log is corrupted"},
	{"binlog truncated in the middle of event", binlogFatal, "the binary log is corrupted or was truncated"},
	{"event truncated", binlogFatal, "the binary log is corrupted or was truncated"},
	{"checksum verification failed", binlogFatal, "the binary log is corrupted"},
	{"did not pass crc check", binlogFatal, "the binary log is corrupted"},
	{"unknown binlog checksum algorithm", binlogFatal, ""},
	{"slave can not handle replication events with the checksum", binlogFatal, ""},

	// MySQL: "A slave with the same server_uuid/server_id as this slave
	// has connected to the master" (or "A replica ... source").
	{"same server_uuid", binlogServerID, ""},
	{"same server_id", binlogServerID, ""},

	// Passing conditions on the server.
	{"i/o error reading", binlogRetry, ""},
	{"memory allocation failed", binlogRetry, ""},
	{"out of memory", binlogRetry, ""},
	{"failed on my_net_write", binlogRetry, ""},
	{"error reading log event", binlogRetry, ""},
}

// classifyBinlogError says what a 1236 message means, with a hint for the
// operator ("" when the message says enough). An unknown message is fatal:
// the stream does not move past a position it cannot explain.
func classifyBinlogError(msg string) (binlogErrorKind, string) {
	m := strings.ToLower(msg)
	for _, c := range binlogMessages {
		if strings.Contains(m, c.phrase) {
			return c.kind, c.hint
		}
	}
	return binlogFatal, ""
}

// streamError classifies an error of the binlog stream that started at
// start.
func streamError(start Position, err error) error {
	err = fmt.Errorf("read binlog event: %w", err)
	var me *gomysql.MyError
	if !errors.As(err, &me) || me.Code != gomysql.ER_MASTER_FATAL_ERROR_READING_BINLOG {
		// A lost connection, a timeout, a server shutting down: the
		// daemon reconnects.
		return connectors.MarkRetryable(err)
	}
	kind, hint := classifyBinlogError(me.Message)
	switch kind {
	case binlogLost:
		return fmt.Errorf("%w: streaming from %s: %w", ErrBinlogLost, start, err)
	case binlogRetry:
		return connectors.MarkRetryable(fmt.Errorf("streaming from %s: %w", start, err))
	case binlogServerID:
		return fmt.Errorf("streaming from %s: %w: %w (another replica or pipeline uses source.mysql.server_id: give each a server_id of its own)", start, connectors.ErrSourceBusy, err)
	}
	if hint != "" {
		return fmt.Errorf("streaming from %s: %w (%s)", start, err, hint)
	}
	return fmt.Errorf("streaming from %s: %w", start, err)
}
