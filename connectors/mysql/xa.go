package mysql

// # ROLLBACK and XA
//
// Nothing that the server rolled back is published.
//
// A ROLLBACK query event ends an event group when a transaction that
// changed a non-transactional table (MyISAM, Aria, MEMORY) was rolled
// back: the server keeps the non-transactional changes and undoes the
// others, and so does the stream. A table's engine, and whether it can
// roll back, comes from information_schema (ENGINES.TRANSACTIONS), cached
// per table. MariaDB 10.11 in ROW format writes no such group (seen
// here): the non-transactional changes of a rolled-back transaction arrive
// as event groups of their own that end in COMMIT, and the transactional
// ones are not logged at all. MySQL writes one when a statement changed
// both kinds of table. When part of a rolled-back transaction was handed
// out already (a transaction of more than a batch of changes is split), the
// transactional tables it touched are re-snapshotted with reconcile, which
// undoes what was published.
//
// XA: MariaDB 10.5 and later, and MySQL, log XA PREPARE as an event group
// of its own (MariaDB: a GTID event flagged FL_PREPARED_XA, the rows, "XA
// END", an XA_PREPARE event; MySQL: "XA START", the rows, "XA END", an
// XA_PREPARE event), and XA COMMIT or XA ROLLBACK later as a group with
// one query, possibly after other transactions. A prepared transaction's
// changes are kept in memory, up to a batch each (maxBatch changes or the
// batch's byte budget, Config.Memory; more are dropped and the touched tables are re-snapshotted with reconcile at the
// commit instead), and published at its XA COMMIT, in the commit's place
// in the stream; XA ROLLBACK drops them. XA COMMIT ... ONE PHASE is an
// ordinary commit (MariaDB logs it as one; MySQL as an XA_PREPARE event
// with one_phase set).
//
// While a transaction is prepared, checkpoints stay at the position where
// the first prepared transaction began, so that a restart reads its
// PREPARE again and can publish it at its COMMIT: the stream after it is
// then read again too (at least once, as after any restart). This holds
// for every prepared transaction, also one that changed no captured table:
// otherwise a restart could not tell it from one prepared before the
// stream began. An XA COMMIT of a transaction whose PREPARE the stream
// never saw (prepared before a snapshot's position, or before the end of
// the log where the stream began) may have changed any captured table:
// every table is re-snapshotted with reconcile.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/liberator-cdc/liberator/connectors"
)

// MariaDB's GTID event flags for XA (log_event.h); go-mysql names the
// others.
const (
	mariadbFlPreparedXA  = 64
	mariadbFlCompletedXA = 128
)

// xaTx is an XA transaction from its start to its XA COMMIT or ROLLBACK.
type xaTx struct {
	xid string // canonical form, see formatXID
	// changes are its captured changes while they fit in a batch (maxBatch
	// changes and bytes of Change.Size); tables are the captured tables it
	// changed, all of them.
	changes  []connectors.Change
	bytes    int64
	tables   map[string]bool
	overflow bool // changes were dropped
	// start is where its event group began: where a restart must read
	// again while it is prepared.
	start Position
	txID  string
}

// add keeps c, unless the changes kept would pass maxBatch or maxBytes:
// then it drops them all and marks the transaction overflowed.
func (x *xaTx) add(c connectors.Change, maxBytes int64) {
	if x.tables == nil {
		x.tables = map[string]bool{}
	}
	x.tables[c.Table.ID()] = true
	if x.overflow {
		return
	}
	size := c.Size()
	if len(x.changes) >= maxBatch || (len(x.changes) > 0 && x.bytes+size > maxBytes) {
		x.changes, x.bytes, x.overflow = nil, 0, true
		return
	}
	x.changes = append(x.changes, c)
	x.bytes += size
}

// formatXID is the canonical form of an XID: X'gtrid',X'bqual',formatID
// in lower-case hex, as the server writes it in XA COMMIT and ROLLBACK.
func formatXID(formatID int64, gtrid, bqual []byte) string {
	return "X'" + hex.EncodeToString(gtrid) + "',X'" + hex.EncodeToString(bqual) + "'," + strconv.FormatInt(formatID, 10)
}

// parseXAPrepare reads the body of an XA_PREPARE event: one_phase (1
// byte), formatID, gtrid_length and bqual_length (4 bytes each, little
// endian), then gtrid and bqual.
func parseXAPrepare(data []byte) (onePhase bool, xid string, err error) {
	if len(data) < 13 {
		return false, "", fmt.Errorf("XA_PREPARE event of %d bytes", len(data))
	}
	formatID := int32(binary.LittleEndian.Uint32(data[1:]))
	gl, bl := binary.LittleEndian.Uint32(data[5:]), binary.LittleEndian.Uint32(data[9:])
	if gl > 64 || bl > 64 || uint64(len(data)) < 13+uint64(gl)+uint64(bl) {
		return false, "", fmt.Errorf("XA_PREPARE event with gtrid of %d and bqual of %d bytes in %d bytes", gl, bl, len(data))
	}
	return data[0] != 0, formatXID(int64(formatID), data[13:13+gl], data[13+gl:13+gl+bl]), nil
}

