package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/liberator-cdc/liberator/connectors"
)

// ValueError is the error AppendKey and AppendValue return for a row value
// they cannot encode: a NULL in a column that is not nullable, a value whose
// Go type is not the form of its column's kind, a connectors.BadValue (a
// value out of its Avro type's range), or a decimal or UUID text that does
// not fit its column.
type ValueError struct {
	// Table is the table's "schema.name".
	Table string
	// Column is the column's name as the database spells it.
	Column string
	// Err says what is wrong with the value.
	Err error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("encode column %q of table %s: %v", e.Column, e.Table, e.Err)
}

// Unwrap returns e.Err.
func (e *ValueError) Unwrap() error { return e.Err }

// errNull is the ValueError.Err of a NULL in a column that is not nullable.
var errNull = errors.New("value is NULL but the column is not nullable")

// AppendKey appends the Avro binary encoding of row's key columns to dst, as
// a body of the Key record (no header; see AppendHeader). row is the full
// row, aligned with the table's columns; only its key columns are read.
//
// On error it returns dst as it was, and an error that is a *ValueError when
// a value is at fault. A call that succeeds allocates only to grow dst (and
// for decimals of more than 38 digits).
func (c *Codec) AppendKey(dst []byte, row []any) ([]byte, error) {
	return c.appendRecord(dst, c.key, row)
}

// AppendValue appends the Avro binary encoding of row to dst, as a body of
// the Value record (no header; see AppendHeader). row is aligned with the
// table's columns, in the value forms of connectors.Kind; nil is NULL.
//
// On error it returns dst as it was, and an error that is a *ValueError when
// a value is at fault. A call that succeeds allocates only to grow dst (and
// for decimals of more than 38 digits).
func (c *Codec) AppendValue(dst []byte, row []any) ([]byte, error) {
	return c.appendRecord(dst, c.value, row)
}

// AppendHeader appends the Confluent wire-format header to dst: the magic
// byte 0, then the schema id as a 4-byte big-endian integer.
func AppendHeader(dst []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(dst, 0), uint32(id))
}

func (c *Codec) appendRecord(dst []byte, fields []field, row []any) ([]byte, error) {
	if len(row) != c.width {
		return dst, fmt.Errorf("encode row of table %s: row has %d values, table has %d columns", c.table, len(row), c.width)
	}
	start := len(dst)
	for i := range fields {
		f := &fields[i]
		v := row[f.col]
		if v == nil {
			if !f.nullable {
				return dst[:start], &ValueError{Table: c.table, Column: f.column, Err: errNull}
			}
			dst = append(dst, f.nullBranch())
			continue
		}
		if f.nullable {
			dst = append(dst, f.valueBranch())
		}
		var err error
		if dst, err = appendValue(dst, &f.typ, v); err != nil {
			return dst[:start], &ValueError{Table: c.table, Column: f.column, Err: err}
		}
	}
	return dst, nil
}

// nullBranch is the zigzag-encoded union index of null in a nullable field:
// 0 for ["null", T], 1 (encoded 2) for [T, "null"].
func (f *field) nullBranch() byte {
	if f.valueFirst {
		return 2
	}
	return 0
}

// valueBranch is the zigzag-encoded union index of the value's type.
func (f *field) valueBranch() byte {
	if f.valueFirst {
		return 0
	}
	return 2
}

// appendValue appends the encoding of the non-nil value v of type p.
func appendValue(dst []byte, p *plan, v any) ([]byte, error) {
	switch p.kind {
	case connectors.KindBool:
		b, ok := v.(bool)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case connectors.KindInt32, connectors.KindDate:
		i, ok := v.(int32)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return appendLong(dst, int64(i)), nil
	case connectors.KindInt64, connectors.KindTimestamp, connectors.KindLocalTimestamp, connectors.KindTime:
		i, ok := v.(int64)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return appendLong(dst, i), nil
	case connectors.KindFloat32:
		f, ok := v.(float32)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(f)), nil
	case connectors.KindFloat64:
		f, ok := v.(float64)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case connectors.KindString, connectors.KindJSON:
		s, ok := v.(string)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return append(appendLong(dst, int64(len(s))), s...), nil
	case connectors.KindUUID:
		s, ok := v.(string)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		if !isCanonicalUUID(s) {
			return dst, fmt.Errorf("uuid value %q is not in the canonical 8-4-4-4-12 form", s)
		}
		return append(appendLong(dst, int64(len(s))), s...), nil
	case connectors.KindBytes:
		b, ok := v.([]byte)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return append(appendLong(dst, int64(len(b))), b...), nil
	case connectors.KindDecimal:
		s, ok := v.(string)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return appendDecimal(dst, s, p.precision, p.scale)
	case connectors.KindArray:
		a, ok := v.([]any)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		return appendArray(dst, p.elem, a)
	case connectors.KindGeometry:
		g, ok := v.(connectors.Geometry)
		if !ok {
			return dst, wrongType(p.kind, v)
		}
		if g.WKB == nil {
			return dst, errors.New("geometry value has no WKB")
		}
		dst = append(appendLong(dst, int64(len(g.WKB))), g.WKB...)
		if g.SRID == 0 {
			return append(dst, 0), nil // srid: null
		}
		return appendLong(append(dst, 2), int64(g.SRID)), nil
	}
	// NewCodec rejects every other kind.
	return dst, fmt.Errorf("kind %s: %w", p.kind, connectors.ErrUnsupportedType)
}

// appendArray writes a as one block followed by the empty end block. Each
// element is the union ["null", elem].
func appendArray(dst []byte, elem *plan, a []any) ([]byte, error) {
	if len(a) > 0 {
		dst = appendLong(dst, int64(len(a)))
		for i, e := range a {
			if e == nil {
				dst = append(dst, 0)
				continue
			}
			dst = append(dst, 2)
			var err error
			if dst, err = appendValue(dst, elem, e); err != nil {
				return dst, fmt.Errorf("array element %d: %w", i, err)
			}
		}
	}
	return append(dst, 0), nil
}

// appendLong appends v as an Avro int or long: zigzag, then a base-128
// varint. For an int32 the bytes are the same as Avro's 32-bit zigzag.
func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// goTypes is the Go value form of each kind, as connectors.Kind documents it.
var goTypes = [...]string{
	connectors.KindBool:           "bool",
	connectors.KindInt32:          "int32",
	connectors.KindInt64:          "int64",
	connectors.KindFloat32:        "float32",
	connectors.KindFloat64:        "float64",
	connectors.KindDecimal:        "string",
	connectors.KindString:         "string",
	connectors.KindUUID:           "string",
	connectors.KindJSON:           "string",
	connectors.KindBytes:          "[]byte",
	connectors.KindDate:           "int32",
	connectors.KindTimestamp:      "int64",
	connectors.KindLocalTimestamp: "int64",
	connectors.KindTime:           "int64",
	connectors.KindArray:          "[]any",
	connectors.KindGeometry:       "connectors.Geometry",
}

// wrongType is the error for a value that is not in the Go form of its
// kind: a connectors.BadValue, which the source handed over for a value
// the kind cannot hold, or a source's mistake.
func wrongType(k connectors.Kind, v any) error {
	if b, ok := v.(connectors.BadValue); ok {
		return fmt.Errorf("%s value %q is %s", k, b.Text, b.Reason)
	}
	return fmt.Errorf("%s value has Go type %T, want %s", k, v, goTypes[k])
}

// isCanonicalUUID reports whether s is 8-4-4-4-12 hexadecimal digits.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
