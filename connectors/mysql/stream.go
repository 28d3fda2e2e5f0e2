package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/uuid"

	"github.com/liberator-cdc/liberator/connectors"
)

// tableState is the current shape of a captured table: the *Table handed
// out with its changes, kept while the shape stays the same.
type tableState struct {
	table *connectors.Table
	cols  []column
}

// tableMapping is what a TABLE_MAP event established for a table id.
type tableMapping struct {
	ev    *replication.TableMapEvent
	state *tableState // nil for a table that is not captured
}

// maxMappings bounds the table-id cache; table ids grow with every ALTER
// and with every table the server opens.
const maxMappings = 4096

// streamState follows the binary log from one event to the next.
type streamState struct {
	// slices are the Changes slices of the batches Read returned, some
	// of which come back (Source.Recycle); kept when the state starts
	// over, and set the first time it is needed (lent).
	slices  *connectors.ChangeSlices
	file    string
	mariadb mariadbState          // MariaDB's GTID state
	mysql   *gomysql.MysqlGTIDSet // MySQL's executed set, with gtid_mode=ON
	byName  map[tableName]*tableState
	maps    map[uint64]*tableMapping

	// The open transaction.
	inTx      bool // a transaction has begun (GTID event or BEGIN)
	begun     bool // its changes end at COMMIT or XID (not a lone DDL)
	txMariaDB *gomysql.MariadbGTID
	txMySQL   *mysqlTxGTID
	txID      string
	txPos     connectors.Position
	txTime    time.Time
	txChanged bool // the transaction has captured changes
	// txHandedOut are the tables of the open transaction whose changes
	// were handed out in a batch before its end (a split transaction).
	txHandedOut map[string]bool
	// xa is the XA transaction being read, up to its PREPARE; prepared
	// are the prepared ones awaiting XA COMMIT or ROLLBACK, oldest first
	// (xa.go).
	xa       *xaTx
	prepared []*xaTx

	pending      []connectors.Change
	pendingBytes int64                    // the estimated size of pending (Change.Size)
	carry        *replication.BinlogEvent // read, to be handled by the next Read
	unreported   *Position                // a checkpoint passed with no change to carry it
	decoded      decodedRows              // the rows event being handled, read by decodeImages
	arena        textArena                // the text of decoded rows
	slab         connectors.RowSlab       // the decoded rows' values
	lastBatch    int                      // the number of changes of the last batch
	lastReturned time.Time
}

type mysqlTxGTID struct {
	sid uuid.UUID
	tag gomysql.Tag
	gno int64
}

func (st *streamState) tables() map[tableName]*tableState {
	if st.byName == nil {
		st.byName = map[tableName]*tableState{}
	}
	return st.byName
}

// startStream connects the binlog stream at s.start: by GTID state when
// the position has one and the server uses GTIDs, else by file and offset.
func (s *Source) startStream() error {
	cfg := replication.BinlogSyncerConfig{
		ServerID:                s.cfg.ServerID,
		Flavor:                  s.cfg.Flavor,
		Host:                    s.dsn.host,
		Port:                    s.dsn.port,
		User:                    s.dsn.user,
		Password:                s.dsn.password,
		Localhost:               replicaHostname,
		TimestampStringLocation: time.UTC,
		RenderJSONAsMySQLText:   true,
		HeartbeatPeriod:         heartbeatPeriod,
		ReadTimeout:             readTimeout,
		// A reconnect inside go-mysql would resume mid-transaction, without
		// the table maps; the daemon restarts from the last checkpoint
		// instead.
		DisableRetrySync: true,
		VerifyChecksum:   true,
		DiscardGTIDSet:   true,
		EventCacheCount:  eventCacheCount,
		Logger:           quietLogger(s.log),
	}
	s.events = newEventBudget(s.ctx, s.cfg.Memory.ReadAheadBytes())
	cfg.RowsEventDecodeFunc = s.decodeRowsWithin(s.events)
	if s.dsn.tls != nil {
		cfg.TLSConfig = s.dsn.tls.Clone()
	}
	s.st.file = s.start.File
	if s.cfg.Flavor == FlavorMariaDB {
		st, err := parseMariaDBState(s.start.GTID)
		if err != nil {
			return fmt.Errorf("start binlog stream: %w", err)
		}
		s.st.mariadb = st
	} else if s.setup.gtid {
		set, err := parseMySQLSet(s.start.GTID)
		if err != nil {
			return fmt.Errorf("start binlog stream: %w", err)
		}
		s.st.mysql = set
	}
	s.syncer = replication.NewBinlogSyncer(cfg)
	var err error
	if s.start.GTID != "" && s.setup.gtid {
		var set gomysql.GTIDSet
		if set, err = gomysql.ParseGTIDSet(s.cfg.Flavor, s.start.GTID); err == nil {
			s.stream, err = s.syncer.StartSyncGTID(set)
		}
	} else {
		s.stream, err = s.syncer.StartSync(gomysql.Position{Name: s.start.File, Pos: s.start.Offset})
	}
	if err != nil {
		return connectors.MarkRetryable(fmt.Errorf("start binlog stream at %s: %w", s.start, err))
	}
	s.st.lastReturned = time.Now()
	return nil
}