// xaStatement is an XA statement of the binary log.
type xaStatement struct {
	verb     string // START, END, COMMIT, ROLLBACK (upper case)
	xid      string // canonical; empty for START and END
	onePhase bool
}

// parseXAStatement reads "XA COMMIT X'..',X'..',1 [ONE PHASE]" and the
// like; ok is false for a query that is not an XA statement.
func parseXAStatement(q string) (st xaStatement, ok bool, err error) {
	rest, found := cutPrefixFold(strings.TrimSpace(q), "XA ")
	if !found {
		return st, false, nil
	}
	rest = strings.TrimSpace(rest)
	verb, args, _ := strings.Cut(rest, " ")
	st.verb = strings.ToUpper(verb)
	switch st.verb {
	case "START", "BEGIN", "END", "PREPARE":
		return st, true, nil
	case "COMMIT", "ROLLBACK":
	default:
		return st, false, nil
	}
	args = strings.TrimSpace(args)
	if a, found := cutSuffixFold(args, " ONE PHASE"); found {
		args, st.onePhase = strings.TrimSpace(a), true
	}
	st.xid, err = parseXID(args)
	return st, true, err
}

// parseXID reads an XID as "gtrid[,bqual[,formatID]]", each string either
// X'hex' or quoted, and returns its canonical form.
func parseXID(s string) (string, error) {
	var parts [2][]byte
	formatID := int64(1)
	rest := s
	for i := 0; ; i++ {
		rest = strings.TrimSpace(rest)
		if i == 2 {
			n, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				return "", fmt.Errorf("xid %q: format id %q", s, rest)
			}
			formatID = n
			break
		}
		var err error
		if parts[i], rest, err = xidString(rest); err != nil {
			return "", fmt.Errorf("xid %q: %w", s, err)
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' {
			return "", fmt.Errorf("xid %q: %q after a part", s, rest)
		}
		rest = rest[1:]
	}
	return formatXID(formatID, parts[0], parts[1]), nil
}

