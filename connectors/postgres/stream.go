package postgres

// The stream: START_REPLICATION, the pgoutput messages of each
// transaction, and the batches handed to Read.

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/liberator-cdc/liberator/connectors"
)

// flush hands the pending batch to Read, waiting as long as it takes while
// keeping the replication connection alive.
func (s *Source) flush(ctx context.Context) error {
	if len(s.pending.Changes) == 0 && s.pending.Checkpoint == nil && len(s.pending.Tables) == 0 {
		return nil
	}
	s.decorate()
	var tick <-chan time.Time
	if s.startedStreaming() {
		t := time.NewTicker(statusInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case s.out <- s.pending:
			s.handedOver()
			return nil
		case <-tick:
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// offer hands the pending batch to Read if Read is ready for it; otherwise
// the batch keeps growing until the next offer or until it is full.
func (s *Source) offer(ctx context.Context) error {
	if s.full() {
		return s.flush(ctx)
	}
	if len(s.pending.Changes) == 0 && s.pending.Checkpoint == nil && len(s.pending.Tables) == 0 {
		return nil
	}
	s.decorate()
	select {
	case s.out <- s.pending:
		s.handedOver()
	default:
	}
	return nil
}

// handedOver starts the next pending batch once Read has taken the last.
// Its changes have room for as many as the last batch held: batches of a
// busy stream are alike, and a slice grown by append copies its changes
// again at every step: a quarter of the bytes the stream allocated per row
// (579 bytes a row before, 427 after, for a table of five columns).
// A slice handed back (Recycle) is taken when it has that room.
func (s *Source) handedOver() {
	n := len(s.pending.Changes)
	s.lent.Lend(s.pending.Changes)
	s.pending, s.pendingBytes = connectors.Batch{}, 0
	if n > 0 {
		s.pending.Changes = s.lent.Take(min(n, maxBatch))
	}
}

// Recycle takes back the Changes slice of a batch Read returned, for a
// later batch (connectors.Recycler).
func (s *Source) Recycle(b connectors.Batch) { s.lent.GiveBack(b.Changes) }

func (s *Source) sendStatus(ctx context.Context) error {
	lsn := pglogrepl.LSN(s.acked.Load())
	s.nextStatus = time.Now().Add(statusInterval)
	err := pglogrepl.SendStandbyStatusUpdate(ctx, s.repl, pglogrepl.StandbyStatusUpdate{WALWritePosition: lsn})
	if err != nil {
		return connectors.MarkRetryable(fmt.Errorf("send standby status: %w", err))
	}
	return nil
}

// stream runs START_REPLICATION and decodes messages until ctx ends.
func (s *Source) stream(ctx context.Context) error {
	if err := s.startReplication(ctx); err != nil {
		return err
	}
	defer s.closeSpools()
	s.log.Info("streaming", "slot", s.cfg.Slot, "from", s.startAt.String())
	s.nextStatus = time.Now()
	rd := newDeadlineReceiver(ctx, s.repl)
	defer rd.stop()
	for {
		if !time.Now().Before(s.nextStatus) {
			if err := s.sendStatus(ctx); err != nil {
				return err
			}
			if !s.inTx {
				if err := s.offer(ctx); err != nil {
					return err
				}
			}
			if err := s.discoverTables(ctx); err != nil {
				return err
			}
			if err := s.pollSnapshots(ctx); err != nil {
				return err
			}
		}
		msg, err := rd.receive(s.nextStatus)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return connectors.MarkRetryable(fmt.Errorf("receive replication message: %w", err))
		}
		switch msg := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.handleCopyData(ctx, msg.Data); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return connectors.MarkRetryable(fmt.Errorf("replication: %w", pgconn.ErrorResponseToPgError(msg)))
		case *pgproto3.CopyDone, *pgproto3.CommandComplete:
			// A shutting down server ends the stream this way.
			return connectors.MarkRetryable(fmt.Errorf("replication: %w (%T)", errReplicationEnded, msg))
		default:
			return fmt.Errorf("replication: unexpected message %T", msg)
		}
	}
}

func (s *Source) handleCopyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("parse keepalive: %w", err)
		}
		s.noteWALEnd(pkm.ServerWALEnd)
		if pkm.ReplyRequested {
			s.nextStatus = time.Time{}
		}
		// Outside a transaction everything before ServerWALEnd that any
		// captured transaction committed has been sent, so it is a safe
		// resume point. Acknowledging it keeps the slot from retaining WAL
		// while the captured tables are idle.
		if !s.inTx && pkm.ServerWALEnd > s.lastCP {
			s.lastCP = pkm.ServerWALEnd
			s.pending.Checkpoint = Position{LSN: pkm.ServerWALEnd}
			return s.offer(ctx)
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("parse xlog data: %w", err)
		}
		s.noteWALEnd(xld.ServerWALEnd)
		s.msgLSN = xld.WALStart
		if err := s.handleMessage(ctx, xld.WALData); err != nil {
			return err
		}
		if s.bigTx && s.inTx {
			if s.msgLSN+lowatTail >= s.txFinal {
				// What is left of the transaction may be less than
				// the mark: read it as it comes.
				s.bigTx = false
				s.replNet.lower()
			} else {
				// Again after a read that waited too long lowered it.
				s.replNet.raise()
			}
		}
	}
	return nil
}

