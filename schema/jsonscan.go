package schema

// A JSON scanner for payloads: it checks JSON text, and walks a value's
// members and elements as spans of the text, without building the value.
// AppendJSON checks the whole payload first, then encodes it from the
// spans, so that a payload is never decoded into maps and interfaces.

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a payload, as encoding/json does.
const maxJSONDepth = 10000

// jsonSyntaxError is JSON text that is not JSON, at Offset.
type jsonSyntaxError struct {
	Offset int
	msg    string
}

func (e *jsonSyntaxError) Error() string { return fmt.Sprintf("%s (at byte %d)", e.msg, e.Offset) }

// unexpectedAt says what is wrong with b at i, where the scanner looked
// for what context names.
func unexpectedAt(b []byte, i int, context string) error {
	if i >= len(b) {
		return &jsonSyntaxError{Offset: i, msg: "unexpected end of JSON input"}
	}
	return &jsonSyntaxError{Offset: i, msg: fmt.Sprintf("invalid character %q %s", rune(b[i]), context)}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanValue checks the JSON value that starts at b[i] and returns the
// offset just after it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, unexpectedAt(b, i, "")
	}
	switch c := b[i]; {
	case c == '{':
		if depth >= maxJSONDepth {
			return i, &jsonSyntaxError{Offset: i, msg: "exceeded max depth"}
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			if i >= len(b) || b[i] != '"' {
				return i, unexpectedAt(b, i, "looking for beginning of object key string")
			}
			end, _, err := scanString(b, i)
			if err != nil {
				return end, err
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return i, unexpectedAt(b, i, "after object key")
			}
			if i, err = scanValue(b, skipSpace(b, i+1), depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				return i + 1, nil
			}
			return i, unexpectedAt(b, i, "after object key:value pair")
		}
	case c == '[':
		if depth >= maxJSONDepth {
			return i, &jsonSyntaxError{Offset: i, msg: "exceeded max depth"}
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = scanValue(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i < len(b) && b[i] == ',' {
				i = skipSpace(b, i+1)
				continue
			}
			if i < len(b) && b[i] == ']' {
				return i + 1, nil
			}
			return i, unexpectedAt(b, i, "after array element")
		}
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return scanNumber(b, i)
	}
	return i, unexpectedAt(b, i, "looking for beginning of value")
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(b) || b[i+j] != lit[j] {
			return i + j, unexpectedAt(b, i+j, "in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// scanNumber checks the number at b[i] against JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, error) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i + 1)
	default:
		return i, unexpectedAt(b, i, "in numeric literal")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, unexpectedAt(b, i, "after decimal point in numeric literal")
		}
		i = digits(i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return i, unexpectedAt(b, i, "in exponent of numeric literal")
		}
		i = digits(i)
	}
	return i, nil
}

// scanString checks the string at b[i] (its opening quote) and returns
// the offset after its closing quote. plain is true when the string's
// text is its bytes as they are: no escapes and valid UTF-8.
func scanString(b []byte, i int) (end int, plain bool, err error) {
	plain = true
	for j := i + 1; j < len(b); {
		c := b[j]
		switch {
		case c == '"':
			return j + 1, plain, nil
		case c == '\\':
			plain = false
			if j+1 >= len(b) {
				return j + 1, false, unexpectedAt(b, j+1, "")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(b) || !isHex(b[k]) {
						return k, false, unexpectedAt(b, k, "in \\u hexadecimal character escape")
					}
				}
				j += 6
			default:
				return j + 1, false, unexpectedAt(b, j+1, "in string escape code")
			}
		case c < 0x20:
			return j, false, unexpectedAt(b, j, "in string literal")
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				plain = false
			}
			j += size
		}
	}
	return len(b), false, unexpectedAt(b, len(b), "")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexValue(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// skipValue returns the offset just after the checked JSON value that
// starts at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i + 1 // a number or a literal
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}

// skipString returns the offset after the closing quote of the checked
// JSON string at b[i].
func skipString(b []byte, i int) int {
	j := i + 1
	for {
		j += bytes.IndexByte(b[j:], '"')
		escapes := 0
		for k := j - 1; b[k] == '\\'; k-- {
			escapes++
		}
		if escapes%2 == 0 {
			return j + 1
		}
		j++
	}
}

// appendUnquoted appends the text of raw, a checked JSON string with its
// quotes, to dst, as encoding/json decodes it: a byte that is not UTF-8,
// and a lone surrogate, become U+FFFD.
func appendUnquoted(dst, raw []byte) []byte {
	s := raw[1 : len(raw)-1]
	i := 0
	for i < len(s) && s[i] != '\\' && s[i] < utf8.RuneSelf {
		i++
	}
	dst = append(dst, s[:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hexValue(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hexValue(s[i+2:i+6])); d != unicode.ReplacementChar {
							dst = utf8.AppendRune(dst, d)
							i += 6
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // " \ /
				dst = append(dst, s[i+1])
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, unicode.ReplacementChar)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// plainString returns the text of raw, a checked JSON string with its
// quotes, when it is its bytes as they are (no escape, valid UTF-8).
func plainString(raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return s, utf8.Valid(s[i:])
		}
	}
	return s, true
}
