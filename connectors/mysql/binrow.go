package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// A snapshot chunk reads the row packets of its binary-protocol result
// itself and decodes each value straight into the row's neutral value.
// go-mysql's streaming SELECT would copy every packet three times, parse it
// into FieldValues (copying each string once more, and formatting DATE,
// DATETIME, TIMESTAMP and TIME values as text with fmt), and only then
// hand the row over. The conversions are the ones fromSnapshot uses
// (fromSigned, fromText, ...), so a chunk read this way and a row read
// through go-mysql give the same values; temporal values are read from
// their binary fields (rawtime.go) to the values their text gives.

// wireType is how a result's column carries its values in a binary row.
type wireType uint8

const (
	wireNull     wireType = iota // MYSQL_TYPE_NULL: always NULL
	wireInt8                     // TINYINT
	wireInt16                    // SMALLINT, YEAR
	wireInt32                    // MEDIUMINT, INT
	wireInt64                    // BIGINT
	wireFloat                    // FLOAT
	wireDouble                   // DOUBLE
	wireString                   // a length-encoded string: text, bytes, DECIMAL, BIT, JSON, ...
	wireDate                     // DATE: a length byte and 0 or 4 bytes
	wireDatetime                 // DATETIME, TIMESTAMP: a length byte and 0, 4, 7 or 11 bytes
	wireTime                     // TIME: a length byte and 0, 8 or 12 bytes
)

// wireTypeOf returns the wire type of a result field's type.
func wireTypeOf(t byte) (wireType, bool) {
	switch t {
	case gomysql.MYSQL_TYPE_NULL:
		return wireNull, true
	case gomysql.MYSQL_TYPE_TINY:
		return wireInt8, true
	case gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_YEAR:
		return wireInt16, true
	case gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG:
		return wireInt32, true
	case gomysql.MYSQL_TYPE_LONGLONG:
		return wireInt64, true
	case gomysql.MYSQL_TYPE_FLOAT:
		return wireFloat, true
	case gomysql.MYSQL_TYPE_DOUBLE:
		return wireDouble, true
	case gomysql.MYSQL_TYPE_DECIMAL, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_BIT,
		gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET, gomysql.MYSQL_TYPE_TINY_BLOB, gomysql.MYSQL_TYPE_MEDIUM_BLOB,
		gomysql.MYSQL_TYPE_LONG_BLOB, gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING,
		gomysql.MYSQL_TYPE_VECTOR, gomysql.MYSQL_TYPE_GEOMETRY, gomysql.MYSQL_TYPE_JSON:
		return wireString, true
	case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE:
		return wireDate, true
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_DATETIME:
		return wireDatetime, true
	case gomysql.MYSQL_TYPE_TIME:
		return wireTime, true
	}
	return 0, false
}

// wireField is one column of a result as the row decoder reads it.
type wireField struct {
	typ      wireType
	unsigned bool
}

// rowDecoder decodes the binary row packets of a result whose columns are
// cols, in order. Text is kept in its arena, and the int32, int64 and
// string values of the commonest columns are boxed by slab (which may be
// nil) without an allocation each. A rowDecoder belongs to one goroutine.
type rowDecoder struct {
	cols   []column
	fields []wireField
	arena  textArena
	slab   *connectors.RowSlab
}

func newRowDecoder(cols []column, slab *connectors.RowSlab) *rowDecoder {
	return &rowDecoder{cols: cols, fields: make([]wireField, len(cols)), slab: slab}
}

// setFields takes the result's column definitions, before its first row.
func (d *rowDecoder) setFields(fields []*gomysql.Field) error {
	if len(fields) != len(d.cols) {
		return fmt.Errorf("the result has %d columns for the table's %d", len(fields), len(d.cols))
	}
	for i, f := range fields {
		t, ok := wireTypeOf(f.Type)
		if !ok {
			return fmt.Errorf("column %s (%s): the result's field type %d is not one liberator reads", d.cols[i].Name, d.cols[i].SQLType, f.Type)
		}
		d.fields[i] = wireField{typ: t, unsigned: f.Flag&gomysql.UNSIGNED_FLAG != 0}
	}
	return nil
}

// errMalformedRow is the error of a row packet cut short.
var errMalformedRow = errors.New("malformed binary row packet")

