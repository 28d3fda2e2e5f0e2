// Package postgres is the PostgreSQL source connector. It reads tables
// through a logical replication slot with the pgoutput plugin, after an
// initial snapshot taken in the slot's exported snapshot, so that the
// hand-off from snapshot to stream neither loses nor repeats a change.
//
// # Unchanged TOAST values
//
// pgoutput does not send a large (TOASTed) value that an UPDATE left
// unchanged; the tuple says 'u' instead. Under REPLICA IDENTITY FULL the
// old tuple carries the value, and it is taken from there: exact, at the
// cost of more WAL. Under the default identity the source reads the row's
// current value by key. That value may be newer than the update being
// decoded; the later change that made it newer follows in the stream, so the
// compacted topic still converges to the table. If the row no longer exists,
// the update is skipped, because its later delete (or key change) follows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

const (
	// maxBatch caps the changes in one batch, so that a huge transaction
	// or table streams through in bounded memory.
	maxBatch = 4096
	// statusInterval is how often the standby status (the acknowledged
	// LSN) is reported to the server.
	statusInterval = time.Second
)

// sessionParams make every text form that the decoders read predictable.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"bytea_output":       "hex",
	"extra_float_digits": "1",
	"application_name":   "liberator",
}

// Source reads changes from PostgreSQL.
type Source struct {
	cfg Config
	log *slog.Logger

	conn *pgx.Conn      // catalog queries, snapshot, TOAST look-ups
	repl *pgconn.PgConn // replication=database
	cat  *catalog
	want map[tableName]bool
	// snaps is the snapshot state (snapshot.go, incremental.go).
	snaps snapshot.Manager

	rels    map[uint32]*relation // by relation id, from relation messages
	byName  map[tableName]*relation
	startAt pglogrepl.LSN
	// snapshotName is set when Open created the slot and a snapshot must be
	// read before streaming.
	snapshotName string

	acked      atomic.Uint64 // highest acknowledged LSN
	walEnd     atomic.Uint64 // the server's WAL end, as last reported
	lastCommit atomic.Int64  // commit time of the newest transaction, Unix µs
	pgcfg      *pgx.ConnConfig

	out    chan connectors.Batch
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before out is closed

	closeOnce sync.Once

	// Stream state, owned by the reader goroutine.
	pending    connectors.Batch
	lastCP     pglogrepl.LSN
	inTx       bool
	txPos      Position
	txID       string
	txXid      uint32 // the xid of txID
	visibleXid uint32 // the last xid seen visible to new snapshots
	txTime     time.Time
	nextStatus time.Time
}

var _ connectors.Source = (*Source)(nil)

// New validates cfg and returns a Source. It does no I/O.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	want := map[tableName]bool{}
	for _, t := range cfg.Tables {
		tn, _ := parseTableName(t)
		want[tn] = true
	}
	return &Source{cfg: cfg, log: cfg.Logger, want: want, rels: map[uint32]*relation{}, byName: map[tableName]*relation{}}, nil
}

// Open connects, checks the tables, makes sure the publication and the slot
// exist, and starts reading. See the package doc for how resume, the slot
// and the snapshot mode combine.
func (s *Source) Open(ctx context.Context, resume []byte) error {
	pgcfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("source.dsn: %w", err)
	}
	for k, v := range sessionParams {
		pgcfg.RuntimeParams[k] = v
	}
	s.pgcfg = pgcfg
	replCfg := pgcfg.Config.Copy()
	replCfg.RuntimeParams["replication"] = "database"

	if s.conn, err = pgx.ConnectConfig(ctx, pgcfg); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres: %w", err))
	}
	s.cat = newCatalog(s.conn).withKeys(s.cfg.KeyColumns)
	var errs []error
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		cols, key, identity, err := s.cat.describe(ctx, tn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rel, err := s.cat.buildRelation(ctx, tn, cols, key, identity)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byName[tn] = rel
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	parts, err := readPartitionInfos(ctx, s.conn, s.tableNames())
	if err != nil {
		return err
	}
	for _, p := range parts {
		errs = append(errs, capturedTwiceProblem(p, s.want))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, parts); err != nil {
		return err
	}
	if s.repl, err = pgconn.ConnectConfig(ctx, replCfg); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres for replication: %w", err))
	}
	if err := s.prepareStart(ctx, resume); err != nil {
		return err
	}

	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.out = make(chan connectors.Batch, 4)
	s.done = make(chan struct{})
	go s.run(rctx)
	return nil
}

