package postgres

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

// These tests run the source against a real PostgreSQL (internal/harness)
// and break its slot the ways an operator or another consumer would.

const gapTimeout = 2 * time.Minute

// gapEnv is a PostgreSQL with a database shop holding public.t (id, v).
type gapEnv struct {
	pg   *harness.PostgresServer
	dsn  string
	conn *pgx.Conn
	logs *syncBuffer
}

func newGapEnv(t *testing.T, rows int, opts ...harness.PostgresOption) *gapEnv {
	t.Helper()
	e := &gapEnv{pg: harness.Postgres(t, opts...), logs: &syncBuffer{}}
	var err error
	e.dsn, err = e.pg.CreateDatabase("shop")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	e.conn, err = pgx.Connect(ctx, e.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.conn.Close(context.Background()) })
	e.exec(t, `CREATE TABLE t (id int PRIMARY KEY, v text)`,
		fmt.Sprintf(`INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %d) g`, rows))
	return e
}

func (e *gapEnv) exec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	for _, q := range stmts {
		_, err := e.conn.Exec(ctx, q)
		require.NoError(t, err, q)
	}
}

func (e *gapEnv) source(t *testing.T, mode connectors.SnapshotMode, onGap GapAction) *Source {
	t.Helper()
	src, err := New(Config{DSN: e.dsn, Tables: []string{"public.t"}, Snapshot: mode, Options: Options{OnGap: onGap},
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = src.Close(context.Background()) })
	return src
}

func (e *gapEnv) open(src *Source, resume []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	return src.Open(ctx, resume)
}

// slot reads the slot as Open does.
func (e *gapEnv) slot(t *testing.T) slotInfo {
	t.Helper()
	sl, err := readSlot(context.Background(), e.conn, "liberator")
	require.NoError(t, err)
	return sl
}

