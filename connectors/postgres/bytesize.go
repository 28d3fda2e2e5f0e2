package postgres

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. In YAML it is written as a number of bytes or
// with a unit: 512MB, 10GB, 1TB (powers of 1024; KB, MB, GB, TB, or KiB,
// MiB, GiB, TiB).
type ByteSize int64

var units = []struct {
	suffix string
	n      int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1},
}

// ParseByteSize reads "10GB", "512MiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	for _, u := range units {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || n < 0 {
				break
			}
			return ByteSize(n * float64(u.n)), nil
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (use bytes, or a number with KB, MB, GB or TB)", s)
	}
	return ByteSize(n), nil
}

// UnmarshalText implements encoding.TextUnmarshaler, for YAML.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String prints the size with the largest unit that keeps it readable.
func (b ByteSize) String() string {
	for _, u := range units[:4] {
		if int64(b) >= u.n {
			return strconv.FormatFloat(float64(b)/float64(u.n), 'f', 1, 64) + u.suffix[:2]
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
