package snapshot

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// Tracker keeps the progress a source reports through
// connectors.SnapshotProgressReporter. Its methods may be called from any
// goroutine. The zero value is ready to use.
type Tracker struct {
	mu     sync.Mutex
	tables []connectors.TableProgress
}

// Add registers a table that waits for its snapshot. A table registered
// before starts over if its last snapshot had finished.
func (p *Tracker) Add(table string, incremental bool) {
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

func (p *Tracker) find(table string) int {
	return slices.IndexFunc(p.tables, func(t connectors.TableProgress) bool { return t.Table == table })
}

// Restart registers a table whose snapshot starts over from its first row.
func (p *Tracker) Restart(table string, incremental bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := connectors.TableProgress{Table: table, Incremental: incremental, Estimated: -1}
	if i := p.find(table); i >= 0 {
		p.tables[i] = tp
		return
	}
	p.tables = append(p.tables, tp)
}

// Start marks a registered table as being read, with its estimated row
// count (-1 when unknown). A table already started keeps its start.
func (p *Tracker) Start(table string, estimated int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 && p.tables[i].Started.IsZero() {
		p.tables[i].Started = time.Now()
		p.tables[i].Estimated = estimated
	}
}

// Started reports whether a table is being read or was read.
func (p *Tracker) Started(table string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(table)
	return i >= 0 && !p.tables[i].Started.IsZero()
}

// AddRows counts rows read from a table.
func (p *Tracker) AddRows(table string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := p.find(table); i >= 0 {
		p.tables[i].Rows += int64(n)
	}
}

// Finish marks a table's snapshot as done and returns its progress.
func (p *Tracker) Finish(table string) connectors.TableProgress {
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

// Progress returns a copy of the progress.
func (p *Tracker) Progress() connectors.SnapshotProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return connectors.SnapshotProgress{Tables: slices.Clone(p.tables)}
}

// Frontier follows the chunks of an initial snapshot that readers
// read in parallel and in any order. A table's progress moves past a
// chunk only once every chunk before it is read too, so the checkpoints
// a source returns move forward in order.
type Frontier struct {
	progress *Tracker
	log      *slog.Logger
	tables   map[int]*chunkFront
}

type chunkFront struct {
	next int              // the first chunk not yet read
	read map[int][]string // the last keys of chunks read ahead of next
	rows int
	took time.Time
}

// NewFrontier returns a frontier that counts rows in progress and
// logs each table it finishes.
func NewFrontier(progress *Tracker, log *slog.Logger) *Frontier {
	return &Frontier{progress: progress, log: log, tables: map[int]*chunkFront{}}
}

func (f *Frontier) front(i int) *chunkFront {
	fr := f.tables[i]
	if fr == nil {
		fr = &chunkFront{read: map[int][]string{}, took: time.Now()}
		f.tables[i] = fr
	}
	return fr
}

// AddRows counts n rows read of table i of st.
func (f *Frontier) AddRows(st *State, i, n int) {
	f.front(i).rows += n
	f.progress.AddRows(st.Tables[i].Table, n)
}

// ChunkRead records chunk seq of table i, whose last key is hi (nil for
// the table's last chunk), as read. It returns st advanced past every
// chunk now read without a gap before it, and whether it moved.
func (f *Frontier) ChunkRead(st *State, i, seq int, hi []string) (*State, bool) {
	fr := f.front(i)
	fr.read[seq] = hi
	moved := false
	for {
		last, ok := fr.read[fr.next]
		if !ok {
			return st, moved
		}
		delete(fr.read, fr.next)
		fr.next++
		moved = true
		st = st.Advanced(i, last, last == nil)
		if last == nil {
			table := st.Tables[i].Table
			p := f.progress.Finish(table)
			f.log.Info("snapshot of table read", "table", table, "rows", fr.rows, "took", time.Since(fr.took).Round(time.Millisecond),
				"rows_per_second", int64(p.Rate(time.Now())))
		}
	}
}