// decodeRowsWithin returns go-mysql's decoder of rows events: it decodes
// a rows event's rows only for a captured table, and skips the rows of
// other tables unread. Before decoding it takes the event's bytes from
// events, waiting while the events decoded ahead of the stream goroutine
// hold them all. It runs in go-mysql's reading goroutine and reads only
// the captured tables (isTracked), which the stream goroutine may add to.
func (s *Source) decodeRowsWithin(events *eventBudget) func(*replication.RowsEvent, []byte) error {
	return func(e *replication.RowsEvent, data []byte) error {
		pos, err := e.DecodeHeader(data)
		if err != nil {
			return err
		}
		if !s.isTracked(string(e.Table.Schema), string(e.Table.Table)) && !s.snaps.isSignal(e.Table) {
			return nil
		}
		if err := events.take(e, int64(len(data))); err != nil {
			return err
		}
		if plan := s.plans.of(e.Table); plan != nil && !s.snaps.isSignal(e.Table) {
			// The stream goroutine reads the rows straight into
			// neutral values (rowimage.go).
			events.keepRaw(e, rawRows{pos: pos, data: data, plan: plan})
			return nil
		}
		return e.DecodeData(pos, data)
	}
}

// readStream returns the changes of the binary log up to the next commit,
// or maxBatch of them inside a large transaction.
func (s *Source) readStream(ctx context.Context) (connectors.Batch, error) {
	for {
		ev := s.st.carry
		s.st.carry = nil
		if ev == nil {
			var err error
			if ev, err = s.nextEvent(ctx); err != nil {
				if ctx.Err() != nil {
					return connectors.Batch{}, ctx.Err()
				}
				return connectors.Batch{}, streamError(s.start, err)
			}
		}
		if re, ok := ev.Event.(*replication.RowsEvent); ok && len(s.st.pending) > 0 &&
			(len(s.st.pending)+s.rowCount(ev.Header, re) > maxBatch || s.st.pendingBytes+int64(ev.Header.EventSize) > s.batchBytes) {
			// Keep the batch within maxBatch and its byte budget (the
			// event's size stands for its changes'): this event starts
			// the next.
			s.st.carry = ev
			return s.flush(nil), nil
		}
		cp, err := s.handle(ctx, ev.Header, ev.Event)
		if err != nil {
			return connectors.Batch{}, err
		}
		if cp != nil {
			if len(s.st.pending) > 0 || s.st.txChanged {
				// A transaction split into batches ends with its
				// checkpoint even if its last batch is empty.
				return s.flush(cp), nil
			}
			s.st.unreported = cp
		}
		if _, idle := ev.Event.(*replication.HeartbeatEvent); (cp != nil || idle) && s.st.unreported != nil &&
			time.Since(s.st.lastReturned) >= idleCheckpoint {
			return s.flush(s.st.unreported), nil
		}
		if len(s.st.pending) >= maxBatch || s.st.pendingBytes >= s.batchBytes {
			return s.flush(nil), nil
		}
	}
}

// lent returns st.slices, set the first time.
func (st *streamState) lent() *connectors.ChangeSlices {
	if st.slices == nil {
		st.slices = new(connectors.ChangeSlices)
	}
	return st.slices
}

// add appends c to the pending changes.
func (st *streamState) add(c connectors.Change) {
	if st.pending == nil {
		// Batches tend to be alike: start at the last one's size, in
		// a slice handed back (Source.Recycle) if one has that room.
		st.pending = st.lent().Take(min(max(st.lastBatch, 16), maxBatch))
	}
	st.pending = append(st.pending, c)
	st.pendingBytes += c.Size()
}

