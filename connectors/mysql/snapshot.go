package mysql

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
)

// initialSnapshot reads the tables in chunks (chunked.go), in a goroutine that
// streams rows to Read through out. conn is the snapshot's own connection.
type initialSnapshot struct {
	conn *client.Conn
	g    *errgroup.Group
	out  chan snapshotItem
	time time.Time
	pos  connectors.Position // s.start in the log, boxed once
}

// snapshotItem is what the snapshot goroutine hands to Read: either a
// table it is about to read, or a batch of rows with the checkpoint that
// follows them (if any), or the end.
type snapshotItem struct {
	table      *tableState
	changes    []connectors.Change
	checkpoint connectors.Position
	final      bool
}

// snapshotSession makes the text and times a snapshot reads predictable:
// strings in each column's own character set (character_set_results NULL),
// so that the snapshot and the binlog decode them alike, and TIMESTAMP in
// UTC. A slow consumer must not make the server drop the connection.
var snapshotSession = []string{
	"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
	"SET time_zone = '+00:00'",
	"SET SESSION net_write_timeout = 86400",
	"SET SESSION net_read_timeout = 86400",
}

// beginSnapshot opens a transaction to record the binlog position of its
// read view, exactly, then starts reading the tables in chunks in the
// background (see chunked.go for why the chunks need not share that view).
//
// MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT records, atomically
// with the transaction's read view, the binlog position of the last
// transaction it sees (status variables binlog_snapshot_file and
// binlog_snapshot_position); BINLOG_GTID_POS() turns that position into the
// GTID state. No lock is taken.
//
// MySQL: the position comes from performance_schema.log_status (or SHOW
// MASTER STATUS without BACKUP_ADMIN), read before and after the
// transaction starts; if no transaction committed in between the two
// agree and the position is exact. After three tries that disagree, the
// earlier position is used: changes between it and the snapshot are then
// delivered again, which a compacted topic absorbs. LOCK INSTANCE FOR BACKUP
// (when granted) keeps DDL out while the snapshot runs. FLUSH TABLES WITH
// READ LOCK is never used.
func (s *Source) beginSnapshot(ctx context.Context) error {
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return fmt.Errorf("begin snapshot: %w", err)
	}
	fail := func(err error) error {
		_ = conn.Close()
		return fmt.Errorf("begin snapshot: %w", err)
	}
	for _, q := range snapshotSession {
		if _, err := run(ctx, conn, q); err != nil {
			return fail(err)
		}
	}
	// max_statement_time (MariaDB) and max_execution_time (MySQL) would
	// cut a long SELECT short; each server knows only its own.
	if s.cfg.Flavor == FlavorMariaDB {
		_, err = run(ctx, conn, "SET SESSION max_statement_time = 0")
	} else {
		_, err = run(ctx, conn, "SET SESSION max_execution_time = 0")
	}
	if err != nil {
		return fail(err)
	}
	if s.cfg.Flavor == FlavorMariaDB {
		err = s.beginMariaDBSnapshot(ctx, conn)
	} else {
		err = s.beginMySQLSnapshot(ctx, conn)
	}
	if err != nil {
		return fail(err)
	}
	s.log.Info("snapshot taken", "position", s.start.String())

	s.startChunks(conn, true)
	return nil
}

func (s *Source) beginMariaDBSnapshot(ctx context.Context, conn *client.Conn) error {
	if _, err := run(ctx, conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return err
	}
	rows, err := run(ctx, conn, "SHOW STATUS LIKE 'binlog_snapshot_%'")
	if err != nil {
		return err
	}
	p, err := parseSnapshotStatus(rows)
	if err != nil {
		return err
	}
	s.start, err = mariadbGTIDAt(ctx, conn, p)
	return err
}

func (s *Source) beginMySQLSnapshot(ctx context.Context, conn *client.Conn) error {
	if _, err := run(ctx, conn, "LOCK INSTANCE FOR BACKUP"); err != nil {
		s.log.Warn("snapshot runs without LOCK INSTANCE FOR BACKUP (grant BACKUP_ADMIN to keep DDL out during the snapshot)", "error", err)
	}
	const tries = 3
	for try := 1; ; try++ {
		before, err := s.mysqlLogPosition(ctx, conn)
		if err != nil {
			return err
		}
		if _, err := run(ctx, conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
			return err
		}
		after, err := s.mysqlLogPosition(ctx, conn)
		if err != nil {
			return err
		}
		if before == after || try == tries {
			if before != after {
				s.log.Warn("binary log moved while the snapshot began; changes between the two positions will be delivered twice",
					"before", before.String(), "after", after.String())
			}
			s.start = before
			return nil
		}
		if _, err := run(ctx, conn, "ROLLBACK"); err != nil {
			return err
		}
	}
}

// mysqlLogPosition reads the binlog position and executed GTID set.
func (s *Source) mysqlLogPosition(ctx context.Context, conn *client.Conn) (Position, error) {
	rows, err := run(ctx, conn, "SELECT LOCAL FROM performance_schema.log_status")
	if err == nil && len(rows) == 1 {
		return parseLogStatus(rows[0][0], s.setup.gtid)
	}
	return currentPosition(ctx, conn, FlavorMySQL, s.setup.gtid)
}

// readSnapshot returns the snapshot's next batch. Chunk ends carry the
// snapshot's progress; the last batch carries the position where streaming
// begins.
func (s *Source) readSnapshot(ctx context.Context) (connectors.Batch, error) {
	for {
		select {
		case it, ok := <-s.snap.out:
			if !ok {
				err := s.snap.close()
				s.snap = nil
				if err == nil {
					err = errors.New("snapshot ended without its last batch")
				}
				// Read does not go on after a failed snapshot.
				s.failed = err
				return connectors.Batch{}, err
			}
			if it.table != nil {
				s.st.tables()[tableName{it.table.table.Schema, it.table.table.Name}] = it.table
				continue
			}
			if !it.final {
				return connectors.Batch{Changes: it.changes, Checkpoint: it.checkpoint}, nil
			}
			err := s.snap.close()
			s.snap = nil
			if err != nil {
				return connectors.Batch{}, err
			}
			if s.cfg.Snapshot == connectors.SnapshotOnly {
				s.finished = true
			}
			s.snaps.State, s.snaps.Initial = nil, false
			return connectors.Batch{Changes: it.changes, Checkpoint: s.decorate(s.start)}, nil
		case <-ctx.Done():
			return connectors.Batch{}, ctx.Err()
		}
	}
}

// close stops the snapshot goroutine and closes its connection.
func (sn *initialSnapshot) close() error {
	// The goroutine's sends give way to its context, which the caller
	// (Close) has cancelled, unless it has already finished.
	err := sn.g.Wait()
	if cerr := sn.conn.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("close snapshot connection: %w", cerr)
	}
	return err
}
