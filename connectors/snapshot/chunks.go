package snapshot

import (
	"context"
	"sync"

	"github.com/liberator-cdc/liberator/connectors"
)

// Chunk is one key range (Lo, Hi] of a table of an initial snapshot,
// which a reader reads in one query; a nil bound is open.
type Chunk struct {
	// Table is the table's index in the snapshot's State.
	Table int
	// Seq numbers the table's chunks from 0, in key order.
	Seq int
	Lo  []string
	Hi  []string
}

// Boundary returns the key of the n-th row of a table after the key lo
// (from the table's first row when lo is nil), or nil when fewer than n
// rows are left.
type Boundary func(ctx context.Context, lo []string, n int) ([]string, error)

// Split cuts each unfinished table of st into key ranges of
// Opts.ChunkSize rows, in table order, and sends them on chunks; the
// last range of a table is open at its end. It runs ahead of the readers,
// reading only keys, and returns once every range is sent or ctx is done.
//
// For table i, table returns its estimated row count (-1 when unknown),
// with which Split starts the table's progress, and how to find where its
// chunks end; a nil boundary reads the table in one piece (its key cannot
// be read in ranges). Split uses only Opts and Progress of the Manager,
// so it may run beside the goroutine that owns it.
func (sn *Manager) Split(ctx context.Context, st *State, chunks chan<- Chunk,
	table func(ctx context.Context, i int) (estimate int64, boundary Boundary)) error {
	n := sn.Opts.ChunkSize
	for i, ts := range st.Tables {
		if ts.Done {
			continue
		}
		estimate, boundary := table(ctx, i)
		sn.Progress.Start(ts.Table, estimate)
		lo := ts.After
		for seq := 0; ; seq++ {
			var hi []string
			if boundary != nil {
				var err error
				if hi, err = boundary(ctx, lo, n); err != nil {
					return err
				}
			}
			select {
			case chunks <- Chunk{Table: i, Seq: seq, Lo: lo, Hi: hi}:
			case <-ctx.Done():
				return ctx.Err()
			}
			if hi == nil {
				break
			}
			lo = hi
		}
	}
	return nil
}

// RowsPerMessage caps the rows a chunk reader hands over at once, so that
// a large chunk streams through in bounded memory.
const RowsPerMessage = 1024

// Rows are rows of a chunk that a reader hands over. A chunk's last
// message is Done, and may hold no rows.
type Rows struct {
	Chunk   Chunk
	Changes []connectors.Change
	// Bytes is the sum of the Changes' Size, which a Sender counts as it
	// adds them.
	Bytes int64
	Done  bool
}

// Sender hands the rows of one chunk over in messages of at most
// RowsPerMessage rows (or MaxRows) and about maxBytes bytes (by
// Change.Size), so that a chunk of thousands of large rows is never held
// whole.
type Sender struct {
	ctx      context.Context
	out      chan<- Rows
	chunk    Chunk
	rows     []connectors.Change
	bytes    int64
	maxBytes int64
	maxRows  int // 0: RowsPerMessage
}

// NewSender returns a Sender of chunk's rows to out, for a chunk of up to
// chunkSize rows, in messages of up to maxBytes (a message holds at least
// one row). Its sends end when ctx is done.
func NewSender(ctx context.Context, out chan<- Rows, chunk Chunk, chunkSize int, maxBytes int64) *Sender {
	return &Sender{ctx: ctx, out: out, chunk: chunk, maxBytes: maxBytes, rows: messageRows(min(chunkSize, RowsPerMessage))}
}

// released holds *[]connectors.Change of RowsPerMessage capacity, empty
// and cleared, that receivers have released (Rows.Release).
var released sync.Pool

// messageRows returns an empty slice of capacity n for a message's rows:
// one released when n is RowsPerMessage and there is one.
func messageRows(n int) []connectors.Change {
	if n == RowsPerMessage {
		if p, ok := released.Get().(*[]connectors.Change); ok {
			return *p
		}
	}
	return make([]connectors.Change, 0, n)
}

// Release hands m's Changes back to the Senders for a later message. A
// receiver that has copied every change out of m (and keeps no slice of
// m.Changes) may call it, and uses m.Changes no more: the rows of a
// snapshot then cost no allocation of their own on the way from reader to
// batch. The changes are cleared, so that they keep no row alive.
func (m Rows) Release() {
	if cap(m.Changes) != RowsPerMessage {
		return
	}
	clear(m.Changes)
	rows := m.Changes[:0]
	released.Put(&rows)
}

// MessageBytes is the maxBytes of the Senders of parallel readers that
// share readAhead bytes: each may fill one message while parallel more
// wait in a channel of that capacity.
func MessageBytes(readAhead int64, parallel int) int64 {
	return readAhead / int64(2*max(parallel, 1))
}

// MaxRows sets the most rows of s's messages to n instead of
// RowsPerMessage, for a chunk of up to chunkSize rows, and returns s. A
// source whose batches hold n rows can then hand a full message on as a
// batch as it is, without copying its rows into one; maxBytes still bounds
// each message.
func (s *Sender) MaxRows(n, chunkSize int) *Sender {
	s.maxRows = max(n, 1)
	s.rows = make([]connectors.Change, 0, min(chunkSize, s.maxRows))
	return s
}

func (s *Sender) maxMessageRows() int {
	if s.maxRows > 0 {
		return s.maxRows
	}
	return RowsPerMessage
}

// Add adds a row read, and hands the rows over once there are
// RowsPerMessage (or MaxRows) of them or they reach the byte limit.
func (s *Sender) Add(c connectors.Change) error {
	s.rows = append(s.rows, c)
	s.bytes += c.Size()
	if len(s.rows) < s.maxMessageRows() && s.bytes < s.maxBytes {
		return nil
	}
	n := len(s.rows)
	if err := s.send(false); err != nil {
		return err
	}
	// The next message is sized like this one: large rows make short
	// messages.
	s.rows = messageRows(min(s.maxMessageRows(), 2*n))
	s.bytes = 0
	return nil
}

// Done hands over the rows left, as the chunk's last message.
func (s *Sender) Done() error { return s.send(true) }

func (s *Sender) send(done bool) error {
	select {
	case s.out <- Rows{Chunk: s.chunk, Changes: s.rows, Bytes: s.bytes, Done: done}:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}
