package mysql

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/liberator-cdc/liberator/connectors"
)

// A binary-protocol result row carries DATE, DATETIME, TIMESTAMP and TIME
// values as a length byte and the value's fields, the same shape as a
// length-encoded string. go-mysql formats them as text with fmt, which the
// conversions would then parse back: on a snapshot that was a seventh of
// the CPU. A snapshot's row decoder (binrow.go) converts those fields here
// instead, to the same values the text gives.

// rawDate reads the date fields of a binary-protocol DATE, DATETIME or
// TIMESTAMP of 4, 7 or 11 bytes (year, month, day, ...).
func rawDate(b []byte) (y, m, d int64) {
	return int64(binary.LittleEndian.Uint16(b)), int64(b[2]), int64(b[3])
}

// rawDays reads a binary-protocol DATE: no bytes for the zero date,
// or four.
func rawDays(b []byte) (int32, error) {
	switch len(b) {
	case 0:
		return math.MinInt32, nil
	case 4:
		y, m, d := rawDate(b)
		if m > 12 || d > 31 || y > 9999 {
			return 0, fmt.Errorf("date %d-%d-%d out of range", y, m, d)
		}
		if !isCalendarDate(y, m, d) {
			return int32(math.MinInt32 + yyyymmdd(y, m, d)), nil
		}
		return int32(connectors.DaysFromCivil(y, m, d)), nil
	}
	return 0, fmt.Errorf("date value of %d bytes", len(b))
}

// rawMicros reads a binary-protocol DATETIME or TIMESTAMP: no bytes
// for the zero date, 4 for a date at midnight, 7 with the time of day, 11
// with microseconds.
func rawMicros(b []byte) (int64, error) {
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
		return 0, fmt.Errorf("datetime value of %d bytes", len(b))
	}
	if y > 9999 || mo > 12 || d > 31 || h > 23 || m > 59 || s > 59 || frac > 999999 {
		return 0, fmt.Errorf("datetime %d-%d-%d %d:%d:%d.%d out of range", y, mo, d, h, m, s, frac)
	}
	return datetimeMicros(y, mo, d, (h*3600+m*60+s)*microsPerSecond+frac), nil
}

// rawTimeMicros reads a binary-protocol TIME: no bytes for 00:00:00, 8 for
// its sign, days, hours, minutes and seconds, 12 with microseconds.
func rawTimeMicros(b []byte) (int64, error) {
	var frac int64
	switch len(b) {
	case 0:
		return 0, nil
	case 12:
		frac = int64(binary.LittleEndian.Uint32(b[8:]))
	case 8:
	default:
		return 0, fmt.Errorf("time value of %d bytes", len(b))
	}
	h := int64(binary.LittleEndian.Uint32(b[1:]))*24 + int64(b[5])
	m, s := int64(b[6]), int64(b[7])
	if m > 59 || s > 59 || h > 838 || frac > 999999 {
		return 0, fmt.Errorf("time %d:%d:%d.%d out of range", h, m, s, frac)
	}
	v := (h*3600+m*60+s)*microsPerSecond + frac
	if b[0] == 1 {
		v = -v
	}
	return v, nil
}
