package postgres

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

// TestColumnsNotPublishedAreNotDecoded builds a relation whose mapping
// leaves out a numeric, an array and a column of a type the catalog would
// have to be asked about, and decodes rows that hold values liberator
// cannot carry in them: they are nil, and nothing is refused.
func TestColumnsNotPublishedAreNotDecoded(t *testing.T) {
	tn := tableName{"public", "items"}
	cols := []column{
		{name: "id", typeOID: pgtype.Int4OID, typmod: -1, notNull: true, sqlType: "integer"},
		{name: "price", typeOID: pgtype.NumericOID, typmod: numericMod(10, 2), sqlType: "numeric(10,2)"},
		{name: "grid", typeOID: pgtype.Int4ArrayOID, typmod: -1, sqlType: "integer[]"},
		// A type outside the built-in set: describing it needs the
		// catalog connection, which this catalog does not have.
		{name: "odd", typeOID: 99999, typmod: -1, sqlType: "odd"},
		{name: "note", typeOID: pgtype.TextOID, typmod: -1, sqlType: "text"},
	}
	// The key column is decoded even when the filter leaves it out.
	cat := newCatalog(nil).withPublished(map[string]connectors.ColumnFilter{
		"public.items": {Exclude: []string{"id", "price", "grid", "odd"}},
	})
	rel, err := cat.buildRelation(context.Background(), tn, cols, []string{"id"}, 'f')
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rel.selectList(), `"id", NULL, NULL, NULL, "note"`; got != want {
		t.Errorf("select list = %s, want %s", got, want)
	}
	row, err := rel.decodeValues([][]byte{[]byte("7"), []byte("NaN"), []byte("{{1,2},{3,4}}"), []byte("?"), []byte("n")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{int32(7), nil, nil, nil, "n"}, row); d != "" {
		t.Errorf("snapshot row (-want +got):\n%s", d)
	}
	text := func(s string) *pglogrepl.TupleDataColumn {
		return &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeText, Data: []byte(s)}
	}
	toast := &pglogrepl.TupleDataColumn{DataType: pglogrepl.TupleDataTypeToast}
	tup := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{text("7"), text("NaN"), toast, text("?"), text("n")}}
	row, unchanged, err := rel.decodeTuple(tup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if unchanged {
		t.Error("an unchanged TOAST value of a column that is not decoded asks for the row to be read again")
	}
	if d := cmp.Diff([]any{int32(7), nil, nil, nil, "n"}, row); d != "" {
		t.Errorf("streamed row (-want +got):\n%s", d)
	}
}

// TestColumnsAreDecodedWithoutAFilter checks that the same columns are
// decoded, and the values refused or carried as BadValue, without one.
func TestColumnsAreDecodedWithoutAFilter(t *testing.T) {
	cols := []column{
		{name: "id", typeOID: pgtype.Int4OID, typmod: -1, notNull: true, sqlType: "integer"},
		{name: "grid", typeOID: pgtype.Int4ArrayOID, typmod: -1, sqlType: "integer[]"},
	}
	rel, err := newCatalog(nil).buildRelation(context.Background(), tableName{"public", "items"}, cols, []string{"id"}, 'd')
	if err != nil {
		t.Fatal(err)
	}
	row, err := rel.decodeValues([][]byte{[]byte("7"), []byte("{{1,2},{3,4}}")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := row[1].(connectors.BadValue); !ok {
		t.Errorf("a multi-dimensional array decoded as %#v, want a BadValue", row[1])
	}
}
