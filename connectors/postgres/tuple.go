package postgres

// Row messages (Insert, Update, Delete) are most of what the stream
// carries, so they are parsed here straight from the received bytes:
// pglogrepl.Parse copies every column into an allocation of its own, and
// the rows are decoded again after that. The general path (handleMessage
// through pglogrepl) stays for everything else, and for the rare update
// that needs its unchanged TOAST values read back from the table.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// errShortTuple is wrapped by the error for a row message that ends early.
var errShortTuple = errors.New("row message ends early")

// textColumns marks the columns whose value is their text itself (strings,
// UUIDs, JSON, and decimals, which go on as their text): decodeText carves
// them out of one string per row.
func textColumns(t *connectors.Table, skipped []bool) []bool {
	text := make([]bool, len(t.Columns))
	for i, c := range t.Columns {
		if skipped != nil && skipped[i] {
			continue
		}
		switch c.Type.Kind {
		case connectors.KindString, connectors.KindUUID, connectors.KindJSON, connectors.KindDecimal:
			text[i] = true
		}
	}
	return text
}

// decodeText decodes a text-format row (nil is NULL) into row, which has a
// value per column; the columns with a type OID in bin (which may be nil)
// are in binary (decodeBinary). The values of the text columns share one
// allocation, and with a slab the text and the boxed values of common
// types come from it (connectors.RowSlab); the caller then counts the
// row's bytes with slab.Used.
func (r *relation) decodeText(row []any, vals [][]byte, bin []uint32, slab *connectors.RowSlab) error {
	n := 0
	if r.text != nil {
		for i, v := range vals {
			if v != nil && r.text[i] {
				n += len(v)
			}
		}
	}
	var all string
	if n > 0 {
		buf := slab.Text(n)
		for i, v := range vals {
			if v != nil && r.text[i] {
				buf = append(buf, v...)
			}
		}
		all = unsafe.String(unsafe.SliceData(buf), len(buf))
	}
	off := 0
	for i, v := range vals {
		if v == nil {
			continue
		}
		if r.text != nil && r.text[i] {
			if len(v) == 0 && r.table.Columns[i].Type.Kind == connectors.KindDecimal {
				return r.columnError(i, fmt.Errorf("%w: numeric %q", errBadText, v))
			}
			row[i] = slab.String(all[off : off+len(v)])
			off += len(v)
			continue
		}
		if bin != nil && bin[i] != 0 {
			var err error
			if row[i], err = decodeBinary(bin[i], v, slab); err != nil {
				return r.columnError(i, err)
			}
			continue
		}
		if slab != nil && (r.skipped == nil || !r.skipped[i]) {
			if val, ok := decodeInSlab(r.table.Columns[i].Type.Kind, v, slab); ok {
				row[i] = val
				continue
			}
		}
		var err error
		if row[i], err = r.decoders[i](v); err != nil {
			return r.columnError(i, err)
		}
	}
	return nil
}

// decodeInSlab decodes the common integer-valued kinds with their boxed
// value taken from slab. It reports false for the other kinds, and for a
// text it does not take as a plain value (one in error, out of range or
// infinite), which the column's decoder then decodes as it always does.
func decodeInSlab(k connectors.Kind, v []byte, slab *connectors.RowSlab) (any, bool) {
	switch k {
	case connectors.KindInt64:
		if n, err := strconv.ParseInt(str(v), 10, 64); err == nil {
			return slab.Int64(n), true
		}
	case connectors.KindInt32:
		if n, err := strconv.ParseInt(str(v), 10, 32); err == nil {
			return slab.Int32(int32(n)), true
		}
	case connectors.KindTimestamp, connectors.KindLocalTimestamp:
		days, clock, off, ok := parseTimestamp(str(v), k == connectors.KindTimestamp)
		if !ok {
			return nil, false
		}
		if us, ok := timestampMicros(days, clock, off); ok {
			return slab.Int64(us), true
		}
	case connectors.KindDate:
		y, m, d, rest, ok := parseYMD(str(v))
		if !ok || rest != "" {
			return nil, false
		}
		if days := connectors.DaysFromCivil(y, m, d); days > minusInfinityDate && days < infinityDate {
			return slab.Int32(int32(days)), true
		}
	}
	return nil, false
}

// rawTuple is a pgoutput TupleData as received: vals[i] is the text of
// column i, nil for NULL and for an unchanged TOAST value (toast[i]). The
// values alias the received message.
type rawTuple struct {
	vals     [][]byte
	toast    []bool
	anyToast bool
	binary   bool
}

