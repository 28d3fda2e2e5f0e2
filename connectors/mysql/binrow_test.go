package mysql

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// wireValue is one value of a binary-protocol row: its field's type and
// flags, and its bytes as the row carries them (nil: NULL).
type wireValue struct {
	typ      byte
	unsigned bool
	b        []byte
}

// rowPacket encodes a binary-protocol row packet of values.
func rowPacket(values ...wireValue) []byte {
	p := []byte{gomysql.OK_HEADER}
	nulls := make([]byte, (len(values)+7+2)/8)
	for i, v := range values {
		if v.b == nil {
			nulls[(i+2)/8] |= 1 << ((i + 2) % 8)
		}
	}
	p = append(p, nulls...)
	for _, v := range values {
		if v.b == nil {
			continue
		}
		if t, _ := wireTypeOf(v.typ); t >= wireString {
			p = append(p, gomysql.PutLengthEncodedInt(uint64(len(v.b)))...)
		}
		p = append(p, v.b...)
	}
	return p
}

func fieldsOf(values ...wireValue) []*gomysql.Field {
	fields := make([]*gomysql.Field, len(values))
	for i, v := range values {
		fields[i] = &gomysql.Field{Type: v.typ}
		if v.unsigned {
			fields[i].Flag = gomysql.UNSIGNED_FLAG
		}
	}
	return fields
}

// decodeRow decodes the row packet of values for cols.
func decodeRow(cols []column, values ...wireValue) ([]any, error) {
	d := newRowDecoder(cols, &connectors.RowSlab{})
	if err := d.setFields(fieldsOf(values...)); err != nil {
		return nil, err
	}
	row := make([]any, len(cols))
	err := d.decode(rowPacket(values...), true, row)
	return row, err
}

// decodeOne decodes a row of the one value v.
func decodeOne(c column, v wireValue) (any, error) {
	row, err := decodeRow([]column{c}, v)
	if err != nil {
		return nil, err
	}
	return row[0], nil
}

// fromRowPacket decodes fv as a row packet carries it: integers as
// BIGINT, floats as the column's FLOAT or DOUBLE, everything else as a
// string.
func fromRowPacket(c column, fv gomysql.FieldValue) (any, error) {
	var v wireValue
	switch fv.Type {
	case gomysql.FieldValueTypeSigned, gomysql.FieldValueTypeUnsigned:
		v = wireValue{typ: gomysql.MYSQL_TYPE_LONGLONG, unsigned: fv.Type == gomysql.FieldValueTypeUnsigned, b: binary.LittleEndian.AppendUint64(nil, fv.AsUint64())}
	case gomysql.FieldValueTypeFloat:
		if c.conv == convFloat32 {
			v = wireValue{typ: gomysql.MYSQL_TYPE_FLOAT, b: binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(fv.AsFloat64())))}
		} else {
			v = wireValue{typ: gomysql.MYSQL_TYPE_DOUBLE, b: binary.LittleEndian.AppendUint64(nil, math.Float64bits(fv.AsFloat64()))}
		}
	case gomysql.FieldValueTypeString:
		v = wireValue{typ: gomysql.MYSQL_TYPE_VAR_STRING, b: append([]byte{}, fv.AsString()...)}
	default:
		v = wireValue{typ: gomysql.MYSQL_TYPE_VAR_STRING} // NULL
	}
	return decodeOne(c, v)
}

