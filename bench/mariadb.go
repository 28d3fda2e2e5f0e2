package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/liberator-cdc/liberator/internal/harness"
)

type mariaSource struct {
	srv    *harness.MariaDBServer
	loaded int64
}

func startMariaDB(ctx context.Context, e *env) (*mariaSource, error) {
	srv, err := harness.StartMariaDB(harness.MariaDBFlags(
		// The PostgreSQL server runs with fsync=off; do the same here, so
		// that neither database's commits wait for the disk.
		"--innodb-flush-log-at-trx-commit=0",
		"--sync-binlog=0",
		"--innodb-buffer-pool-size=1G",
		"--innodb-log-file-size=512M",
	))
	if err != nil {
		return nil, err
	}
	s := &mariaSource{srv: srv}
	if err := s.exec(ctx, "CREATE DATABASE bench"); err != nil {
		return nil, fmt.Errorf("%w (close: %v)", err, srv.Close())
	}
	return s, nil
}

func (s *mariaSource) Name() string                  { return "mariadb" }
func (s *mariaSource) Close() error                  { return s.srv.Close() }
func (s *mariaSource) qualified(table string) string { return "bench." + table }
func (s *mariaSource) topic(table string) string     { return topicPrefix + ".bench." + table }

// commitTSPrecise is false: binlog event headers carry whole seconds.
func (s *mariaSource) commitTSPrecise() bool { return false }

// nudge writes to a table outside the captured set. A MariaDB pipeline
// started with snapshot mode never on an idle server stores no position
// until the binary log moves; without one, a restart streams from the end
// of the log and skips what was written while it was stopped.
func (s *mariaSource) nudge(ctx context.Context) error {
	return s.exec(ctx, "CREATE TABLE IF NOT EXISTS bench.nudge (n INT)", "INSERT INTO bench.nudge VALUES (1)")
}

func (s *mariaSource) configSection(table string) string {
	return fmt.Sprintf("  kind: mariadb\n  dsn: %s\n  tables: [%s]", s.srv.DSN, s.qualified(table))
}

func (s *mariaSource) mariadbd() (int, error) {
	return readPIDFile(filepath.Join(s.srv.Dir, "pid"))
}

// serverCPU is the CPU time of the mariadbd process, all threads.
func (s *mariaSource) serverCPU() (float64, error) {
	pid, err := s.mariadbd()
	if err != nil {
		return 0, err
	}
	return statCPU(fmt.Sprintf("/proc/%d/stat", pid), false)
}

