package connectors

import (
	"strings"
	"testing"
)

func TestParseTableName(t *testing.T) {
	tests := []struct {
		name, in   string
		def        string
		backticks  bool
		schema, tb string
		err        string
	}{
		{"a plain name reads as its two parts", "shop.orders", "", false, "shop", "orders", ""},
		{"a bare table takes the default schema", "orders", "public", false, "public", "orders", ""},
		{"case is kept, quoted or not", `Shop."Orders"`, "", false, "Shop", "Orders", ""},
		{"a quoted part may hold a dot", `"My.Schema".t`, "", false, "My.Schema", "t", ""},
		{"a doubled quote is one quote", `"My.Schema"."Odd""Table"`, "", false, "My.Schema", `Odd"Table`, ""},
		{"a quoted bare table takes the default schema", `"a.b"`, "public", false, "public", "a.b", ""},
		{"backticks quote under MySQL", "`odd.db`.`odd``table`", "", true, "odd.db", "odd`table", ""},
		{"a quoted backtick is a character", "\"a`b\".c", "", true, "a`b", "c", ""},
		{"a backtick is a character without MySQL's quoting", "s.a`b", "", false, "s", "a`b", ""},
		{"non-ASCII names are taken as they are", "テスト.café", "", false, "テスト", "café", ""},
		{"odd characters need no quotes", "public.some|test@data", "", false, "public", "some|test@data", ""},
		{"three parts are refused", "a.b.c", "", false, "", "", "more than two parts"},
		{"an empty part is refused", "a.", "public", false, "", "", "a part is empty"},
		{"an empty quoted part is refused", `"".t`, "", false, "", "", "a quoted part is empty"},
		{"an unclosed quote is refused", `"a.b`, "", false, "", "", "is not closed"},
		{"text after a closing quote is refused", `"a"b.c`, "", false, "", "", `"b.c" follows a quoted part`},
		{"a quote inside an unquoted part is refused", `a"b.c`, "", false, "", "", "holds a quote without being quoted"},
		{"a backtick inside an unquoted part is refused under MySQL", "a`b.c", "", true, "", "", "holds a backtick without being quoted"},
		{"a missing database is refused without a default", "orders", "", true, "", "", "the database is missing (use database.table"},
		{"a NUL is refused", "a.b\x00", "", true, "", "", "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema, name, err := ParseTableName(tt.in, tt.def, tt.backticks)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseTableName(%q) = %q, %q, %v; want an error containing %q", tt.in, schema, name, err, tt.err)
				}
				return
			}
			if err != nil || schema != tt.schema || name != tt.tb {
				t.Fatalf("ParseTableName(%q) = %q, %q, %v; want %q, %q", tt.in, schema, name, err, tt.schema, tt.tb)
			}
		})
	}
}

func TestTableIDQuotesOnlyWhatNeedsIt(t *testing.T) {
	tests := []struct{ schema, name, want string }{
		{"shop", "orders", "shop.orders"},
		{"My.Schema", `Odd"Table`, `"My.Schema"."Odd""Table"`},
		{"db", "odd`table", "db.\"odd`table\""},
		{"テスト", "café", "テスト.café"},
		{"", "orders", "orders"},
	}
	for _, tt := range tests {
		if got := TableID(tt.schema, tt.name); got != tt.want {
			t.Errorf("TableID(%q, %q) = %q, want %q", tt.schema, tt.name, got, tt.want)
		}
		if got := (&Table{Schema: tt.schema, Name: tt.name}).ID(); got != tt.want {
			t.Errorf("Table.ID() of %q, %q = %q, want %q", tt.schema, tt.name, got, tt.want)
		}
	}
}

// FuzzTableIDReadsBack checks that every ID reads back as its parts, under
// both dialects.
func FuzzTableIDReadsBack(f *testing.F) {
	for _, s := range [][2]string{{"shop", "orders"}, {"My.Schema", `Odd"Table`}, {"a`b", "c.d"}, {"テスト", "café"}, {`"`, "`"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, schema, name string) {
		if schema == "" || name == "" || strings.ContainsRune(schema+name, 0) {
			return
		}
		id := TableID(schema, name)
		for _, backticks := range []bool{false, true} {
			s, n, err := ParseTableName(id, "", backticks)
			if err != nil || s != schema || n != name {
				t.Fatalf("ParseTableName(TableID(%q, %q) = %q, backticks %v) = %q, %q, %v", schema, name, id, backticks, s, n, err)
			}
		}
	})
}