// decode decodes the row packet p into row, one value per column. With
// kept, p's bytes are never written again and the row's strings share
// them; otherwise text is copied.
func (d *rowDecoder) decode(p []byte, kept bool, row []any) error {
	d.arena.kept = kept
	n := len(d.fields)
	pos := 1 + (n+7+2)>>3
	if len(p) < pos || p[0] != gomysql.OK_HEADER {
		return errMalformedRow
	}
	nulls := p[1:pos]
	for i := range d.fields {
		f := &d.fields[i]
		if nulls[(i+2)>>3]&(1<<((i+2)&7)) != 0 || f.typ == wireNull {
			row[i] = nil
			continue
		}
		c := &d.cols[i]
		var v any
		var err error
		switch f.typ {
		case wireInt8, wireInt16, wireInt32, wireInt64:
			size := 1 << (f.typ - wireInt8)
			if len(p)-pos < size {
				return errMalformedRow
			}
			b := p[pos : pos+size]
			pos += size
			if c.conv == convSkip {
				continue
			}
			if f.unsigned {
				var u uint64
				switch size {
				case 1:
					u = uint64(b[0])
				case 2:
					u = uint64(binary.LittleEndian.Uint16(b))
				case 4:
					u = uint64(binary.LittleEndian.Uint32(b))
				default:
					u = binary.LittleEndian.Uint64(b)
				}
				v, err = d.unsigned(c, u)
			} else {
				var s int64
				switch size {
				case 1:
					s = int64(int8(b[0]))
				case 2:
					s = int64(int16(binary.LittleEndian.Uint16(b)))
				case 4:
					s = int64(int32(binary.LittleEndian.Uint32(b)))
				default:
					s = int64(binary.LittleEndian.Uint64(b))
				}
				v, err = d.signed(c, s)
			}
		case wireFloat:
			if len(p)-pos < 4 {
				return errMalformedRow
			}
			f := math.Float32frombits(binary.LittleEndian.Uint32(p[pos:]))
			pos += 4
			if c.conv == convSkip {
				continue
			}
			v, err = c.fromFloat(float64(f))
		case wireDouble:
			if len(p)-pos < 8 {
				return errMalformedRow
			}
			f := math.Float64frombits(binary.LittleEndian.Uint64(p[pos:]))
			pos += 8
			if c.conv == convSkip {
				continue
			}
			v, err = c.fromFloat(f)
		default:
			if pos < len(p) && p[pos] == 0xfb {
				// The NULL marker, as go-mysql reads it; servers mark
				// NULL in the bitmap.
				pos++
				row[i] = nil
				continue
			}
			l, m, ok := lengthEncoded(p[pos:])
			if !ok || uint64(len(p)-pos-m) < l {
				return errMalformedRow
			}
			b := p[pos+m : pos+m+int(l)]
			pos += m + int(l)
			if c.conv == convSkip {
				continue
			}
			v, err = d.fromBytes(c, f.typ, b)
		}
		if err != nil {
			return fmt.Errorf("column %s (%s): %w", c.Name, c.SQLType, err)
		}
		row[i] = v
	}
	return nil
}

// signed converts a signed integer; an int32 or int64 in its column's
// range is boxed by the slab, anything else is fromSigned's.
func (d *rowDecoder) signed(c *column, n int64) (any, error) {
	switch {
	case c.conv == convInt64:
		return d.slab.Int64(n), nil
	case c.conv == convInt32 && n >= math.MinInt32 && n <= math.MaxInt32:
		return d.slab.Int32(int32(n)), nil
	}
	return c.fromSigned(n)
}

// unsigned converts an unsigned integer as signed does.
func (d *rowDecoder) unsigned(c *column, n uint64) (any, error) {
	switch {
	case c.conv == convInt64 && n <= math.MaxInt64:
		return d.slab.Int64(int64(n)), nil
	case c.conv == convInt32 && n <= math.MaxInt32:
		return d.slab.Int32(int32(n)), nil
	}
	return c.fromUnsigned(n)
}

// fromBytes converts a value the row carries as bytes: a string, or the
// binary fields of a temporal value. Text, decimals and temporal values
// are boxed by the slab; the rest is fromText's.
func (d *rowDecoder) fromBytes(c *column, t wireType, b []byte) (any, error) {
	switch t {
	case wireDate:
		if c.conv == convDate {
			v, err := rawDays(b)
			return d.slab.Int32(v), err
		}
	case wireDatetime:
		if c.conv == convDatetime || c.conv == convTimestamp {
			v, err := rawMicros(b)
			return d.slab.Int64(v), err
		}
	case wireTime:
		if c.conv == convTime {
			v, err := rawTimeMicros(b)
			return d.slab.Int64(v), err
		}
	default:
		switch c.conv {
		case convString, convJSONText, convEnum:
			return d.slab.String(c.text.decodeIn(&d.arena, b)), nil
		case convDecimal:
			v, err := decimalText(&d.arena, b)
			return d.slab.String(v), err
		}
		return c.fromText(b, &d.arena)
	}
	return nil, fmt.Errorf("snapshot temporal value for a %s column", c.conv)
}

