package schema

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/liberator-cdc/liberator/connectors"
)

// shape is a table of one bigint key column "id" and the given columns.
func shape(cols ...connectors.Column) *connectors.Table {
	return &connectors.Table{Schema: "public", Name: "t", Key: []int{0}, Columns: append([]connectors.Column{
		{Name: "id", Type: typ(connectors.KindInt64), SQLType: "bigint"},
	}, cols...)}
}

func column(name string, t connectors.Type, nullable bool, sqlType string) connectors.Column {
	return connectors.Column{Name: name, Type: t, Nullable: nullable, SQLType: sqlType}
}

func withDefault(c connectors.Column, v any) connectors.Column {
	c.Default = v
	return c
}

func valueSchema(t *testing.T, table *connectors.Table) avro.Schema {
	t.Helper()
	c, err := NewCodec("app.public.t", table)
	if err != nil {
		t.Fatal(err)
	}
	return c.Value
}

var (
	intCol     = column("n", typ(connectors.KindInt32), false, "integer")
	bigintCol  = column("n", typ(connectors.KindInt64), false, "bigint")
	textCol    = column("n", typ(connectors.KindString), false, "text")
	nullText   = column("note", typ(connectors.KindString), true, "text")
	dec102     = column("n", decimal(10, 2), false, "numeric(10,2)")
	dec122     = column("n", decimal(12, 2), false, "numeric(12,2)")
	dec103     = column("n", decimal(10, 3), false, "numeric(10,3)")
	localTS    = column("n", typ(connectors.KindLocalTimestamp), false, "timestamp")
	instantTS  = column("n", typ(connectors.KindTimestamp), false, "timestamptz")
	uuidCol    = column("n", typ(connectors.KindUUID), false, "uuid")
	nullInt    = column("n", typ(connectors.KindInt32), true, "integer")
	dateCol    = column("n", typ(connectors.KindDate), false, "date")
	newNotNull = column("added", typ(connectors.KindInt32), false, "integer")
	wkbCol     = column("g", typ(connectors.KindBytes), true, "geometry")
	geomCol    = column("g", typ(connectors.KindGeometry), true, "geometry")
	geomCol2   = column("h", typ(connectors.KindGeometry), true, "point")
)

// TestCompatibilityRules renders, for each kind of table change, the
// verdict of every compatibility level into a golden file: which changes
// give a compatible new version and which go to schema.on_incompatible.
func TestCompatibilityRules(t *testing.T) {
	changes := []struct {
		name     string
		versions []*connectors.Table // registered, oldest first
		next     *connectors.Table
	}{
		{"adding a nullable column", []*connectors.Table{shape(intCol)}, shape(intCol, nullText)},
		{"adding a NOT NULL column with a default", []*connectors.Table{shape(intCol)}, shape(intCol, withDefault(newNotNull, int32(0)))},
		{"adding a NOT NULL column without a default", []*connectors.Table{shape(intCol)}, shape(intCol, newNotNull)},
		{"dropping a nullable column", []*connectors.Table{shape(intCol, nullText)}, shape(intCol)},
		{"dropping a NOT NULL column", []*connectors.Table{shape(intCol)}, shape()},
		{"dropping a NOT NULL column with a default", []*connectors.Table{shape(withDefault(intCol, int32(1)))}, shape()},
		{"renaming a NOT NULL column", []*connectors.Table{shape(intCol)}, shape(column("m", typ(connectors.KindInt32), false, "integer"))},
		{"renaming a nullable column", []*connectors.Table{shape(nullText)}, shape(column("remark", typ(connectors.KindString), true, "text"))},
		{"widening integer to bigint", []*connectors.Table{shape(intCol)}, shape(bigintCol)},
		{"narrowing bigint to integer", []*connectors.Table{shape(bigintCol)}, shape(intCol)},
		{"changing integer to text", []*connectors.Table{shape(intCol)}, shape(textCol)},
		{"widening a decimal's precision", []*connectors.Table{shape(dec102)}, shape(dec122)},
		{"changing a decimal's scale", []*connectors.Table{shape(dec102)}, shape(dec103)},
		{"changing timestamp to timestamptz", []*connectors.Table{shape(localTS)}, shape(instantTS)},
		{"changing date to integer", []*connectors.Table{shape(dateCol)}, shape(intCol)},
		{"changing uuid to text", []*connectors.Table{shape(uuidCol)}, shape(textCol)},
		{"changing text to uuid", []*connectors.Table{shape(textCol)}, shape(uuidCol)},
		{"making a column NOT NULL", []*connectors.Table{shape(nullInt)}, shape(intCol)},
		{"making a column nullable", []*connectors.Table{shape(intCol)}, shape(nullInt)},
		{"giving a nullable column a default", []*connectors.Table{shape(nullInt)}, shape(withDefault(nullInt, int32(3)))},
		{"changing only a column's SQL type spelling", []*connectors.Table{shape(column("n", typ(connectors.KindString), false, "varchar(20)"))}, shape(column("n", typ(connectors.KindString), false, "varchar(40)"))},
		{"changing a geometry's bytes to the geometry record", []*connectors.Table{shape(wkbCol)}, shape(geomCol)},
		{"adding a second geometry column", []*connectors.Table{shape(geomCol)}, shape(geomCol, geomCol2)},
		{"re-adding as text a bigint dropped one version ago", []*connectors.Table{shape(column("note", typ(connectors.KindInt64), false, "bigint")), shape()}, shape(nullText)},
	}
	levels := []sr.CompatibilityLevel{sr.CompatBackward, sr.CompatBackwardTransitive, sr.CompatForward, sr.CompatForwardTransitive, sr.CompatFull, sr.CompatFullTransitive, sr.CompatNone}
	var b strings.Builder
	for _, ch := range changes {
		var versions []version
		for i, v := range ch.versions {
			versions = append(versions, version{number: i + 1, id: 100 + i, schema: valueSchema(t, v)})
		}
		next := valueSchema(t, ch.next)
		fmt.Fprintf(&b, "## %s\n", ch.name)
		for _, level := range levels {
			err := checkCompatible("t-value", level, next, versions)
			fmt.Fprintf(&b, "%-20s %s\n", level.String()+":", verdict(t, err))
		}
		b.WriteString("\n")
	}
	golden(t, "compatibility", []byte(b.String()))
}