func (s *Source) handleMessage(ctx context.Context, wal []byte) error {
	// Streamed chunks are spooled first; what the spool replays at a
	// commit has the shape of protocol 1, without the xid.
	if streamed, err := s.handleStreamed(ctx, wal); streamed {
		return err
	}
	if len(wal) > 0 && (wal[0] == 'I' || wal[0] == 'U' || wal[0] == 'D') {
		if handled, err := s.handleRow(ctx, wal); handled || err != nil {
			return err
		}
	}
	msg, err := pglogrepl.Parse(wal)
	if err != nil {
		return fmt.Errorf("parse logical replication message: %w", err)
	}
	if m, ok := msg.(*pglogrepl.LogicalDecodingMessage); ok && m.Prefix == watermarkPrefix {
		return s.handleWatermark(ctx, m)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.handleRelation(ctx, m)
	case *pglogrepl.BeginMessage:
		s.inTx = true
		s.txFinal = m.FinalLSN
		s.bigTx = s.replNet != nil && s.msgLSN != 0 && s.msgLSN+lowatSpan <= m.FinalLSN
		s.txPos = Position{LSN: m.FinalLSN}
		s.txID = strconv.FormatUint(uint64(m.Xid), 10)
		s.txXid = m.Xid
		s.txTime = m.CommitTime.UTC()
	case *pglogrepl.CommitMessage:
		return s.commit(ctx, m.CommitTime, m.TransactionEndLSN)
	case *pglogrepl.InsertMessage:
		rel := s.rels[m.RelationID]
		if rel == nil {
			return nil
		}
		row, _, err := rel.decodeTuple(m.Tuple, nil)
		if err != nil {
			return err
		}
		return s.add(ctx, connectors.Change{Op: connectors.OpCreate, Table: rel.table, After: row})
	case *pglogrepl.UpdateMessage:
		return s.handleUpdate(ctx, m)
	case *pglogrepl.DeleteMessage:
		rel := s.rels[m.RelationID]
		if rel == nil {
			return nil
		}
		old, _, err := rel.decodeTuple(m.OldTuple, nil)
		if err != nil {
			return err
		}
		return s.add(ctx, connectors.Change{Op: connectors.OpDelete, Table: rel.table, Before: old})
	case *pglogrepl.LogicalDecodingMessage:
		if s.messages[m.Prefix] {
			return s.addMessage(ctx, m)
		}
		// A non-transactional message, such as a heartbeat, outside a
		// transaction is a safe resume point, like a keepalive.
		if !m.Transactional && !s.inTx && m.LSN > s.lastCP {
			s.lastCP = m.LSN
			s.pending.Checkpoint = Position{LSN: m.LSN}
			return s.offer(ctx)
		}
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if rel := s.rels[id]; rel != nil {
				s.log.Warn("TRUNCATE cannot be carried to a compacted topic; its rows stay in the topic until they are deleted or the table is snapshotted again", "table", rel.table.ID())
			}
		}
	}
	return nil
}

// add appends a change of the current transaction to the pending batch.
func (s *Source) add(ctx context.Context, c connectors.Change) error {
	c.Pos, c.TxID, c.CommitTime = s.txPos, s.txID, s.txTime
	s.noteChange(&c)
	s.pending.Changes = append(s.pending.Changes, c)
	s.pendingBytes += c.Size()
	s.pending.Checkpoint = nil
	if s.full() {
		return s.flush(ctx)
	}
	return nil
}

