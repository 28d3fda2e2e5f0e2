package postgres

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// A decoder turns one value in PostgreSQL's text output form into the neutral
// value form of its connectors.Kind. Both the snapshot (text-format query
// results) and the stream (pgoutput tuples, which are text) use the same
// decoders, so a value looks the same whichever path it took.
//
// The text forms assume the session settings that both connections set:
// TimeZone=UTC, DateStyle=ISO, IntervalStyle=postgres, bytea_output=hex,
// extra_float_digits=1.
type decoder func(src []byte) (any, error)

// Infinite dates and timestamps have no Avro counterpart. They are carried as
// the extreme values of the Avro type, as documented in the README. So a
// finite value must fall strictly between them: one that does not (a
// timestamp after 294247-01-10 04:00:54.775806, though PostgreSQL's go on
// to 294276) is a connectors.BadValue, never a wrapped count.
const (
	infinityDate      = math.MaxInt32
	minusInfinityDate = math.MinInt32
	infinityMicros    = math.MaxInt64
	minusInfinityMic  = math.MinInt64
	microsPerDay      = 86_400_000_000
)

// The reasons of BadValues, with the ranges that the Avro types hold.
const (
	dateRange           = "outside the range of an Avro date (int32 days since 1970-01-01: 5877642-06-24 BC to 5881580-07-10; the extremes stand for -infinity and infinity)"
	timestampRange      = "outside the range of an Avro timestamp-micros (int64 microseconds since 1970: 290309-12-21 19:59:05.224193 BC to 294247-01-10 04:00:54.775806 UTC; the extremes stand for -infinity and infinity)"
	localTimestampRange = "outside the range of an Avro local-timestamp-micros (int64 microseconds since 1970-01-01 00:00: 290309-12-21 19:59:05.224193 BC to 294247-01-10 04:00:54.775806; the extremes stand for -infinity and infinity)"
)

// errBadText is wrapped by every decoding error.
var errBadText = errors.New("unexpected text form")

// str views b as a string without copying. The result must not outlive b.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decoderFor returns the decoder of a neutral type.
func decoderFor(t connectors.Type) (decoder, error) {
	switch t.Kind {
	case connectors.KindBool:
		return decodeBool, nil
	case connectors.KindInt32:
		return decodeInt32, nil
	case connectors.KindInt64:
		return decodeInt64, nil
	case connectors.KindFloat32:
		return decodeFloat32, nil
	case connectors.KindFloat64:
		return decodeFloat64, nil
	case connectors.KindDecimal:
		return decodeDecimal, nil
	case connectors.KindString, connectors.KindUUID, connectors.KindJSON:
		return decodeString, nil
	case connectors.KindBytes:
		return decodeBytea, nil
	case connectors.KindDate:
		return decodeDate, nil
	case connectors.KindTimestamp:
		return decodeTimestamptz, nil
	case connectors.KindLocalTimestamp:
		return decodeTimestamp, nil
	case connectors.KindTime:
		return decodeTime, nil
	case connectors.KindArray:
		elem, err := decoderFor(*t.Elem)
		if err != nil {
			return nil, err
		}
		return func(src []byte) (any, error) { return decodeArray(src, elem) }, nil
	}
	return nil, fmt.Errorf("%w: no decoder for kind %s", connectors.ErrUnsupportedType, t.Kind)
}

func decodeBool(src []byte) (any, error) {
	if len(src) == 1 {
		switch src[0] {
		case 't':
			return true, nil
		case 'f':
			return false, nil
		}
	}
	return nil, fmt.Errorf("%w: boolean %q", errBadText, src)
}

func decodeInt32(src []byte) (any, error) {
	n, err := strconv.ParseInt(str(src), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: integer %q", errBadText, src)
	}
	return int32(n), nil
}

func decodeInt64(src []byte) (any, error) {
	n, err := strconv.ParseInt(str(src), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: bigint %q", errBadText, src)
	}
	return n, nil
}

func decodeFloat32(src []byte) (any, error) {
	f, err := strconv.ParseFloat(str(src), 32)
	if err != nil {
		return nil, fmt.Errorf("%w: real %q", errBadText, src)
	}
	return float32(f), nil
}

