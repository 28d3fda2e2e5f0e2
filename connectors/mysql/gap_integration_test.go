package mysql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
)

// purge purges every binary log but the current one, after a rotation.
// The server keeps a file that a replica connection still reads (a closed
// source's dump thread may linger a moment), so it tries until only one
// is left.
func (s *server) purge(t *testing.T) {
	t.Helper()
	s.exec(t, "FLUSH BINARY LOGS")
	res, err := s.conn.Execute("SHOW MASTER STATUS")
	require.NoError(t, err)
	file, err := res.GetString(0, 0)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		if _, err := s.conn.Execute("PURGE BINARY LOGS TO '" + file + "'"); err != nil {
			return false
		}
		logs, err := s.conn.Execute("SHOW BINARY LOGS")
		return err == nil && logs.RowNumber() == 1
	}, 30*time.Second, 20*time.Millisecond, "the old binary logs were not purged")
}

// ids returns the first column of each change's row image, as int32.
func ids(changes []connectors.Change) []int32 {
	var out []int32
	for _, c := range changes {
		img := c.After
		if img == nil {
			img = c.Before
		}
		out = append(out, img[0].(int32))
	}
	return out
}

// marks returns the reconcile marks of the batches.
func marks(batches []connectors.Batch) []connectors.ReconcileMark {
	var out []connectors.ReconcileMark
	for _, b := range batches {
		out = append(out, b.Reconcile...)
	}
	return out
}

func TestIntegrationAPurgedBinlogReSnapshotsEveryTableWithReconcile(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d",
		"CREATE TABLE d.a (id INT PRIMARY KEY)", "CREATE TABLE d.b (id INT PRIMARY KEY)",
		"INSERT INTO d.a VALUES (1), (2), (3)", "INSERT INTO d.b VALUES (1)")
	src := s.source(t, connectors.SnapshotInitial, "d.a", "d.b")
	open(t, src, nil)
	snap := readBatches(t, src, untilChanges(4))
	acked := snap[len(snap)-1].Checkpoint
	require.NotNil(t, acked)
	require.NoError(t, src.Close(context.Background()))

	// While the source is stopped, rows are deleted and added, and the
	// binary log that holds those changes is purged.
	s.exec(t, "DELETE FROM d.a WHERE id = 2", "INSERT INTO d.a VALUES (4)", "DELETE FROM d.b")
	s.purge(t)

	again := s.source(t, connectors.SnapshotInitial, "d.a", "d.b")
	open(t, again, acked.Encode())
	var sawEnd = map[string]bool{}
	batches := readBatches(t, again, func(bs []connectors.Batch) bool {
		for _, m := range marks(bs) {
			if m.End {
				sawEnd[m.Table] = true
			}
		}
		return sawEnd["d.a"] && sawEnd["d.b"] && bs[len(bs)-1].Checkpoint != nil
	})

	// The first checkpoint that names the re-snapshot is where the stream
	// went on after the gap.
	var first Position
	for _, b := range batches {
		if p, ok := b.Checkpoint.(Position); ok && p.State != nil && p.State.Snapshot != nil && !p.State.Snapshot.Initial {
			first = p
			break
		}
	}
	require.NotEqual(t, acked.(Position).File, first.File, "the stream resumes at the end of the binary log")
	require.NotNil(t, first.State.Snapshot)
	for _, ts := range first.State.Snapshot.Tables {
		require.True(t, ts.Reconcile, "table %s is queued with reconcile", ts.Table)
	}
	require.ElementsMatch(t, []string{"d.a", "d.b"}, func() []string {
		var out []string
		for _, ts := range first.State.Snapshot.Tables {
			out = append(out, ts.Table)
		}
		return out
	}())

	// Each table's rows come between its begin and end marks.
	for _, table := range []string{"d.a", "d.b"} {
		begun, ended := false, false
		var rows []int32
		for _, b := range batches {
			for _, m := range b.Reconcile {
				if m.Table == table && !m.End {
					require.False(t, ended)
					begun = true
				}
			}
			for _, c := range b.Changes {
				if c.Table.ID() == table {
					require.Equal(t, connectors.OpRead, c.Op)
					require.True(t, begun && !ended, "a row of %s outside its marks", table)
					rows = append(rows, ids([]connectors.Change{c})...)
				}
			}
			for _, m := range b.Reconcile {
				if m.Table == table && m.End {
					require.True(t, begun)
					ended = true
				}
			}
		}
		require.True(t, ended)
		want := map[string][]int32{"d.a": {1, 3, 4}, "d.b": nil}[table]
		require.Equal(t, want, rows, "the re-snapshot of %s reads the table as it is", table)
	}
	last := batches[len(batches)-1].Checkpoint.(Position)
	require.Nil(t, last.State.Snapshot, "the re-snapshot ends")
}