// addMessage hands over a message of a configured prefix
// (Config.Messages). A transactional one is a change of its transaction,
// at its place. A non-transactional one is handed over on its own, at its
// LSN, which is then a safe resume point, as for a heartbeat: the pipeline
// decides what becomes of it.
func (s *Source) addMessage(ctx context.Context, m *pglogrepl.LogicalDecodingMessage) error {
	// The content aliases the connection's receive buffer, which the next
	// message overwrites.
	msg := &connectors.Message{Prefix: m.Prefix, Content: bytes.Clone(m.Content), Transactional: m.Transactional}
	if m.Transactional && s.inTx {
		return s.add(ctx, connectors.Change{Op: connectors.OpMessage, Message: msg})
	}
	msg.Transactional = false
	c := connectors.Change{Op: connectors.OpMessage, Message: msg, Pos: Position{LSN: m.LSN}, CommitTime: time.Now().UTC()}
	s.pending.Changes = append(s.pending.Changes, c)
	s.pendingBytes += c.Size()
	s.pending.Checkpoint = nil
	if !s.inTx && m.LSN > s.lastCP {
		s.lastCP = m.LSN
		s.pending.Checkpoint = Position{LSN: m.LSN}
	}
	return s.offer(ctx)
}

// full reports whether the pending batch has reached maxBatch changes or
// its byte budget.
func (s *Source) full() bool {
	return len(s.pending.Changes) >= maxBatch || s.pendingBytes >= s.batchBytes
}

func (s *Source) handleUpdate(ctx context.Context, m *pglogrepl.UpdateMessage) error {
	rel := s.rels[m.RelationID]
	if rel == nil {
		return nil
	}
	var old []any
	if m.OldTuple != nil {
		var err error
		if old, _, err = rel.decodeTuple(m.OldTuple, nil); err != nil {
			return err
		}
	}
	var fromOld []any
	if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
		fromOld = old
	}
	row, unchanged, err := rel.decodeTuple(m.NewTuple, fromOld)
	if err != nil {
		return err
	}
	moved := old != nil && !connectors.KeyEqual(rel.table, old, row)
	if unchanged {
		found, err := s.fillUnchanged(ctx, rel, m.NewTuple, row)
		if err != nil {
			return err
		}
		if !found {
			// The row is gone: a later change (delete or key change) of the
			// new key follows in the stream. The old key must still go.
			if moved {
				return s.add(ctx, connectors.Change{Op: connectors.OpDelete, Table: rel.table, Before: old})
			}
			return nil
		}
	}
	c := connectors.Change{Op: connectors.OpUpdate, Table: rel.table, After: row}
	if moved {
		c.Before = old
	}
	return s.add(ctx, c)
}

// handleRelation updates the relation of a relation id. The message gives
// the layout of the tuples that follow; the catalog adds nullability, the
// primary key and the SQL spelling of each type. A message that changes
// nothing keeps the old *connectors.Table.
func (s *Source) handleRelation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	tn := tableName{m.Namespace, m.RelationName}
	if !s.want[tn] {
		return nil
	}
	catCols, key, identity, err := s.cat.describe(ctx, tn)
	if err != nil {
		return fmt.Errorf("describe relation %s: %w", tn, err)
	}
	byName := map[string]column{}
	for _, c := range catCols {
		byName[c.name] = c
	}
	cols := make([]column, len(m.Columns))
	for i, mc := range m.Columns {
		c, ok := byName[mc.Name]
		if !ok || c.typeOID != mc.DataType || c.typmod != mc.TypeModifier {
			// The catalog has moved on since this message was written.
			c = column{name: mc.Name, sqlType: fmt.Sprintf("oid %d", mc.DataType)}
		}
		c.typeOID, c.typmod = mc.DataType, mc.TypeModifier
		cols[i] = c
	}
	rel, err := s.cat.buildRelation(ctx, tn, cols, key, identity)
	if err != nil {
		return err
	}
	if prev := s.byName[tn]; prev != nil && connectors.SameShape(prev.table, rel.table) {
		rel.table = prev.table
	} else if prev != nil {
		s.log.Info("table changed shape", "table", tn.String(), "columns", len(rel.table.Columns))
	}
	s.byName[tn] = rel
	s.rels[m.RelationID] = rel
	return nil
}