// xidString reads X'hex' or a quoted string at the start of s.
func xidString(s string) ([]byte, string, error) {
	if len(s) >= 2 && (s[0] == 'X' || s[0] == 'x') && s[1] == '\'' {
		end := strings.IndexByte(s[2:], '\'')
		if end < 0 {
			return nil, "", errors.New("unterminated hex string")
		}
		b, err := hex.DecodeString(s[2 : 2+end])
		return b, s[3+end:], err
	}
	if len(s) >= 1 && (s[0] == '\'' || s[0] == '"') {
		q := s[0]
		var b []byte
		for i := 1; i < len(s); i++ {
			switch {
			case s[i] == '\\' && i+1 < len(s):
				i++
				b = append(b, s[i])
			case s[i] == q && i+1 < len(s) && s[i+1] == q:
				i++
				b = append(b, q)
			case s[i] == q:
				return b, s[i+1:], nil
			default:
				b = append(b, s[i])
			}
		}
		return nil, "", errors.New("unterminated string")
	}
	return nil, "", fmt.Errorf("%q is not a string", s)
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if hasPrefixFold(s, prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func cutSuffixFold(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix) {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

// startXA makes the open transaction an XA transaction: its changes are
// kept apart until its XA COMMIT.
func (s *Source) startXA() {
	st := &s.st
	st.xa = &xaTx{txID: st.txID, start: s.txStart()}
}

// txStart is the position at which the open transaction began, with the
// GTID state before it.
func (s *Source) txStart() Position {
	st := &s.st
	at, _ := st.txPos.(Position)
	p := Position{Flavor: s.cfg.Flavor, File: at.File, Offset: at.Offset}
	switch {
	case st.mariadb != nil:
		p.GTID = st.mariadb.String()
	case st.mysql != nil:
		p.GTID = st.mysql.String()
	}
	return p
}

// prepareXA ends the XA transaction's PREPARE group: its changes wait for
// XA COMMIT, or, for a one-phase commit, are published now.
func (s *Source) prepareXA(onePhase bool, xid string) {
	st := &s.st
	x := st.xa
	st.xa = nil
	if x == nil {
		// A PREPARE of a transaction whose start the stream did not see
		// cannot happen: positions are transaction starts.
		x = &xaTx{txID: st.txID, start: s.txStart()}
	}
	x.xid = xid
	if onePhase {
		s.publishXA(x)
		return
	}
	st.prepared = append(st.prepared, x)
	s.log.Debug("XA transaction prepared; its changes wait for its XA COMMIT", "xid", xid, "changes", len(x.changes), "position", x.start.String())
}

// resolveXA applies XA COMMIT or XA ROLLBACK of xid.
func (s *Source) resolveXA(commit bool, xid string) {
	st := &s.st
	i := slices.IndexFunc(st.prepared, func(x *xaTx) bool { return x.xid == xid })
	if i < 0 {
		if commit {
			s.log.Warn("XA COMMIT of a transaction prepared before the stream began: its changes cannot be read; snapshotting every table again with reconcile",
				"xid", xid, "tables", s.snaps.Tables)
			s.snaps.Reconcile(s.snaps.Tables...)
		}
		return
	}
	x := st.prepared[i]
	st.prepared = slices.Delete(st.prepared, i, i+1)
	if commit {
		s.publishXA(x)
	}
}

// publishXA adds an XA transaction's changes to the open transaction, the
// commit's group.
func (s *Source) publishXA(x *xaTx) {
	st := &s.st
	if x.overflow {
		tables := make([]string, 0, len(x.tables))
		for t := range x.tables {
			tables = append(tables, t)
		}
		slices.Sort(tables)
		s.log.Warn("XA transaction committed with more changes than liberator keeps in memory; snapshotting the tables it changed again with reconcile",
			"xid", x.xid, "tables", tables)
		s.snaps.Reconcile(tables...)
		return
	}
	for _, c := range x.changes {
		c.Pos, c.CommitTime = st.txPos, st.txTime
		st.add(c)
		st.txChanged = true
	}
}

// held returns the position a checkpoint stays at while a transaction is
// prepared, or nil.
func (st *streamState) held() *Position {
	if len(st.prepared) == 0 {
		return nil
	}
	p := st.prepared[0].start
	return &p
}

// rollback ends a transaction that the server rolled back: the changes of
// non-transactional tables stay, the others are dropped. Transactional
// tables whose changes were handed out already are re-snapshotted with
// reconcile.
func (s *Source) rollback(ctx context.Context) error {
	st := &s.st
	kept := st.pending[:0]
	for _, c := range st.pending {
		if c.Op != connectors.OpRead {
			tx, err := s.transactional(ctx, c.Table)
			if err != nil {
				return err
			}
			if tx {
				continue
			}
		}
		kept = append(kept, c)
	}
	clear(st.pending[len(kept):])
	st.pending, st.pendingBytes = kept, 0
	for i := range kept {
		st.pendingBytes += kept[i].Size()
	}
	st.xa = nil
	var redo []string
	for t := range st.txHandedOut {
		tn, _ := parseTableName(t)
		tx, err := s.transactional(ctx, &connectors.Table{Schema: tn.db, Name: tn.name})
		if err != nil {
			return err
		}
		if tx {
			redo = append(redo, t)
		}
	}
	if len(redo) > 0 {
		slices.Sort(redo)
		s.log.Warn("a rolled-back transaction was partly published before its ROLLBACK; snapshotting the tables it changed again with reconcile",
			"tables", redo, "transaction", st.txID)
		s.snaps.Reconcile(redo...)
	}
	return nil
}

// transactional reports whether a table's engine rolls back (InnoDB does,
// MyISAM and Aria do not), from information_schema, cached per table. A
// table that is gone is taken as transactional, as InnoDB is the default.
func (s *Source) transactional(ctx context.Context, t *connectors.Table) (bool, error) {
	name := tableName{t.Schema, t.Name}
	if v, ok := s.engines[name]; ok {
		return v, nil
	}
	var rows [][]string
	err := s.metaRun(ctx, func(c *client.Conn) error {
		var err error
		rows, err = run(ctx, c, `SELECT t.ENGINE, COALESCE(e.TRANSACTIONS, '') FROM information_schema.TABLES t
LEFT JOIN information_schema.ENGINES e ON e.ENGINE = t.ENGINE WHERE t.TABLE_SCHEMA = ? AND t.TABLE_NAME = ?`, name.db, name.name)
		return err
	})
	if err != nil {
		return false, connectors.MarkRetryable(fmt.Errorf("read binlog event: engine of %s: %w", name, err))
	}
	tx := parseTransactional(rows)
	if s.engines == nil {
		s.engines = map[tableName]bool{}
	}
	s.engines[name] = tx
	return tx, nil
}

// parseTransactional reads the engine and ENGINES.TRANSACTIONS of a table.
func parseTransactional(rows [][]string) bool {
	if len(rows) != 1 || len(rows[0]) != 2 {
		return true
	}
	if v := rows[0][1]; v != "" {
		return strings.EqualFold(v, "YES")
	}
	switch strings.ToLower(rows[0][0]) {
	case "myisam", "aria", "memory", "csv", "archive", "mrg_myisam", "blackhole", "heap":
		return false
	}
	return true
}
