package mysql

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func signed(n int64) gomysql.FieldValue {
	return gomysql.NewFieldValue(gomysql.FieldValueTypeSigned, uint64(n), nil)
}

func unsigned(n uint64) gomysql.FieldValue {
	return gomysql.NewFieldValue(gomysql.FieldValueTypeUnsigned, n, nil)
}

func float(f float64) gomysql.FieldValue {
	return gomysql.NewFieldValue(gomysql.FieldValueTypeFloat, math.Float64bits(f), nil)
}

func text(s string) gomysql.FieldValue {
	return gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, []byte(s))
}

func col(c conv, charset string) column {
	out := column{conv: c}
	if charset != "" {
		out.text = decoderFor(charset)
	}
	return out
}

func withWidth(c column, w int) column { c.width = w; return c }

func withLabels(c column, l ...string) column { c.labels = l; return c }

func TestSnapshotAndBinlogValuesConvergeOnOneForm(t *testing.T) {
	wkb := []byte{1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40}
	srid := append([]byte{0xe6, 0x10, 0, 0}, wkb...)
	tests := []struct {
		name   string
		col    column
		binlog any
		snap   gomysql.FieldValue
		want   any
	}{
		{"NULL is nil", col(convInt32, ""), nil, gomysql.FieldValue{}, nil},
		{"the smallest TINYINT", col(convInt32, ""), int8(-128), signed(-128), int32(-128)},
		{"the largest TINYINT UNSIGNED", col(convInt32, ""), uint8(255), unsigned(255), int32(255)},
		{"the largest MEDIUMINT UNSIGNED", col(convInt32, ""), uint32(16777215), unsigned(16777215), int32(16777215)},
		{"the largest INT UNSIGNED", col(convInt64, ""), uint32(math.MaxUint32), unsigned(math.MaxUint32), int64(math.MaxUint32)},
		{"the smallest BIGINT", col(convInt64, ""), int64(math.MinInt64), signed(math.MinInt64), int64(math.MinInt64)},
		{"the largest BIGINT UNSIGNED", col(convUint64, ""), uint64(math.MaxUint64), unsigned(math.MaxUint64), "18446744073709551615"},
		{"a YEAR", col(convInt32, ""), 2155, unsigned(2155), int32(2155)},
		{"a negative DECIMAL", col(convDecimal, ""), "-0.50", text("-0.50"), "-0.50"},
		{"a wide DECIMAL", col(convDecimal, ""), "12345678901234567890123456789012345.123456789012345678901234567890",
			text("12345678901234567890123456789012345.123456789012345678901234567890"),
			"12345678901234567890123456789012345.123456789012345678901234567890"},
		{"a FLOAT the text protocol would round", col(convFloat32, ""), float32(1.2345678), float(float64(float32(1.2345678))), float32(1.2345678)},
		{"a DOUBLE", col(convFloat64, ""), -1.7976931348623157e308, float(-1.7976931348623157e308), -1.7976931348623157e308},
		{"a utf8mb4 string", col(convString, "utf8mb4"), "héllo 🎉", text("héllo 🎉"), "héllo 🎉"},
		{"a latin1 string with the euro sign", col(convString, "latin1"), "caf\xe9 \x80", text("caf\xe9 \x80"), "café €"},
		{"a latin1 byte Windows-1252 leaves undefined", col(convString, "latin1"), "\x81", text("\x81"), "\u0081"},
		{"an ascii string with a stray byte", col(convString, "ascii"), "a\xffb", text("a\xffb"), "a\ufffdb"},
		{"a utf16 string", col(convString, "utf16"), "\x00h\xd8\x3c\xdf\x89", text("\x00h\xd8\x3c\xdf\x89"), "h🎉"},
		{"a gbk string", col(convString, "gbk"), "\xc4\xe3\xba\xc3", text("\xc4\xe3\xba\xc3"), "你好"},
		{"a TEXT that arrives as bytes", col(convString, "utf8mb4"), []byte("text"), text("text"), "text"},
		{"a MariaDB JSON document as stored", col(convJSONText, "utf8mb4"), []byte(`{"a": 1}`), text(`{"a": 1}`), `{"a": 1}`},
		{"a BLOB", col(convBytes, ""), []byte{0, 0xff}, text("\x00\xff"), []byte{0, 0xff}},
		{"an empty VARBINARY", col(convBytes, ""), "", text(""), []byte{}},
		{"a BINARY(4) whose trailing zeros the binlog dropped", withWidth(col(convBinary, ""), 4), "ab", text("ab\x00\x00"), []byte("ab\x00\x00")},
		{"an ENUM", withLabels(col(convEnum, "utf8mb4"), "a", "b"), int64(2), text("b"), "b"},
		{"an invalid ENUM value", withLabels(col(convEnum, "utf8mb4"), "a", "b"), int64(0), text(""), ""},
		{"a SET", withLabels(col(convSet, "utf8mb4"), "x", "y", "z"), int64(5), text("x,z"), []any{"x", "z"}},
		{"an empty SET", withLabels(col(convSet, "utf8mb4"), "x"), int64(0), text(""), []any{}},
		{"BIT(1) set", withWidth(col(convBool, ""), 1), int64(1), text("\x01"), true},
		{"BIT(1) clear", withWidth(col(convBool, ""), 1), int64(0), text("\x00"), false},
		{"a BIT(10)", withWidth(col(convBits, ""), 10), int64(513), text("\x02\x01"), []byte{2, 1}},
		{"a BIT(64)", withWidth(col(convBits, ""), 64), int64(-1), text(strings.Repeat("\xff", 8)), []byte(strings.Repeat("\xff", 8))},
		{"a DATE before 1970", col(convDate, ""), "1969-12-31", text("1969-12-31"), int32(-1)},
		{"the first DATE", col(convDate, ""), "0001-01-01", text("0001-01-01"), int32(-719162)},
		{"a zero DATE is the smallest int32", col(convDate, ""), "0000-00-00", text("0000-00-00"), int32(math.MinInt32)},
		{"a DATE with a zero month and day keeps its year", col(convDate, ""), "0001-00-00", text("0001-00-00"), int32(math.MinInt32 + 10000)},
		{"a DATE with a zero day keeps its month", col(convDate, ""), "2020-05-00", text("2020-05-00"), int32(math.MinInt32 + 20200500)},
		{"an impossible DATE keeps its day", col(convDate, ""), "2021-02-29", text("2021-02-29"), int32(math.MinInt32 + 20210229)},
		{"the smallest calendar DATE MySQL stores", col(convDate, ""), "0000-01-01", text("0000-01-01"), int32(-719528)},
		{"a DATETIME(3)", col(convDatetime, ""), "2021-03-04 05:06:07.123", text("2021-03-04 05:06:07.123000"),
			time.Date(2021, 3, 4, 5, 6, 7, 123e6, time.UTC).UnixMicro()},
		{"the last DATETIME", col(convDatetime, ""), "9999-12-31 23:59:59", text("9999-12-31 23:59:59"),
			time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMicro()},
		{"a zero DATETIME(2) is the smallest int64", col(convDatetime, ""), "0000-00-00 00:00:00.00", text("0000-00-00 00:00:00"), int64(math.MinInt64)},
		{"a zero date keeps its time of day", col(convDatetime, ""), "0000-00-00 14:02:10.5", text("0000-00-00 14:02:10.500000"),
			int64(math.MinInt64 + (14*3600+2*60+10)*1e6 + 5e5)},
		{"a DATETIME with a zero month keeps its year, day and time", col(convDatetime, ""), "9999-00-31 23:59:59.999999", text("9999-00-31 23:59:59.999999"),
			int64(math.MinInt64 + 99990031*86400e6 + 86400e6 - 1)},
		{"a TIMESTAMP(6)", col(convTimestamp, ""), "1970-01-01 00:00:00.000001", text("1970-01-01 00:00:00.000001"), int64(1)},
		{"a zero TIMESTAMP is the smallest int64", col(convTimestamp, ""), "0000-00-00 00:00:00", text("0000-00-00 00:00:00"), int64(math.MinInt64)},
		{"the smallest TIME", col(convTime, ""), "-838:59:59", text("-838:59:59"), -int64(838*3600+59*60+59) * 1e6},
		{"a TIME(1) below zero", col(convTime, ""), "-00:00:00.5", text("-00:00:00.500000"), int64(-500000)},
		{"midnight", col(convTime, ""), "00:00:00", text("00:00:00"), int64(0)},
		{"MySQL JSON, rendered and printed", col(convJSON, ""), `{"a":1,"b":[1,2.0]}`, text(`{"a": 1, "b": [1, 2.0]}`), `{"a":1,"b":[1,2.0]}`},
		{"an empty MySQL JSON document", col(convJSON, ""), []byte{}, text(""), "null"},
		{"a GEOMETRY keeps its SRID", col(convGeometry, ""), srid, text(string(srid)), connectors.Geometry{WKB: wkb, SRID: 4326}},
		{"a GEOMETRY of SRID 0", col(convGeometry, ""), append([]byte{0, 0, 0, 0}, wkb...), text("\x00\x00\x00\x00" + string(wkb)), connectors.Geometry{WKB: wkb}},
		{"a UUID in its byte order", withWidth(col(convUUID, ""), 16), "\x12\x3e\x45\x67\xe8\x9b\x12\xd3\xa4\x56\x42\x66\x55\x44\x00\x00",
			text("123e4567-e89b-12d3-a456-426655440000"), "123e4567-e89b-12d3-a456-426655440000"},
		{"the nil UUID, whose zero bytes the binlog drops", withWidth(col(convUUID, ""), 16), "", text("00000000-0000-0000-0000-000000000000"), "00000000-0000-0000-0000-000000000000"},
		{"the largest UUID", withWidth(col(convUUID, ""), 16), strings.Repeat("\xff", 16), text("ffffffff-ffff-ffff-ffff-ffffffffffff"), "ffffffff-ffff-ffff-ffff-ffffffffffff"},
		{"INET4 0.0.0.0", withWidth(col(convInet4, ""), 4), "", text("0.0.0.0"), "0.0.0.0"},
		{"INET4 255.255.255.255", withWidth(col(convInet4, ""), 4), "\xff\xff\xff\xff", text("255.255.255.255"), "255.255.255.255"},
		{"INET6 ::", withWidth(col(convInet6, ""), 16), "", text("::"), "::"},
		{"INET6 ::1", withWidth(col(convInet6, ""), 16), strings.Repeat("\x00", 15) + "\x01", text("::1"), "::1"},
		{"an IPv4-mapped INET6", withWidth(col(convInet6, ""), 16), strings.Repeat("\x00", 10) + "\xff\xff\x01\x02\x03\x04", text("::ffff:1.2.3.4"), "::ffff:1.2.3.4"},
		{"an IPv4-compatible INET6", withWidth(col(convInet6, ""), 16), strings.Repeat("\x00", 12) + "\x01\x02\x03\x04", text("::1.2.3.4"), "::1.2.3.4"},
		{"the largest INET6", withWidth(col(convInet6, ""), 16), strings.Repeat("\xff", 16), text("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{"an INET6 whose one zero group MariaDB shortens", withWidth(col(convInet6, ""), 16), "\x00\x01\x00\x00\x00\x02\x00\x03\x00\x04\x00\x05\x00\x06\x00\x07",
			text("1::2:3:4:5:6:7"), "1::2:3:4:5:6:7"},
		{"an INET6 with two zero runs shortens the first longest", withWidth(col(convInet6, ""), 16), "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x01",
			text("2001:db8::1:0:0:1"), "2001:db8::1:0:0:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromLog, err := tt.col.fromBinlog(tt.binlog)
			if err != nil {
				t.Fatalf("fromBinlog: %v", err)
			}
			fromSnap, err := tt.col.fromSnapshot(&tt.snap)
			if err != nil {
				t.Fatalf("fromSnapshot: %v", err)
			}
			if diff := cmp.Diff(tt.want, fromLog); diff != "" {
				t.Errorf("fromBinlog (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, fromSnap); diff != "" {
				t.Errorf("fromSnapshot (-want +got):\n%s", diff)
			}
			fromPacket, err := fromRowPacket(tt.col, tt.snap)
			if err != nil {
				t.Fatalf("row packet: %v", err)
			}
			if diff := cmp.Diff(tt.want, fromPacket); diff != "" {
				t.Errorf("row packet (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIntegersOfAnotherWidthAreBadValues checks that an integer that the
// column's Avro type cannot hold (one of another width than the column's)
// is a connectors.BadValue, for the encoder to refuse as a bad row, and
// never wraps.
func TestIntegersOfAnotherWidthAreBadValues(t *testing.T) {
	bad := func(text, reason string) connectors.BadValue { return connectors.BadValue{Text: text, Reason: reason} }
	tests := []struct {
		name   string
		col    column
		binlog any
		snap   gomysql.FieldValue
		want   any
	}{
		{"an int column given more than an int", col(convInt32, ""), int64(math.MaxInt32 + 1), signed(math.MaxInt32 + 1), bad("2147483648", intRange)},
		{"an int column given less than an int", col(convInt32, ""), int64(math.MinInt32 - 1), signed(math.MinInt32 - 1), bad("-2147483649", intRange)},
		{"an int column given an unsigned int", col(convInt32, ""), uint32(math.MaxUint32), unsigned(math.MaxUint32), bad("4294967295", intRange)},
		{"a long column given more than a long", col(convInt64, ""), uint64(math.MaxInt64 + 1), unsigned(math.MaxInt64 + 1), bad("9223372036854775808", longRange)},
		{"a long column given the largest long", col(convInt64, ""), uint64(math.MaxInt64), unsigned(math.MaxInt64), int64(math.MaxInt64)},
		{"a BIGINT UNSIGNED that arrived signed", col(convUint64, ""), int64(-1), signed(-1), "18446744073709551615"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromLog, err := tt.col.fromBinlog(tt.binlog)
			if err != nil {
				t.Fatalf("fromBinlog: %v", err)
			}
			fromSnap, err := tt.col.fromSnapshot(&tt.snap)
			if err != nil {
				t.Fatalf("fromSnapshot: %v", err)
			}
			if diff := cmp.Diff(tt.want, fromLog); diff != "" {
				t.Errorf("fromBinlog (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, fromSnap); diff != "" {
				t.Errorf("fromSnapshot (-want +got):\n%s", diff)
			}
			fromPacket, err := fromRowPacket(tt.col, tt.snap)
			if err != nil {
				t.Fatalf("row packet: %v", err)
			}
			if diff := cmp.Diff(tt.want, fromPacket); diff != "" {
				t.Errorf("row packet (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValuesThatCannotBeConvertedAreErrors(t *testing.T) {
	tests := []struct {
		name   string
		col    column
		binlog any
		want   string
	}{
		{"a DECIMAL with an exponent", col(convDecimal, ""), "1e5", "not plain decimal text"},
		{"a DECIMAL ending in a dot", col(convDecimal, ""), "1.", "not plain decimal text"},
		{"a DATE without leading zeros", col(convDate, ""), "2020-1-1", "not YYYY-MM-DD"},
		{"a DATETIME at hour 24", col(convDatetime, ""), "2020-01-01 24:00:00", "not YYYY-MM-DD HH:MM:SS"},
		{"a TIME at minute 60", col(convTime, ""), "12:60:00", "not HH:MM:SS"},
		{"an ENUM index past its values", withLabels(col(convEnum, "utf8mb4"), "a"), int64(2), "enum index 2 of 1"},
		{"a SET bit past its values", withLabels(col(convSet, "utf8mb4"), "a"), int64(2), "set bitmask"},
		{"a partial JSON update", col(convJSON, ""), &replication.JsonDiff{}, "binlog_row_value_options"},
		{"a GEOMETRY without its SRID", col(convGeometry, ""), []byte{1}, "no SRID"},
		{"a GEOMETRY whose SRID an Avro int cannot hold", col(convGeometry, ""), []byte{0, 0, 0, 0x80, 1}, "SRID 2147483648 does not fit an Avro int"},
		{"a DATE with a month past 12", col(convDate, ""), "2020-13-01", "not YYYY-MM-DD"},
		{"a UUID of the wrong length", withWidth(col(convUUID, ""), 16), strings.Repeat("\x01", 17), "uuid value of 17 bytes, want 16"},
		{"a value of the wrong Go type", col(convInt32, ""), "1", "binlog value string for a int32 column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.col.fromBinlog(tt.binlog)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v does not mention %q", err, tt.want)
			}
		})
	}
}

// FuzzTextValues feeds arbitrary text to the decoders that parse it: they
// may refuse it but never panic, and what they accept is well formed.
func FuzzTextValues(f *testing.F) {
	for _, s := range []string{"2021-03-04", "2021-03-04 05:06:07.123456", "-838:59:59.999999", "-12.30", "0000-00-00", `{"a": [1]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		if v, err := dateValue(b); err == nil {
			if d := v.(int32); d > 2932896 || d < -719528 && d > math.MinInt32+99991231 {
				t.Errorf("dateValue(%q) = %d, outside years 0 to 9999 and above the values of non-dates", s, d)
			}
			if back := formatDateValue(v.(int32)); back != s {
				t.Errorf("dateValue(%q) = %d, which reads back as %s", s, v, back)
			}
		}
		if v, err := datetimeValue(b); err == nil {
			if back := formatDatetimeValue(v.(int64)); !strings.HasPrefix(back, s[:19]) {
				t.Errorf("datetimeValue(%q) = %d, which reads back as %s", s, v, back)
			}
		}
		_, _ = timeValue(b)
		if v, err := decimalValue(b); err == nil {
			if _, err := decimalValue([]byte(v.(string))); err != nil {
				t.Errorf("decimalValue(%q) = %q, which it refuses: %v", s, v, err)
			}
		}
		_, _ = jsonValue(b)
	})
}

// formatDateValue reads a DATE value back as the README says a consumer
// does: below every calendar date, math.MinInt32 + YYYYMMDD.
func formatDateValue(d int32) string {
	if n := int64(d) - math.MinInt32; n <= 99991231 {
		return fmt.Sprintf("%04d-%02d-%02d", n/10000, n/100%100, n%100)
	}
	return time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")
}

// formatDatetimeValue reads a DATETIME value back the same way:
// math.MinInt64 + YYYYMMDD days + the time of day.
func formatDatetimeValue(us int64) string {
	if n := uint64(us) - 1<<63; n < 100000000*uint64(microsPerDay) {
		date, tod := n/uint64(microsPerDay), n%uint64(microsPerDay)
		return fmt.Sprintf("%04d-%02d-%02d %s", date/10000, date/100%100, date%100,
			time.UnixMicro(int64(tod)).UTC().Format("15:04:05.000000"))
	}
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000")
}

func TestZeroDatesReadBack(t *testing.T) {
	for _, s := range []string{"0000-00-00", "0001-00-00", "2020-05-00", "2021-02-29", "9999-12-00", "0000-01-01", "9999-12-31", "1970-01-01"} {
		v, err := dateValue([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if back := formatDateValue(v.(int32)); back != s {
			t.Errorf("dateValue(%q) = %d, which reads back as %s", s, v, back)
		}
	}
	for _, s := range []string{"0000-00-00 00:00:00.000000", "0000-00-00 14:02:10.000000", "9999-12-00 23:59:59.999999", "2021-02-30 01:02:03.000004", "1970-01-01 00:00:00.000000"} {
		v, err := datetimeValue([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if back := formatDatetimeValue(v.(int64)); back != s {
			t.Errorf("datetimeValue(%q) = %d, which reads back as %s", s, v, back)
		}
	}
}
