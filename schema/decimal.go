package schema

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
)

// maxFastDigits is the most unscaled digits appendDecimal converts without
// math/big: 10^38-1 is below 2^127, so it fits a signed 128-bit integer.
const maxFastDigits = 38

// decimalText is decimal text split into its parts, checked against a
// column's precision and scale.
type decimalText struct {
	neg bool
	// integer holds the integer digits without leading zeros ("" for 0).
	integer string
	// fraction holds at most scale fraction digits: trailing zeros past the
	// scale are dropped, as they carry no value.
	fraction string
}

// parseDecimal splits s, plain decimal text ("-12.30", "+7", "0.5"), and
// checks that it fits precision and scale exactly: at most precision-scale
// integer digits, and no nonzero fraction digit past scale. Nothing is
// rounded. It does not allocate unless it fails.
func parseDecimal(s string, precision, scale int) (decimalText, error) {
	var d decimalText
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intEnd := i
	fracStart, fracEnd := i, i
	if i < len(s) && s[i] == '.' {
		i++
		fracStart = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		fracEnd = i
		if fracEnd == fracStart {
			i = -1 // "1." has no fraction digits
		}
	}
	if intEnd == intStart || i != len(s) {
		switch s {
		case "NaN", "Infinity", "-Infinity", "+Infinity":
			return d, fmt.Errorf("decimal value %q is not a number that an Avro decimal can hold (NaN and the infinities have no decimal form)", s)
		}
		return d, fmt.Errorf("decimal value %q is not plain decimal text (want an optional sign, digits and an optional fraction, as in -12.30)", s)
	}
	for intStart < intEnd && s[intStart] == '0' {
		intStart++
	}
	for fracEnd-fracStart > scale && s[fracEnd-1] == '0' {
		fracEnd--
	}
	d.integer, d.fraction = s[intStart:intEnd], s[fracStart:fracEnd]
	if len(d.fraction) > scale {
		return d, fmt.Errorf("decimal value %q has %d fraction digits, more than the scale %d (values are never rounded)", s, len(d.fraction), scale)
	}
	if len(d.integer) > precision-scale {
		return d, fmt.Errorf("decimal value %q has %d integer digits, more than precision %d minus scale %d allows", s, len(d.integer), precision, scale)
	}
	return d, nil
}

// appendDecimal appends the Avro bytes of a decimal logical type: the
// unscaled value of s at exactly scale, as a minimal big-endian two's
// complement integer (at least one byte, as Java's BigInteger writes it),
// prefixed by its length.
func appendDecimal(dst []byte, s string, precision, scale int) ([]byte, error) {
	d, err := parseDecimal(s, precision, scale)
	if err != nil {
		return dst, err
	}
	if len(d.integer)+scale <= maxInt64Digits {
		return appendSmallDecimal(dst, d, scale), nil
	}
	if len(d.integer)+scale > maxFastDigits {
		return appendBigDecimal(dst, d, scale), nil
	}
	var hi, lo uint64
	for i := 0; i < len(d.integer); i++ {
		hi, lo = mulAdd128(hi, lo, uint64(d.integer[i]-'0'))
	}
	for i := 0; i < len(d.fraction); i++ {
		hi, lo = mulAdd128(hi, lo, uint64(d.fraction[i]-'0'))
	}
	for range scale - len(d.fraction) {
		hi, lo = mulAdd128(hi, lo, 0)
	}
	if d.neg {
		var borrow uint64
		lo, borrow = bits.Sub64(0, lo, 0)
		hi, _ = bits.Sub64(0, hi, borrow)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return appendTwosComplement(dst, b[:]), nil
}

// maxInt64Digits is the most unscaled digits appendSmallDecimal takes:
// 10^18-1 is below 2^63.
const maxInt64Digits = 18

// appendSmallDecimal is appendDecimal for at most maxInt64Digits digits,
// which fit an int64: the common case, worked out without 128-bit
// arithmetic.
func appendSmallDecimal(dst []byte, d decimalText, scale int) []byte {
	var u uint64
	for i := 0; i < len(d.integer); i++ {
		u = u*10 + uint64(d.integer[i]-'0')
	}
	for i := 0; i < len(d.fraction); i++ {
		u = u*10 + uint64(d.fraction[i]-'0')
	}
	for range scale - len(d.fraction) {
		u *= 10
	}
	v := int64(u)
	if d.neg {
		v = -v
	}
	// The fewest bytes that hold v in two's complement: v shifted right
	// by 8n-1 bits is 0 or -1 (all sign) once n bytes suffice.
	n := 1
	for n < 8 && v>>(8*n-1) != 0 && v>>(8*n-1) != -1 {
		n++
	}
	dst = append(dst, byte(2*n)) // the length, a zigzag long below 64
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// mulAdd128 returns (hi, lo)*10 + digit. The caller keeps the result below
// 10^38, so it never overflows.
func mulAdd128(hi, lo, digit uint64) (uint64, uint64) {
	carry, lo := bits.Mul64(lo, 10)
	hi = hi*10 + carry
	lo, carry = bits.Add64(lo, digit, 0)
	return hi + carry, lo
}

// appendTwosComplement appends b, a big-endian two's complement integer,
// without the leading bytes that only repeat the sign, prefixed by its
// length.
func appendTwosComplement(dst, b []byte) []byte {
	i := 0
	for i < len(b)-1 && (b[i] == 0 && b[i+1]&0x80 == 0 || b[i] == 0xff && b[i+1]&0x80 != 0) {
		i++
	}
	return append(appendLong(dst, int64(len(b)-i)), b[i:]...)
}

// appendBigDecimal is appendDecimal for more than maxFastDigits digits.
func appendBigDecimal(dst []byte, d decimalText, scale int) []byte {
	digits := make([]byte, 0, len(d.integer)+scale)
	digits = append(digits, d.integer...)
	digits = append(digits, d.fraction...)
	for range scale - len(d.fraction) {
		digits = append(digits, '0')
	}
	x, _ := new(big.Int).SetString(string(digits), 10) // only digits, never fails
	// A two's complement integer of n bytes holds -2^(8n-1) to 2^(8n-1)-1.
	var n int
	if d.neg && x.Sign() != 0 {
		n = new(big.Int).Sub(x, big.NewInt(1)).BitLen()/8 + 1
		x.Sub(new(big.Int).Lsh(big.NewInt(1), uint(8*n)), x) // 2^(8n) - |value|
	} else {
		n = x.BitLen()/8 + 1
	}
	return appendTwosComplement(dst, x.FillBytes(make([]byte, n)))
}
