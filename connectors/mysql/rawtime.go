package mysql

import (
	"encoding/binary"
	"fmt"
	"math"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// A binary-protocol result row carries DATE, DATETIME, TIMESTAMP and TIME
// values as a length byte and the value's fields, the same shape as a
// length-encoded string. go-mysql formats them as text with fmt, which the
// conversions would then parse back: on a snapshot that was a seventh of
// the CPU. A snapshot read instead has go-mysql hand those bytes over as
// they are (rawTemporals) and converts them here, to the same values the
// text gives.

// rawTemporals makes go-mysql hand a result's temporal values over as the
// bytes of the binary protocol: it runs before the result's first row.
func rawTemporals(res *gomysql.Result) error {
	for _, f := range res.Fields {
		switch f.Type {
		case gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_NEWDATE, gomysql.MYSQL_TYPE_DATETIME,
			gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIME:
			f.Type = gomysql.MYSQL_TYPE_BLOB
		}
	}
	return nil
}

// fromRawRow converts a value of a row read with rawTemporals, keeping
// text in a.
func (c *column) fromRawRow(fv *gomysql.FieldValue, a *textArena) (any, error) {
	if fv.Type == gomysql.FieldValueTypeString {
		switch c.conv {
		case convString, convJSONText, convEnum:
			return c.text.decodeIn(a, fv.AsString()), nil
		case convDecimal:
			return decimalIn(a, fv.AsString())
		case convDate:
			return rawDateValue(fv.AsString())
		case convDatetime, convTimestamp:
			return rawDatetimeValue(fv.AsString())
		case convTime:
			return rawTimeValue(fv.AsString())
		}
	}
	return c.fromSnapshot(fv)
}

// rawDate reads the date fields of a binary-protocol DATE, DATETIME or
// TIMESTAMP of 4, 7 or 11 bytes (year, month, day, ...).
func rawDate(b []byte) (y, m, d int64) {
	return int64(binary.LittleEndian.Uint16(b)), int64(b[2]), int64(b[3])
}

// rawDateValue reads a binary-protocol DATE: no bytes for the zero date,
// or four.
func rawDateValue(b []byte) (any, error) {
	switch len(b) {
	case 0:
		return int32(math.MinInt32), nil
	case 4:
		y, m, d := rawDate(b)
		if m > 12 || d > 31 || y > 9999 {
			return nil, fmt.Errorf("date %d-%d-%d out of range", y, m, d)
		}
		if !isCalendarDate(y, m, d) {
			return int32(math.MinInt32 + yyyymmdd(y, m, d)), nil
		}
		return int32(connectors.DaysFromCivil(y, m, d)), nil
	}
	return nil, fmt.Errorf("date value of %d bytes", len(b))
}

// rawDatetimeValue reads a binary-protocol DATETIME or TIMESTAMP: no bytes
// for the zero date, 4 for a date at midnight, 7 with the time of day, 11
// with microseconds.
func rawDatetimeValue(b []byte) (any, error) {
	var y, mo, d, h, m, s, frac int64
	switch len(b) {
	case 0:
	case 11:
		frac = int64(binary.LittleEndian.Uint32(b[7:]))
		fallthrough
	case 7:
		h, m, s = int64(b[4]), int64(b[5]), int64(b[6])
		fallthrough
	case 4:
		y, mo, d = rawDate(b)
	default:
		return nil, fmt.Errorf("datetime value of %d bytes", len(b))
	}
	if y > 9999 || mo > 12 || d > 31 || h > 23 || m > 59 || s > 59 || frac > 999999 {
		return nil, fmt.Errorf("datetime %d-%d-%d %d:%d:%d.%d out of range", y, mo, d, h, m, s, frac)
	}
	return datetimeMicros(y, mo, d, (h*3600+m*60+s)*microsPerSecond+frac), nil
}

// rawTimeValue reads a binary-protocol TIME: no bytes for 00:00:00, 8 for
// its sign, days, hours, minutes and seconds, 12 with microseconds.
func rawTimeValue(b []byte) (any, error) {
	var frac int64
	switch len(b) {
	case 0:
		return int64(0), nil
	case 12:
		frac = int64(binary.LittleEndian.Uint32(b[8:]))
	case 8:
	default:
		return nil, fmt.Errorf("time value of %d bytes", len(b))
	}
	h := int64(binary.LittleEndian.Uint32(b[1:]))*24 + int64(b[5])
	m, s := int64(b[6]), int64(b[7])
	if m > 59 || s > 59 || h > 838 || frac > 999999 {
		return nil, fmt.Errorf("time %d:%d:%d.%d out of range", h, m, s, frac)
	}
	v := (h*3600+m*60+s)*microsPerSecond + frac
	if b[0] == 1 {
		v = -v
	}
	return v, nil
}
