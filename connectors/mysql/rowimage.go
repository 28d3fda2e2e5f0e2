package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unsafe"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
)

// This file reads the row images of a rows event straight into neutral
// values. go-mysql's RowsEvent decoding boxes every value into an any,
// formats DATETIME and TIMESTAMP values as text with time.Format and
// fmt.Sprintf and DECIMAL values through a strings.Builder, and builds the
// table's signedness map again for every row; fromBinlog then converts
// those carriers, parsing the text back. On a drain that was more than a
// third of liberator's CPU. Here each value goes from its bytes to its
// neutral form once, through the same conversions (intValue, decimalValue,
// textDecoder, datetimeMicros, ...), so both ways give the same values.
//
// YEAR, TIME, ENUM, SET, BIT and GEOMETRY values are read into the
// carrier go-mysql gives them and converted by fromBinlog. A table with a
// column of another type (MySQL's binary JSON, VECTOR, the temporal
// formats older than MySQL 5.6) and compressed or partial-update events
// are decoded by go-mysql as before.

// rowPlan is how the columns of a TABLE_MAP are read from a row image.
type rowPlan struct {
	cols []rowCol
}

// rowCol is one column of a rowPlan: its binlog type (ENUM and SET
// resolved from MYSQL_TYPE_STRING), its metadata, and for
// MYSQL_TYPE_STRING its declared byte length.
type rowCol struct {
	tp       byte
	meta     uint16
	length   int
	unsigned bool
}

// rowPlans caches the plans of the table maps the reader goroutine meets,
// by table id. Every transaction brings its own TABLE_MAP event; the plan
// of the last one serves the next while the column types stay the same.
type rowPlans struct {
	mu    sync.Mutex
	plans map[uint64]planEntry
}

type planEntry struct {
	ev   *replication.TableMapEvent
	plan *rowPlan
}

// of returns the plan of t, or nil when go-mysql must decode its rows.
func (p *rowPlans) of(t *replication.TableMapEvent) *rowPlan {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.plans[t.TableID]
	if ok && (e.ev == t || samePlanInput(e.ev, t)) {
		p.plans[t.TableID] = planEntry{ev: t, plan: e.plan}
		return e.plan
	}
	if p.plans == nil || len(p.plans) > maxMappings {
		p.plans = map[uint64]planEntry{}
	}
	plan := newRowPlan(t)
	p.plans[t.TableID] = planEntry{ev: t, plan: plan}
	return plan
}

// samePlanInput reports whether two table maps give the same plan.
func samePlanInput(a, b *replication.TableMapEvent) bool {
	return a.ColumnCount == b.ColumnCount && bytes.Equal(a.ColumnType, b.ColumnType) &&
		slices.Equal(a.ColumnMeta, b.ColumnMeta) && bytes.Equal(a.SignednessBitmap, b.SignednessBitmap)
}

func newRowPlan(t *replication.TableMapEvent) *rowPlan {
	if len(t.ColumnType) != int(t.ColumnCount) || len(t.ColumnMeta) != int(t.ColumnCount) {
		return nil
	}
	unsigned := t.UnsignedMap()
	plan := &rowPlan{cols: make([]rowCol, t.ColumnCount)}
	for i, tp := range t.ColumnType {
		c := rowCol{tp: tp, meta: t.ColumnMeta[i], unsigned: unsigned[i]}
		if tp == gomysql.MYSQL_TYPE_STRING {
			// As go-mysql's decodeValue: the real type and the length
			// share the metadata.
			c.length = int(c.meta)
			if c.meta >= 256 {
				b0, b1 := uint8(c.meta>>8), uint8(c.meta&0xff)
				if b0&0x30 != 0x30 {
					c.length = int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
					c.tp = b0 | 0x30
				} else {
					c.length = int(c.meta & 0xff)
					c.tp = b0
				}
			}
		}
		switch c.tp {
		case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24,
			gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG,
			gomysql.MYSQL_TYPE_FLOAT, gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_NEWDECIMAL,
			gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING,
			gomysql.MYSQL_TYPE_BLOB, gomysql.MYSQL_TYPE_TIMESTAMP2, gomysql.MYSQL_TYPE_DATETIME2,
			gomysql.MYSQL_TYPE_DATE, gomysql.MYSQL_TYPE_TIME2, gomysql.MYSQL_TYPE_YEAR,
			gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET, gomysql.MYSQL_TYPE_BIT, gomysql.MYSQL_TYPE_GEOMETRY:
		default:
			return nil
		}
		plan.cols[i] = c
	}
	return plan
}