func TestIntegrationAPurgedBinlogWithSnapshotModeNeverIsAnError(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	s.exec(t, "INSERT INTO d.t VALUES (1)")
	bs := readBatches(t, src, untilChanges(1))
	acked := bs[len(bs)-1].Checkpoint
	require.NoError(t, src.Close(context.Background()))
	s.exec(t, "DELETE FROM d.t")
	s.purge(t)

	again := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, again, acked.Encode())
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	_, err := again.Read(ctx)
	require.ErrorIs(t, err, ErrBinlogLost)
	require.False(t, connectors.IsRetryable(err))
	require.ErrorContains(t, err, acked.(Position).File)
	require.ErrorContains(t, err, "Could not find GTID state requested by slave in any binlog files")
	require.ErrorContains(t, err, "snapshot.mode: initial")
	require.ErrorContains(t, err, "liberator reset --config")
}

func TestIntegrationAnImpossiblePositionIsAnErrorNotAJump(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	start, err := src.Read(context.Background())
	require.NoError(t, err)
	p := start.Checkpoint.(Position)
	require.NoError(t, src.Close(context.Background()))

	for _, tt := range []struct {
		name   string
		offset uint32
		quote  string
	}{
		{"past the end of the file", 99999999, "Client requested master to start replication from impossible position"},
		{"inside an event", p.Offset - 20, "log event entry exceeded max_allowed_packet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := Position{Flavor: FlavorMariaDB, File: p.File, Offset: tt.offset}
			again := s.source(t, connectors.SnapshotInitial, "d.t")
			open(t, again, bad.Encode())
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			b, err := again.Read(ctx)
			require.Error(t, err, "read %+v instead", b)
			require.NotErrorIs(t, err, ErrBinlogLost)
			require.False(t, connectors.IsRetryable(err))
			require.ErrorContains(t, err, tt.quote)
			require.ErrorContains(t, err, bad.String())
		})
	}
}

func TestIntegrationARolledBackMixedTransactionPublishesOnlyItsNonTransactionalChanges(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d",
		"CREATE TABLE d.inno (id INT PRIMARY KEY) ENGINE=InnoDB",
		"CREATE TABLE d.my (id INT PRIMARY KEY) ENGINE=MyISAM",
		"CREATE TABLE d.ar (id INT PRIMARY KEY) ENGINE=Aria")
	src := s.source(t, connectors.SnapshotNever, "d.inno", "d.my", "d.ar")
	open(t, src, nil)
	s.exec(t, "BEGIN", "INSERT INTO d.inno VALUES (1)", "INSERT INTO d.my VALUES (2)",
		"INSERT INTO d.inno VALUES (3)", "INSERT INTO d.ar VALUES (4)", "ROLLBACK",
		"INSERT INTO d.inno VALUES (5)")
	changes := changesOf(readBatches(t, src, func(bs []connectors.Batch) bool {
		return slices.Contains(ids(changesOf(bs)), 5) && bs[len(bs)-1].Checkpoint != nil
	}))
	require.Equal(t, []int32{2, 4, 5}, ids(changes), "the server keeps the MyISAM and Aria rows and undoes the InnoDB ones")
}

// prepareXA runs an XA transaction up to its PREPARE on a connection of
// its own, and disconnects, so that another session may end it.
func (s *server) prepareXA(t *testing.T, xid string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := s.Connect(ctx)
	require.NoError(t, err)
	defer conn.Close()
	for _, q := range append(append([]string{"XA START " + xid}, stmts...), "XA END "+xid, "XA PREPARE "+xid) {
		_, err := conn.Execute(q)
		require.NoError(t, err, q)
	}
}