// parse reads a TupleData from src into t and returns what follows it.
func (t *rawTuple) parse(src []byte) ([]byte, error) {
	if len(src) < 2 {
		return nil, errShortTuple
	}
	n := int(binary.BigEndian.Uint16(src))
	src = src[2:]
	if cap(t.vals) < n {
		t.vals, t.toast = make([][]byte, n), make([]bool, n)
	}
	t.vals, t.toast = t.vals[:n], t.toast[:n]
	t.anyToast, t.binary = false, false
	for i := range n {
		if len(src) < 1 {
			return nil, errShortTuple
		}
		kind := src[0]
		src = src[1:]
		t.vals[i], t.toast[i] = nil, false
		switch kind {
		case pglogrepl.TupleDataTypeNull:
		case pglogrepl.TupleDataTypeToast:
			t.toast[i], t.anyToast = true, true
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			if len(src) < 4 {
				return nil, errShortTuple
			}
			l := int(binary.BigEndian.Uint32(src))
			src = src[4:]
			if l < 0 || len(src) < l {
				return nil, errShortTuple
			}
			t.vals[i] = src[:l:l]
			src = src[l:]
			t.binary = t.binary || kind == pglogrepl.TupleDataTypeBinary
		default:
			return nil, fmt.Errorf("row message: unknown column kind %q", kind)
		}
	}
	return src, nil
}

// decodeRaw decodes t as a row of r. Unchanged TOAST values are taken from
// fromOld when given; otherwise unchanged reports that some are missing.
func (r *relation) decodeRaw(t *rawTuple, fromOld []any, slab *connectors.RowSlab) (row []any, unchanged bool, err error) {
	if len(t.vals) != len(r.decoders) {
		return nil, false, fmt.Errorf("decode tuple of table %s: %d columns, relation has %d", r.table.ID(), len(t.vals), len(r.decoders))
	}
	row = slab.Row(len(r.decoders))
	if err := r.decodeText(row, t.vals, nil, slab); err != nil {
		return nil, false, err
	}
	slab.Used(valueBytes(t.vals))
	if t.anyToast {
		for i, toast := range t.toast {
			switch {
			case !toast, r.skipped != nil && r.skipped[i]:
			case fromOld != nil:
				row[i] = fromOld[i]
			default:
				unchanged = true
			}
		}
	}
	return row, unchanged, nil
}

// rowReader is the stream's state for row messages: the tuples it parses
// into and the slab its rows come from.
type rowReader struct {
	old, new rawTuple
	slab     connectors.RowSlab
}

// handleRow handles an Insert, Update or Delete message of protocol
// version 1 (wal begins with its type byte). It reports false, having
// done nothing, for a message the general path must take: one that needs
// its unchanged TOAST values read back, or has binary values.
func (s *Source) handleRow(ctx context.Context, wal []byte) (bool, error) {
	rd := &s.rows
	kind := wal[0]
	if len(wal) < 6 {
		return false, fmt.Errorf("parse logical replication message: %w", errShortTuple)
	}
	rel := s.rels[binary.BigEndian.Uint32(wal[1:])]
	if rel == nil {
		return true, nil
	}
	src := wal[5:]
	var hasOld, fullOld bool
	if src[0] == 'K' || src[0] == 'O' {
		hasOld, fullOld = true, src[0] == 'O'
		var err error
		if src, err = rd.old.parse(src[1:]); err != nil {
			return false, fmt.Errorf("parse logical replication message: %w", err)
		}
		if rd.old.binary {
			return false, nil
		}
	}
	if kind == 'D' {
		if !hasOld {
			return false, nil
		}
		old, _, err := rel.decodeRaw(&rd.old, nil, &rd.slab)
		if err != nil {
			return true, err
		}
		return true, s.add(ctx, connectors.Change{Op: connectors.OpDelete, Table: rel.table, Before: old})
	}
	if len(src) < 1 || src[0] != 'N' {
		return false, nil
	}
	if _, err := rd.new.parse(src[1:]); err != nil {
		return false, fmt.Errorf("parse logical replication message: %w", err)
	}
	if rd.new.binary || rd.new.anyToast && !fullOld && kind == 'U' {
		// Unchanged TOAST values without a full old tuple: the general
		// path reads them back from the table.
		return false, nil
	}
	if kind == 'I' {
		row, _, err := rel.decodeRaw(&rd.new, nil, &rd.slab)
		if err != nil {
			return true, err
		}
		return true, s.add(ctx, connectors.Change{Op: connectors.OpCreate, Table: rel.table, After: row})
	}
	var old, fromOld []any
	if hasOld {
		var err error
		if old, _, err = rel.decodeRaw(&rd.old, nil, &rd.slab); err != nil {
			return true, err
		}
		if fullOld {
			fromOld = old
		}
	}
	row, _, err := rel.decodeRaw(&rd.new, fromOld, &rd.slab)
	if err != nil {
		return true, err
	}
	c := connectors.Change{Op: connectors.OpUpdate, Table: rel.table, After: row}
	if old != nil && !connectors.KeyEqual(rel.table, old, row) {
		c.Before = old
	}
	return true, s.add(ctx, c)
}

// valueBytes is the bytes of a row's values as received, which their
// decoded values hold about as much of (RowSlab.Used).
func valueBytes(vals [][]byte) int {
	n := 0
	for _, v := range vals {
		n += len(v)
	}
	return n
}