// rawRows is a rows event whose rows are still bytes: data from pos on.
type rawRows struct {
	pos  int
	data []byte
	plan *rowPlan
}

// plainRowsEvent reports whether a rows event's images are laid out as
// rowPlan reads them: not compressed, not a partial JSON update.
func plainRowsEvent(t replication.EventType) bool {
	switch t {
	case replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2,
		replication.UPDATE_ROWS_EVENTv1, replication.UPDATE_ROWS_EVENTv2,
		replication.DELETE_ROWS_EVENTv1, replication.DELETE_ROWS_EVENTv2:
		return true
	}
	return false
}

// decodeImages reads every row image of a rows event into neutral values
// for cols: one image per row, two (before, after) per row of an update.
func decodeImages(e *replication.RowsEvent, raw rawRows, cols []column, a *textArena, slab *connectors.RowSlab) ([][]any, error) {
	if len(cols) != len(raw.plan.cols) || int(e.ColumnCount) != len(cols) {
		return nil, fmt.Errorf("row of %d values for %d columns", e.ColumnCount, len(cols))
	}
	var images [][]any
	data, pos := raw.data, raw.pos
	for pos < len(data) {
		img, n, err := decodeImage(data[pos:], e.ColumnBitmap1, raw.plan, cols, a, slab)
		if err != nil {
			return nil, err
		}
		if images == nil {
			// The first image's size sizes the rest.
			images = make([][]any, 0, (len(data)-pos)/max(n, 1)+1)
		}
		images = append(images, img)
		pos += n
		if e.ColumnBitmap2 != nil {
			img, n, err := decodeImage(data[pos:], e.ColumnBitmap2, raw.plan, cols, a, slab)
			if err != nil {
				return nil, err
			}
			images = append(images, img)
			pos += n
		}
	}
	return images, nil
}

var errShortImage = errors.New("row image ends early")

// decodeImage reads one row image: its null bitmap, then the values of the
// columns present in bitmap. A column absent from the image is nil, as
// under go-mysql.
func decodeImage(data []byte, bitmap []byte, plan *rowPlan, cols []column, a *textArena, slab *connectors.RowSlab) (row []any, n int, err error) {
	defer func() {
		// A value longer than the event is a corrupt event; go-mysql
		// recovers from the same.
		if r := recover(); r != nil {
			row, n, err = nil, 0, fmt.Errorf("%w: %v", errShortImage, r)
		}
	}()
	present := 0
	for i := range cols {
		if isBitSet(bitmap, i) {
			present++
		}
	}
	nullBytes := (present + 7) / 8
	nulls := data[:nullBytes]
	pos := nullBytes
	row = slab.Row(len(cols))
	nullIndex := 0
	for i := range cols {
		if !isBitSet(bitmap, i) {
			continue
		}
		null := isBitSet(nulls, nullIndex)
		nullIndex++
		if null {
			continue
		}
		v, m, err := decodeValue(data[pos:], &plan.cols[i], &cols[i], a)
		if err != nil {
			return nil, 0, fmt.Errorf("column %s (%s): %w", cols[i].Name, cols[i].SQLType, err)
		}
		row[i] = v
		pos += m
	}
	slab.Used(pos)
	return row, pos, nil
}

func isBitSet(bitmap []byte, i int) bool { return bitmap[i>>3]&(1<<(uint(i)&7)) != 0 }

