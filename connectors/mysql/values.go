package mysql

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
)

// This file holds the conversions from MySQL values to the neutral forms of
// connectors.Kind. A column's value reaches one conversion function from
// either side: fromBinlog takes what go-mysql decoded from a row event,
// fromSnapshot what a binary-protocol SELECT returned. Each side only
// unwraps its carrier (an int8, a FieldValue) before calling the shared
// function, so the snapshot and the stream cannot disagree.
//
// Values that are not calendar dates ('0000-00-00', a date with a zero
// month or day, which MySQL accepts outside strict mode, and under
// ALLOW_INVALID_DATES a day past its month's end) have no instant of their
// own; zeroDate gives them a value below every real date.

// fromBinlog converts a value decoded by go-mysql's RowsEvent (with
// ParseTime off, UseDecimal off and timestamps formatted in UTC).
func (c *column) fromBinlog(v any) (any, error) {
	if v == nil || c.conv == convSkip {
		return nil, nil
	}
	switch c.conv {
	case convInt32, convInt64, convUint64:
		switch n := v.(type) {
		case int8:
			return c.intValue(int64(n)), nil
		case int16:
			return c.intValue(int64(n)), nil
		case int32:
			return c.intValue(int64(n)), nil
		case int64:
			return c.intValue(n), nil
		case int:
			return c.intValue(int64(n)), nil
		case uint8:
			return c.uintValue(uint64(n)), nil
		case uint16:
			return c.uintValue(uint64(n)), nil
		case uint32:
			return c.uintValue(uint64(n)), nil
		case uint64:
			return c.uintValue(n), nil
		}
	case convDecimal:
		if s, ok := v.(string); ok {
			return decimalValue(viewBytes(s))
		}
	case convFloat32:
		if f, ok := v.(float32); ok {
			return f, nil
		}
	case convFloat64:
		if f, ok := v.(float64); ok {
			return f, nil
		}
	case convString, convJSONText:
		if b, ok := bytesOf(v); ok {
			return c.text.decode(b), nil
		}
	case convBytes:
		if b, ok := bytesOf(v); ok {
			return cloneBytes(b), nil
		}
	case convBinary:
		if b, ok := bytesOf(v); ok {
			return binaryValue(b, c.width), nil
		}
	case convGeometry:
		if b, ok := bytesOf(v); ok {
			return geometryValue(b)
		}
	case convUUID, convInet4, convInet6:
		if b, ok := bytesOf(v); ok {
			return c.nativeValue(binaryValue(b, c.width))
		}
	case convEnum:
		if n, ok := v.(int64); ok {
			return enumValue(c.labels, n)
		}
	case convSet:
		if n, ok := v.(int64); ok {
			return setValue(c.labels, n)
		}
	case convBool, convBits:
		if n, ok := v.(int64); ok {
			b := make([]byte, 8)
			binary.BigEndian.PutUint64(b, uint64(n))
			return c.bitsValue(b[8-(c.width+7)/8:])
		}
	case convDate:
		if s, ok := v.(string); ok {
			return dateValue(viewBytes(s))
		}
	case convDatetime, convTimestamp:
		if s, ok := v.(string); ok {
			return datetimeValue(viewBytes(s))
		}
	case convTime:
		if s, ok := v.(string); ok {
			return timeValue(viewBytes(s))
		}
	case convJSON:
		switch j := v.(type) {
		case string:
			return jsonValue(viewBytes(j))
		case []byte:
			return jsonValue(j)
		case *replication.JsonDiff:
			return nil, errors.New("a partial JSON update (set binlog_row_value_options to '')")
		}
	}
	return nil, fmt.Errorf("binlog value %T for a %s column", v, c.conv)
}

// fromSnapshot converts a value of a binary-protocol result row, read in a
// session with character_set_results = NULL (strings in the column's own
// character set) and time_zone = '+00:00'. A snapshot's chunks skip the
// FieldValue and reach the same conversions from the row packet
// (binrow.go).
func (c *column) fromSnapshot(fv *gomysql.FieldValue) (any, error) {
	if c.conv == convSkip {
		return nil, nil
	}
	switch fv.Type {
	case gomysql.FieldValueTypeNull:
		return nil, nil
	case gomysql.FieldValueTypeSigned:
		return c.fromSigned(fv.AsInt64())
	case gomysql.FieldValueTypeUnsigned:
		return c.fromUnsigned(fv.AsUint64())
	case gomysql.FieldValueTypeFloat:
		return c.fromFloat(fv.AsFloat64())
	case gomysql.FieldValueTypeString:
		return c.fromText(fv.AsString(), nil)
	}
	return nil, fmt.Errorf("snapshot value of type %d for a %s column", fv.Type, c.conv)
}