// lengthEncoded reads a length-encoded integer: its value and size, and
// false when b is too short or it is the NULL marker.
func lengthEncoded(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xfb:
		return 0, 1, false
	case 0xfc:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case 0xfd:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case 0xfe:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	case 0xff:
		return 0, 0, false
	}
	return uint64(b[0]), 1, true
}

// errRowsRead ends go-mysql's streaming SELECT once selectRowPackets has
// read the result's rows itself.
var errRowsRead = errors.New("rows read")

// selectRowPackets runs a prepared SELECT and hands fields the result's
// column definitions, then f each row packet, unparsed, and whether its
// bytes are never written again (readRowPackets). Errors are classified as
// selectRows classifies them.
//
// go-mysql reads the result's header and column definitions (and the EOF
// packet that may follow them), then calls the per-result callback before
// the first row: there the rows are read off the connection, up to the
// packet that ends them, and the callback's errRowsRead stops go-mysql
// before it reads a row. The connection is then where go-mysql would have
// left it.
func selectRowPackets(ctx context.Context, conn *client.Conn, sql string, args []any, fields func([]*gomysql.Field) error, f func(p []byte, kept bool) error) error {
	stmt, err := conn.Prepare(sql)
	if err != nil {
		return classifySnapshotError(ctx, fmt.Errorf("prepare %q: %w", sql, err))
	}
	defer stmt.Close()
	var res gomysql.Result
	err = stmt.ExecuteSelectStreaming(&res, func([]gomysql.FieldValue) error {
		return errors.New("a row reached go-mysql's parser")
	}, func(res *gomysql.Result) error {
		if err := fields(res.Fields); err != nil {
			return err
		}
		if err := readRowPackets(conn, f); err != nil {
			return err
		}
		return errRowsRead
	}, args...)
	if errors.Is(err, errRowsRead) {
		return nil
	}
	return classifySnapshotError(ctx, err)
}

// readRowPackets reads a result's row packets up to the EOF or OK packet
// that ends them, handing each to f; kept says that the packet's bytes are
// never written again (f may keep strings that share them), which holds
// for every packet but large ones.
func readRowPackets(conn *client.Conn, f func(p []byte, kept bool) error) error {
	var blocks packetBlocks
	for {
		var p []byte
		var err error
		kept := true
		if conn.Compression == gomysql.MYSQL_COMPRESS_NONE {
			blocks.begin()
			err = conn.ReadPacketTo(&blocks)
			p, kept = blocks.packet()
		} else {
			p, err = conn.ReadPacket()
		}
		if err != nil {
			return err
		}
		if len(p) == 0 {
			return errMalformedRow
		}
		switch p[0] {
		case gomysql.ERR_HEADER:
			return conn.HandleErrorPacket(bytes.Clone(p))
		case gomysql.EOF_HEADER:
			// A binary row starts with 0x00: 0xfe is the EOF (or, with
			// CLIENT_DEPRECATE_EOF, the OK) packet after the last row.
			return nil
		}
		if err := f(p, kept); err != nil {
			return err
		}
	}
}

// packetBlocks receives packets (an io.Writer for ReadPacketTo) into large
// blocks that are only ever appended to, so that the strings of a row can
// share its packet's bytes instead of copying them: the packets of about a
// block's worth of rows cost one allocation, and a block lives while any
// of its strings does. A packet larger than a quarter of a block is read
// into a buffer of its own that the next large packet reuses: its values
// are copied, so that a large row keeps neither the others nor its whole
// packet alive.
type packetBlocks struct {
	block []byte
	start int // where the packet being read starts in block
	large []byte
	big   bool // the packet being read is in large
}

// packetBlock is the size of a packetBlocks allocation.
const packetBlock = 32 << 10

// begin starts a packet.
func (w *packetBlocks) begin() { w.start, w.big = len(w.block), false }

// Write appends the next bytes of the packet, moving what was read of it
// to a new block when the block is full, or to the large buffer.
func (w *packetBlocks) Write(b []byte) (int, error) {
	switch {
	case w.big:
		w.large = append(w.large, b...)
	case cap(w.block)-len(w.block) >= len(b):
		w.block = append(w.block, b...)
	case len(w.block)-w.start+len(b) > packetBlock/4:
		w.large = append(append(w.large[:0], w.block[w.start:]...), b...)
		w.block, w.big = w.block[:w.start], true
	default:
		w.block = append(append(make([]byte, 0, packetBlock), w.block[w.start:]...), b...)
		w.start = 0
	}
	return len(b), nil
}

// packet returns the packet read since begin, and whether its bytes are
// never written again.
func (w *packetBlocks) packet() (p []byte, kept bool) {
	if w.big {
		return w.large, false
	}
	return w.block[w.start:len(w.block):len(w.block)], true
}
