package mysql

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/liberator-cdc/liberator/connectors"
)

// numberLiteral is a numeric default as information_schema prints it.
var numberLiteral = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)

// defaultLiteral returns the text of a column's constant default, or false
// when it has none or it is not a constant.
//
// MariaDB (10.2.7 and later) prints COLUMN_DEFAULT as an SQL expression:
// string literals quoted and escaped, numbers and bit literals bare, the
// word NULL for DEFAULT NULL, and function calls or expressions as they
// are:
//
//	'it''s'   'a\\b'   42   b'101'   NULL   current_timestamp()   (1 + 2)
//
// MySQL prints a literal's value bare and marks an expression default
// DEFAULT_GENERATED in EXTRA (before 8.0.13 CURRENT_TIMESTAMP has no
// mark). A COLUMN_DEFAULT that is SQL NULL means no default on both.
func defaultLiteral(ic infoColumn) (string, bool) {
	d := ic.Default
	if ic.NoDefault {
		return "", false
	}
	if !ic.MariaDB {
		upper := strings.ToUpper(d)
		if strings.Contains(strings.ToUpper(ic.Extra), "DEFAULT_GENERATED") ||
			strings.HasPrefix(upper, "CURRENT_TIMESTAMP") && isTemporal(ic.DataType) {
			return "", false
		}
		return d, true
	}
	switch {
	case d == "NULL":
		return "", false
	case len(d) >= 2 && d[0] == '\'' && d[len(d)-1] == '\'':
		return unquote(d[1 : len(d)-1])
	case numberLiteral.MatchString(d), isBitLiteral(d):
		return d, true
	}
	return "", false
}

func isTemporal(dataType string) bool {
	switch dataType {
	case "date", "datetime", "timestamp", "time", "year":
		return true
	}
	return false
}

func isBitLiteral(s string) bool {
	return len(s) >= 3 && (s[0] == 'b' || s[0] == 'B') && s[1] == '\'' && s[len(s)-1] == '\'' &&
		strings.Trim(s[2:len(s)-1], "01") == ""
}

// unquote undoes the escapes of a string literal's body: a doubled quote,
// and the backslash escapes of MySQL's string syntax. A lone quote means
// the text was not one literal.
func unquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			if i+1 >= len(s) || s[i+1] != '\'' {
				return "", false
			}
			i++
			b.WriteByte('\'')
		case c == '\\' && i+1 < len(s):
			i++
			switch s[i] {
			case '0':
				b.WriteByte(0)
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'Z':
				b.WriteByte(26)
			default: // \\ \' \" and any other character stand for themselves
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// defaultValue converts a constant default's text to the neutral value of
// column c, or returns nil when it has no neutral form liberator carries:
// a TIMESTAMP (information_schema prints it in the session's time zone), a
// TIME (whose Avro default hamba misreads), binary strings, MySQL JSON and
// geometries. A zero date's default is its value (see zeroDate).
func defaultValue(c column, lit string) any {
	switch c.conv {
	case convInt32, convInt64:
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return nil
		}
		v := c.intValue(n)
		if _, bad := v.(connectors.BadValue); bad {
			// Out of the field's range: no default a reader could use.
			return nil
		}
		return v
	case convUint64:
		n, err := strconv.ParseUint(lit, 10, 64)
		if err != nil {
			return nil
		}
		return c.uintValue(n)
	case convDecimal:
		v, err := decimalValue([]byte(lit))
		if err != nil || !connectors.FitsDecimal(v.(string), c.Type.Precision, c.Type.Scale) {
			return nil
		}
		return v
	case convFloat32:
		f, err := strconv.ParseFloat(lit, 32)
		if err != nil {
			return nil
		}
		return float32(f)
	case convFloat64:
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil {
			return nil
		}
		return f
	case convString, convEnum, convJSONText:
		return lit
	case convSet:
		return setText(lit)
	case convBool, convBits:
		b, ok := bitLiteral(lit, c.width)
		if !ok {
			return nil
		}
		if c.conv == convBool {
			return b[0] != 0
		}
		return b
	case convDate:
		v, err := dateValue([]byte(lit))
		if err != nil {
			return nil
		}
		return v
	case convDatetime:
		v, err := datetimeValue([]byte(lit))
		if err != nil {
			return nil
		}
		return v
	case convUUID, convInet4, convInet6:
		b, ok := parseNative(c.conv, lit)
		if !ok {
			return nil
		}
		v, err := c.nativeValue(b)
		if err != nil {
			return nil
		}
		return v
	}
	return nil
}

// bitLiteral reads b'0101' (or a plain number) into the big-endian bytes
// of a BIT(width) value, as the binlog and a SELECT give it.
func bitLiteral(s string, width int) ([]byte, bool) {
	n := new(big.Int)
	var ok bool
	if isBitLiteral(s) {
		_, ok = n.SetString("0"+s[2:len(s)-1], 2)
	} else {
		_, ok = n.SetString(s, 10)
	}
	size := (max(width, 1) + 7) / 8
	if !ok || n.Sign() < 0 || n.BitLen() > 8*size {
		return nil, false
	}
	return n.FillBytes(make([]byte, size)), true
}

// readKeyedTable is readTable with Config.KeyColumns: a table without a
// primary key is keyed by its configured columns, which must exist and be
// NOT NULL.
func (s *Source) readKeyedTable(ctx context.Context, conn *client.Conn, t tableName) (tableSchema, error) {
	ts, err := readTable(ctx, conn, s.cfg.Flavor, t)
	ts.published = s.cfg.PublishedColumns[t.String()]
	if !errors.Is(err, ErrNoPrimaryKey) {
		return ts, err
	}
	kc := s.cfg.KeyColumns[t.String()]
	if len(kc) == 0 {
		return ts, fmt.Errorf("%w (add a primary key, or name key columns in mapping.%s.key)", err, t)
	}
	cols := ts.byName()
	for _, k := range kc {
		c, ok := cols[k]
		switch {
		case !ok:
			return ts, fmt.Errorf("%w: %s: key column %s (mapping.%s.key) is not a column of the table", ErrNoPrimaryKey, t, k, t)
		case c.Nullable:
			return ts, fmt.Errorf("%w: %s: key column %s (mapping.%s.key) may be NULL, which cannot key an event: make it NOT NULL", ErrNoPrimaryKey, t, k, t)
		}
	}
	ts.key = kc
	return ts, nil
}