// fromSigned converts a signed integer of a result row.
func (c *column) fromSigned(n int64) (any, error) {
	if c.conv == convInt32 || c.conv == convInt64 || c.conv == convUint64 {
		return c.intValue(n), nil
	}
	return nil, fmt.Errorf("snapshot integer for a %s column", c.conv)
}

// fromUnsigned converts an unsigned integer of a result row.
func (c *column) fromUnsigned(n uint64) (any, error) {
	if c.conv == convInt32 || c.conv == convInt64 || c.conv == convUint64 {
		return c.uintValue(n), nil
	}
	return nil, fmt.Errorf("snapshot unsigned integer for a %s column", c.conv)
}

// fromFloat converts a FLOAT or DOUBLE of a result row.
func (c *column) fromFloat(f float64) (any, error) {
	switch c.conv {
	case convFloat32:
		// The protocol widened the column's float32; this is exact.
		return float32(f), nil
	case convFloat64:
		return f, nil
	}
	return nil, fmt.Errorf("snapshot float for a %s column", c.conv)
}

// fromText converts a value a result row carries as a string, keeping text
// in a (which may be nil).
func (c *column) fromText(b []byte, a *textArena) (any, error) {
	switch c.conv {
	case convDecimal:
		return decimalIn(a, b)
	case convString, convJSONText, convEnum:
		return c.text.decodeIn(a, b), nil
	case convSet:
		return setText(c.text.decode(b)), nil
	case convBytes:
		return cloneBytes(b), nil
	case convBinary:
		return binaryValue(b, c.width), nil
	case convGeometry:
		return geometryValue(b)
	case convUUID, convInet4, convInet6:
		return nativeText(b)
	case convBool, convBits:
		return c.bitsValue(b)
	case convDate:
		return dateValue(b)
	case convDatetime, convTimestamp:
		return datetimeValue(b)
	case convTime:
		return timeValue(b)
	case convJSON:
		return jsonValue(b)
	}
	return nil, fmt.Errorf("snapshot string for a %s column", c.conv)
}

// viewBytes returns the bytes of s without copying; they must not be
// changed.
func viewBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func bytesOf(v any) ([]byte, bool) {
	switch b := v.(type) {
	case []byte:
		return b, true
	case string:
		return viewBytes(b), true
	}
	return nil, false
}

// The reasons of the BadValues of integers that their Avro type cannot
// hold. The columns' types hold every value MySQL stores; these guard the
// conversions against a value of another width than the column's (a binlog
// without signedness, a column altered since), which would otherwise wrap.
const (
	intRange  = "outside the range of an Avro int (int32)"
	longRange = "outside the range of an Avro long (int64)"
)

func (c *column) intValue(n int64) any {
	switch c.conv {
	case convInt32:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return connectors.BadValue{Text: strconv.FormatInt(n, 10), Reason: intRange}
		}
		return int32(n)
	case convUint64:
		// A BIGINT UNSIGNED that arrived as a signed 64-bit number: its
		// two's complement bits are the unsigned value.
		return strconv.FormatUint(uint64(n), 10)
	}
	return n
}

func (c *column) uintValue(n uint64) any {
	switch c.conv {
	case convInt32:
		if n > math.MaxInt32 {
			return connectors.BadValue{Text: strconv.FormatUint(n, 10), Reason: intRange}
		}
		return int32(n)
	case convInt64:
		if n > math.MaxInt64 {
			return connectors.BadValue{Text: strconv.FormatUint(n, 10), Reason: longRange}
		}
		return int64(n)
	}
	return strconv.FormatUint(n, 10)
}

// decimalValue checks that b is plain decimal text and returns it, with a
// negative zero made positive.
func decimalValue(b []byte) (any, error) { return decimalIn(nil, b) }

// decimalIn is decimalValue with the text kept in a.
func decimalIn(a *textArena, b []byte) (any, error) {
	s, err := decimalText(a, b)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// decimalText is decimalIn's text.
func decimalText(a *textArena, b []byte) (string, error) {
	digits, seenDot := 0, false
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !seenDot && digits > 0:
			seenDot = true
		case c == '-' && i == 0:
		default:
			return "", fmt.Errorf("decimal %q is not plain decimal text", string(b))
		}
	}
	if digits == 0 || b[len(b)-1] == '.' {
		return "", fmt.Errorf("decimal %q is not plain decimal text", string(b))
	}
	if b[0] == '-' && zeroText(b[1:]) {
		b = b[1:]
	}
	return a.string(b), nil
}

