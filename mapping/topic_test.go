package mapping

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// validTopic is the sink's rule, restated so that the test does not
// import the sink.
func validTopic(s string) error {
	if s == "" || len(s) > 249 || !regexp.MustCompile(`^[a-zA-Z0-9._-]+$`).MatchString(s) {
		return errors.New("not a topic name")
	}
	return nil
}

func id(name string) string {
	schema, table, err := connectors.ParseTableName(name, "public", false)
	if err != nil {
		return name
	}
	return connectors.TableID(schema, table)
}

func newMapping(entries map[string]Table, captured ...string) *Mapping {
	ids := make([]string, len(captured))
	for i, c := range captured {
		ids[i] = id(c)
	}
	return New(entries, id, ids, "", "app", validTopic)
}

func TestTopicSanitizesNames(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct{ name, table, want string }{
		{"a plain name is kept", "shop.orders", "app.shop.orders"},
		{"a dash and an underscore are kept", "shop.order-items_2", "app.shop.order-items_2"},
		{"each non-ASCII character becomes one _", "テスト.café", "app.___.caf_"},
		{"a name mixing ASCII and Chinese", "public.dbz5743中文", "app.public.dbz5743__"},
		{"punctuation becomes _", "public.some|test@data", "app.public.some_test_data"},
		{"a dot inside a name becomes _", `"My.Schema"."Odd""Table"`, "app.My_Schema.Odd_Table"},
		{"a backtick becomes _", "db.\"odd`table\"", "app.db.odd_table"},
		{"a name too long for Kafka is cut and given its hash", "s." + long, "app.s." + strings.Repeat("x", 249-len("app.s.")-9) + hashSuffix(id("s."+long))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMapping(nil, tt.table)
			got := m.Topic(id(tt.table))
			if got != tt.want {
				t.Errorf("Topic(%q) = %q, want %q", id(tt.table), got, tt.want)
			}
			if err := validTopic(got); err != nil {
				t.Errorf("Topic(%q) = %q: %v", id(tt.table), got, err)
			}
			if err := m.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestTopicCollisionsGetAHashSuffix(t *testing.T) {
	t.Run("two changed names that collide both get their hash", func(t *testing.T) {
		m := newMapping(nil, "public.some|data", "public.some@data")
		a, b := m.Topic(id("public.some|data")), m.Topic(id("public.some@data"))
		want := map[string]string{
			"public.some|data": "app.public.some_data" + hashSuffix("public.some|data"),
			"public.some@data": "app.public.some_data" + hashSuffix("public.some@data"),
		}
		if d := cmp.Diff(want, map[string]string{"public.some|data": a, "public.some@data": b}); d != "" {
			t.Errorf("topics (-want +got):\n%s", d)
		}
		if !regexp.MustCompile(`^_[0-9a-f]{8}$`).MatchString(hashSuffix("x")) {
			t.Errorf("hashSuffix = %q, want _ and 8 hex digits", hashSuffix("x"))
		}
		if err := m.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("a name that needed no change keeps its topic", func(t *testing.T) {
		m := newMapping(nil, "public.some_data", "public.some|data")
		if got := m.Topic("public.some_data"); got != "app.public.some_data" {
			t.Errorf("Topic(public.some_data) = %q", got)
		}
		if got, want := m.Topic("public.some|data"), "app.public.some_data"+hashSuffix("public.some|data"); got != want {
			t.Errorf("Topic(public.some|data) = %q, want %q", got, want)
		}
	})
	t.Run("a dot in a name cannot take another table's topic", func(t *testing.T) {
		m := newMapping(nil, `"a.b".c`, `a."b.c"`, "a.b_c")
		topics := []string{m.Topic(id(`"a.b".c`)), m.Topic(id(`a."b.c"`)), m.Topic("a.b_c")}
		if topics[2] != "app.a.b_c" {
			t.Errorf("Topic(a.b_c) = %q, want app.a.b_c", topics[2])
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(topics))); len(distinct) != 3 {
			t.Errorf("topics %q are not distinct", topics)
		}
	})
	t.Run("a changed name that takes a custom topic gets its hash", func(t *testing.T) {
		m := newMapping(map[string]Table{"public.other": {Topic: "app.public.some_data"}}, "public.other", "public.some|data")
		if got, want := m.Topic("public.some|data"), "app.public.some_data"+hashSuffix("public.some|data"); got != want {
			t.Errorf("Topic(public.some|data) = %q, want %q", got, want)
		}
		if err := m.Validate(); err != nil {
			t.Errorf("Validate: %v", err)
		}
	})
	t.Run("the topics do not depend on the order of source.tables", func(t *testing.T) {
		a := newMapping(nil, "public.x|y", "public.x@y", "public.x_y").Topics()
		b := newMapping(nil, "public.x_y", "public.x@y", "public.x|y").Topics()
		if d := cmp.Diff(a, b); d != "" {
			t.Errorf("topics differ (-first +second):\n%s", d)
		}
	})
}

func TestValidateRefusesACustomTopicThatTakesAPlainTablesTopic(t *testing.T) {
	m := newMapping(map[string]Table{"public.other": {Topic: "app.public.orders"}}, "public.other", "public.orders")
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), `mapping.public.other.topic: "app.public.orders" is the topic of table public.orders`) {
		t.Fatalf("Validate = %v", err)
	}
}