// ensurePublication creates the publication, or adds missing tables to it.
// An existing publication must publish partitioned tables via their root.
func (s *Source) ensurePublication(ctx context.Context, parts []partitionInfo) error {
	pub := s.cfg.Publication
	var all, viaRoot bool
	err := s.conn.QueryRow(ctx, `SELECT puballtables, pubviaroot FROM pg_publication WHERE pubname = $1`, pub).Scan(&all, &viaRoot)
	if errors.Is(err, pgx.ErrNoRows) {
		create := createPublicationSQL(pub, s.tableNames())
		if _, err := s.conn.Exec(ctx, create); err != nil {
			return fmt.Errorf("source.postgres.publication: create publication %q: %w (create it as a superuser or the tables' owner: %s)", pub, err, create)
		}
		s.log.Info("created publication", "publication", pub, "tables", s.cfg.Tables)
		return nil
	}
	if err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	var errs []error
	for _, p := range parts {
		errs = append(errs, viaRootProblem(pub, viaRoot, p))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("source.postgres.publication: %w", err)
	}
	if all {
		return nil
	}
	rows, err := s.conn.Query(ctx, `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`, pub)
	if err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	have := map[tableName]bool{}
	for rows.Next() {
		var tn tableName
		if err := rows.Scan(&tn.schema, &tn.name); err != nil {
			rows.Close()
			return fmt.Errorf("describe publication %q: %w", pub, err)
		}
		have[tn] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("describe publication %q: %w", pub, err)
	}
	for tn := range s.want {
		if have[tn] {
			continue
		}
		ident := pgx.Identifier{tn.schema, tn.name}.Sanitize()
		if _, err := s.conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+ident); err != nil {
			return fmt.Errorf("source.postgres.publication: add %s to publication %q: %w", tn, pub, err)
		}
		s.log.Info("added table to publication", "publication", pub, "table", tn.String())
	}
	return nil
}

// tableNames are the configured tables, in config order.
func (s *Source) tableNames() []tableName {
	out := make([]tableName, 0, len(s.cfg.Tables))
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		out = append(out, tn)
	}
	return out
}

// Read returns the next batch.
func (s *Source) Read(ctx context.Context) (connectors.Batch, error) {
	select {
	case b, ok := <-s.out:
		if !ok {
			return connectors.Batch{}, s.err
		}
		return b, nil
	case <-ctx.Done():
		return connectors.Batch{}, ctx.Err()
	}
}

// Ack records that everything up to pos is in Kafka. The reader reports it
// to the server with its next standby status update.
func (s *Source) Ack(_ context.Context, pos connectors.Position) error {
	p, ok := pos.(Position)
	if !ok {
		return fmt.Errorf("ack %v: not a PostgreSQL position", pos)
	}
	for {
		cur := s.acked.Load()
		if uint64(p.LSN) <= cur || s.acked.CompareAndSwap(cur, uint64(p.LSN)) {
			return nil
		}
	}
}

// Close stops the reader, reports the last acknowledged LSN and closes the
// connections. Batches not yet returned by Read are dropped; they are read
// again after a restart because they were never acknowledged.
func (s *Source) Close(ctx context.Context) error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		if s.repl != nil {
			if s.startedStreaming() {
				errs = append(errs, s.sendStatus(ctx))
			}
			errs = append(errs, s.repl.Close(ctx))
		}
		if s.conn != nil {
			errs = append(errs, s.conn.Close(ctx))
		}
	})
	return errors.Join(errs...)
}

func (s *Source) startedStreaming() bool { return !s.nextStatus.IsZero() }