// zeroText reports whether decimal text is zero: only '0' and '.'.
func zeroText(b []byte) bool {
	for _, c := range b {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

// cloneBytes copies b; an empty value is an empty slice, never nil (NULL).
func cloneBytes(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

// binaryValue pads a BINARY(n) value to n bytes: the binlog drops the
// trailing zero bytes that a SELECT returns.
func binaryValue(b []byte, n int) []byte {
	out := make([]byte, max(n, len(b)))
	copy(out, b)
	return out
}

// geometryValue splits MySQL's geometry value, a 4-byte little-endian SRID
// followed by the WKB.
func geometryValue(b []byte) (any, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("geometry of %d bytes has no SRID", len(b))
	}
	srid := binary.LittleEndian.Uint32(b)
	if srid > math.MaxInt32 {
		return nil, fmt.Errorf("geometry SRID %d does not fit an Avro int", srid)
	}
	return connectors.Geometry{WKB: cloneBytes(b[4:]), SRID: int32(srid)}, nil
}

// bitsValue takes a BIT(n) value as big-endian bytes.
func (c *column) bitsValue(b []byte) (any, error) {
	if c.conv == convBool {
		if len(b) != 1 {
			return nil, fmt.Errorf("bit(1) value of %d bytes", len(b))
		}
		return b[0] != 0, nil
	}
	return cloneBytes(b), nil
}

// enumValue maps an ENUM index to its label; 0 is the empty string MySQL
// stores for an invalid value.
func enumValue(labels []string, n int64) (any, error) {
	if n == 0 {
		return "", nil
	}
	if n < 0 || n > int64(len(labels)) {
		return nil, fmt.Errorf("enum index %d of %d values", n, len(labels))
	}
	return labels[n-1], nil
}

// setValue maps a SET bitmask to its labels, in declaration order.
func setValue(labels []string, mask int64) (any, error) {
	out := []any{}
	for i, l := range labels {
		if mask&(1<<i) != 0 {
			out = append(out, l)
		}
	}
	if len(labels) < 64 && uint64(mask)>>len(labels) != 0 {
		return nil, fmt.Errorf("set bitmask %#x of %d values", mask, len(labels))
	}
	return out, nil
}

// setText splits a SET value as a SELECT prints it ("a,b"); labels cannot
// contain commas.
func setText(s string) any {
	out := []any{}
	if s == "" {
		return out
	}
	for l := range strings.SplitSeq(s, ",") {
		out = append(out, l)
	}
	return out
}

// jsonValue compacts JSON text, so that MySQL's own text (with spaces after
// ':' and ',') and go-mysql's rendering of binary JSON agree. An empty
// document, which MySQL can store outside strict mode, is JSON null.
func jsonValue(b []byte) (any, error) {
	if len(b) == 0 {
		return "null", nil
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return out.String(), nil
}

const (
	microsPerSecond = int64(time.Second / time.Microsecond)
	microsPerDay    = 86400 * microsPerSecond
)

// dateValue reads YYYY-MM-DD into days since 1970-01-01, or into
// zeroDate's value when it is not a calendar date.
func dateValue(b []byte) (any, error) {
	y, m, d, err := parseDate(b)
	if err != nil {
		return nil, err
	}
	if !isCalendarDate(y, m, d) {
		return int32(math.MinInt32 + yyyymmdd(y, m, d)), nil
	}
	return int32(connectors.DaysFromCivil(y, m, d)), nil
}

// parseDate reads YYYY-MM-DD, whose month and day may be zero or past the
// month's end, as MySQL stores them outside strict mode.
func parseDate(b []byte) (y, m, d int64, err error) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, 0, 0, fmt.Errorf("date %q is not YYYY-MM-DD", b)
	}
	y, e1 := atoi(b[0:4])
	m, e2 := atoi(b[5:7])
	d, e3 := atoi(b[8:10])
	if e1 || e2 || e3 || m > 12 || d > 31 {
		return 0, 0, 0, fmt.Errorf("date %q is not YYYY-MM-DD", b)
	}
	return y, m, d, nil
}

func isCalendarDate(y, m, d int64) bool {
	return m >= 1 && d >= 1 && d <= daysIn(y, m)
}

// yyyymmdd is a date as the number MySQL's DATE + 0 prints, 20240229.
func yyyymmdd(y, m, d int64) int64 { return y*10000 + m*100 + d }

// zeroDate is the value of a DATETIME or TIMESTAMP whose date is not a
// calendar date: math.MinInt64, plus the date as the number YYYYMMDD times
// the microseconds of a day, plus the microseconds of its time of day. A
// DATE that is not a calendar date is math.MinInt32 + YYYYMMDD (days).
//
// The zero date '0000-00-00 00:00:00' is thus the smallest value of its
// Avro type (the value PostgreSQL's -infinity gets), every such value lies
// before year -16,000 and so below every date MySQL can store (years 0 to
// 9999), and the value gives back the text exactly: '0000-00-00 14:02:10'
// keeps its time of day, and '2001-02-31' its day. This differs from
// Debezium, which publishes NULL in nullable columns and the epoch in NOT
// NULL ones, neither of which can be told apart from a real value.
func zeroDate(y, m, d, micros int64) int64 {
	return math.MinInt64 + yyyymmdd(y, m, d)*microsPerDay + micros
}

// datetimeValue reads "YYYY-MM-DD HH:MM:SS[.ffffff]" into microseconds
// since 1970-01-01 00:00 (a DATETIME's wall clock, or a TIMESTAMP read in
// UTC), or into zeroDate's value when its date is not a calendar date.
func datetimeValue(b []byte) (any, error) {
	if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return nil, fmt.Errorf("datetime %q is not YYYY-MM-DD HH:MM:SS", b)
	}
	y, mo, d, err := parseDate(b[:10])
	if err != nil {
		return nil, fmt.Errorf("datetime %q is not YYYY-MM-DD HH:MM:SS", b)
	}
	h, e1 := atoi(b[11:13])
	m, e2 := atoi(b[14:16])
	s, e3 := atoi(b[17:19])
	frac, e4 := fraction(b[19:])
	if e1 || e2 || e3 || e4 || h > 23 || m > 59 || s > 59 {
		return nil, fmt.Errorf("datetime %q is not YYYY-MM-DD HH:MM:SS", b)
	}
	return datetimeMicros(y, mo, d, (h*3600+m*60+s)*microsPerSecond+frac), nil
}

