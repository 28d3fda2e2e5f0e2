package mysql

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/japanese"
	"golang.org/x/text/encoding/korean"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/traditionalchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/encoding/unicode/utf32"
)

// binaryCharset is the character set of BINARY, VARBINARY and BLOB columns,
// and of any column declared CHARACTER SET binary: its values are bytes.
const binaryCharset = "binary"

// textDecoder turns a column's bytes, in the column's character set, into
// UTF-8. Both the snapshot and the binlog reach a string value through one.
type textDecoder struct {
	charset string
	decode  func(b []byte) string
	// verbatim, when set, reports whether decode would return b's own
	// bytes (decodeIn).
	verbatim func(b []byte) bool
}

// decoderFor returns the decoder of a MySQL character set, or nil if
// liberator cannot read it.
func decoderFor(charset string) *textDecoder {
	switch charset {
	case "utf8mb4", "utf8mb3", "utf8":
		return &textDecoder{charset, decodeUTF8, utf8.Valid}
	case "latin1":
		return &textDecoder{charset, decodeLatin1, isASCII}
	case "ascii":
		return &textDecoder{charset, decodeASCII, isASCII}
	}
	if enc, ok := xtextCharsets[charset]; ok {
		return &textDecoder{charset, func(b []byte) string { return decodeWith(enc, b) }, nil}
	}
	return nil
}

// xtextCharsets are the MySQL character sets that golang.org/x/text reads.
// The legacy Chinese and Japanese sets are read by their supersets.
var xtextCharsets = map[string]encoding.Encoding{
	"latin2":   charmap.ISO8859_2,
	"latin5":   charmap.ISO8859_9,
	"latin7":   charmap.ISO8859_13,
	"greek":    charmap.ISO8859_7,
	"hebrew":   charmap.ISO8859_8,
	"cp1250":   charmap.Windows1250,
	"cp1251":   charmap.Windows1251,
	"cp1256":   charmap.Windows1256,
	"cp1257":   charmap.Windows1257,
	"cp850":    charmap.CodePage850,
	"cp852":    charmap.CodePage852,
	"cp866":    charmap.CodePage866,
	"koi8r":    charmap.KOI8R,
	"koi8u":    charmap.KOI8U,
	"macroman": charmap.Macintosh,
	"tis620":   charmap.Windows874,
	"ucs2":     unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16":    unicode.UTF16(unicode.BigEndian, unicode.IgnoreBOM),
	"utf16le":  unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM),
	"utf32":    utf32.UTF32(utf32.BigEndian, utf32.IgnoreBOM),
	"gbk":      simplifiedchinese.GBK,
	"gb2312":   simplifiedchinese.GBK,
	"gb18030":  simplifiedchinese.GB18030,
	"big5":     traditionalchinese.Big5,
	"sjis":     japanese.ShiftJIS,
	"cp932":    japanese.ShiftJIS,
	"ujis":     japanese.EUCJP,
	"eucjpms":  japanese.EUCJP,
	"euckr":    korean.EUCKR,
}

// decodeUTF8 copies b; the server does not store invalid UTF-8 in a utf8
// column, but should a byte sequence be invalid it becomes U+FFFD.
func decodeUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// latin1Table is MySQL's latin1: Windows-1252, except that the five bytes
// Windows-1252 leaves undefined map to the C1 controls of the same number.
var latin1Table = func() (t [256]rune) {
	for i := range t {
		r := charmap.Windows1252.DecodeByte(byte(i))
		if r == utf8.RuneError {
			r = rune(i)
		}
		t[i] = r
	}
	return t
}()

func decodeLatin1(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	out := make([]byte, 0, len(b)+len(b)/2)
	for _, c := range b {
		out = utf8.AppendRune(out, latin1Table[c])
	}
	return string(out)
}

func decodeASCII(b []byte) string {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			out := make([]byte, 0, len(b)+2)
			out = append(out, b[:i]...)
			for _, c := range b[i:] {
				if c >= utf8.RuneSelf {
					out = utf8.AppendRune(out, utf8.RuneError)
				} else {
					out = append(out, c)
				}
			}
			return string(out)
		}
	}
	return string(b)
}

// decodeWith decodes b with enc. x/text decoders do not fail on bad input:
// they write U+FFFD.
func decodeWith(enc encoding.Encoding, b []byte) string {
	out, err := enc.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}