// decodeValue reads one value of column rc and converts it for c. The
// conversions are fromBinlog's for the carrier go-mysql would have
// produced; a column whose conversion does not expect that carrier gets
// the carrier itself, through fromBinlog.
func decodeValue(data []byte, rc *rowCol, c *column, a *textArena) (any, int, error) {
	if c.conv == convSkip {
		n, err := valueLen(data, rc)
		return nil, n, err
	}
	switch rc.tp {
	case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24,
		gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_LONGLONG:
		return intValue(data, rc, c)
	case gomysql.MYSQL_TYPE_FLOAT:
		f := math.Float32frombits(binary.LittleEndian.Uint32(data))
		if c.conv == convFloat32 {
			return f, 4, nil
		}
		v, err := c.fromBinlog(f)
		return v, 4, err
	case gomysql.MYSQL_TYPE_DOUBLE:
		f := math.Float64frombits(binary.LittleEndian.Uint64(data))
		if c.conv == convFloat64 {
			return f, 8, nil
		}
		v, err := c.fromBinlog(f)
		return v, 8, err
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		var buf [96]byte
		text, n, err := appendDecimal(buf[:0], data, int(rc.meta>>8), int(rc.meta&0xff))
		if err != nil {
			return nil, 0, err
		}
		if c.conv == convDecimal {
			v, err := decimalIn(a, text)
			return v, n, err
		}
		v, err := c.fromBinlog(string(text))
		return v, n, err
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING:
		length := rc.length
		if rc.tp != gomysql.MYSQL_TYPE_STRING {
			length = int(rc.meta)
		}
		var b []byte
		var n int
		if length < 256 {
			n = int(data[0]) + 1
			b = data[1:n]
		} else {
			n = int(binary.LittleEndian.Uint16(data)) + 2
			b = data[2:n]
		}
		if c.conv == convString || c.conv == convJSONText {
			return c.text.decodeIn(a, b), n, nil
		}
		// go-mysql's carrier is a string over the event's bytes.
		v, err := c.fromBinlog(unsafe.String(unsafe.SliceData(b), len(b)))
		return v, n, err
	case gomysql.MYSQL_TYPE_BLOB:
		b, n, err := blobValue(data, rc.meta)
		if err != nil {
			return nil, 0, err
		}
		switch c.conv {
		case convString, convJSONText:
			return c.text.decodeIn(a, b), n, nil
		case convBytes:
			return cloneBytes(b), n, nil
		}
		v, err := c.fromBinlog(b)
		return v, n, err
	case gomysql.MYSQL_TYPE_TIMESTAMP2:
		dec := int(rc.meta)
		n := 4 + (dec+1)/2
		sec := int64(binary.BigEndian.Uint32(data))
		usec := fracMicros(data[4:], dec)
		if c.conv == convTimestamp || c.conv == convDatetime {
			if sec == 0 {
				return zeroDate(0, 0, 0, usec), n, nil
			}
			return sec*microsPerSecond + usec, n, nil
		}
		var text string
		if sec == 0 {
			text = zeroTimeText(usec, dec)
		} else {
			text = time.Unix(sec, usec*1000).UTC().Format(fracTimeLayout(dec))
		}
		v, err := c.fromBinlog(text)
		return v, n, err
	case gomysql.MYSQL_TYPE_DATETIME2:
		dec := int(rc.meta)
		n := 5 + (dec+1)/2
		intPart := int64(be40(data)) - 0x8000000000
		frac := fracMicros(data[5:], dec)
		if intPart == 0 {
			if c.conv == convDatetime || c.conv == convTimestamp {
				return zeroDate(0, 0, 0, frac), n, nil
			}
			v, err := c.fromBinlog(zeroTimeText(frac, dec))
			return v, n, err
		}
		tmp := intPart<<24 + frac
		if tmp < 0 {
			tmp = -tmp
		}
		ymdhms := tmp >> 24
		ymd, hms := ymdhms>>17, ymdhms%(1<<17)
		d, ym := ymd%(1<<5), ymd>>5
		mo, y := ym%13, ym/13
		s, mi, h := hms%(1<<6), (hms>>6)%(1<<6), hms>>12
		if c.conv == convDatetime || c.conv == convTimestamp {
			if y > 9999 || d > 31 || h > 23 || mi > 59 || s > 59 {
				return nil, 0, fmt.Errorf("datetime %04d-%02d-%02d %02d:%02d:%02d is not YYYY-MM-DD HH:MM:SS", y, mo, d, h, mi, s)
			}
			return datetimeMicros(y, mo, d, (h*3600+mi*60+s)*microsPerSecond+frac), n, nil
		}
		text := fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
		if dec > 0 {
			text += fmt.Sprintf(".%06d", frac)[:dec+1]
		}
		v, err := c.fromBinlog(text)
		return v, n, err
	case gomysql.MYSQL_TYPE_DATE:
		u := int64(data[0]) | int64(data[1])<<8 | int64(data[2])<<16
		y, m, d := u/(16*32), u/32%16, u%32
		if c.conv == convDate {
			if u == 0 {
				return int32(math.MinInt32), 3, nil
			}
			if y > 9999 || m > 12 {
				return nil, 0, fmt.Errorf("date %04d-%02d-%02d is not YYYY-MM-DD", y, m, d)
			}
			if !isCalendarDate(y, m, d) {
				return int32(math.MinInt32 + yyyymmdd(y, m, d)), 3, nil
			}
			return int32(connectors.DaysFromCivil(y, m, d)), 3, nil
		}
		text := "0000-00-00"
		if u != 0 {
			text = fmt.Sprintf("%04d-%02d-%02d", y, m, d)
		}
		v, err := c.fromBinlog(text)
		return v, 3, err
	}
	// The rarer types go through go-mysql's carrier.
	carrier, n, err := rareCarrier(data, rc)
	if err != nil {
		return nil, 0, err
	}
	v, err := c.fromBinlog(carrier)
	return v, n, err
}