func decodeFloat64(src []byte) (any, error) {
	f, err := strconv.ParseFloat(str(src), 64)
	if err != nil {
		return nil, fmt.Errorf("%w: double precision %q", errBadText, src)
	}
	return f, nil
}

// decodeDecimal passes numeric text on as it is: PostgreSQL prints numeric
// in plain notation, never with an exponent. NaN (and, for unconstrained
// numeric, the infinities) cannot be a decimal, but they are passed on as
// their text too: the encoder refuses them as a bad row that names the
// column (errors.on_bad_row), where a decoding error would stop reading
// the stream for good.
func decodeDecimal(src []byte) (any, error) {
	if len(src) == 0 {
		return nil, fmt.Errorf("%w: numeric %q", errBadText, src)
	}
	return string(src), nil
}

func decodeString(src []byte) (any, error) { return string(src), nil }

// skipValue is the decoder of a column that is not published: whatever it
// holds, its value is nil.
func skipValue([]byte) (any, error) { return nil, nil }

func decodeBytea(src []byte) (any, error) {
	if len(src) < 2 || src[0] != '\\' || src[1] != 'x' {
		return nil, fmt.Errorf("%w: bytea not in hex output form", errBadText)
	}
	out := make([]byte, hex.DecodedLen(len(src)-2))
	if _, err := hex.Decode(out, src[2:]); err != nil {
		return nil, fmt.Errorf("%w: bytea: %v", errBadText, err)
	}
	return out, nil
}

// decodeDate parses ISO dates: "2024-02-29", "0044-03-15 BC", "infinity".
func decodeDate(src []byte) (any, error) {
	s := str(src)
	switch s {
	case "infinity":
		return int32(infinityDate), nil
	case "-infinity":
		return int32(minusInfinityDate), nil
	}
	y, m, d, rest, ok := parseYMD(s)
	if !ok {
		return nil, fmt.Errorf("%w: date %q", errBadText, src)
	}
	bc, ok := parseEra(rest)
	if !ok {
		return nil, fmt.Errorf("%w: date %q", errBadText, src)
	}
	if bc {
		y = 1 - y
	}
	days := connectors.DaysFromCivil(y, m, d)
	if days <= minusInfinityDate || days >= infinityDate {
		return connectors.BadValue{Text: string(src), Reason: dateRange}, nil
	}
	return int32(days), nil
}

// decodeTimestamp parses "2024-02-29 13:14:15.123456" (with " BC" perhaps)
// into microseconds of the wall clock since 1970-01-01 00:00.
func decodeTimestamp(src []byte) (any, error) {
	return timestampValue(src, false)
}

// decodeTimestamptz parses "2024-02-29 13:14:15.123456+00" (any offset,
// "+05:30" or "+05:30:12") into microseconds since the epoch, UTC.
func decodeTimestamptz(src []byte) (any, error) {
	return timestampValue(src, true)
}

func timestampValue(src []byte, withZone bool) (any, error) {
	what, reason := "timestamp", localTimestampRange
	if withZone {
		what, reason = "timestamptz", timestampRange
	}
	s := str(src)
	switch s {
	case "infinity":
		return int64(infinityMicros), nil
	case "-infinity":
		return int64(minusInfinityMic), nil
	}
	days, clock, off, ok := parseTimestamp(s, withZone)
	if !ok {
		return nil, fmt.Errorf("%w: %s %q", errBadText, what, src)
	}
	us, ok := timestampMicros(days, clock, off)
	if !ok {
		return connectors.BadValue{Text: string(src), Reason: reason}, nil
	}
	return us, nil
}

