package postgres

// Streamed transactions (Options.Streaming): pgoutput protocol version 2
// with streaming 'on' sends a transaction larger than the server's
// logical_decoding_work_mem in chunks while it is still running, each
// chunk between a Stream Start and a Stream Stop, and ends it with a
// Stream Commit or a Stream Abort. Chunks of several transactions
// interleave, and transactions committed meanwhile arrive whole between
// the chunks.
//
// The chunks are spooled, not produced: each transaction's messages go, as
// they arrive, to a file of its own, and at its Stream Commit the file is
// read back through the same decoding as a transaction sent whole, with
// the commit's LSN as every change's position. A Stream Abort of the
// transaction drops the file; one of a subtransaction cuts the file back
// to where that subtransaction's first message begins. This is what
// PostgreSQL's own apply worker does with streaming 'on' (14 and 15), and
// it keeps the rule that Kafka only ever holds committed rows: a consumer
// never sees a row of a transaction that then aborts, whatever the
// delivery mode. The spool bounds liberator's memory to one write buffer
// per open transaction, spares the server its own spill files
// (pg_replslot) and its re-reading of them at commit, and has the rows
// decoded and on liberator's side of the connection when the commit
// comes.
//
// Positions: no change of a streamed transaction is handed over before its
// Stream Commit, so no checkpoint can pass its commit before Kafka has all
// of it. A restart mid-stream drops the spools (the files are unlinked
// when made); the stored position is before the commit, so the server
// streams the whole transaction again.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
)

// spoolBuffer is the write (and read-back) buffer of a spool: the memory a
// streamed transaction holds while it runs.
const spoolBuffer = 64 << 10

// pluginArgs are pgoutput's options for START_REPLICATION.
func (s *Source) pluginArgs() []string {
	version := "proto_version '1'"
	if s.cfg.Streaming {
		version = "proto_version '2', streaming 'on'"
	}
	return []string{version, "publication_names " + quoteLiteral(s.cfg.Publication), "messages 'true'"}
}

// spool holds the messages of one streamed transaction until its Stream
// Commit or Stream Abort.
type spool struct {
	xid  uint32
	f    *os.File
	w    *bufio.Writer
	size int64 // bytes written, buffered ones included
	msgs int
	// subs are the subtransactions in the order their first message came,
	// with the offset of that message: a Stream Abort of one cuts the file
	// back there, dropping the later (nested) ones with it.
	subs []subxact
	hdr  [4]byte
}

type subxact struct {
	xid uint32
	off int64
}

