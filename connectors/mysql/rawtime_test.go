package mysql

import (
	"encoding/binary"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"
)

// rawDatetime encodes a DATE, DATETIME or TIMESTAMP as the binary protocol
// does, in n bytes (0, 4, 7 or 11).
func rawDatetime(n int, y uint16, mo, d, h, m, s byte, frac uint32) []byte {
	b := make([]byte, 11)
	binary.LittleEndian.PutUint16(b, y)
	b[2], b[3], b[4], b[5], b[6] = mo, d, h, m, s
	binary.LittleEndian.PutUint32(b[7:], frac)
	return b[:n]
}

// rawTime encodes a TIME as the binary protocol does, in n bytes (0, 8 or
// 12).
func rawTime(n int, neg bool, days uint32, h, m, s byte, frac uint32) []byte {
	b := make([]byte, 12)
	if neg {
		b[0] = 1
	}
	binary.LittleEndian.PutUint32(b[1:], days)
	b[5], b[6], b[7] = h, m, s
	binary.LittleEndian.PutUint32(b[8:], frac)
	return b[:n]
}

func TestRawTemporalsConvertLikeTheirText(t *testing.T) {
	tests := []struct {
		name string
		conv conv
		raw  []byte
		text string
	}{
		{"a DATE before 1970", convDate, rawDatetime(4, 1969, 12, 31, 0, 0, 0, 0), "1969-12-31"},
		{"the first DATE", convDate, rawDatetime(4, 1, 1, 1, 0, 0, 0, 0), "0001-01-01"},
		{"a zero DATE", convDate, nil, "0000-00-00"},
		{"a DATE with a zero day", convDate, rawDatetime(4, 2020, 5, 0, 0, 0, 0, 0), "2020-05-00"},
		{"an impossible DATE", convDate, rawDatetime(4, 2021, 2, 29, 0, 0, 0, 0), "2021-02-29"},
		{"a DATETIME at midnight", convDatetime, rawDatetime(4, 2021, 3, 4, 0, 0, 0, 0), "2021-03-04 00:00:00"},
		{"a DATETIME in seconds", convDatetime, rawDatetime(7, 2021, 3, 4, 5, 6, 7, 0), "2021-03-04 05:06:07"},
		{"a DATETIME(6)", convDatetime, rawDatetime(11, 2021, 3, 4, 5, 6, 7, 123456), "2021-03-04 05:06:07.123456"},
		{"the last DATETIME", convDatetime, rawDatetime(11, 9999, 12, 31, 23, 59, 59, 999999), "9999-12-31 23:59:59.999999"},
		{"a zero DATETIME", convDatetime, nil, "0000-00-00 00:00:00"},
		{"a zero date keeps its time of day", convDatetime, rawDatetime(11, 0, 0, 0, 14, 2, 10, 500000), "0000-00-00 14:02:10.500000"},
		{"a DATETIME with a zero month", convDatetime, rawDatetime(11, 9999, 0, 31, 23, 59, 59, 999999), "9999-00-31 23:59:59.999999"},
		{"a TIMESTAMP(6)", convTimestamp, rawDatetime(11, 1970, 1, 1, 0, 0, 0, 1), "1970-01-01 00:00:00.000001"},
		{"a zero TIMESTAMP", convTimestamp, nil, "0000-00-00 00:00:00"},
		{"midnight", convTime, nil, "00:00:00"},
		{"the smallest TIME", convTime, rawTime(8, true, 34, 22, 59, 59, 0), "-838:59:59"},
		{"the largest TIME(6)", convTime, rawTime(12, false, 34, 22, 59, 59, 0), "838:59:59.000000"},
		{"a TIME(1) below zero", convTime, rawTime(12, true, 0, 0, 0, 0, 500000), "-00:00:00.500000"},
		{"a TIME of more than a day", convTime, rawTime(8, false, 1, 2, 3, 4, 0), "26:03:04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := col(tt.conv, "")
			got, err := decodeOne(c, wireValue{typ: temporalField(tt.conv), b: append([]byte{}, tt.raw...)})
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			txt := text(tt.text)
			want, err := c.fromSnapshot(&txt)
			if err != nil {
				t.Fatalf("fromSnapshot: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("raw value (-text +raw):\n%s", diff)
			}
		})
	}
}

func TestRawTemporalsOutOfRangeAreErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		conv conv
		raw  []byte
	}{
		{"a DATE of 7 bytes", convDate, make([]byte, 7)},
		{"a DATETIME of 5 bytes", convDatetime, make([]byte, 5)},
		{"a DATETIME in month 13", convDatetime, rawDatetime(4, 2000, 13, 1, 0, 0, 0, 0)},
		{"a DATETIME at hour 24", convDatetime, rawDatetime(7, 2000, 1, 1, 24, 0, 0, 0)},
		{"a TIME of 9 bytes", convTime, make([]byte, 9)},
		{"a TIME past 838 hours", convTime, rawTime(8, false, 35, 0, 0, 0, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := col(tt.conv, "")
			if v, err := decodeOne(c, wireValue{typ: temporalField(tt.conv), b: append([]byte{}, tt.raw...)}); err == nil {
				t.Errorf("decode = %v, want an error", v)
			}
		})
	}
}

// temporalField is the result field type of a temporal conversion.
func temporalField(c conv) byte {
	switch c {
	case convDate:
		return gomysql.MYSQL_TYPE_DATE
	case convDatetime:
		return gomysql.MYSQL_TYPE_DATETIME
	case convTimestamp:
		return gomysql.MYSQL_TYPE_TIMESTAMP
	}
	return gomysql.MYSQL_TYPE_TIME
}
