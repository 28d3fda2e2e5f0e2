package postgres

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// progressTracker keeps the snapshot progress that SnapshotProgress
// reports. The reader goroutine writes it; any goroutine may read it.
type progressTracker struct {
	mu     sync.Mutex
	tables []connectors.TableProgress
}

// add registers a table that waits for its snapshot. A table registered
// before starts over if its last snapshot had finished.
func (p *progressTracker) add(table string, incremental bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		if p.tables[i].Done {
			p.tables[i] = connectors.TableProgress{Table: table, Incremental: incremental, Estimated: -1}
		}
		return
	}
	p.tables = append(p.tables, connectors.TableProgress{Table: table, Incremental: incremental, Estimated: -1})
}

func (p *progressTracker) find(table string) int {
	return slices.IndexFunc(p.tables, func(t connectors.TableProgress) bool { return t.Table == table })
}

// start marks a table as being read, with its estimated row count.
func (p *progressTracker) start(table string, estimated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 && p.tables[i].Started.IsZero() {
		p.tables[i].Started = time.Now()
		p.tables[i].Estimated = estimated
	}
}

// started reports whether a table is being read or was read.
func (p *progressTracker) started(table string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	return i >= 0 && !p.tables[i].Started.IsZero()
}

func (p *progressTracker) addRows(table string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		p.tables[i].Rows += int64(n)
	}
}

// finish marks a table's snapshot as done and returns its progress.
func (p *progressTracker) finish(table string) connectors.TableProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	if i < 0 {
		return connectors.TableProgress{Table: table}
	}
	p.tables[i].Done = true
	p.tables[i].Finished = time.Now()
	return p.tables[i]
}

func (p *progressTracker) get() connectors.SnapshotProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return connectors.SnapshotProgress{Tables: slices.Clone(p.tables)}
}

// SnapshotProgress reports the progress of the snapshots taken since Open:
// rows read per table, the estimate from pg_class.reltuples, and when each
// table started and finished.
func (s *Source) SnapshotProgress() connectors.SnapshotProgress {
	return s.snaps.progress.get()
}

var _ connectors.SnapshotProgressReporter = (*Source)(nil)

// estimateRows reads a table's row count from its statistics, or -1 when
// it has never been analyzed.
func estimateRows(ctx context.Context, conn *pgx.Conn, tn tableName) int64 {
	var n float64
	err := conn.QueryRow(ctx, `SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1 AND c.relname = $2`,
		tn.schema, tn.name).Scan(&n)
	if err != nil || n < 0 {
		return -1
	}
	return int64(n)
}