// rowCount is the number of changes a rows event makes.
func (s *Source) rowCount(h *replication.EventHeader, e *replication.RowsEvent) int {
	n := len(e.Rows)
	if d := s.decoded(h, e); d.images != nil {
		n = len(d.images)
	}
	if e.Type() == replication.EnumRowsEventTypeUpdate {
		return n / 2
	}
	return n
}

// decodedRows are the row images of the rows event being handled, read by
// decodeImages.
type decodedRows struct {
	e      *replication.RowsEvent
	images [][]any // nil: the rows are go-mysql's, in e.Rows
	err    error
}

// decoded returns the neutral row images of a rows event whose rows the
// binlog reader left undecoded, reading them the first time. A rows event
// that decodeImages cannot read (a compressed one, a partial JSON update)
// is decoded by go-mysql into e.Rows, and so is one of a table without
// captured columns.
func (s *Source) decoded(h *replication.EventHeader, e *replication.RowsEvent) *decodedRows {
	st := &s.st
	if st.decoded.e == e {
		return &st.decoded
	}
	st.decoded = decodedRows{e: e}
	if s.events == nil {
		return &st.decoded
	}
	raw, ok := s.events.takeRaw(e)
	m := st.maps[e.TableID]
	if !ok || m == nil || m.state == nil {
		// Rows of a table whose changes are not captured stay unread.
		return &st.decoded
	}
	if !plainRowsEvent(h.EventType) {
		st.decoded.err = e.DecodeData(raw.pos, raw.data)
		return &st.decoded
	}
	st.decoded.images, st.decoded.err = decodeImages(e, raw, m.state.cols, &st.arena, &st.slab)
	if st.decoded.err == nil && st.decoded.images == nil {
		st.decoded.images = [][]any{}
	}
	return &st.decoded
}

// Recycle takes back the Changes slice of a batch Read returned, for a
// later batch (connectors.Recycler).
func (s *Source) Recycle(b connectors.Batch) {
	if l := s.st.slices; l != nil {
		l.GiveBack(b.Changes)
	}
}

// flush returns the pending changes with cp as their checkpoint.
func (s *Source) flush(cp *Position) connectors.Batch {
	st := &s.st
	for _, c := range st.pending {
		if c.Op == connectors.OpRead {
			continue
		}
		// A change counts for an incremental snapshot's window once it
		// is published, not when its row event was read: a rolled-back
		// or only prepared change never touches a chunk.
		s.noteChange(c.Table, c.After, c.Before)
		if cp == nil && st.inTx {
			if st.txHandedOut == nil {
				st.txHandedOut = map[string]bool{}
			}
			st.txHandedOut[c.Table.ID()] = true
		}
	}
	b := connectors.Batch{Changes: s.st.pending, Reconcile: s.snaps.TakeMarks()}
	if cp != nil {
		b.Checkpoint = s.decorate(*cp)
		s.st.unreported = nil
		s.st.txChanged = false
	}
	s.st.lastBatch = len(s.st.pending)
	s.st.lent().Lend(s.st.pending)
	s.st.pending, s.st.pendingBytes = nil, 0
	s.st.lastReturned = time.Now()
	return b
}

