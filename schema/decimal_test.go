package schema

import (
	"math/big"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendDecimal(t *testing.T) {
	tests := []struct {
		name             string
		text             string
		precision, scale int
		want             []byte // length-prefixed two's complement
	}{
		{"zero is one zero byte", "0", 5, 0, []byte{2, 0x00}},
		{"negative zero is zero", "-0.00", 5, 2, []byte{2, 0x00}},
		{"minus one is one 0xff byte", "-1", 5, 0, []byte{2, 0xff}},
		{"127 fits one byte", "127", 5, 0, []byte{2, 0x7f}},
		{"128 needs a leading zero byte", "128", 5, 0, []byte{4, 0x00, 0x80}},
		{"-128 fits one byte", "-128", 5, 0, []byte{2, 0x80}},
		{"-129 needs two bytes", "-129", 5, 0, []byte{4, 0xff, 0x7f}},
		{"the fraction is padded to the scale", "12.3", 6, 2, []byte{4, 0x04, 0xce}}, // 1230
		{"trailing zeros past the scale are dropped", "12.3000", 6, 2, []byte{4, 0x04, 0xce}},
		{"the largest 18-digit value is 8 bytes", strings.Repeat("9", 18), 18, 0,
			[]byte{16, 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x63, 0xff, 0xff}},
		{"the smallest 18-digit value is 8 bytes", "-" + strings.Repeat("9", 16) + ".99", 18, 2,
			[]byte{16, 0xf2, 0x1f, 0x49, 0x4c, 0x58, 0x9c, 0x00, 0x01}},
		{"10^18 takes the 128-bit path in 8 bytes", "1" + strings.Repeat("0", 18), 19, 0,
			[]byte{16, 0x0d, 0xe0, 0xb6, 0xb3, 0xa7, 0x64, 0x00, 0x00}},
		{"-2^31 fits four bytes", "-21474836.48", 12, 2, []byte{8, 0x80, 0x00, 0x00, 0x00}},
		{"2^31 needs five bytes", "21474836.48", 12, 2, []byte{10, 0x00, 0x80, 0x00, 0x00, 0x00}},
		{"the largest 38-digit value is 16 bytes", strings.Repeat("9", 38), 38, 0,
			append([]byte{32}, 0x4b, 0x3b, 0x4c, 0xa8, 0x5a, 0x86, 0xc4, 0x7a, 0x09, 0x8a, 0x22, 0x3f, 0xff, 0xff, 0xff, 0xff)},
		{"the smallest 38-digit value is 16 bytes", "-" + strings.Repeat("9", 38), 38, 0,
			append([]byte{32}, 0xb4, 0xc4, 0xb3, 0x57, 0xa5, 0x79, 0x3b, 0x85, 0xf6, 0x75, 0xdd, 0xc0, 0x00, 0x00, 0x00, 0x01)},
		{"2^127 takes the big path with a leading zero", "170141183460469231731687303715884105728", 39, 0,
			append([]byte{34, 0x00, 0x80}, make([]byte, 15)...)},
		{"-2^127 takes the big path in 16 bytes", "-170141183460469231731687303715884105728", 39, 0,
			append([]byte{32, 0x80}, make([]byte, 15)...)},
		{"zero with a scale past 38 digits is one zero byte", "-0", 40, 40, []byte{2, 0x00}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendDecimal(nil, tt.text, tt.precision, tt.scale)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("appendDecimal(%q, %d, %d) (-want +got):\n%s", tt.text, tt.precision, tt.scale, diff)
			}
		})
	}
}

var plainDecimal = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)

// referenceUnscaled is the unscaled value of text at scale, computed with
// big.Rat, or false when the text is not plain decimal text or does not fit
// precision and scale without rounding.
func referenceUnscaled(text string, precision, scale int) (*big.Int, bool) {
	if !plainDecimal.MatchString(text) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return nil, false
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)
	r.Mul(r, new(big.Rat).SetInt(pow))
	if !r.IsInt() {
		return nil, false
	}
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(precision)), nil)
	if new(big.Int).Abs(r.Num()).Cmp(limit) >= 0 {
		return nil, false
	}
	return r.Num(), true
}

func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "-0", "12.30", "-12.3", "+7", "1.", ".5", "1e5", "NaN", "--1", "0012.3400",
		strings.Repeat("9", 38), "-" + strings.Repeat("9", 40) + ".5", "12.345", "",
		strings.Repeat("9", 18), "-" + strings.Repeat("9", 18), "-9223372036854775808", "9223372036854775807", "-1234567890.12"} {
		f.Add(s, uint8(40), uint8(2))
	}
	f.Fuzz(func(t *testing.T, text string, p, s uint8) {
		precision := int(p)%80 + 1
		scale := int(s) % (precision + 1)
		got, err := appendDecimal(nil, text, precision, scale)
		want, ok := referenceUnscaled(text, precision, scale)
		if !ok {
			if err == nil {
				t.Fatalf("appendDecimal(%q, %d, %d) = % x, want an error", text, precision, scale, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("appendDecimal(%q, %d, %d): %v, want %v", text, precision, scale, err, want)
		}
		// One length byte is enough: 80 digits fit in 34 bytes.
		if len(got) < 2 || int(got[0]) != 2*(len(got)-1) {
			t.Fatalf("appendDecimal(%q, %d, %d) = % x: bad length prefix", text, precision, scale, got)
		}
		b := got[1:]
		if len(b) > 1 && (b[0] == 0 && b[1]&0x80 == 0 || b[0] == 0xff && b[1]&0x80 != 0) {
			t.Errorf("appendDecimal(%q, %d, %d) = % x: not minimal", text, precision, scale, b)
		}
		v := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		if v.Cmp(want) != 0 {
			t.Errorf("appendDecimal(%q, %d, %d) encodes %v, want %v", text, precision, scale, v, want)
		}
	})
}

func BenchmarkAppendDecimal(b *testing.B) {
	dst := make([]byte, 0, 64)
	for _, bm := range []struct {
		name             string
		text             string
		precision, scale int
	}{
		{"numeric(12,2)", "-12345.60", 12, 2},
		{"numeric(30,4)", "123456789012345678.1234", 30, 4},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				var err error
				if dst, err = appendDecimal(dst[:0], bm.text, bm.precision, bm.scale); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