// streamMeter follows the binlog dump threads: the connections whose
// command is Binlog Dump, by the TID information_schema.PROCESSLIST gives
// them. A connection's thread may have served others before (the thread
// cache), so each thread's CPU time when the meter starts is its base.
func (s *mariaSource) streamMeter(ctx context.Context) (*streamMeter, error) {
	pid, err := s.mariadbd()
	if err != nil {
		return nil, err
	}
	taskDir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(taskDir)
	if err != nil {
		return nil, err
	}
	base := map[string]float64{}
	for _, t := range tasks {
		stat := filepath.Join(taskDir, t.Name(), "stat")
		if v, err := statCPU(stat, false); err == nil {
			base[stat] = v
		}
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	list := func() ([]thread, error) {
		r, err := conn.Execute("SELECT ID, TID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
		if err != nil {
			return nil, fmt.Errorf("find the binlog dump threads: %w", err)
		}
		out := make([]thread, 0, r.RowNumber())
		for i := range r.RowNumber() {
			id, _ := r.GetUint(i, 0)
			tid, _ := r.GetUint(i, 1)
			out = append(out, thread{key: strconv.FormatUint(id, 10), stat: filepath.Join(taskDir, strconv.FormatUint(tid, 10), "stat")})
		}
		return out, nil
	}
	m, err := startStreamMeter(list, base)
	if err != nil {
		conn.Close()
		return nil, err
	}
	m.close = func() { conn.Close() }
	return m, nil
}

func (s *mariaSource) connect(ctx context.Context) (*client.Conn, error) {
	conn, err := s.srv.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (s *mariaSource) exec(ctx context.Context, sqls ...string) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range sqls {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func mariaCreate(table string) string {
	return `CREATE TABLE bench.` + table + ` (id BIGINT PRIMARY KEY, account INT NOT NULL, name TEXT, amount DECIMAL(12,2), note TEXT, created TIMESTAMP(6) NULL DEFAULT NULL, flag BOOLEAN)`
}

// mariaFill inserts ids from..to, the same rows as pgFill.
func mariaFill(table string, from, to int64) string {
	return fmt.Sprintf(`INSERT INTO bench.%s SELECT seq, seq %% 10000, CONCAT('item ', seq, ' ', LEFT(MD5(seq), 16)),
	  ((seq * 7919) %% 10000000) / 100.0,
	  CONCAT(MD5(seq), MD5(seq + 1), MD5(seq + 2), LEFT(MD5(seq + 3), 24)),
	  TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq %% 1000000) MICROSECOND,
	  seq %% 2 = 0
	FROM bench.seq_%d_to_%d`, table, from, to)
}

func (s *mariaSource) ensureSnapshotTable(ctx context.Context, rows int64) error {
	if s.loaded == rows {
		return nil
	}
	stmts := []string{
		// The snapshot table's rows need not be in the binary log.
		"SET SESSION sql_log_bin = 0",
		"DROP TABLE IF EXISTS bench." + snapshotTable,
		mariaCreate(snapshotTable),
	}
	const chunk = 100_000
	for lo := int64(1); lo <= rows; lo += chunk {
		stmts = append(stmts, mariaFill(snapshotTable, lo, min(lo+chunk, rows+1)-1))
	}
	if err := s.exec(ctx, append(stmts, "ANALYZE TABLE bench."+snapshotTable)...); err != nil {
		return err
	}
	s.loaded = rows
	return nil
}

func (s *mariaSource) resetSnapshot(context.Context) error { return nil }

func (s *mariaSource) bareSnapshotArgs() []string {
	return []string{"mysql-snapshot", "-addr", s.srv.Addr, "-db", "bench", "-table", snapshotTable}
}

func (s *mariaSource) resetStream(ctx context.Context) error {
	// A new binlog file per run keeps each run's reads alike; nothing reads
	// the older ones any more.
	return s.exec(ctx, "DROP TABLE IF EXISTS bench."+streamTable, mariaCreate(streamTable),
		"FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW()")
}

func (s *mariaSource) resetBigRows(ctx context.Context) error {
	return s.exec(ctx, "DROP TABLE IF EXISTS bench."+bigRowTable,
		"CREATE TABLE bench."+bigRowTable+" (id BIGINT PRIMARY KEY, body LONGTEXT NOT NULL)",
		"FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW()")
}

func (s *mariaSource) insertBigRows(ctx context.Context, n int64) error {
	return s.exec(ctx, fmt.Sprintf("INSERT INTO bench.%s SELECT seq, REPEAT(MD5(seq), %d) FROM bench.seq_1_to_%d", bigRowTable, bigRowRepeat, n))
}

func (s *mariaSource) markBare(ctx context.Context, n int) ([][]string, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		return nil, err
	}
	if r.RowNumber() != 1 {
		return nil, fmt.Errorf("SHOW MASTER STATUS returned %d rows; is the binary log on?", r.RowNumber())
	}
	file, _ := r.GetString(0, 0)
	pos, _ := r.GetUint(0, 1)
	out := make([][]string, n)
	for i := range n {
		out[i] = []string{"mysql-drain", "-addr", s.srv.Addr, "-file", file, "-pos", strconv.FormatUint(pos, 10),
			"-db", "bench", "-table", streamTable, "-server-id", strconv.Itoa(9001 + i)}
	}
	return out, nil
}

func (s *mariaSource) insertRange(ctx context.Context, from, n, perTx int64) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for lo := from; lo < from+n; lo += perTx {
		hi := min(lo+perTx, from+n) - 1
		if _, err := conn.Execute(mariaFill(streamTable, lo, hi)); err != nil {
			return err
		}
	}
	return nil
}

func (s *mariaSource) newWriter(ctx context.Context) (func(int64) error, func(), error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	insert := func(id int64) error {
		_, err := conn.Execute(mariaFill(streamTable, id, id))
		return err
	}
	return insert, func() { conn.Close() }, nil
}
