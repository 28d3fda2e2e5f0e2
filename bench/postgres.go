package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/internal/harness"
)

type pgSource struct {
	srv    *harness.PostgresServer
	dsn    string
	loaded int64 // rows in snapshotTable
}

func startPG(ctx context.Context, e *env) (*pgSource, error) {
	srv, err := harness.StartPostgres(
		// Keep checkpoints out of the measured phases.
		harness.PostgresSetting("max_wal_size", "16GB"),
		harness.PostgresSetting("shared_buffers", "512MB"),
	)
	if err != nil {
		return nil, err
	}
	s := &pgSource{srv: srv}
	if s.dsn, err = srv.CreateDatabase("bench"); err != nil {
		return nil, fmt.Errorf("%w (close: %v)", err, srv.Close())
	}
	return s, nil
}

func (s *pgSource) Name() string                  { return "postgres" }
func (s *pgSource) Close() error                  { return s.srv.Close() }
func (s *pgSource) qualified(table string) string { return "public." + table }
func (s *pgSource) topic(table string) string     { return topicPrefix + ".public." + table }
func (s *pgSource) commitTSPrecise() bool         { return true }

// nudge does nothing: the slot keeps PostgreSQL's position, and an idle
// pipeline stores one from the server's keepalives.
func (s *pgSource) nudge(context.Context) error { return nil }

func (s *pgSource) configSection(table string) string {
	return fmt.Sprintf("  kind: postgres\n  dsn: %s\n  tables: [%s]", s.dsn, s.qualified(table))
}

func (s *pgSource) postmaster() (int, error) {
	return readPIDFile(filepath.Join(s.srv.Dir, "data", "postmaster.pid"))
}

// serverCPU is the CPU time of the postmaster and all its backends.
func (s *pgSource) serverCPU() (float64, error) {
	pm, err := s.postmaster()
	if err != nil {
		return 0, err
	}
	return treeCPU(pm)
}

// streamMeter follows the walsenders: backends whose process title says
// walsender.
func (s *pgSource) streamMeter(context.Context) (*streamMeter, error) {
	pm, err := s.postmaster()
	if err != nil {
		return nil, err
	}
	walsender := map[int]bool{}
	list := func() ([]thread, error) {
		kids, err := childPIDs(pm)
		if err != nil {
			return nil, err
		}
		var out []thread
		for _, k := range kids {
			ws, known := walsender[k]
			if !known {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k))
				if err != nil {
					continue
				}
				ws = bytes.Contains(b, []byte("walsender"))
				// A backend sets its title once it has authenticated;
				// before that it is not known to be anything yet.
				if ws || bytes.HasPrefix(b, []byte("postgres: ")) {
					walsender[k] = ws
				}
			}
			if ws {
				out = append(out, thread{key: strconv.Itoa(k), stat: fmt.Sprintf("/proc/%d/stat", k)})
			}
		}
		return out, nil
	}
	return startStreamMeter(list, nil)
}

func (s *pgSource) exec(ctx context.Context, sqls ...string) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range sqls {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func pgCreate(table string) string {
	return `CREATE TABLE ` + table + ` (id bigint PRIMARY KEY, account integer NOT NULL, name text, amount numeric(12,2), note text, created timestamptz, flag boolean)`
}

// pgFill inserts ids from..to, each row about 200 bytes.
func pgFill(table, from, to string) string {
	return `INSERT INTO ` + table + ` SELECT g, g % 10000, 'item ' || g || ' ' || left(md5(g::text), 16),
	  ((g * 7919) % 10000000) / 100.0,
	  md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || left(md5((g + 3)::text), 24),
	  timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' + (g % 1000000) * interval '1 microsecond',
	  g % 2 = 0
	FROM generate_series(` + from + `::bigint, ` + to + `::bigint) g`
}

// dropSlotsSQL drops every replication slot and the publications of earlier
// runs.
const dropSlotsSQL = `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots`

func (s *pgSource) ensureSnapshotTable(ctx context.Context, rows int64) error {
	if s.loaded == rows {
		return nil
	}
	err := s.exec(ctx,
		"DROP TABLE IF EXISTS "+snapshotTable,
		pgCreate(snapshotTable),
		pgFill(snapshotTable, "1", fmt.Sprint(rows)),
		"VACUUM ANALYZE "+snapshotTable)
	if err != nil {
		return err
	}
	s.loaded = rows
	return nil
}

func (s *pgSource) resetSnapshot(ctx context.Context) error {
	return s.exec(ctx, dropSlotsSQL, "DROP PUBLICATION IF EXISTS liberator", "DROP PUBLICATION IF EXISTS bare", "CHECKPOINT")
}

func (s *pgSource) bareSnapshotArgs() []string {
	return []string{"pg-snapshot", "-dsn", s.dsn, "-table", snapshotTable}
}

func (s *pgSource) resetStream(ctx context.Context) error {
	return s.exec(ctx, dropSlotsSQL, "DROP PUBLICATION IF EXISTS liberator", "DROP PUBLICATION IF EXISTS bare",
		"DROP TABLE IF EXISTS "+streamTable, pgCreate(streamTable), "CHECKPOINT")
}

func (s *pgSource) resetBigRows(ctx context.Context) error {
	return s.exec(ctx, dropSlotsSQL, "DROP PUBLICATION IF EXISTS liberator", "DROP PUBLICATION IF EXISTS bare",
		"DROP TABLE IF EXISTS "+bigRowTable, "CREATE TABLE "+bigRowTable+" (id bigint PRIMARY KEY, body text NOT NULL)", "CHECKPOINT")
}

func (s *pgSource) insertBigRows(ctx context.Context, n int64) error {
	return s.exec(ctx, fmt.Sprintf("INSERT INTO %s SELECT g, repeat(md5(g::text), %d) FROM generate_series(1, %d) g", bigRowTable, bigRowRepeat, n))
}

func (s *pgSource) markBare(ctx context.Context, n int) ([][]string, error) {
	sqls := []string{"CREATE PUBLICATION bare FOR TABLE " + streamTable}
	out := make([][]string, n)
	for i := range n {
		slot := fmt.Sprintf("bare_%d", i+1)
		sqls = append(sqls, "SELECT pg_create_logical_replication_slot('"+slot+"', 'pgoutput')")
		out[i] = []string{"pg-drain", "-dsn", s.dsn, "-slot", slot, "-pub", "bare", "-table", streamTable}
	}
	if err := s.exec(ctx, sqls...); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *pgSource) insertRange(ctx context.Context, from, n, perTx int64) error {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	q := pgFill(streamTable, "$1", "$2")
	for lo := from; lo < from+n; lo += perTx {
		hi := min(lo+perTx, from+n) - 1
		if _, err := conn.Exec(ctx, q, lo, hi); err != nil {
			return err
		}
	}
	return nil
}

func (s *pgSource) newWriter(ctx context.Context) (func(int64) error, func(), error) {
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		return nil, nil, err
	}
	q := pgFill(streamTable, "$1", "$1")
	if _, err := conn.Prepare(ctx, "one", q); err != nil {
		conn.Close(ctx)
		return nil, nil, err
	}
	insert := func(id int64) error {
		_, err := conn.Exec(ctx, "one", id)
		return err
	}
	return insert, func() { conn.Close(context.WithoutCancel(ctx)) }, nil
}