// ids lists the keys in the table.
func (e *gapEnv) ids(t *testing.T) []int32 {
	t.Helper()
	rows, err := e.conn.Query(context.Background(), `SELECT id FROM t ORDER BY id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	return ids
}

// readUntil reads batches until done says they suffice.
func readUntil(t *testing.T, src *Source, done func([]connectors.Batch) bool) []connectors.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	var bs []connectors.Batch
	for !done(bs) {
		b, err := src.Read(ctx)
		require.NoError(t, err)
		bs = append(bs, b)
	}
	return bs
}

// store acks the last checkpoint of the batches, as the pipeline does once
// it has stored it, and returns what it stored.
func store(t *testing.T, src *Source, bs []connectors.Batch) []byte {
	t.Helper()
	for i := len(bs) - 1; i >= 0; i-- {
		if cp := bs[i].Checkpoint; cp != nil {
			require.NoError(t, src.Ack(context.Background(), cp))
			return cp.Encode()
		}
	}
	t.Fatal("no checkpoint in the batches")
	return nil
}

// snapshotRead is done once n rows were read and a checkpoint after them
// records no snapshot under way.
func snapshotRead(n int) func([]connectors.Batch) bool {
	return func(bs []connectors.Batch) bool {
		reads := 0
		for _, b := range bs {
			for _, c := range b.Changes {
				if c.Op == connectors.OpRead {
					reads++
				}
			}
			if p, ok := b.Checkpoint.(Position); ok && p.Snapshot == nil && reads >= n {
				return true
			}
		}
		return false
	}
}

// endMark is done at the end mark of public.t.
func endMark(bs []connectors.Batch) bool {
	return len(bs) > 0 && slices.Contains(bs[len(bs)-1].Reconcile, connectors.ReconcileMark{Table: "public.t", End: true})
}

// firstRun snapshots the table, stores the position after it, and closes.
func (e *gapEnv) firstRun(t *testing.T, rows int) []byte {
	t.Helper()
	src := e.source(t, connectors.SnapshotInitial, GapFail)
	require.NoError(t, e.open(src, nil))
	stored := store(t, src, readUntil(t, src, snapshotRead(rows)))
	e.closeStreaming(t, src)
	return stored
}

// closeStreaming closes a source once it streams, and waits for its
// walsender to end. The walsender outlives the connection by a moment, and
// one whose START_REPLICATION was still on the wire when the connection
// closed can take the slot after that; the slot cannot be advanced or
// dropped while it is active.
func (e *gapEnv) closeStreaming(t *testing.T, src *Source) {
	t.Helper()
	require.Eventually(t, func() bool { return e.slot(t).ActivePID != 0 }, gapTimeout, 10*time.Millisecond, "the source never streamed")
	require.NoError(t, src.Close(context.Background()))
	require.Eventually(t, func() bool { return e.slot(t).ActivePID == 0 }, gapTimeout, 10*time.Millisecond)
}

// reconciled checks a re-snapshot with reconcile: a begin mark, then the
// table's rows as reads, then the end mark, and checkpoints that record
// the reconcile until it is done.
func reconciled(t *testing.T, bs []connectors.Batch, want []int32) {
	t.Helper()
	begun, ended := false, false
	var read []int32
	sawState := false
	for _, b := range bs {
		for _, m := range b.Reconcile {
			if m == (connectors.ReconcileMark{Table: "public.t"}) {
				require.False(t, begun, "two begin marks")
				begun = true
			}
		}
		for _, c := range b.Changes {
			if c.Op == connectors.OpRead {
				require.True(t, begun, "a re-snapshot row before the begin mark")
				read = append(read, c.After[0].(int32))
			}
		}
		for _, m := range b.Reconcile {
			if m.End {
				ended = true
			}
		}
		if p, ok := b.Checkpoint.(Position); ok && p.Snapshot != nil && !ended {
			require.True(t, p.Snapshot.Tables[0].Reconcile, "checkpoint %s does not record the reconcile", p)
			sawState = true
		}
	}
	require.True(t, begun && ended, "marks: begun %v, ended %v", begun, ended)
	require.True(t, sawState, "no checkpoint recorded the reconcile")
	slices.Sort(read)
	require.Equal(t, want, read)
}

func TestIntegrationSlotAdvancedIsAGap(t *testing.T) {
	e := newGapEnv(t, 10)
	stored := e.firstRun(t, 10)
	pos, err := ParsePosition(stored)
	require.NoError(t, err)

	// A clean restart is no gap: liberator acks only what it stored.
	src := e.source(t, connectors.SnapshotInitial, GapFail)
	require.NoError(t, e.open(src, stored))
	e.closeStreaming(t, src)
	require.LessOrEqual(t, e.slot(t).ConfirmedFlush, pos.LSN)

	e.exec(t, `DELETE FROM t WHERE id = 3`, `INSERT INTO t VALUES (11, 'v11')`,
		`SELECT pg_replication_slot_advance('liberator', pg_current_wal_lsn())`)
	ahead := e.slot(t).ConfirmedFlush
	require.Greater(t, ahead, pos.LSN)

	src = e.source(t, connectors.SnapshotInitial, GapFail)
	err = e.open(src, stored)
	require.ErrorIs(t, err, connectors.ErrGap)
	for _, s := range []string{`"liberator"`, ahead.String(), pos.LSN.String(), "on_gap: resnapshot", "liberator reset"} {
		require.Contains(t, err.Error(), s)
	}
	require.Equal(t, ahead, e.slot(t).ConfirmedFlush, "the failed open moved the slot")
}

func TestIntegrationSlotAdvancedResnapshotsWithReconcile(t *testing.T) {
	e := newGapEnv(t, 10)
	stored := e.firstRun(t, 10)
	e.exec(t, `DELETE FROM t WHERE id = 3`, `INSERT INTO t VALUES (11, 'v11')`,
		`SELECT pg_replication_slot_advance('liberator', pg_current_wal_lsn())`)
	ahead := e.slot(t).ConfirmedFlush

	src := e.source(t, connectors.SnapshotInitial, GapResnapshot)
	require.NoError(t, e.open(src, stored))
	bs := readUntil(t, src, endMark)
	reconciled(t, bs, e.ids(t))
	first, ok := bs[0].Checkpoint.(Position)
	require.True(t, ok, "the first batch stores where streaming starts")
	require.Equal(t, ahead, first.LSN)
	require.Contains(t, e.logs.String(), "replication slot moved past the stored position")
	require.Contains(t, e.logs.String(), ahead.String())
}

func TestIntegrationSlotWithoutPositionIsKept(t *testing.T) {
	for _, mode := range []connectors.SnapshotMode{connectors.SnapshotInitial, connectors.SnapshotNever, connectors.SnapshotOnly} {
		t.Run(string(mode), func(t *testing.T) {
			e := newGapEnv(t, 3)
			e.exec(t, `SELECT pg_create_logical_replication_slot('liberator', 'pgoutput')`)
			before := e.slot(t)
			src := e.source(t, mode, GapFail)
			err := e.open(src, nil)
			require.ErrorIs(t, err, connectors.ErrStreamWithoutPosition)
			require.Contains(t, err.Error(), `"liberator"`)
			require.Equal(t, before, e.slot(t), "the slot was changed")
		})
	}
}

func TestIntegrationLostSlotResnapshotsWithReconcile(t *testing.T) {
	e := newGapEnv(t, 10)
	stored := e.firstRun(t, 10)
	e.exec(t, `SELECT pg_drop_replication_slot('liberator')`, `DELETE FROM t WHERE id IN (2, 7)`, `INSERT INTO t VALUES (12, 'v12')`)

	never := e.source(t, connectors.SnapshotNever, GapFail)
	err := e.open(never, stored)
	require.ErrorIs(t, err, connectors.ErrGap)
	require.Contains(t, err.Error(), "snapshot.mode: initial")
	require.NoError(t, never.Close(context.Background()))
	require.False(t, e.slot(t).Exists, "mode never created a slot")

	src := e.source(t, connectors.SnapshotInitial, GapFail)
	require.NoError(t, e.open(src, stored))
	require.True(t, e.slot(t).Exists)
	reconciled(t, readUntil(t, src, endMark), e.ids(t))
	require.Contains(t, e.logs.String(), "rows deleted meanwhile are tombstoned")
}

func TestIntegrationResetResnapshotsWithReconcile(t *testing.T) {
	e := newGapEnv(t, 5)
	e.firstRun(t, 5)
	src := e.source(t, connectors.SnapshotInitial, GapFail)
	id, err := src.Identity(context.Background())
	require.NoError(t, err)
	require.Regexp(t, `^postgres system \d+ database shop slot liberator$`, id)

	pos, err := src.Reset(context.Background())
	require.NoError(t, err)
	require.False(t, e.slot(t).Exists, "Reset kept the slot")
	e.exec(t, `DELETE FROM t WHERE id = 1`)

	require.NoError(t, e.open(src, pos.Encode()))
	reconciled(t, readUntil(t, src, endMark), e.ids(t))
}

func TestIntegrationInvalidatedSlotIsReported(t *testing.T) {
	e := newGapEnv(t, 3, harness.PostgresSetting("max_slot_wal_keep_size", "1MB"))
	stored := e.firstRun(t, 3)

	// Each round fills a WAL segment, and the checkpoint removes the ones
	// past max_slot_wal_keep_size, invalidating the slot.
	require.Eventually(t, func() bool {
		e.exec(t, `INSERT INTO t SELECT g, repeat('x', 1000) FROM generate_series(1000, 1100) g ON CONFLICT (id) DO UPDATE SET v = excluded.v`,
			`SELECT pg_switch_wal()`, `CHECKPOINT`)
		return e.slot(t).WALStatus == "lost"
	}, gapTimeout, 10*time.Millisecond)

	// What START_REPLICATION says about it, for the record.
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	repl := replConn(t, e.dsn)
	err := pglogrepl.StartReplication(ctx, repl, "liberator", 0, pglogrepl.StartReplicationOptions{PluginArgs: []string{"proto_version '1'", "publication_names 'liberator'"}})
	t.Logf("START_REPLICATION on an invalidated slot: %v", err)
	require.Error(t, err)

	src := e.source(t, connectors.SnapshotInitial, GapFail)
	err = e.open(src, stored)
	require.ErrorIs(t, err, connectors.ErrGap)
	for _, s := range []string{`"liberator"`, "wal_status lost", "max_slot_wal_keep_size", "liberator reset", "pg_drop_replication_slot"} {
		require.Contains(t, err.Error(), s)
	}
	require.True(t, e.slot(t).Exists, "the invalidated slot was dropped")
}

func TestIntegrationActiveSlotIsWaitedFor(t *testing.T) {
	e := newGapEnv(t, 3)
	stored := e.firstRun(t, 3)

	// Another walsender streams from the slot, like liberator's own after a
	// connection was lost without a word.
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	other := replConn(t, e.dsn)
	pos, err := ParsePosition(stored)
	require.NoError(t, err)
	require.NoError(t, pglogrepl.StartReplication(ctx, other, "liberator", pos.LSN,
		pglogrepl.StartReplicationOptions{PluginArgs: []string{"proto_version '1'", "publication_names 'liberator'"}}))
	pid := e.slot(t).ActivePID
	require.NotZero(t, pid)

	src := e.source(t, connectors.SnapshotInitial, GapFail)
	require.NoError(t, e.open(src, stored))
	require.Eventually(t, func() bool {
		return strings.Contains(e.logs.String(), fmt.Sprintf("active_pid=%d", pid))
	}, gapTimeout, 10*time.Millisecond, "no retry was logged")

	require.NoError(t, other.Close(ctx))
	e.exec(t, `INSERT INTO t VALUES (100, 'after')`)
	bs := readUntil(t, src, func(bs []connectors.Batch) bool {
		return slices.ContainsFunc(bs, func(b connectors.Batch) bool {
			return slices.ContainsFunc(b.Changes, func(c connectors.Change) bool { return c.Op == connectors.OpCreate })
		})
	})
	require.NotEmpty(t, bs)
	require.NotEqual(t, pid, e.slot(t).ActivePID)
}

func replConn(t *testing.T, dsn string) *pgconn.PgConn {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.RuntimeParams["replication"] = "database"
	ctx, cancel := context.WithTimeout(context.Background(), gapTimeout)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
