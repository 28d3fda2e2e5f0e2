package mysql

// # Tables that patterns take
//
// Patterns (Config.Patterns) are resolved against information_schema at
// Open: every base table they match, but for the signal table, joins
// Config.Tables and is checked and snapshotted like a named one. A table
// that a pattern matches but that has no key is left out with a warning
// rather than stopping liberator.
//
// While streaming, the stream goroutine reads the catalog again every
// PatternPoll, and at once after a CREATE, RENAME or ALTER TABLE
// statement in the binary log. A new table it finds is captured from the
// next event on and snapshotted incrementally (DBLog windows): its rows
// written before that, which the binlog reader passed over, are in the
// table when the snapshot reads it, so none is lost. The new tables are
// handed to Read at once, in a batch of their own (Batch.Tables), so that
// their topics and schemas are ready before their first change or
// snapshot row; the *Table handed over is the one their changes carry
// while the binary log's shape agrees with the catalog's.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/liberator-cdc/liberator/connectors"
)

// trackedTables are the captured tables, database -> table. A value is
// never modified once stored in Source.tracked: adding a table stores a
// new one.
type trackedTables map[string]map[string]bool

// isTracked reports whether a table is captured. Any goroutine may call
// it.
func (s *Source) isTracked(db, name string) bool {
	return (*s.tracked.Load())[db][name]
}

// track adds tables to the captured tables.
func (s *Source) track(tables ...tableName) {
	old := *s.tracked.Load()
	next := make(trackedTables, len(old)+1)
	for db, t := range old {
		next[db] = t
	}
	for _, tn := range tables {
		t := maps.Clone(next[tn.db])
		if t == nil {
			t = map[string]bool{}
		}
		t[tn.name] = true
		next[tn.db] = t
	}
	s.tracked.Store(&next)
}

// listTablesSQL lists the tables a pattern may take.
const listTablesSQL = `SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES
WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')
ORDER BY 1, 2`

// matchingTables returns the tables of the catalog that the patterns take
// and that are not captured yet, but for the signal table.
func (s *Source) matchingTables(ctx context.Context, conn *client.Conn) ([]tableName, error) {
	rows, err := run(ctx, conn, listTablesSQL)
	if err != nil {
		return nil, connectors.MarkRetryable(fmt.Errorf("list tables for source.tables patterns: %w", err))
	}
	signal, _ := parseTableName(s.cfg.Snapshots.WithDefaults().SignalTable)
	var out []tableName
	for _, r := range rows {
		tn := tableName{r[0], r[1]}
		if tn == signal || s.isTracked(tn.db, tn.name) || !s.cfg.Patterns.Match(tn.db, tn.name) {
			continue
		}
		out = append(out, tn)
	}
	return out, nil
}

// capturable checks that a table can be captured, and describes it as a
// snapshot reads it: the error wraps ErrNoPrimaryKey or ErrTableNotFound
// when the table is left out.
func (s *Source) capturable(ctx context.Context, conn *client.Conn, tn tableName) (*tableState, error) {
	ts, err := s.readKeyedTable(ctx, conn, tn)
	if err != nil {
		return nil, err
	}
	t, cols, err := ts.describe()
	if err != nil {
		return nil, err
	}
	return &tableState{table: t, cols: cols}, nil
}

func leftOut(err error) bool {
	return errors.Is(err, ErrNoPrimaryKey) || errors.Is(err, ErrTableNotFound)
}

// resolvePatterns adds the tables that the patterns take to Config.Tables
// and the captured tables, at Open.
func (s *Source) resolvePatterns(ctx context.Context) error {
	if s.cfg.Patterns.Empty() {
		return nil
	}
	found, err := s.matchingTables(ctx, s.meta)
	if err != nil {
		return err
	}
	var added []string
	var tables []tableName
	for _, tn := range found {
		if _, err := s.capturable(ctx, s.meta, tn); err != nil {
			if !leftOut(err) {
				return err
			}
			s.log.Warn("a table that source.tables patterns match cannot be captured; leaving it out", "table", tn.String(), "reason", err)
			continue
		}
		tables = append(tables, tn)
		s.cfg.Tables = append(s.cfg.Tables, tn.String())
		added = append(added, tn.String())
	}
	s.track(tables...)
	s.log.Info("source.tables patterns resolved", "tables", added)
	if len(s.cfg.Tables) == 0 {
		return s.cfg.Patterns.ErrNoMatch()
	}
	return nil
}

// noteDDL makes the next event look for new tables at once when a
// statement may have created one.
func (s *Source) noteDDL(q string) {
	if s.cfg.Patterns.Empty() {
		return
	}
	for _, p := range []string{"CREATE TABLE", "CREATE OR REPLACE TABLE", "RENAME TABLE", "ALTER TABLE"} {
		if hasPrefixFold(q, p) {
			s.discover.due = true
			return
		}
	}
}

// discovery is the state of the look for new tables; the stream goroutine
// owns it.
type discovery struct {
	at      time.Time          // the last look
	due     bool               // look at the next event
	skipped map[tableName]bool // found, but cannot be captured
}

// discoverTables looks for new tables that the patterns take, every
// PatternPoll or when a DDL statement made it due. Each is captured from
// now on and queued for an incremental snapshot.
func (s *Source) discoverTables(ctx context.Context) error {
	d := &s.discover
	if s.cfg.Patterns.Empty() || (!d.due && time.Since(d.at) < s.cfg.PatternPoll) {
		return nil
	}
	d.at, d.due = time.Now(), false
	var found []tableName
	err := s.metaRun(ctx, func(c *client.Conn) error {
		var err error
		found, err = s.matchingTables(ctx, c)
		return err
	})
	if err != nil {
		return err
	}
	var tables []tableName
	var added []string
	var described []*connectors.Table
	for _, tn := range found {
		if d.skipped[tn] {
			continue
		}
		var state *tableState
		err := s.metaRun(ctx, func(c *client.Conn) error {
			var err error
			state, err = s.capturable(ctx, c, tn)
			return err
		})
		if err != nil {
			if !leftOut(err) {
				return connectors.MarkRetryable(err)
			}
			if d.skipped == nil {
				d.skipped = map[tableName]bool{}
			}
			d.skipped[tn] = true
			s.log.Warn("a new table that source.tables patterns match cannot be captured; leaving it out", "table", tn.String(), "reason", err)
			continue
		}
		tables = append(tables, tn)
		added = append(added, tn.String())
		// The table's next table map, and its snapshot's chunks, keep
		// this *Table while their shape agrees (mapTable,
		// incrementalTable).
		if cur := s.st.tables()[tn]; cur != nil && connectors.SameShape(cur.table, state.table) {
			state = cur
		} else {
			s.st.tables()[tn] = state
		}
		described = append(described, state.table)
	}
	if len(tables) == 0 {
		return nil
	}
	s.track(tables...)
	// A table map read before the table was captured says to skip its
	// rows; the next one is read again.
	for id, m := range s.st.maps {
		for _, tn := range tables {
			if string(m.ev.Schema) == tn.db && string(m.ev.Table) == tn.name {
				delete(s.st.maps, id)
			}
		}
	}
	s.snaps.AddTables(added, s.log)
	s.snaps.polled = time.Time{} // their first chunk starts at once
	s.log.Info("new tables match source.tables patterns; capturing them and snapshotting them while streaming", "tables", added)
	return s.handOver(ctx, connectors.Batch{Tables: described})
}

// handOver gives Read a batch of the stream goroutine's own, ahead of the
// changes pending.
func (s *Source) handOver(ctx context.Context, b connectors.Batch) error {
	select {
	case s.results <- streamResult{batch: b}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