// newSpool makes the spool of transaction xid in dir (os.TempDir when
// empty). The file is unlinked at once, so nothing is left behind however
// the process ends.
func newSpool(dir string, xid uint32) (*spool, error) {
	f, err := os.CreateTemp(dir, "liberator-txn-*")
	if err != nil {
		return nil, fmt.Errorf("spool streamed transaction %d: %w (source.postgres.streaming spools to $TMPDIR; point TMPDIR at a writable directory with room for the largest transaction)", xid, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool streamed transaction %d: unlink %s: %w", xid, f.Name(), err)
	}
	return &spool{xid: xid, f: f, w: bufio.NewWriterSize(f, spoolBuffer)}, nil
}

// add appends a message of the stream: its type byte and its body, without
// the xid that every message in a stream carries after its type.
func (sp *spool) add(wal []byte) error {
	if len(wal) < 5 {
		return fmt.Errorf("streamed transaction %d: message %q of %d bytes has no xid", sp.xid, wal[:min(len(wal), 1)], len(wal))
	}
	if xid := binary.BigEndian.Uint32(wal[1:5]); xid != sp.xid {
		sp.noteSub(xid)
	}
	binary.BigEndian.PutUint32(sp.hdr[:], uint32(len(wal)-4))
	if _, err := sp.w.Write(sp.hdr[:]); err != nil {
		return sp.writeErr(err)
	}
	if err := sp.w.WriteByte(wal[0]); err != nil {
		return sp.writeErr(err)
	}
	if _, err := sp.w.Write(wal[5:]); err != nil {
		return sp.writeErr(err)
	}
	sp.size += int64(len(wal))
	sp.msgs++
	return nil
}

func (sp *spool) writeErr(err error) error {
	return fmt.Errorf("spool streamed transaction %d: %w", sp.xid, err)
}

// noteSub records where subtransaction xid begins, the first time it is
// seen. The search runs from the end: the newest subtransaction is the
// likeliest.
func (sp *spool) noteSub(xid uint32) {
	for i := len(sp.subs) - 1; i >= 0; i-- {
		if sp.subs[i].xid == xid {
			return
		}
	}
	sp.subs = append(sp.subs, subxact{xid: xid, off: sp.size})
}

// abortSub drops subtransaction xid's messages and those of the
// subtransactions that began after it. A subtransaction with no message
// in the spool is nothing to drop.
func (sp *spool) abortSub(xid uint32) error {
	for i := len(sp.subs) - 1; i >= 0; i-- {
		if sp.subs[i].xid != xid {
			continue
		}
		off := sp.subs[i].off
		if err := sp.w.Flush(); err != nil {
			return sp.writeErr(err)
		}
		if err := sp.f.Truncate(off); err != nil {
			return sp.writeErr(err)
		}
		if _, err := sp.f.Seek(off, io.SeekStart); err != nil {
			return sp.writeErr(err)
		}
		sp.size, sp.subs = off, sp.subs[:i]
		return nil
	}
	return nil
}

// replay hands each spooled message, in order, to fn. The slice fn gets is
// reused for the next message.
func (sp *spool) replay(fn func(msg []byte) error) error {
	if err := sp.w.Flush(); err != nil {
		return sp.writeErr(err)
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return sp.writeErr(err)
	}
	r := bufio.NewReaderSize(io.LimitReader(sp.f, sp.size), spoolBuffer)
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read spool of streamed transaction %d: %w", sp.xid, err)
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read spool of streamed transaction %d: %w", sp.xid, err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
}

func (sp *spool) close() error { return sp.f.Close() }

// closeSpools drops every spool: the stream has ended, and a new one starts
// each open transaction again from its first chunk.
func (s *Source) closeSpools() {
	for xid, sp := range s.spools {
		sp.close()
		delete(s.spools, xid)
	}
	s.inStream = nil
}

// handleStreamed takes the messages of streamed transactions: the stream's
// own and those inside a Stream Start and Stop. It reports false for any
// other message, which the caller decodes as usual.
func (s *Source) handleStreamed(ctx context.Context, wal []byte) (bool, error) {
	if !s.cfg.Streaming || len(wal) == 0 {
		return false, nil
	}
	switch pglogrepl.MessageType(wal[0]) {
	case pglogrepl.MessageTypeStreamStart:
		m, err := parseStream[*pglogrepl.StreamStartMessageV2](wal)
		if err != nil {
			return true, err
		}
		return true, s.streamStart(m)
	case pglogrepl.MessageTypeStreamStop:
		s.inStream = nil
		return true, nil
	case pglogrepl.MessageTypeStreamCommit:
		m, err := parseStream[*pglogrepl.StreamCommitMessageV2](wal)
		if err != nil {
			return true, err
		}
		return true, s.streamCommit(ctx, m)
	case pglogrepl.MessageTypeStreamAbort:
		m, err := parseStream[*pglogrepl.StreamAbortMessageV2](wal)
		if err != nil {
			return true, err
		}
		return true, s.streamAbort(m)
	}
	if s.inStream == nil {
		return false, nil
	}
	if err := s.inStream.add(wal); err != nil {
		return true, err
	}
	if pglogrepl.MessageType(wal[0]) == pglogrepl.MessageTypeRelation {
		// Taken now as well as at replay: pgoutput sends a relation once
		// per streamed transaction, and the subtransaction it came in may
		// abort and take it out of the spool while later changes of the
		// transaction still need it.
		msg, err := pglogrepl.Parse(withoutXid(wal))
		if err != nil {
			return true, fmt.Errorf("parse logical replication message: %w", err)
		}
		if m, ok := msg.(*pglogrepl.RelationMessage); ok {
			return true, s.handleRelation(ctx, m)
		}
	}
	return true, nil
}

// withoutXid is a streamed message in the form it has outside a stream.
func withoutXid(wal []byte) []byte {
	out := make([]byte, len(wal)-4)
	out[0] = wal[0]
	copy(out[1:], wal[5:])
	return out
}

func parseStream[M pglogrepl.Message](wal []byte) (M, error) {
	var zero M
	msg, err := pglogrepl.ParseV2(wal, false)
	if err != nil {
		return zero, fmt.Errorf("parse logical replication message: %w", err)
	}
	m, ok := msg.(M)
	if !ok {
		return zero, fmt.Errorf("parse logical replication message: %T is not a %T", msg, zero)
	}
	return m, nil
}

func (s *Source) streamStart(m *pglogrepl.StreamStartMessageV2) error {
	if s.inStream != nil {
		return fmt.Errorf("replication: stream start of transaction %d inside the stream of transaction %d", m.Xid, s.inStream.xid)
	}
	sp := s.spools[m.Xid]
	if sp != nil && m.FirstSegment == 1 {
		sp.close()
		sp = nil
	}
	if sp == nil {
		var err error
		if sp, err = newSpool("", m.Xid); err != nil {
			return err
		}
		if s.spools == nil {
			s.spools = map[uint32]*spool{}
		}
		s.spools[m.Xid] = sp
	}
	s.inStream = sp
	return nil
}

func (s *Source) streamAbort(m *pglogrepl.StreamAbortMessageV2) error {
	sp := s.spools[m.Xid]
	if sp == nil {
		return nil
	}
	if m.SubXid != m.Xid {
		return sp.abortSub(m.SubXid)
	}
	delete(s.spools, m.Xid)
	s.log.Debug("streamed transaction aborted", "xid", m.Xid, "messages", sp.msgs, "bytes", sp.size)
	return sp.close()
}

// streamCommit decodes a streamed transaction's spooled messages as one
// transaction sent whole, then checkpoints at its end.
func (s *Source) streamCommit(ctx context.Context, m *pglogrepl.StreamCommitMessageV2) error {
	sp := s.spools[m.Xid]
	delete(s.spools, m.Xid)
	if sp != nil {
		began := time.Now()
		s.inTx = true
		s.txPos = Position{LSN: m.CommitLSN}
		s.txID = strconv.FormatUint(uint64(m.Xid), 10)
		s.txXid = m.Xid
		s.txTime = m.CommitTime.UTC()
		err := sp.replay(func(msg []byte) error { return s.handleMessage(ctx, msg) })
		err = errors.Join(err, sp.close())
		if err != nil {
			return err
		}
		s.log.Debug("streamed transaction committed", "xid", m.Xid, "messages", sp.msgs, "bytes", sp.size, "replay", time.Since(began))
	}
	return s.commit(ctx, m.CommitTime, m.TransactionEndLSN)
}

// commit ends the current transaction: its end is the next checkpoint.
func (s *Source) commit(ctx context.Context, at time.Time, end pglogrepl.LSN) error {
	s.inTx = false
	if s.replNet != nil {
		s.bigTx = false
		s.replNet.lower()
	}
	s.lastCommit.Store(at.UnixMicro())
	s.lastCP = end
	s.pending.Checkpoint = Position{LSN: end}
	return s.offer(ctx)
}