// timestampMicros returns days*microsPerDay + clock - offsetSec seconds,
// and false when that is outside int64 or on one of its extremes, which
// stand for the infinities. clock is at most a day and offsetSec a few
// hours, as the text forms give them.
func timestampMicros(days, clock, offsetSec int64) (int64, bool) {
	const maxDays = math.MaxInt64 / microsPerDay
	if days > maxDays || days < -maxDays-1 {
		return 0, false
	}
	var us int64
	if days < 0 {
		// (days+1) days and clock less a day, so that neither product
		// nor sum passes MinInt64 on the way.
		us, clock = (days+1)*microsPerDay, clock-microsPerDay
	} else {
		us = days * microsPerDay
	}
	delta := clock - offsetSec*1_000_000
	if delta > 0 && us > math.MaxInt64-delta || delta < 0 && us < math.MinInt64-delta {
		return 0, false
	}
	us += delta
	if us == infinityMicros || us == minusInfinityMic {
		return 0, false
	}
	return us, true
}

// decodeTime parses "13:14:15.123456" into microseconds since midnight.
func decodeTime(src []byte) (any, error) {
	us, rest, ok := parseClock(str(src))
	if !ok || rest != "" {
		return nil, fmt.Errorf("%w: time %q", errBadText, src)
	}
	return us, nil
}

// parseTimestamp splits "2024-02-29 13:14:15.123456" (with an offset when
// withZone, and " BC" perhaps) into days since 1970-01-01, microseconds
// since midnight and the offset in seconds east of UTC.
func parseTimestamp(s string, withZone bool) (days, clock, offsetSec int64, ok bool) {
	y, m, d, rest, ok := parseYMD(s)
	if !ok || len(rest) < 1 || rest[0] != ' ' {
		return 0, 0, 0, false
	}
	clock, rest, ok = parseClock(rest[1:])
	if !ok {
		return 0, 0, 0, false
	}
	if withZone {
		if offsetSec, rest, ok = parseOffset(rest); !ok {
			return 0, 0, 0, false
		}
	}
	bc, ok := parseEra(rest)
	if !ok {
		return 0, 0, 0, false
	}
	if bc {
		y = 1 - y
	}
	return connectors.DaysFromCivil(y, m, d), clock, offsetSec, true
}

// parseYMD reads "YYYY-MM-DD" where the year has four to nine digits
// (PostgreSQL's dates end in the year 5874897).
func parseYMD(s string) (y, m, d int64, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		y = y*10 + int64(s[i]-'0')
		i++
	}
	if i < 4 || i > 9 || len(s) < i+6 || s[i] != '-' || s[i+3] != '-' {
		return 0, 0, 0, "", false
	}
	m, ok1 := twoDigits(s[i+1:])
	d, ok2 := twoDigits(s[i+4:])
	if !ok1 || !ok2 {
		return 0, 0, 0, "", false
	}
	return y, m, d, s[i+6:], true
}

// parseClock reads "HH:MM:SS" with an optional fraction of up to six digits.
func parseClock(s string) (us int64, rest string, ok bool) {
	if len(s) < 8 || s[2] != ':' || s[5] != ':' {
		return 0, "", false
	}
	h, ok1 := twoDigits(s)
	mi, ok2 := twoDigits(s[3:])
	sec, ok3 := twoDigits(s[6:])
	if !ok1 || !ok2 || !ok3 {
		return 0, "", false
	}
	us = ((h*60+mi)*60 + sec) * 1_000_000
	s = s[8:]
	if len(s) > 0 && s[0] == '.' {
		i, frac, scale := 1, int64(0), int64(100_000)
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if i > 6 {
				return 0, "", false
			}
			frac += int64(s[i]-'0') * scale
			scale /= 10
		}
		if i == 1 {
			return 0, "", false
		}
		us += frac
		s = s[i:]
	}
	return us, s, true
}

// parseOffset reads "+HH", "+HH:MM" or "+HH:MM:SS" (or '-').
func parseOffset(s string) (sec int64, rest string, ok bool) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, "", false
	}
	sign := int64(1)
	if s[0] == '-' {
		sign = -1
	}
	h, ok := twoDigits(s[1:])
	if !ok {
		return 0, "", false
	}
	sec, s = h*3600, s[3:]
	for unit := int64(60); len(s) >= 3 && s[0] == ':' && unit >= 1; unit /= 60 {
		v, ok := twoDigits(s[1:])
		if !ok {
			return 0, "", false
		}
		sec += v * unit
		s = s[3:]
	}
	return sign * sec, s, true
}

