package connectors

import (
	"bytes"
	"math"
	"reflect"
	"slices"
	"strings"
)

// SameShape reports whether a and b describe the same table the same way:
// name, columns (with their types, nullability, SQL spelling and
// defaults) and key. Tables of the same shape derive the same Avro
// schemas, so a source keeps handing out the old *Table for a new
// description of the same shape (see Change.Table).
func SameShape(a, b *Table) bool {
	return a.Schema == b.Schema && a.Name == b.Name && slices.Equal(a.Key, b.Key) && SameColumns(a.Columns, b.Columns)
}

// SameColumns reports whether two column lists are the same, column by
// column, defaults compared with SameValue.
func SameColumns(a, b []Column) bool {
	return slices.EqualFunc(a, b, func(x, y Column) bool {
		return x.Name == y.Name && x.Nullable == y.Nullable && x.SQLType == y.SQLType &&
			SameType(x.Type, y.Type) && SameValue(x.Default, y.Default)
	})
}

// SameType reports whether two neutral types are the same, element types
// of arrays included.
func SameType(a, b Type) bool {
	if a.Kind != b.Kind || a.Precision != b.Precision || a.Scale != b.Scale || (a.Elem == nil) != (b.Elem == nil) {
		return false
	}
	return a.Elem == nil || SameType(*a.Elem, *b.Elem)
}

// SameValue reports whether two values in the neutral forms of Kind are
// the same value, which encodes the same: of the same Go type, []byte by
// content, []any element by element, a Geometry by its SRID and the
// content of its WKB, and floats by their value where NaN
// is the same as NaN and -0 is not the same as +0 (== would say the
// opposite of both, and the encoded bits differ). Values of any other
// type compare with reflect.DeepEqual.
func SameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int32, int64, string:
		return a == b
	case float32:
		y, ok := b.(float32)
		return ok && sameFloat(float64(x), float64(y))
	case float64:
		y, ok := b.(float64)
		return ok && sameFloat(x, y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, SameValue)
	case Geometry:
		y, ok := b.(Geometry)
		return ok && x.SRID == y.SRID && bytes.Equal(x.WKB, y.WKB)
	}
	return reflect.DeepEqual(a, b)
}

func sameFloat(x, y float64) bool {
	if math.IsNaN(x) || math.IsNaN(y) {
		return math.IsNaN(x) && math.IsNaN(y)
	}
	return x == y && math.Signbit(x) == math.Signbit(y)
}

// KeyEqual reports whether two rows of t, aligned with t.Columns, have the
// same key: SameValue for every key column. Other columns are not looked
// at, so either row may hold only its key.
func KeyEqual(t *Table, a, b []any) bool {
	for _, i := range t.Key {
		if !SameValue(a[i], b[i]) {
			return false
		}
	}
	return true
}

// FitsDecimal reports whether plain decimal text has at most precision
// digits, at most scale of them after the point (ignoring trailing zeros).
func FitsDecimal(s string, precision, scale int) bool {
	s = strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	return len(frac) <= scale && len(intPart) <= precision-scale
}

// DaysFromCivil returns the days since 1970-01-01 (the KindDate value) of
// a proleptic Gregorian date, with astronomical year numbering (1 BC is
// year 0). It is Howard Hinnant's days_from_civil algorithm.
func DaysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// ColumnFilter says which columns of a table liberator publishes, as
// mapping.<table>.include and exclude say it (Include, when set, wins).
// A source does not decode the other columns: it hands over nil for them
// whatever they hold, and does not refuse their types, so that a value or
// a type that liberator cannot carry in a column nobody publishes stops
// nothing. Key columns are always decoded.
type ColumnFilter struct {
	// Include, when not empty, lists the published columns.
	Include []string
	// Exclude lists columns that are not published.
	Exclude []string
}

// Skips reports whether column is left out, so that a source need not
// decode it.
func (f ColumnFilter) Skips(column string) bool {
	if len(f.Include) > 0 {
		return !slices.Contains(f.Include, column)
	}
	return slices.Contains(f.Exclude, column)
}