// endXA runs an XA COMMIT or XA ROLLBACK of a transaction that prepareXA
// prepared on a connection it closed. Until the server has finished
// closing that connection the transaction still belongs to it, and the
// statement fails with XAER_NOTA (1397); it is tried again until it works.
func (s *server) endXA(t *testing.T, stmt string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		_, err := s.conn.Execute(stmt)
		if err == nil {
			return
		}
		var me *gomysql.MyError
		if !errors.As(err, &me) || me.Code != 1397 || time.Now().After(deadline) {
			require.NoError(t, err, stmt)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIntegrationXARollbackPublishesNothing(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	s.prepareXA(t, "'x1'", "INSERT INTO d.t VALUES (1)", "INSERT INTO d.t VALUES (2)")
	s.exec(t, "INSERT INTO d.t VALUES (3)")
	s.endXA(t, "XA ROLLBACK 'x1'")
	s.exec(t, "INSERT INTO d.t VALUES (4)")
	changes := changesOf(readBatches(t, src, func(bs []connectors.Batch) bool {
		return slices.Contains(ids(changesOf(bs)), 4) && bs[len(bs)-1].Checkpoint != nil
	}))
	require.Equal(t, []int32{3, 4}, ids(changes))
}

func TestIntegrationXACommitPublishesOnceAtTheCommit(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "CREATE TABLE d.other (id INT PRIMARY KEY)")
	src := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, src, nil)
	before := readBatches(t, src, func(bs []connectors.Batch) bool { return len(bs) > 0 })[0].Checkpoint.(Position)

	s.prepareXA(t, "'x1', 'b', 7", "INSERT INTO d.t VALUES (1)")
	s.prepareXA(t, "'empty'", "INSERT INTO d.other VALUES (1)")
	s.exec(t, "INSERT INTO d.t VALUES (2)")
	s.endXA(t, "XA COMMIT 'empty'")
	bs := readBatches(t, src, untilChanges(1))
	require.Equal(t, []int32{2}, ids(changesOf(bs)), "a prepared transaction is not published")
	held := bs[len(bs)-1].Checkpoint.(Position)
	require.Equal(t, before.GTID, held.GTID, "the checkpoint stays before the prepared transaction")
	require.Equal(t, before.File, held.File)
	require.Equal(t, before.Offset, held.Offset)

	s.endXA(t, "XA COMMIT 'x1', 'b', 7")
	bs = readBatches(t, src, untilChanges(1))
	changes := changesOf(bs)
	require.Equal(t, []int32{1}, ids(changes), "published at the commit")
	require.Equal(t, connectors.OpCreate, changes[0].Op)
	after := bs[len(bs)-1].Checkpoint.(Position)
	require.NotEqual(t, before.GTID, after.GTID, "the checkpoint moves on once nothing is prepared")

	// A restart from the held checkpoint reads the PREPARE again and
	// publishes it at its COMMIT, after the changes in between.
	require.NoError(t, src.Close(context.Background()))
	again := s.source(t, connectors.SnapshotNever, "d.t")
	open(t, again, held.Encode())
	require.Equal(t, []int32{2, 1}, ids(changesOf(readBatches(t, again, untilChanges(2)))))

	// XA COMMIT ONE PHASE is an ordinary commit.
	s.exec(t, "XA START 'x2'", "INSERT INTO d.t VALUES (3)", "XA END 'x2'", "XA COMMIT 'x2' ONE PHASE")
	require.Equal(t, []int32{3}, ids(changesOf(readBatches(t, again, untilChanges(1)))))
}

func TestIntegrationIdentityAndReset(t *testing.T) {
	s := startMariaDB(t)
	s.exec(t, "CREATE DATABASE d", "CREATE TABLE d.t (id INT PRIMARY KEY)", "INSERT INTO d.t VALUES (1), (2)")
	src := s.source(t, connectors.SnapshotInitial, "d.t")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	id, err := src.Identity(ctx)
	require.NoError(t, err)
	require.Regexp(t, `^mariadb:[0-9a-f-]{36}$`, id)
	again, err := src.Identity(ctx)
	require.NoError(t, err)
	require.Equal(t, id, again, "the identity is stable")
	other := startMariaDB(t)
	otherID, err := other.source(t, connectors.SnapshotInitial, "d.t").Identity(ctx)
	require.NoError(t, err)
	require.NotEqual(t, id, otherID, "two servers have two identities")

	reset, err := src.Reset(ctx)
	require.NoError(t, err)
	open(t, src, reset.Encode())
	s.exec(t, fmt.Sprintf("DELETE FROM d.t WHERE id = %d", 2))
	batches := readBatches(t, src, func(bs []connectors.Batch) bool {
		return slices.ContainsFunc(marks(bs), func(m connectors.ReconcileMark) bool { return m.End }) && bs[len(bs)-1].Checkpoint != nil
	})
	require.NotNil(t, batches[0].Checkpoint)
	st := batches[0].Checkpoint.(Position).State
	require.True(t, st.Snapshot.Tables[0].Reconcile, "the reset's first checkpoint records the reconcile")
	require.Equal(t, []connectors.ReconcileMark{{Table: "d.t"}, {Table: "d.t", End: true}}, marks(batches))
}