// run is the reader goroutine: it takes the snapshot if one is due, then
// streams, handing batches to Read through s.out.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	err := s.readAll(ctx)
	if ctx.Err() != nil && !errors.Is(err, io.EOF) {
		err = context.Canceled
	}
	s.err = err
	close(s.out)
}

func (s *Source) readAll(ctx context.Context) error {
	if s.snaps.Initial {
		if err := s.initialSnapshot(ctx); err != nil {
			return err
		}
		if s.cfg.Snapshot == connectors.SnapshotOnly {
			return io.EOF
		}
	} else if s.cfg.Snapshot == connectors.SnapshotOnly {
		s.log.Info("snapshot already taken; nothing to do", "slot", s.cfg.Slot)
		return io.EOF
	}
	if s.lastCP == 0 {
		// A new slot without a snapshot: record where streaming begins.
		s.lastCP = s.startAt
		s.pending.Checkpoint = Position{LSN: s.startAt}
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.stream(gctx) })
	g.Go(func() error { return s.watch(gctx, s.pgcfg) })
	return g.Wait()
}

func quoteLiteral(s string) string {
	return "'" + s + "'"
}

// decodeValues decodes a text-format row in column order.
func (r *relation) decodeValues(vals [][]byte) ([]any, error) {
	row := make([]any, len(r.decoders))
	for i, v := range vals {
		if v == nil {
			continue
		}
		var err error
		if row[i], err = r.decoders[i](v); err != nil {
			return nil, r.columnError(i, err)
		}
	}
	return row, nil
}

func (r *relation) columnError(i int, err error) error {
	c := r.table.Columns[i]
	return fmt.Errorf("decode column %q (%s) of table %s: %w", c.Name, c.SQLType, r.table.ID(), err)
}

// flush hands the pending batch to Read, waiting as long as it takes while
// keeping the replication connection alive.
func (s *Source) flush(ctx context.Context) error {
	if len(s.pending.Changes) == 0 && s.pending.Checkpoint == nil {
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
			s.pending = connectors.Batch{}
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
	if len(s.pending.Changes) >= maxBatch {
		return s.flush(ctx)
	}
	if len(s.pending.Changes) == 0 && s.pending.Checkpoint == nil {
		return nil
	}
	s.decorate()
	select {
	case s.out <- s.pending:
		s.pending = connectors.Batch{}
	default:
	}
	return nil
}

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
	s.log.Info("streaming", "slot", s.cfg.Slot, "from", s.startAt.String())
	s.nextStatus = time.Now()
	rd := &deadlineCtx{parent: ctx}
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
			if err := s.pollSnapshots(ctx); err != nil {
				return err
			}
		}
		// One deadline context per status interval, not per message: a
		// busy stream receives hundreds of thousands of messages a second.
		msg, err := s.repl.ReceiveMessage(rd.until(s.nextStatus))
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
		default:
			return fmt.Errorf("replication: unexpected message %T", msg)
		}
	}
}

// deadlineCtx hands out a context with a deadline, made anew only when the
// deadline changes.
type deadlineCtx struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

func (d *deadlineCtx) until(t time.Time) context.Context {
	if d.ctx == nil || !t.Equal(d.deadline) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(d.parent, t)
		d.deadline = t
	}
	return d.ctx
}

func (d *deadlineCtx) stop() {
	if d.cancel != nil {
		d.cancel()
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
		return s.handleMessage(ctx, xld.WALData)
	}
	return nil
}

