package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func chunkTable(key ...int) *connectors.Table {
	return &connectors.Table{Schema: "public", Name: "accounts", Key: key, Columns: []connectors.Column{
		{Name: "region", SQLType: "text"},
		{Name: "num", SQLType: "integer"},
		{Name: "Label", SQLType: "character varying(20)"},
	}}
}

func TestKeysetQueries(t *testing.T) {
	one := newKeyset(tableName{"public", "accounts"}, &relation{table: chunkTable(1)})
	two := newKeyset(tableName{"public", "accounts"}, &relation{table: chunkTable(0, 1)})
	skipping := newKeyset(tableName{"public", "accounts"}, &relation{table: chunkTable(1), skipped: []bool{false, false, true}})
	tests := []struct{ name, got, want string }{
		{"a column that is not decoded is read as NULL",
			skipping.pageQuery(false, 100),
			`SELECT "region", "num", NULL FROM "public"."accounts" ORDER BY "num" LIMIT 100`},
		{"the first page of a one-column key has no WHERE",
			one.pageQuery(false, 100),
			`SELECT "region", "num", "Label" FROM "public"."accounts" ORDER BY "num" LIMIT 100`},
		{"a later page starts after the last key, cast to the column's type",
			one.pageQuery(true, 8192),
			`SELECT "region", "num", "Label" FROM "public"."accounts" WHERE "num" > $1::integer ORDER BY "num" LIMIT 8192`},
		{"a composite key compares as a row value",
			two.pageQuery(true, 10),
			`SELECT "region", "num", "Label" FROM "public"."accounts" WHERE ("region", "num") > ($1::text, $2::integer) ORDER BY "region", "num" LIMIT 10`},
		{"a chunk boundary reads only the key of the n-th row",
			two.boundaryQuery(true, 500),
			`SELECT "region", "num" FROM "public"."accounts" WHERE ("region", "num") > ($1::text, $2::integer) ORDER BY "region", "num" LIMIT 1 OFFSET 499`},
		{"the first boundary scans from the start",
			one.boundaryQuery(false, 1),
			`SELECT "num" FROM "public"."accounts" ORDER BY "num" LIMIT 1 OFFSET 0`},
		{"a middle range is bounded on both sides, parameters numbered on",
			two.rangeQuery(true, true),
			`SELECT "region", "num", "Label" FROM "public"."accounts" WHERE ("region", "num") > ($1::text, $2::integer) AND ("region", "num") <= ($3::text, $4::integer) ORDER BY "region", "num"`},
		{"the first range has only an upper bound",
			one.rangeQuery(false, true),
			`SELECT "region", "num", "Label" FROM "public"."accounts" WHERE "num" <= $1::integer ORDER BY "num"`},
		{"the last range is open above",
			one.rangeQuery(true, false),
			`SELECT "region", "num", "Label" FROM "public"."accounts" WHERE "num" > $1::integer ORDER BY "num"`},
		{"a table of one chunk is read whole",
			one.rangeQuery(false, false),
			`SELECT "region", "num", "Label" FROM "public"."accounts" ORDER BY "num"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestKeyParamsPutTheLowerBoundFirst(t *testing.T) {
	got := keyParams([]string{"eu", "7"}, []string{"us", "1"})
	want := [][]byte{[]byte("eu"), []byte("7"), []byte("us"), []byte("1")}
	if d := cmp.Diff(want, got); d != "" {
		t.Error(d)
	}
	if got := keyParams(nil, []string{"3"}); len(got) != 1 || string(got[0]) != "3" {
		t.Errorf("keyParams(nil, [3]) = %q", got)
	}
}
