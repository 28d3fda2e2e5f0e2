package connectors

import (
	"strings"
	"testing"
)

func TestTablePatternsMatchAsDocumented(t *testing.T) {
	tests := []struct {
		name, pattern string
		match, miss   []string // schema.table, unquoted
	}{
		{"a schema glob takes every table of the schema", "shop.*", []string{"shop.orders", "shop.a.b"}, []string{"shopx.orders", "public.orders"}},
		{"a bare glob is in the default schema", "order_?", []string{"public.order_1"}, []string{"shop.order_1", "public.order_12"}},
		{"a glob on the schema takes a table of every schema", "*.audit", []string{"shop.audit", "billing.audit"}, []string{"shop.audits"}},
		{"a class matches one character", "shop.t[0-9]", []string{"shop.t7"}, []string{"shop.tx"}},
		{"a regular expression is anchored at both ends", `/shop\.order_\d+/`, []string{"shop.order_12"}, []string{"shop.order_12x", "xshop.order_1", "shop.order_"}},
		{"an alternation is anchored as a whole", `/shop\.a|shop\.b/`, []string{"shop.a", "shop.b"}, []string{"shop.ab", "xshop.b"}},
		{"a quoted part holding a dot is one part", `"my.schema".*`, []string{"my.schema.t"}, []string{"my.t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !IsTablePattern(tt.pattern) {
				t.Fatalf("IsTablePattern(%q) = false", tt.pattern)
			}
			p, err := ParseTablePattern(tt.pattern, "public", false)
			if err != nil {
				t.Fatal(err)
			}
			split := func(id string) (string, string) {
				if strings.HasPrefix(id, "my.schema.") {
					return "my.schema", strings.TrimPrefix(id, "my.schema.")
				}
				s, n, _ := strings.Cut(id, ".")
				return s, n
			}
			for _, id := range tt.match {
				if s, n := split(id); !p.Match(s, n) {
					t.Errorf("%s does not match %s", tt.pattern, id)
				}
			}
			for _, id := range tt.miss {
				if s, n := split(id); p.Match(s, n) {
					t.Errorf("%s matches %s", tt.pattern, id)
				}
			}
		})
	}
}

func TestATableNameIsNoPattern(t *testing.T) {
	for _, s := range []string{"shop.orders", "orders", `"My.Schema"."Odd""Table"`, "/shop.orders"} {
		if IsTablePattern(s) {
			t.Errorf("IsTablePattern(%q) = true", s)
		}
	}
}

func TestABadPatternSaysWhatIsWrong(t *testing.T) {
	for pattern, want := range map[string]string{
		`/shop\.(/`:  "is not a regular expression",
		"shop.[a-":   "is not a glob",
		"a.b.*":      "more than two parts",
		"*":          "", // a bare glob is fine with a default schema
		"shop.order": "",
	} {
		_, err := ParseTablePattern(pattern, "public", false)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", pattern, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", pattern, err, want)
		}
	}
}

func TestExcludePatternsNarrowTheIncludedOnes(t *testing.T) {
	parse := func(s string) TablePattern {
		p, err := ParseTablePattern(s, "", true)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	f := TableFilter{Include: []TablePattern{parse("shop.*"), parse(`/billing\..*/`)}, Exclude: []TablePattern{parse("shop.tmp_*"), parse("billing.audit")}}
	for _, c := range []struct {
		schema, table string
		want          bool
	}{
		{"shop", "orders", true}, {"shop", "tmp_1", false}, {"billing", "invoices", true}, {"billing", "audit", false}, {"other", "orders", false},
	} {
		if got := f.Match(c.schema, c.table); got != c.want {
			t.Errorf("Match(%s.%s) = %v, want %v", c.schema, c.table, got, c.want)
		}
	}
	if (TableFilter{Exclude: f.Exclude}).Match("shop", "orders") {
		t.Error("a filter without include patterns matches a table")
	}
}