// manyTypes is a row of every wire type, some NULL, wide enough for a null
// bitmap of several bytes.
func manyTypes() ([]column, []wireValue) {
	cols := []column{
		col(convInt32, ""), col(convInt32, ""), col(convInt32, ""), col(convInt32, ""), col(convInt64, ""),
		col(convInt64, ""), col(convUint64, ""), col(convFloat32, ""), col(convFloat64, ""), col(convDecimal, ""),
		col(convString, "latin1"), col(convString, "utf8mb4"), col(convDate, ""), col(convDatetime, ""), col(convTime, ""),
		col(convString, "utf8mb4"), col(convBytes, ""), col(convSkip, ""), col(convSkip, ""), col(convInt32, ""),
	}
	le := binary.LittleEndian
	values := []wireValue{
		{typ: gomysql.MYSQL_TYPE_TINY, b: []byte{0x80}},
		{typ: gomysql.MYSQL_TYPE_SHORT, unsigned: true, b: le.AppendUint16(nil, 65535)},
		{typ: gomysql.MYSQL_TYPE_YEAR, unsigned: true, b: le.AppendUint16(nil, 2024)},
		{typ: gomysql.MYSQL_TYPE_INT24, b: le.AppendUint32(nil, uint32(0xff800000))},
		{typ: gomysql.MYSQL_TYPE_LONG, unsigned: true, b: le.AppendUint32(nil, math.MaxUint32)},
		{typ: gomysql.MYSQL_TYPE_LONGLONG, b: le.AppendUint64(nil, uint64(1<<62))},
		{typ: gomysql.MYSQL_TYPE_LONGLONG, unsigned: true, b: le.AppendUint64(nil, math.MaxUint64)},
		{typ: gomysql.MYSQL_TYPE_FLOAT, b: le.AppendUint32(nil, math.Float32bits(1.5))},
		{typ: gomysql.MYSQL_TYPE_DOUBLE, b: le.AppendUint64(nil, math.Float64bits(-2.25))},
		{typ: gomysql.MYSQL_TYPE_NEWDECIMAL, b: []byte("-0.00")},
		{typ: gomysql.MYSQL_TYPE_VAR_STRING, b: []byte("caf\xe9")},
		{typ: gomysql.MYSQL_TYPE_BLOB, b: []byte(strings.Repeat("x", 300))},
		{typ: gomysql.MYSQL_TYPE_DATE, b: rawDatetime(4, 2024, 2, 29, 0, 0, 0, 0)},
		{typ: gomysql.MYSQL_TYPE_TIMESTAMP, b: rawDatetime(11, 1970, 1, 1, 0, 0, 1, 5)},
		{typ: gomysql.MYSQL_TYPE_TIME, b: rawTime(8, true, 1, 2, 3, 4, 0)},
		{typ: gomysql.MYSQL_TYPE_VAR_STRING},
		{typ: gomysql.MYSQL_TYPE_BLOB, b: []byte{}},
		{typ: gomysql.MYSQL_TYPE_LONGLONG, b: le.AppendUint64(nil, 7)},
		{typ: gomysql.MYSQL_TYPE_VAR_STRING, b: []byte("skipped")},
		{typ: gomysql.MYSQL_TYPE_NULL},
	}
	return cols, values
}

func TestRowPacketsDecodeEveryWireType(t *testing.T) {
	cols, values := manyTypes()
	got, err := decodeRow(cols, values...)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{
		int32(-128), int32(65535), int32(2024), int32(-8388608), int64(math.MaxUint32),
		int64(1 << 62), "18446744073709551615", float32(1.5), -2.25, "0.00",
		"café", strings.Repeat("x", 300), int32(19782), int64(1_000_005), -int64(26*3600+3*60+4) * 1e6,
		nil, []byte{}, nil, nil, nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
}

// TestRowPacketsDecodeAsGoMySQLParsesThem checks the decoder against
// go-mysql's own parse of the same packet, converted by fromSnapshot
// (go-mysql prints temporal values as text, which fromSnapshot reads).
func TestRowPacketsDecodeAsGoMySQLParsesThem(t *testing.T) {
	cols, values := manyTypes()
	p := rowPacket(values...)
	fvs, err := gomysql.RowData(p).ParseBinary(fieldsOf(values...), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]any, len(cols))
	for i := range cols {
		if want[i], err = cols[i].fromSnapshot(&fvs[i]); err != nil {
			t.Fatalf("column %d: %v", i, err)
		}
	}
	got, err := decodeRow(cols, values...)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-go-mysql +decoder):\n%s", diff)
	}
}