// handle applies one event. It returns the checkpoint when the event ends
// a transaction.
func (s *Source) handle(ctx context.Context, h *replication.EventHeader, ev replication.Event) (*Position, error) {
	st := &s.st
	switch e := ev.(type) {
	case *replication.RotateEvent:
		st.file = string(e.NextLogName)
	case *replication.MariadbGTIDEvent:
		g := e.GTID
		s.beginTx(h, g.String(), e.IsStandalone())
		st.txMariaDB = &g
		if e.Flags&mariadbFlPreparedXA != 0 {
			s.startXA()
		}
	case *replication.GenericEvent:
		if h.EventType != replication.XA_PREPARE_LOG_EVENT {
			return nil, nil
		}
		onePhase, xid, err := parseXAPrepare(e.Data)
		if err != nil {
			return nil, fmt.Errorf("read binlog event: %w", err)
		}
		s.prepareXA(onePhase, xid)
		return s.commit(h), nil
	case *replication.GTIDEvent:
		s.beginMySQLTx(h, e, gomysql.Tag{})
	case *replication.GtidTaggedLogEvent:
		s.beginMySQLTx(h, &e.GTIDEvent, e.Tag)
	case *replication.QueryEvent:
		q := strings.TrimSpace(string(e.Query))
		if xs, ok, err := parseXAStatement(q); ok {
			if err != nil {
				return nil, fmt.Errorf("read binlog event: %w", err)
			}
			return s.xaStatement(h, xs), nil
		}
		switch {
		case strings.EqualFold(q, "BEGIN"):
			if !st.inTx {
				s.beginTx(h, "", false)
			}
			st.begun = true
		case strings.EqualFold(q, "COMMIT"):
			return s.commit(h), nil
		case hasPrefixFold(q, "ROLLBACK") && !hasPrefixFold(q, "ROLLBACK TO"):
			if err := s.rollback(ctx); err != nil {
				return nil, err
			}
			return s.commit(h), nil
		case !st.begun:
			// A statement outside BEGIN..COMMIT is a transaction of its
			// own: DDL.
			s.noteDDL(q)
			return s.commit(h), nil
		}
	case *replication.XIDEvent:
		return s.commit(h), nil
	case *replication.TableMapEvent:
		return nil, s.mapTable(ctx, e)
	case *replication.RowsEvent:
		if s.snaps.isSignal(e.Table) {
			s.handleSignal(e)
			return nil, nil
		}
		return nil, s.rows(h, e)
	case *replication.TransactionPayloadEvent:
		// MySQL's binlog_transaction_compression: a whole transaction in
		// one event.
		var cp *Position
		for _, inner := range e.Events {
			c, err := s.handle(ctx, inner.Header, inner.Event)
			if err != nil {
				return nil, err
			}
			if c != nil {
				cp = c
			}
		}
		if cp != nil {
			cp.Offset = h.LogPos
		}
		return cp, nil
	}
	return nil, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (s *Source) beginMySQLTx(h *replication.EventHeader, e *replication.GTIDEvent, tag gomysql.Tag) {
	if h.EventType == replication.ANONYMOUS_GTID_EVENT {
		s.beginTx(h, "", false)
		return
	}
	s.beginTx(h, mysqlGTID(e.SID, tag, e.GNO), false)
	if u, err := uuid.FromBytes(e.SID); err == nil {
		s.st.txMySQL = &mysqlTxGTID{sid: u, tag: tag, gno: e.GNO}
	}
	if e.OriginalCommitTimestamp != 0 {
		s.st.txTime = time.UnixMicro(int64(e.OriginalCommitTimestamp)).UTC()
	}
}

// beginTx starts a transaction at the event h. gtid is its GTID, if any;
// without one, the transaction is named by its file and offset. A MariaDB
// GTID event of a DML transaction stands for BEGIN.
func (s *Source) beginTx(h *replication.EventHeader, gtid string, standalone bool) {
	st := &s.st
	start := Position{Flavor: s.cfg.Flavor, File: st.file, Offset: h.LogPos - h.EventSize}
	st.inTx = true
	st.begun = s.cfg.Flavor == FlavorMariaDB && gtid != "" && !standalone
	st.txMariaDB, st.txMySQL = nil, nil
	st.txPos = start
	st.txID = gtid
	if gtid == "" {
		st.txID = start.String()
	}
	st.txTime = time.Unix(int64(h.Timestamp), 0).UTC()
	st.txChanged = false
	st.txHandedOut = nil
	st.xa = nil
}

// commit ends the open transaction at event h and returns the position
// after it, where the next transaction starts.
func (s *Source) commit(h *replication.EventHeader) *Position {
	st := &s.st
	if st.xa != nil {
		// An XA transaction that ended without its PREPARE cannot
		// happen; publishing keeps a committed change rather than lose it.
		s.publishXA(st.xa)
		st.xa = nil
	}
	st.txHandedOut = nil
	if st.txMariaDB != nil && st.mariadb != nil {
		st.mariadb[st.txMariaDB.DomainID] = *st.txMariaDB
	}
	if st.txMySQL != nil && st.mysql != nil {
		st.mysql.AddGTIDWithTag(st.txMySQL.sid, st.txMySQL.tag, st.txMySQL.gno)
	}
	st.inTx, st.begun = false, false
	st.txMariaDB, st.txMySQL = nil, nil
	cp := &Position{Flavor: s.cfg.Flavor, File: st.file, Offset: h.LogPos}
	switch {
	case st.mariadb != nil:
		cp.GTID = st.mariadb.String()
	case st.mysql != nil:
		cp.GTID = st.mysql.String()
	}
	if len(st.maps) > maxMappings {
		st.maps = nil
	}
	if held := st.held(); held != nil {
		// A prepared XA transaction is not published yet: a restart must
		// read its PREPARE again (xa.go).
		return held
	}
	return cp
}

// xaStatement applies an XA statement of the binary log and returns the
// checkpoint when it ends an event group.
func (s *Source) xaStatement(h *replication.EventHeader, xs xaStatement) *Position {
	st := &s.st
	switch xs.verb {
	case "START", "BEGIN":
		// MySQL: the XA transaction's first event after its GTID.
		if !st.inTx {
			s.beginTx(h, "", false)
		}
		st.begun = true
		if st.xa == nil {
			s.startXA()
		}
		return nil
	case "COMMIT":
		if xs.onePhase && st.xa != nil {
			s.prepareXA(true, xs.xid)
		} else {
			s.resolveXA(true, xs.xid)
		}
		return s.commit(h)
	case "ROLLBACK":
		s.resolveXA(false, xs.xid)
		return s.commit(h)
	}
	// XA END comes before the XA_PREPARE event that ends the group.
	return nil
}

// mapTable records what a TABLE_MAP event says about a table id. A
// captured table's shape is derived from the event's own metadata; the
// *Table stays the same while that shape does.
func (s *Source) mapTable(ctx context.Context, e *replication.TableMapEvent) error {
	st := &s.st
	if m, ok := st.maps[e.TableID]; ok && sameTableMap(m.ev, e) {
		return nil
	}
	if st.maps == nil {
		st.maps = map[uint64]*tableMapping{}
	}
	name := tableName{string(e.Schema), string(e.Table)}
	if !s.isTracked(name.db, name.name) {
		st.maps[e.TableID] = &tableMapping{ev: e}
		return nil
	}
	var info tableSchema
	err := s.metaRun(ctx, func(c *client.Conn) error {
		var err error
		info, err = readTable(ctx, c, s.cfg.Flavor, name)
		return err
	})
	if err != nil && !errors.Is(err, ErrTableNotFound) && !errors.Is(err, ErrNoPrimaryKey) {
		// Today's schema only supplies type spellings; a table dropped
		// since is still decoded from the binlog.
		return connectors.MarkRetryable(fmt.Errorf("read binlog event: table map of %s: %w", name, err))
	}
	cols, key, err := columnsFromTableMap(tableMeta{ev: e, collations: s.collations, keyColumns: s.cfg.KeyColumns[name.String()], published: s.cfg.PublishedColumns[name.String()]}, info.byName())
	if err != nil {
		return fmt.Errorf("read binlog event: table map of %s: %w", name, err)
	}
	delete(s.engines, name) // ALTER TABLE ... ENGINE gives a new table id
	t := &connectors.Table{Schema: name.db, Name: name.name, Columns: make([]connectors.Column, len(cols)), Key: key}
	for i := range cols {
		t.Columns[i] = cols[i].Column
	}
	ts := st.tables()[name]
	if ts == nil || !connectors.SameShape(ts.table, t) {
		if ts != nil {
			s.log.Info("table shape changed", "table", name.String())
		}
		ts = &tableState{table: t}
		st.tables()[name] = ts
	}
	// The columns carry this event's ENUM and SET values and character
	// sets, which the shape does not show.
	st.maps[e.TableID] = &tableMapping{ev: e, state: &tableState{table: ts.table, cols: cols}}
	return nil
}

// sameTableMap reports whether two TABLE_MAP events describe the same
// table the same way.
func sameTableMap(a, b *replication.TableMapEvent) bool {
	eq2 := func(x, y [][]byte) bool { return slices.EqualFunc(x, y, bytes.Equal) }
	eq3 := func(x, y [][][]byte) bool { return slices.EqualFunc(x, y, eq2) }
	return a.TableID == b.TableID &&
		bytes.Equal(a.Schema, b.Schema) && bytes.Equal(a.Table, b.Table) &&
		bytes.Equal(a.ColumnType, b.ColumnType) && slices.Equal(a.ColumnMeta, b.ColumnMeta) &&
		bytes.Equal(a.NullBitmap, b.NullBitmap) && bytes.Equal(a.SignednessBitmap, b.SignednessBitmap) &&
		slices.Equal(a.DefaultCharset, b.DefaultCharset) && slices.Equal(a.ColumnCharset, b.ColumnCharset) &&
		eq2(a.ColumnName, b.ColumnName) && eq3(a.SetStrValue, b.SetStrValue) && eq3(a.EnumStrValue, b.EnumStrValue) &&
		slices.Equal(a.GeometryType, b.GeometryType) && slices.Equal(a.PrimaryKey, b.PrimaryKey) &&
		slices.Equal(a.PrimaryKeyPrefix, b.PrimaryKeyPrefix) &&
		slices.Equal(a.EnumSetDefaultCharset, b.EnumSetDefaultCharset) &&
		slices.Equal(a.EnumSetColumnCharset, b.EnumSetColumnCharset) &&
		bytes.Equal(a.VisibilityBitmap, b.VisibilityBitmap)
}

// rows turns a rows event of a captured table into changes.
func (s *Source) rows(h *replication.EventHeader, e *replication.RowsEvent) error {
	st := &s.st
	d := *s.decoded(h, e)
	st.decoded = decodedRows{}
	m := st.maps[e.TableID]
	if m == nil || m.state == nil {
		return nil
	}
	if d.err != nil {
		return fmt.Errorf("read binlog event: rows of %s: %w", m.state.table.ID(), d.err)
	}
	if d.images == nil && e.Rows == nil {
		return nil
	}
	if !st.inTx {
		// Rows outside a transaction's start (a stream that began in the
		// middle of one cannot happen: positions are transaction starts).
		s.beginTx(h, "", false)
	}
	ts := m.state
	name := ts.table.ID()
	change := func(op connectors.Op, after, before []any) {
		c := connectors.Change{
			Op: op, Table: ts.table, After: after, Before: before,
			Pos: st.txPos, CommitTime: st.txTime, TxID: st.txID,
		}
		if st.xa != nil {
			st.xa.add(c, s.batchBytes)
			return
		}
		st.txChanged = true
		st.add(c)
	}
	if d.images != nil {
		return neutralRows(e.Type(), ts.table, d.images, change)
	}
	switch e.Type() {
	case replication.EnumRowsEventTypeInsert:
		for _, r := range e.Rows {
			after, err := rowFromBinlog(ts.cols, r)
			if err != nil {
				return fmt.Errorf("read binlog event: insert into %s: %w", name, err)
			}
			change(connectors.OpCreate, after, nil)
		}
	case replication.EnumRowsEventTypeDelete:
		for _, r := range e.Rows {
			before, err := rowFromBinlog(ts.cols, r)
			if err != nil {
				return fmt.Errorf("read binlog event: delete from %s: %w", name, err)
			}
			change(connectors.OpDelete, nil, before)
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(e.Rows)%2 != 0 {
			return fmt.Errorf("read binlog event: update of %s has %d row images", name, len(e.Rows))
		}
		for i := 0; i < len(e.Rows); i += 2 {
			after, err := rowFromBinlog(ts.cols, e.Rows[i+1])
			if err != nil {
				return fmt.Errorf("read binlog event: update of %s: %w", name, err)
			}
			before, changed, err := keyChange(ts, e.Rows[i], after)
			if err != nil {
				return fmt.Errorf("read binlog event: update of %s: %w", name, err)
			}
			if !changed {
				before = nil
			}
			change(connectors.OpUpdate, after, before)
		}
	}
	return nil
}

// neutralRows makes the changes of row images read by decodeImages: an
// update's before image goes with it only when the update moved the row
// to another primary key.
func neutralRows(typ replication.EnumRowsEventType, t *connectors.Table, images [][]any, change func(op connectors.Op, after, before []any)) error {
	switch typ {
	case replication.EnumRowsEventTypeInsert:
		for _, r := range images {
			change(connectors.OpCreate, r, nil)
		}
	case replication.EnumRowsEventTypeDelete:
		for _, r := range images {
			change(connectors.OpDelete, nil, r)
		}
	case replication.EnumRowsEventTypeUpdate:
		if len(images)%2 != 0 {
			return fmt.Errorf("read binlog event: update of %s has %d row images", t.ID(), len(images))
		}
		for i := 0; i < len(images); i += 2 {
			before, after := images[i], images[i+1]
			if connectors.KeyEqual(t, before, after) {
				before = nil
			}
			change(connectors.OpUpdate, after, before)
		}
	}
	return nil
}

// keyChange converts an update's before image if the update moved the row
// to another primary key. It converts the key columns first, and the
// whole image only when they differ.
func keyChange(ts *tableState, raw []any, after []any) ([]any, bool, error) {
	key := make([]any, len(ts.cols))
	for _, k := range ts.table.Key {
		v, err := ts.cols[k].fromBinlog(raw[k])
		if err != nil {
			return nil, false, err
		}
		key[k] = v
	}
	if connectors.KeyEqual(ts.table, key, after) {
		return nil, false, nil
	}
	before, err := rowFromBinlog(ts.cols, raw)
	return before, true, err
}
