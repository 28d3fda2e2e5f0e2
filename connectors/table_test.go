package connectors

import (
	"math"
	"testing"
	"time"
)

func TestSameValue(t *testing.T) {
	tests := []struct {
		name string
		a, b any
		same bool
	}{
		{"two NULLs", nil, nil, true},
		{"NULL and a value", nil, int32(0), false},
		{"a value and NULL", int32(0), nil, false},
		{"NULL and nil bytes", nil, []byte(nil), false},
		{"equal numbers", int32(1), int32(1), true},
		{"the same number of another type", int32(1), int64(1), false},
		{"equal strings", "a", "a", true},
		{"other strings", "a", "b", false},
		{"booleans", true, false, false},
		{"bytes by content", []byte("a"), []byte("a"), true},
		{"other bytes", []byte("a"), []byte("b"), false},
		{"bytes and a string", []byte("a"), "a", false},
		{"arrays element by element", []any{"x", nil, []byte{1}}, []any{"x", nil, []byte{1}}, true},
		{"arrays with another element", []any{int32(1), nil}, []any{int32(1), int32(2)}, false},
		{"arrays of other lengths", []any{int32(1)}, []any{int32(1), int32(1)}, false},
		{"arrays of arrays", []any{[]any{math.NaN()}}, []any{[]any{math.NaN()}}, true},
		{"equal floats", 1.5, 1.5, true},
		{"NaN is NaN", math.NaN(), math.NaN(), true},
		{"NaN is not a number", math.NaN(), 0.0, false},
		{"float32 NaN is NaN", float32(math.NaN()), float32(math.NaN()), true},
		{"-0 is not +0", math.Copysign(0, -1), 0.0, false},
		{"float32 -0 is not +0", float32(math.Copysign(0, -1)), float32(0), false},
		{"float32 and float64", float32(1), 1.0, false},
		{"infinities", math.Inf(1), math.Inf(1), true},
		{"geometries by SRID and WKB", Geometry{WKB: []byte{1, 2}, SRID: 4326}, Geometry{WKB: []byte{1, 2}, SRID: 4326}, true},
		{"geometries of other SRIDs", Geometry{WKB: []byte{1}, SRID: 4326}, Geometry{WKB: []byte{1}}, false},
		{"geometries of other shapes", Geometry{WKB: []byte{1}}, Geometry{WKB: []byte{2}}, false},
		{"another type by DeepEqual", map[string]int{"a": 1}, map[string]int{"a": 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SameValue(tt.a, tt.b); got != tt.same {
				t.Errorf("SameValue(%#v, %#v) = %t, want %t", tt.a, tt.b, got, tt.same)
			}
		})
	}
}

func TestKeyEqual(t *testing.T) {
	tbl := &Table{Key: []int{2, 0}}
	tests := []struct {
		name string
		a, b []any
		same bool
	}{
		{"the same key, other columns differ", []any{"eu", "x", int32(7)}, []any{"eu", "y", int32(7)}, true},
		{"a key-only row and a full row", []any{"eu", nil, int32(7)}, []any{"eu", "y", int32(7)}, true},
		{"the second key column differs", []any{"eu", "x", int32(7)}, []any{"us", "x", int32(7)}, false},
		{"bytes keys by content", []any{[]byte{1}, nil, int32(7)}, []any{[]byte{1}, nil, int32(7)}, true},
		{"a key of another type", []any{"eu", nil, int32(7)}, []any{"eu", nil, int64(7)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KeyEqual(tbl, tt.a, tt.b); got != tt.same {
				t.Errorf("KeyEqual(%v, %v) = %t, want %t", tt.a, tt.b, got, tt.same)
			}
		})
	}
}