func TestATruncatedRowPacketIsAnError(t *testing.T) {
	cols, values := manyTypes()
	d := newRowDecoder(cols, &connectors.RowSlab{})
	if err := d.setFields(fieldsOf(values...)); err != nil {
		t.Fatal(err)
	}
	p := rowPacket(values...)
	row := make([]any, len(cols))
	for n := range len(p) {
		if err := d.decode(p[:n], true, row); err == nil {
			t.Errorf("a packet cut to %d of %d bytes decodes", n, len(p))
		}
	}
}

func TestResultFieldsMustMatchTheTable(t *testing.T) {
	d := newRowDecoder([]column{col(convInt32, "")}, nil)
	if err := d.setFields(fieldsOf(wireValue{typ: gomysql.MYSQL_TYPE_LONG}, wireValue{typ: gomysql.MYSQL_TYPE_LONG})); err == nil {
		t.Error("a result of two columns for a table of one is accepted")
	}
	if err := d.setFields([]*gomysql.Field{{Type: 0x40, Name: []byte("x")}}); err == nil {
		t.Error("an unknown field type is accepted")
	}
}

func TestATemporalFieldForAnotherColumnIsAnError(t *testing.T) {
	if v, err := decodeOne(col(convInt64, ""), wireValue{typ: gomysql.MYSQL_TYPE_DATE, b: rawDatetime(4, 2024, 1, 1, 0, 0, 0, 0)}); err == nil {
		t.Errorf("a DATE for a BIGINT column decodes to %v", v)
	}
}

func FuzzRowPacket(f *testing.F) {
	cols, values := manyTypes()
	f.Add(rowPacket(values...))
	f.Fuzz(func(t *testing.T, p []byte) {
		d := newRowDecoder(cols, &connectors.RowSlab{})
		if err := d.setFields(fieldsOf(values...)); err != nil {
			t.Fatal(err)
		}
		_ = d.decode(p, true, make([]any, len(cols)))
	})
}

func TestIsASCIIFindsAHighByteAnywhere(t *testing.T) {
	for n := range 20 {
		b := []byte(strings.Repeat("a", n))
		if !isASCII(b) {
			t.Errorf("%d ASCII bytes are not ASCII", n)
		}
		for i := range n {
			c := append([]byte{}, b...)
			c[i] = 0x80
			if isASCII(c) {
				t.Errorf("byte %d of %d set to 0x80 is ASCII", i, n)
			}
		}
	}
}

func TestPacketBlocksKeepEveryPacketIntact(t *testing.T) {
	var w packetBlocks
	type read struct {
		p    []byte
		kept bool
	}
	var packets []read
	var want []string
	for i, n := range []int{10, 300, 9000, 5, packetBlock, 100, 3 * packetBlock, 1, 7000, 7000} {
		w.begin()
		b := []byte(strings.Repeat(string(rune('a'+i)), n))
		for len(b) > 0 {
			// ReadPacketTo writes at most 16 KB at a time.
			k := min(len(b), 16<<10)
			if _, err := w.Write(b[:k]); err != nil {
				t.Fatal(err)
			}
			b = b[k:]
		}
		p, kept := w.packet()
		if (n <= packetBlock/4 && !kept) || (n > packetBlock && kept) {
			t.Errorf("packet %d of %d bytes: kept is %v", i, n, kept)
		}
		if !kept {
			p = bytes.Clone(p)
		}
		packets = append(packets, read{p, kept})
		want = append(want, strings.Repeat(string(rune('a'+i)), n))
	}
	for i, r := range packets {
		if string(r.p) != want[i] {
			t.Errorf("packet %d of %d bytes reads %d bytes of %q...", i, len(want[i]), len(r.p), r.p[:min(len(r.p), 3)])
		}
	}
}
