package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func tablesConfig(kind, tables, mapping string) string {
	dsn := "postgres://u@127.0.0.1:5432/db"
	if kind != "postgres" {
		dsn = "mysql://u@127.0.0.1:3306/"
	}
	return `
source:
  kind: ` + kind + `
  dsn: ` + dsn + `
  tables:
` + tables + `
kafka:
  brokers: [127.0.0.1:9092]
  topic_prefix: app
registry:
  url: http://127.0.0.1:8081
` + mapping
}

func TestSourceTablesTakeEveryForm(t *testing.T) {
	tests := []struct {
		name, kind, tables string
		captured, topics   []string
	}{
		{"plain names, a bare PostgreSQL table in public", "postgres", "    - shop.orders\n    - orders",
			[]string{"shop.orders", "public.orders"}, []string{"app.shop.orders", "app.public.orders"}},
		{"a quoted PostgreSQL name with a dot and a quote", "postgres", `    - '"My.Schema"."Odd""Table"'`,
			[]string{`"My.Schema"."Odd""Table"`}, []string{"app.My_Schema.Odd_Table"}},
		{"quotes that are not needed are dropped", "postgres", `    - '"shop"."Orders"'`,
			[]string{"shop.Orders"}, []string{"app.shop.Orders"}},
		{"a section names the parts as they are", "postgres", "    - {schema: My.Schema, table: 'Odd\"Table'}\n    - {table: orders}",
			[]string{`"My.Schema"."Odd""Table"`, "public.orders"}, []string{"app.My_Schema.Odd_Table", "app.public.orders"}},
		{"MySQL backticks", "mariadb", "    - '`odd.db`.`odd``table`'",
			[]string{"\"odd.db\".\"odd`table\""}, []string{"app.odd_db.odd_table"}},
		{"MySQL section and non-ASCII names", "mariadb", "    - {schema: テスト, table: café}\n    - db.dbz5743中文\n    - 'db.some|test@data'",
			[]string{"テスト.café", "db.dbz5743中文", "db.some|test@data"}, []string{"app.___.caf_", "app.db.dbz5743__", "app.db.some_test_data"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tablesConfig(tt.kind, tt.tables, "")))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.captured, cfg.Captured()); d != "" {
				t.Errorf("captured (-want +got):\n%s", d)
			}
			var topics []string
			m := cfg.Mapper()
			for _, id := range cfg.Captured() {
				topics = append(topics, m.Topic(id))
			}
			if d := cmp.Diff(tt.topics, topics); d != "" {
				t.Errorf("topics (-want +got):\n%s", d)
			}
		})
	}
}

func TestMappingNamesAnOddTableInItsQuotedForm(t *testing.T) {
	cfg, err := Parse([]byte(tablesConfig("postgres", "    - {schema: My.Schema, table: 'Odd\"Table'}",
		"mapping:\n  '\"My.Schema\".\"Odd\"\"Table\"':\n    exclude: [secret]\n    topic: app.odd\n")))
	if err != nil {
		t.Fatal(err)
	}
	id := `"My.Schema"."Odd""Table"`
	if e := cfg.Mapper().For(id); e == nil || e.Topic != "app.odd" {
		t.Fatalf("mapping of %s = %+v", id, e)
	}
	if got := cfg.Mapper().Topic(id); got != "app.odd" {
		t.Errorf("topic = %q, want app.odd", got)
	}
}

func TestSourceTablesRefuse(t *testing.T) {
	tests := []struct {
		name, kind, tables, mapping string
		want                        []string
	}{
		{"an unclosed quote", "postgres", `    - '"a.b'`, "",
			[]string{`source.tables[0]: "\"a.b" is not a table name: the quote " that opens "\"a.b" is not closed (use schema.table; quote a part that holds a dot or a quote as in SQL`}},
		{"a MySQL table without its database", "mysql", "    - orders", "",
			[]string{`source.tables[0]: "orders" is not a table name: the database is missing (use database.table;`}},
		{"an unknown key in a section", "postgres", "    - {schema: s, tabel: t}", "",
			[]string{"source.tables[0].tabel: unknown key (allowed in source.tables[0]: schema, table)"}},
		{"a section without a table", "postgres", "    - {schema: s}", "",
			[]string{"source.tables[0].table: is empty"}},
		{"a mapping key that cannot be read", "postgres", "    - s.t", "mapping:\n  '\"s.t':\n    exclude: [x]\n",
			[]string{`mapping."s.t: "\"s.t" is not a table name: the quote " that opens`}},
		{"two tables that are one", "postgres", "    - '\"s\".\"t\"'\n    - {schema: s, table: t}", "",
			[]string{`source.tables[1]: "s.t" is listed twice`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tablesConfig(tt.kind, tt.tables, tt.mapping)))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