func (s *Source) handleMessage(ctx context.Context, wal []byte) error {
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
		s.txPos = Position{LSN: m.FinalLSN}
		s.txID = strconv.FormatUint(uint64(m.Xid), 10)
		s.txXid = m.Xid
		s.txTime = m.CommitTime.UTC()
	case *pglogrepl.CommitMessage:
		s.inTx = false
		s.lastCommit.Store(m.CommitTime.UnixMicro())
		s.lastCP = m.TransactionEndLSN
		s.pending.Checkpoint = Position{LSN: m.TransactionEndLSN}
		return s.offer(ctx)
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
	s.pending.Checkpoint = nil
	if len(s.pending.Changes) >= maxBatch {
		return s.flush(ctx)
	}
	return nil
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

// fillUnchanged reads the current values of the columns that the tuple
// marked as unchanged TOAST values. It reports false if the row is gone.
func (s *Source) fillUnchanged(ctx context.Context, rel *relation, tup *pglogrepl.TupleData, row []any) (bool, error) {
	if err := s.waitVisible(ctx); err != nil {
		return false, err
	}
	params := make([][]byte, len(rel.table.Key))
	for n, i := range rel.table.Key {
		params[n] = tup.Columns[i].Data
	}
	rr := s.conn.PgConn().ExecParams(ctx, rel.selectByKey, params, nil, nil, nil)
	found := false
	for rr.NextRow() {
		found = true
		for i, col := range tup.Columns {
			if col.DataType != pglogrepl.TupleDataTypeToast {
				continue
			}
			v := rr.Values()[i]
			if v == nil {
				row[i] = nil
				continue
			}
			var err error
			if row[i], err = rel.decoders[i](v); err != nil {
				rr.Close()
				return false, rel.columnError(i, err)
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return false, connectors.MarkRetryable(fmt.Errorf("read unchanged TOAST values of %s: %w", rel.table.ID(), err))
	}
	return found, nil
}

// waitVisible waits until the transaction being decoded is visible to new
// snapshots. The walsender can decode a commit before the committing backend
// has left the proc array; in that window a query still sees the rows as
// they were before the transaction, and a look-up by the new key of a moved
// row would miss it.
func (s *Source) waitVisible(ctx context.Context) error {
	if s.visibleXid == s.txXid {
		return nil
	}
	wait := time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		var running bool
		// Not yet visible: still in the snapshot's running set, or at or
		// past its xmax (a snapshot can be reused from before the xid was
		// assigned). xids compare modulo 2^32.
		err := s.conn.QueryRow(ctx, `WITH s AS (SELECT pg_current_snapshot() AS s)
			SELECT EXISTS (SELECT 1 FROM s, pg_snapshot_xip(s.s) x WHERE (x::text::bigint & 4294967295) = $1)
			    OR (($1 - (pg_snapshot_xmax(s.s)::text::bigint & 4294967295)) & 4294967295) < 2147483648
			FROM s`, int64(s.txXid)).Scan(&running)
		if err != nil {
			return connectors.MarkRetryable(fmt.Errorf("wait for transaction %d to be visible: %w", s.txXid, err))
		}
		if !running {
			s.visibleXid = s.txXid
			return nil
		}
		if time.Now().After(deadline) {
			return connectors.MarkRetryable(fmt.Errorf("wait for transaction %d to be visible: still running after 30s", s.txXid))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// decodeTuple decodes a pgoutput tuple. Unchanged TOAST values are taken from
// fromOld when given; otherwise unchanged reports that some are missing.
func (r *relation) decodeTuple(tup *pglogrepl.TupleData, fromOld []any) (row []any, unchanged bool, err error) {
	if tup == nil {
		return nil, false, nil
	}
	if len(tup.Columns) != len(r.decoders) {
		return nil, false, fmt.Errorf("decode tuple of table %s: %d columns, relation has %d", r.table.ID(), len(tup.Columns), len(r.decoders))
	}
	row = make([]any, len(r.decoders))
	for i, col := range tup.Columns {
		switch col.DataType {
		case pglogrepl.TupleDataTypeText:
			if row[i], err = r.decoders[i](col.Data); err != nil {
				return nil, false, r.columnError(i, err)
			}
		case pglogrepl.TupleDataTypeToast:
			if fromOld != nil {
				row[i] = fromOld[i]
			} else {
				unchanged = true
			}
		case pglogrepl.TupleDataTypeBinary:
			return nil, false, r.columnError(i, errors.New("binary tuple data was not requested"))
		}
	}
	return row, unchanged, nil
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
