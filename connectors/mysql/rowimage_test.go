package mysql

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBinlogDecimalsReadAsGoMySQLWritesThem(t *testing.T) {
	tests := []struct {
		name             string
		precision, scale int
		data             []byte
		want             string
	}{
		// The examples of MySQL's decimal2bin (strings/decimal.cc).
		{"MySQL's example", 14, 4, []byte{0x81, 0x0d, 0xfb, 0x38, 0xd2, 0x04, 0xd2}, "1234567890.1234"},
		{"MySQL's example below zero", 14, 4, []byte{0x7e, 0xf2, 0x04, 0xc7, 0x2d, 0xfb, 0x2d}, "-1234567890.1234"},
		{"zero keeps its scale", 10, 2, []byte{0x80, 0, 0, 0, 0}, "0.00"},
		{"negative zero as the binlog can carry it", 10, 2, []byte{0x7f, 0xff, 0xff, 0xff, 0xff}, "-0.00"},
		{"an integer decimal", 5, 0, []byte{0x81, 0x86, 0x9f}, "99999"},
		{"a fraction's leading zeros", 4, 3, []byte{0x80, 0x00, 0x07}, "0.007"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := decimalBinSize(tt.precision, tt.scale); n != len(tt.data) {
				t.Fatalf("decimalBinSize(%d, %d) = %d, want %d", tt.precision, tt.scale, n, len(tt.data))
			}
			got, n, err := appendDecimal(nil, tt.data, tt.precision, tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(tt.data) {
				t.Errorf("read %d bytes, want %d", n, len(tt.data))
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("text (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTextArenaStringsStayPut(t *testing.T) {
	var a textArena
	var got []string
	var want []string
	buf := make([]byte, 100)
	for i := range 2000 {
		for j := range buf {
			buf[j] = byte('a' + (i+j)%26)
		}
		n := i % len(buf)
		got = append(got, a.string(buf[:n]))
		want = append(want, string(buf[:n]))
	}
	big := make([]byte, arenaBlock)
	got = append(got, a.string(big))
	want = append(want, string(big))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("strings (-want +got):\n%s", diff)
	}
}