func TestSameShape(t *testing.T) {
	base := func() *Table {
		dec := Type{Kind: KindDecimal, Precision: 10, Scale: 2}
		return &Table{Schema: "s", Name: "t", Key: []int{0}, Columns: []Column{
			{Name: "id", Type: Type{Kind: KindInt32}, SQLType: "integer"},
			{Name: "amount", Type: dec, Nullable: true, SQLType: "numeric(10,2)", Default: "0.00"},
			{Name: "tags", Type: Type{Kind: KindArray, Elem: &Type{Kind: KindString}}, Nullable: true, SQLType: "text[]", Default: []any{}},
			{Name: "ratio", Type: Type{Kind: KindFloat64}, Nullable: true, SQLType: "double precision", Default: math.NaN()},
		}}
	}
	tests := []struct {
		name   string
		change func(*Table)
		same   bool
	}{
		{"another description of the same table", func(*Table) {}, true},
		{"another schema", func(t *Table) { t.Schema = "u" }, false},
		{"another name", func(t *Table) { t.Name = "u" }, false},
		{"another key", func(t *Table) { t.Key = []int{0, 1} }, false},
		{"a column more", func(t *Table) { t.Columns = append(t.Columns, Column{Name: "x"}) }, false},
		{"a renamed column", func(t *Table) { t.Columns[1].Name = "total" }, false},
		{"a column made NOT NULL", func(t *Table) { t.Columns[1].Nullable = false }, false},
		{"another SQL spelling", func(t *Table) { t.Columns[0].SQLType = "int4" }, false},
		{"another scale", func(t *Table) { t.Columns[1].Type.Scale = 3 }, false},
		{"another element type", func(t *Table) { t.Columns[2].Type.Elem = &Type{Kind: KindInt32} }, false},
		{"an array no longer", func(t *Table) { t.Columns[2].Type = Type{Kind: KindString} }, false},
		{"another default", func(t *Table) { t.Columns[1].Default = "1.00" }, false},
		{"a default dropped", func(t *Table) { t.Columns[1].Default = nil }, false},
		{"a NaN default again", func(t *Table) { t.Columns[3].Default = math.NaN() }, true},
		{"a -0 default for a NaN", func(t *Table) { t.Columns[3].Default = math.Copysign(0, -1) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base()
			tt.change(b)
			if got := SameShape(base(), b); got != tt.same {
				t.Errorf("SameShape = %t, want %t", got, tt.same)
			}
		})
	}
}

func TestFitsDecimal(t *testing.T) {
	for _, tt := range []struct {
		s                string
		precision, scale int
		want             bool
	}{
		{"123.45", 5, 2, true},
		{"-0123.450", 5, 2, true},
		{"1234.5", 5, 2, false},
		{"1.234", 5, 2, false},
		{"+99999", 5, 0, true},
	} {
		if got := FitsDecimal(tt.s, tt.precision, tt.scale); got != tt.want {
			t.Errorf("FitsDecimal(%q, %d, %d) = %v, want %v", tt.s, tt.precision, tt.scale, got, tt.want)
		}
	}
}

func TestDaysFromCivilAgreesWithTime(t *testing.T) {
	for _, d := range []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-400, 2, 28, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	} {
		want := d.Unix() / 86400
		if got := DaysFromCivil(int64(d.Year()), int64(d.Month()), int64(d.Day())); got != want {
			t.Errorf("DaysFromCivil(%s) = %d, want %d", d.Format("2006-01-02"), got, want)
		}
	}
}

func TestColumnFilterSkips(t *testing.T) {
	tests := []struct {
		name   string
		filter ColumnFilter
		column string
		want   bool
	}{
		{"no filter skips nothing", ColumnFilter{}, "a", false},
		{"an excluded column is skipped", ColumnFilter{Exclude: []string{"a"}}, "a", true},
		{"a column not excluded is not", ColumnFilter{Exclude: []string{"a"}}, "b", false},
		{"a column not included is skipped", ColumnFilter{Include: []string{"a"}}, "b", true},
		{"an included column is not", ColumnFilter{Include: []string{"a"}}, "a", false},
		{"include wins over exclude", ColumnFilter{Include: []string{"a"}, Exclude: []string{"a"}}, "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Skips(tt.column); got != tt.want {
				t.Errorf("Skips(%q) = %v, want %v", tt.column, got, tt.want)
			}
		})
	}
}