func parseEra(s string) (bc, ok bool) {
	switch s {
	case "":
		return false, true
	case " BC":
		return true, true
	}
	return false, false
}

func twoDigits(s string) (int64, bool) {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int64(s[0]-'0')*10 + int64(s[1]-'0'), true
}

// decodeArray parses a one-dimensional array literal such as
// {1,NULL,"a \"b\"",c}. Multi-dimensional arrays are refused: Avro has no
// way to carry their shape next to a one-dimensional column type.
func decodeArray(src []byte, elem decoder) (any, error) {
	s := str(src)
	if strings.HasPrefix(s, "[") { // explicit bounds, "[0:1]={1,2}"
		i := strings.Index(s, "=")
		if i < 0 {
			return nil, fmt.Errorf("%w: array %q", errBadText, s)
		}
		s = s[i+1:]
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("%w: array %q", errBadText, s)
	}
	body := s[1 : len(s)-1]
	out := []any{}
	if body == "" {
		return out, nil
	}
	if body[0] == '{' {
		return connectors.BadValue{Text: string(src), Reason: "a multi-dimensional array, which an Avro array of the element type cannot hold"}, nil
	}
	var buf []byte
	for i := 0; i <= len(body); {
		var v any
		if i < len(body) && body[i] == '"' {
			buf = buf[:0]
			j := i + 1
			for ; j < len(body) && body[j] != '"'; j++ {
				if body[j] == '\\' && j+1 < len(body) {
					j++
				}
				buf = append(buf, body[j])
			}
			if j >= len(body) {
				return nil, fmt.Errorf("%w: unterminated quote in array", errBadText)
			}
			var err error
			if v, err = elem(buf); err != nil {
				return nil, err
			}
			i = j + 1
		} else {
			j := strings.IndexByte(body[i:], ',')
			if j < 0 {
				j = len(body) - i
			}
			tok := body[i : i+j]
			if tok != "NULL" {
				var err error
				if v, err = elem([]byte(tok)); err != nil {
					return nil, err
				}
			}
			i += j
		}
		out = append(out, v)
		if i >= len(body) {
			break
		}
		if body[i] != ',' {
			return nil, fmt.Errorf("%w: array %q", errBadText, s)
		}
		i++
	}
	return out, nil
}

// decodeValues decodes a text-format row in column order, with its row and
// values from slab (which may be nil) and their bytes counted there.
func (r *relation) decodeValues(vals [][]byte, slab *connectors.RowSlab) ([]any, error) {
	row := slab.Row(len(r.decoders))
	if err := r.decodeText(row, vals, nil, slab); err != nil {
		return nil, err
	}
	slab.Used(valueBytes(vals))
	return row, nil
}

func (r *relation) columnError(i int, err error) error {
	c := r.table.Columns[i]
	return fmt.Errorf("decode column %q (%s) of table %s: %w", c.Name, c.SQLType, r.table.ID(), err)
}

// decodeTuple decodes a pgoutput tuple. Unchanged TOAST values are taken from
// fromOld when given; otherwise unchanged reports that some are missing.
func (r *relation) decodeTuple(tup *pglogrepl.TupleData, fromOld []any) (row []any, unchanged bool, err error) {
	if tup == nil {
		return nil, false, nil
	}
	if len(tup.Columns) != len(r.decoders) {
		return nil, false, fmt.Errorf("decode tuple of table %s: %d columns, relation has %d", r.table.ID(), len(tup.Columns), len(r.decoders))
	}
	row = make([]any, len(r.decoders))
	for i, col := range tup.Columns {
		switch col.DataType {
		case pglogrepl.TupleDataTypeText:
			if row[i], err = r.decoders[i](col.Data); err != nil {
				return nil, false, r.columnError(i, err)
			}
		case pglogrepl.TupleDataTypeToast:
			switch {
			case r.skipped != nil && r.skipped[i]:
				// Not decoded, so not worth reading again.
			case fromOld != nil:
				row[i] = fromOld[i]
			default:
				unchanged = true
			}
		case pglogrepl.TupleDataTypeBinary:
			return nil, false, r.columnError(i, errors.New("binary tuple data was not requested"))
		}
	}
	return row, unchanged, nil
}
