package mysql

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file holds MariaDB's own binary types: UUID (10.7 and later), INET4
// and INET6 (10.10 and later). A SELECT returns their text; the binlog
// describes them as BINARY(16), BINARY(4) and BINARY(16) and carries the
// value in network byte order (a UUID in its RFC 4122 byte order, not the
// swapped order MariaDB stores some UUIDs in). The text liberator publishes
// is MariaDB's own: a snapshot passes the server's text on, and the stream
// formats the bytes the way the server does.

// nativeValue formats the bytes of a UUID, INET4 or INET6 value as MariaDB
// prints them.
func (c *column) nativeValue(b []byte) (any, error) {
	if len(b) != c.width {
		return nil, fmt.Errorf("%s value of %d bytes, want %d", c.conv, len(b), c.width)
	}
	switch c.conv {
	case convUUID:
		return formatUUID(b), nil
	case convInet4:
		return formatInet4(b), nil
	}
	return formatInet6(b), nil
}

// nativeText checks the text a SELECT returns for a UUID, INET4 or INET6
// column: printable ASCII, which it is unless the server changes its
// format.
func nativeText(b []byte) (any, error) {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("value %q is not the text of an address or UUID", b)
		}
	}
	return string(b), nil
}

const hexDigits = "0123456789abcdef"

// formatUUID prints 16 bytes in the 8-4-4-4-12 form, in lower case.
func formatUUID(b []byte) string {
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return string(out)
}

// formatInet4 prints 4 bytes as a dotted quad.
func formatInet4(b []byte) string {
	return strconv.Itoa(int(b[0])) + "." + strconv.Itoa(int(b[1])) + "." + strconv.Itoa(int(b[2])) + "." + strconv.Itoa(int(b[3]))
}

// formatInet6 prints 16 bytes the way MariaDB's Inet6::to_string does,
// which is not quite RFC 5952 (nor Go's netip): the first longest run of
// zero groups becomes "::" even when it is one group long, and an
// IPv4-compatible (::a.b.c.d) or IPv4-mapped (::ffff:a.b.c.d) address ends
// in a dotted quad.
func formatInet6(b []byte) string {
	var words [8]int
	for i := range words {
		words[i] = int(b[2*i])<<8 | int(b[2*i+1])
	}
	gapPos, gapLen := -1, 0
	for i := 0; i < 8; {
		if words[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && words[j] == 0 {
			j++
		}
		if j-i > gapLen {
			gapPos, gapLen = i, j-i
		}
		i = j
	}
	var s strings.Builder
	for i := 0; i < 8; i++ {
		switch {
		case i == gapPos:
			if i == 0 {
				s.WriteByte(':')
			}
			s.WriteByte(':')
			i += gapLen - 1
		case i == 6 && gapPos == 0 && (gapLen == 6 || gapLen == 5 && words[5] == 0xffff):
			s.WriteString(formatInet4(b[12:16]))
			return s.String()
		default:
			s.WriteString(strconv.FormatInt(int64(words[i]), 16))
			if i < 7 {
				s.WriteByte(':')
			}
		}
	}
	return s.String()
}

// parseNative reads the text of a UUID, INET4 or INET6 literal (a column
// default) into the bytes the binlog carries, or returns false.
func parseNative(c conv, lit string) ([]byte, bool) {
	switch c {
	case convUUID:
		hex := strings.ReplaceAll(lit, "-", "")
		if len(hex) != 32 || strings.HasPrefix(lit, "-") || strings.HasSuffix(lit, "-") {
			return nil, false
		}
		out := make([]byte, 16)
		for i := range out {
			n, err := strconv.ParseUint(hex[2*i:2*i+2], 16, 8)
			if err != nil {
				return nil, false
			}
			out[i] = byte(n)
		}
		return out, true
	case convInet4:
		a, err := netip.ParseAddr(lit)
		if err != nil || !a.Is4() {
			return nil, false
		}
		b := a.As4()
		return b[:], true
	case convInet6:
		a, err := netip.ParseAddr(lit)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, false
		}
		b := a.As16()
		return b[:], true
	}
	return nil, false
}
