package postgres

// The initial snapshot reads its chunks with the columns of a few types in
// PostgreSQL's binary form: booleans, integers, dates and timestamps, whose
// binary form is a fixed-size integer. The server then skips their text
// output (timestamptz's costs it most) and the reader their parsing. Every
// other column stays text, so that it decodes exactly as the stream's
// values do, and so do the key columns' bounds, which are read apart
// (splitTable). A binary value decodes to the very value its text does.

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

// PostgreSQL counts dates and timestamps from 2000-01-01.
const (
	pgEpochDays   = 10_957
	pgEpochMicros = pgEpochDays * microsPerDay
)

// binaryResult reports whether a column of type oid is read in binary.
// Only the base types: a domain's column keeps the text form.
func binaryResult(oid uint32) bool {
	switch oid {
	case pgtype.BoolOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID:
		return true
	}
	return false
}

// resultFormats is the result format of each column of a relation's select
// list (0 text, 1 binary), for the columns whose OID binaryResult takes;
// nil when every column is text.
func resultFormats(oids []uint32) []int16 {
	var formats []int16
	for i, oid := range oids {
		if oid == 0 {
			continue
		}
		if formats == nil {
			formats = make([]int16, len(oids))
		}
		formats[i] = 1
	}
	return formats
}

// decodeBinary decodes the binary form of a value of type oid (one that
// binaryResult takes), its boxed value from slab (which may be nil).
func decodeBinary(oid uint32, v []byte, slab *connectors.RowSlab) (any, error) {
	switch oid {
	case pgtype.BoolOID:
		if len(v) == 1 {
			return v[0] != 0, nil
		}
	case pgtype.Int2OID:
		if len(v) == 2 {
			return slab.Int32(int32(int16(binary.BigEndian.Uint16(v)))), nil
		}
	case pgtype.Int4OID:
		if len(v) == 4 {
			return slab.Int32(int32(binary.BigEndian.Uint32(v))), nil
		}
	case pgtype.Int8OID:
		if len(v) == 8 {
			return slab.Int64(int64(binary.BigEndian.Uint64(v))), nil
		}
	case pgtype.DateOID:
		if len(v) == 4 {
			return binaryDate(int32(binary.BigEndian.Uint32(v)), slab)
		}
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		if len(v) == 8 {
			return binaryTimestamp(int64(binary.BigEndian.Uint64(v)), oid == pgtype.TimestamptzOID, slab), nil
		}
	}
	return nil, fmt.Errorf("%w: binary value of type %d in %d bytes", errBadText, oid, len(v))
}

// binaryDate is days since 2000-01-01 as days since 1970-01-01; the
// extremes are the infinities, as in the text form.
func binaryDate(d int32, slab *connectors.RowSlab) (any, error) {
	switch d {
	case math.MaxInt32:
		return int32(infinityDate), nil
	case math.MinInt32:
		return int32(minusInfinityDate), nil
	}
	days := int64(d) + pgEpochDays
	if days <= minusInfinityDate || days >= infinityDate {
		// PostgreSQL's dates end in 5874897, well inside an int32.
		return nil, fmt.Errorf("%w: date of %d days since 2000-01-01", errBadText, d)
	}
	return slab.Int32(int32(days)), nil
}

// binaryTimestamp is microseconds since 2000-01-01 as microseconds since
// 1970-01-01. A value that its Avro type cannot hold (only after 294247)
// is a BadValue with the text PostgreSQL prints for it.
func binaryTimestamp(us int64, withZone bool, slab *connectors.RowSlab) any {
	switch us {
	case math.MaxInt64:
		return int64(infinityMicros)
	case math.MinInt64:
		return int64(minusInfinityMic)
	}
	if us >= math.MaxInt64-pgEpochMicros {
		reason := localTimestampRange
		if withZone {
			reason = timestampRange
		}
		return connectors.BadValue{Text: timestampText(us, withZone), Reason: reason}
	}
	// PostgreSQL's timestamps begin in 4713 BC, far from MinInt64.
	return slab.Int64(us + pgEpochMicros)
}

// timestampText prints a timestamp of microseconds since 2000-01-01 after
// the year 1 as PostgreSQL does with DateStyle ISO and TimeZone UTC:
// "294276-12-31 23:59:59.999999", with "+00" for a timestamptz.
func timestampText(us int64, withZone bool) string {
	sec, frac := us/1_000_000, us%1_000_000
	if frac < 0 {
		sec, frac = sec-1, frac+1_000_000
	}
	t := time.Unix(sec+pgEpochDays*86_400, 0).UTC()
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", t.Year(), int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second())
	if frac != 0 {
		s += strings.TrimRight("."+strconv.FormatInt(1_000_000+frac, 10)[1:], "0")
	}
	if withZone {
		s += "+00"
	}
	return s
}