// rareCarrier reads a YEAR, TIME, ENUM, SET, BIT or GEOMETRY value into
// the carrier go-mysql's decodeValue gives it.
func rareCarrier(data []byte, rc *rowCol) (any, int, error) {
	switch rc.tp {
	case gomysql.MYSQL_TYPE_YEAR:
		if data[0] == 0 {
			return 0, 1, nil
		}
		return int(data[0]) + 1900, 1, nil
	case gomysql.MYSQL_TYPE_ENUM:
		switch rc.meta & 0xff {
		case 1:
			return int64(data[0]), 1, nil
		case 2:
			return int64(binary.LittleEndian.Uint16(data)), 2, nil
		}
		return nil, 0, fmt.Errorf("enum of %d bytes", rc.meta&0xff)
	case gomysql.MYSQL_TYPE_SET:
		n := int(rc.meta & 0xff)
		if n < 1 || n > 8 {
			return nil, 0, fmt.Errorf("set of %d bytes", n)
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(data[i])
		}
		return int64(v), n, nil
	case gomysql.MYSQL_TYPE_BIT:
		nbits := int(rc.meta>>8)*8 + int(rc.meta&0xff)
		n := (nbits + 7) / 8
		if n < 1 || n > 8 {
			return nil, 0, fmt.Errorf("bit of %d bytes", n)
		}
		var v uint64
		for i := range n {
			v = v<<8 | uint64(data[i])
		}
		return int64(v), n, nil
	case gomysql.MYSQL_TYPE_GEOMETRY:
		return blobValue(data, rc.meta)
	case gomysql.MYSQL_TYPE_TIME2:
		return time2Text(data, int(rc.meta))
	}
	return nil, 0, fmt.Errorf("binlog type %d", rc.tp)
}

// time2Text reads a TIME of dec fractional digits into go-mysql's text of
// it.
func time2Text(data []byte, dec int) (string, int, error) {
	n := 3 + (dec+1)/2
	be24 := func(b []byte) int64 { return int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2]) }
	var tmp, intPart, frac int64
	switch dec {
	case 1, 2:
		intPart = be24(data) - 0x800000
		frac = int64(data[3])
		if intPart < 0 && frac != 0 {
			// Negative values keep their fraction in reverse order.
			intPart++
			frac -= 0x100
		}
		tmp = intPart<<24 + frac*10000
	case 3, 4:
		intPart = be24(data) - 0x800000
		frac = int64(binary.BigEndian.Uint16(data[3:]))
		if intPart < 0 && frac != 0 {
			intPart++
			frac -= 0x10000
		}
		tmp = intPart<<24 + frac*100
	case 5, 6:
		tmp = (be24(data)<<24 | be24(data[3:])) - 0x800000000000
		return timeText(tmp, dec), n, nil
	default:
		intPart = be24(data) - 0x800000
		tmp = intPart << 24
	}
	if intPart == 0 && frac == 0 {
		return "00:00:00", n, nil
	}
	return timeText(tmp, dec), n, nil
}

// timeText is go-mysql's timeFormat.
func timeText(tmp int64, dec int) string {
	sign := ""
	if tmp < 0 {
		tmp, sign = -tmp, "-"
	}
	hms := tmp >> 24
	hour, minute, second := (hms>>12)%(1<<10), (hms>>6)%(1<<6), hms%(1<<6)
	if secPart := tmp % (1 << 24); secPart != 0 {
		s := fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, hour, minute, second, secPart)
		return s[:len(s)-(6-dec)]
	}
	return fmt.Sprintf("%s%02d:%02d:%02d", sign, hour, minute, second)
}