// verdict renders the result of checkCompatible, checking the error's form.
func verdict(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "compatible"
	}
	var ie *IncompatibleError
	if !errors.As(err, &ie) || !errors.Is(err, ErrIncompatible) {
		t.Fatalf("error %v is not an *IncompatibleError", err)
	}
	if ie.Subject != "t-value" || ie.Level == "" || ie.Version == 0 || ie.Reason == "" {
		t.Errorf("error %+v lacks a field", ie)
	}
	return fmt.Sprintf("incompatible with version %d, fields %v: %s", ie.Version, ie.Fields, ie.Reason)
}

func TestKeyChange(t *testing.T) {
	key := func(table *connectors.Table) avro.Schema {
		c, err := NewCodec("app.public.t", table)
		if err != nil {
			t.Fatal(err)
		}
		return c.Key
	}
	two := func(second connectors.Column) *connectors.Table {
		tb := shape(second)
		tb.Key = []int{0, 1}
		return tb
	}
	latest := version{number: 3, id: 7, schema: key(shape(intCol))}
	tests := []struct {
		name   string
		next   *connectors.Table
		level  sr.CompatibilityLevel
		fields []string // nil: compatible
	}{
		{"a key that encodes alike is kept", shape(intCol), sr.CompatBackward, nil},
		{"a key column's new SQL spelling is kept", shape(textCol), sr.CompatBackward, nil},
		{"widening a key column changes the key", func() *connectors.Table {
			tb := shape()
			tb.Columns[0] = column("id", typ(connectors.KindInt32), false, "integer")
			return tb
		}(), sr.CompatBackward, []string{"id"}},
		{"adding a key column changes the key", two(intCol), sr.CompatBackward, []string{"n"}},
		{"a changed key passes under NONE", two(intCol), sr.CompatNone, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := keyChange("t-key", tt.level, key(tt.next), latest)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("keyChange: %v, want nil", err)
				}
				return
			}
			var ie *IncompatibleError
			if !errors.As(err, &ie) {
				t.Fatalf("keyChange: %v, want an *IncompatibleError", err)
			}
			if d := cmp.Diff(tt.fields, ie.Fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
			if ie.Version != 3 || ie.Subject != "t-key" || !strings.Contains(ie.Reason, "never be replaced or deleted") {
				t.Errorf("error %+v does not name the version, the subject and why", ie)
			}
		})
	}
}

func TestIncompatibleErrorUnwrapsHambaVerdict(t *testing.T) {
	err := checkCompatible("t-value", sr.CompatBackward, valueSchema(t, shape(textCol)), []version{{number: 1, schema: valueSchema(t, shape(intCol))}})
	var ie *IncompatibleError
	if !errors.As(err, &ie) {
		t.Fatalf("got %v, want an *IncompatibleError", err)
	}
	if ie.Err == nil || errors.Unwrap(err) != ie.Err {
		t.Errorf("Unwrap = %v, want hamba's verdict", errors.Unwrap(err))
	}
	want := `schema for subject "t-value" is incompatible with version 1 under BACKWARD: field "n" is string in the new schema, which cannot read int of version 1`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}