// datetimeMicros is the value of a date and a time of day in microseconds:
// since 1970-01-01 00:00, or zeroDate's value when the date is not a
// calendar date.
func datetimeMicros(y, mo, d, micros int64) int64 {
	if !isCalendarDate(y, mo, d) {
		return zeroDate(y, mo, d, micros)
	}
	return connectors.DaysFromCivil(y, mo, d)*microsPerDay + micros
}

// timeValue reads "[-]HHH:MM:SS[.ffffff]" into signed microseconds.
func timeValue(b []byte) (any, error) {
	neg := len(b) > 0 && b[0] == '-'
	rest := b
	if neg {
		rest = b[1:]
	}
	c1 := bytes.IndexByte(rest, ':')
	if c1 < 1 || len(rest) < c1+6 || rest[c1+3] != ':' {
		return nil, fmt.Errorf("time %q is not HH:MM:SS", b)
	}
	h, e1 := atoi(rest[:c1])
	m, e2 := atoi(rest[c1+1 : c1+3])
	s, e3 := atoi(rest[c1+4 : c1+6])
	frac, e4 := fraction(rest[c1+6:])
	if e1 || e2 || e3 || e4 || m > 59 || s > 59 || h > 838 {
		return nil, fmt.Errorf("time %q is not HH:MM:SS", b)
	}
	v := (h*3600+m*60+s)*microsPerSecond + frac
	if neg {
		v = -v
	}
	return v, nil
}

// fraction reads an optional ".f" to ".ffffff" into microseconds.
func fraction(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	if b[0] != '.' || len(b) < 2 || len(b) > 7 {
		return 0, true
	}
	n, bad := atoi(b[1:])
	for range 7 - len(b) {
		n *= 10
	}
	return n, bad
}

// atoi reads unsigned decimal digits; bad is true for anything else.
func atoi(b []byte) (n int64, bad bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, true
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, true
		}
		n = n*10 + int64(c-'0')
	}
	return n, false
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// rowFromBinlog converts one row image of a rows event.
func rowFromBinlog(cols []column, row []any) ([]any, error) {
	if len(row) != len(cols) {
		return nil, fmt.Errorf("row of %d values for %d columns", len(row), len(cols))
	}
	out := make([]any, len(cols))
	for i := range cols {
		v, err := cols[i].fromBinlog(row[i])
		if err != nil {
			return nil, fmt.Errorf("column %s (%s): %w", cols[i].Name, cols[i].SQLType, err)
		}
		out[i] = v
	}
	return out, nil
}