// intValue reads an integer and converts it for c. A column that is not
// an integer column gets go-mysql's carrier, through fromBinlog.
func intValue(data []byte, rc *rowCol, c *column) (any, int, error) {
	var u uint64
	var n int
	switch rc.tp {
	case gomysql.MYSQL_TYPE_TINY:
		u, n = uint64(data[0]), 1
	case gomysql.MYSQL_TYPE_SHORT:
		u, n = uint64(binary.LittleEndian.Uint16(data)), 2
	case gomysql.MYSQL_TYPE_INT24:
		u, n = uint64(data[0])|uint64(data[1])<<8|uint64(data[2])<<16, 3
	case gomysql.MYSQL_TYPE_LONG:
		u, n = uint64(binary.LittleEndian.Uint32(data)), 4
	default:
		u, n = binary.LittleEndian.Uint64(data), 8
	}
	// The signed value: the n-byte two's complement, sign-extended.
	shift := 64 - 8*n
	s := int64(u<<shift) >> shift
	switch c.conv {
	case convInt32, convInt64, convUint64:
		if rc.unsigned {
			return c.uintValue(u), n, nil
		}
		return c.intValue(s), n, nil
	}
	var carrier any
	switch {
	case rc.tp == gomysql.MYSQL_TYPE_TINY && rc.unsigned:
		carrier = uint8(u)
	case rc.tp == gomysql.MYSQL_TYPE_TINY:
		carrier = int8(s)
	case rc.tp == gomysql.MYSQL_TYPE_SHORT && rc.unsigned:
		carrier = uint16(u)
	case rc.tp == gomysql.MYSQL_TYPE_SHORT:
		carrier = int16(s)
	case (rc.tp == gomysql.MYSQL_TYPE_INT24 || rc.tp == gomysql.MYSQL_TYPE_LONG) && rc.unsigned:
		carrier = uint32(u)
	case rc.tp == gomysql.MYSQL_TYPE_INT24 || rc.tp == gomysql.MYSQL_TYPE_LONG:
		carrier = int32(s)
	case rc.unsigned:
		carrier = u
	default:
		carrier = s
	}
	v, err := c.fromBinlog(carrier)
	return v, n, err
}

// valueLen is the byte length of a value of rc.
func valueLen(data []byte, rc *rowCol) (int, error) {
	switch rc.tp {
	case gomysql.MYSQL_TYPE_TINY:
		return 1, nil
	case gomysql.MYSQL_TYPE_SHORT:
		return 2, nil
	case gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_DATE:
		return 3, nil
	case gomysql.MYSQL_TYPE_LONG, gomysql.MYSQL_TYPE_FLOAT:
		return 4, nil
	case gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_DOUBLE:
		return 8, nil
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		return decimalBinSize(int(rc.meta>>8), int(rc.meta&0xff)), nil
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_STRING:
		length := rc.length
		if rc.tp != gomysql.MYSQL_TYPE_STRING {
			length = int(rc.meta)
		}
		if length < 256 {
			return int(data[0]) + 1, nil
		}
		return int(binary.LittleEndian.Uint16(data)) + 2, nil
	case gomysql.MYSQL_TYPE_BLOB:
		_, n, err := blobValue(data, rc.meta)
		return n, err
	case gomysql.MYSQL_TYPE_TIMESTAMP2:
		return 4 + (int(rc.meta)+1)/2, nil
	case gomysql.MYSQL_TYPE_DATETIME2:
		return 5 + (int(rc.meta)+1)/2, nil
	}
	_, n, err := rareCarrier(data, rc)
	return n, err
}

// blobValue reads a BLOB or TEXT value, whose length takes meta bytes.
func blobValue(data []byte, meta uint16) ([]byte, int, error) {
	var length, n int
	switch meta {
	case 1:
		length, n = int(data[0]), 1
	case 2:
		length, n = int(binary.LittleEndian.Uint16(data)), 2
	case 3:
		length, n = int(data[0])|int(data[1])<<8|int(data[2])<<16, 3
	case 4:
		length, n = int(binary.LittleEndian.Uint32(data)), 4
	default:
		return nil, 0, fmt.Errorf("blob length of %d bytes", meta)
	}
	return data[n : n+length], n + length, nil
}

// fracMicros reads the fractional seconds of a TIMESTAMP2 or DATETIME2 of
// dec digits.
func fracMicros(b []byte, dec int) int64 {
	switch dec {
	case 1, 2:
		return int64(b[0]) * 10000
	case 3, 4:
		return int64(binary.BigEndian.Uint16(b)) * 100
	case 5, 6:
		return int64(b[0])<<16 | int64(b[1])<<8 | int64(b[2])
	}
	return 0
}

// be40 reads a 5-byte big-endian number.
func be40(b []byte) uint64 {
	return uint64(b[0])<<32 | uint64(b[1])<<24 | uint64(b[2])<<16 | uint64(b[3])<<8 | uint64(b[4])
}

// zeroTimeText is go-mysql's text of a zero TIMESTAMP2 or DATETIME2.
func zeroTimeText(frac int64, dec int) string {
	if dec == 0 {
		return "0000-00-00 00:00:00"
	}
	return fmt.Sprintf("0000-00-00 00:00:00.%06d", frac)[:20+dec]
}

// fracTimeLayout is go-mysql's layout of a TIMESTAMP2 of dec digits.
func fracTimeLayout(dec int) string {
	if dec == 0 {
		return time.DateTime
	}
	return time.DateTime + ".000000"[:dec+1]
}

var decimalCompressedBytes = [...]int{0, 1, 1, 2, 2, 3, 3, 4, 4, 4}

const decimalDigitsPerInt = 9

// decimalBinSize is the byte length of a DECIMAL(precision, scale).
func decimalBinSize(precision, scale int) int {
	integral := precision - scale
	return integral/decimalDigitsPerInt*4 + decimalCompressedBytes[integral%decimalDigitsPerInt] +
		scale/decimalDigitsPerInt*4 + decimalCompressedBytes[scale%decimalDigitsPerInt]
}

// appendDecimal appends the text of a binlog DECIMAL(precision, scale)
// exactly as go-mysql's decodeDecimal writes it, without its allocations.
func appendDecimal(dst, data []byte, precision, scale int) ([]byte, int, error) {
	if precision < scale || scale < 0 || precision > 65 {
		return nil, 0, fmt.Errorf("decimal(%d,%d)", precision, scale)
	}
	integral := precision - scale
	uncompIntegral, compIntegral := integral/decimalDigitsPerInt, integral%decimalDigitsPerInt
	uncompFractional, compFractional := scale/decimalDigitsPerInt, scale%decimalDigitsPerInt
	size := decimalBinSize(precision, scale)
	var copied [40]byte
	b := copied[:size]
	copy(b, data[:size])
	var mask uint32
	if b[0]&0x80 == 0 {
		mask = math.MaxUint32
		dst = append(dst, '-')
	}
	b[0] ^= 0x80
	zeroLeading := true
	pos, v := decimalCompressed(compIntegral, b, uint8(mask))
	if v != 0 {
		zeroLeading = false
		dst = strconv.AppendUint(dst, uint64(v), 10)
	}
	for range uncompIntegral {
		v = binary.BigEndian.Uint32(b[pos:]) ^ mask
		pos += 4
		if zeroLeading {
			if v != 0 {
				zeroLeading = false
				dst = strconv.AppendUint(dst, uint64(v), 10)
			}
			continue
		}
		dst = appendPadded(dst, v, decimalDigitsPerInt)
	}
	if zeroLeading {
		dst = append(dst, '0')
	}
	if pos < len(b) {
		dst = append(dst, '.')
		for range uncompFractional {
			v = binary.BigEndian.Uint32(b[pos:]) ^ mask
			pos += 4
			dst = appendPadded(dst, v, decimalDigitsPerInt)
		}
		if n, v := decimalCompressed(compFractional, b[pos:], uint8(mask)); n > 0 {
			dst = appendPadded(dst, v, compFractional)
			pos += n
		}
	}
	return dst, pos, nil
}

// appendPadded appends v with leading zeros to width digits.
func appendPadded(dst []byte, v uint32, width int) []byte {
	var tmp [10]byte
	digits := strconv.AppendUint(tmp[:0], uint64(v), 10)
	for i := len(digits); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, digits...)
}

// decimalCompressed reads the leading or trailing group of a DECIMAL, of
// digits digits.
func decimalCompressed(digits int, b []byte, mask uint8) (int, uint32) {
	switch n := decimalCompressedBytes[digits]; n {
	case 1:
		return 1, uint32(b[0] ^ mask)
	case 2:
		return 2, uint32(b[1]^mask) | uint32(b[0]^mask)<<8
	case 3:
		return 3, uint32(b[2]^mask) | uint32(b[1]^mask)<<8 | uint32(b[0]^mask)<<16
	case 4:
		return 4, uint32(b[3]^mask) | uint32(b[2]^mask)<<8 | uint32(b[1]^mask)<<16 | uint32(b[0]^mask)<<24
	}
	return 0, 0
}
