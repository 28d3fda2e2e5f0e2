package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestParseSchemaMappingAndRegistryTLS(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	t.Setenv("TEST_SALT", "pepper")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(minimal + `
schema:
  on_incompatible: new_topic
mapping_salt: ${TEST_SALT}
mapping:
  public.customers:
    exclude: [notes]
    rename: {email: mail}
    mask: {ssn: "***"}
    hash: [email]
    topic: crm.customers
  orders:
    include: [id, total]
    key: [id]
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Schema.OnIncompatible != OnIncompatibleNewTopic {
		t.Errorf("schema.on_incompatible = %q", cfg.Schema.OnIncompatible)
	}
	if cfg.MappingSalt != "pepper" {
		t.Errorf("mapping_salt = %q, want it from the environment", cfg.MappingSalt)
	}
	if m := cfg.Mapper().For("public.orders"); m == nil {
		t.Fatalf("the mapping of a bare table name is not found for public.orders")
	}
	if d := cmp.Diff(map[string][]string{"public.orders": {"id"}}, cfg.Mapper().KeyColumns()); d != "" {
		t.Errorf("key columns for the connector (-want +got):\n%s", d)
	}
	wantPublished := map[string]connectors.ColumnFilter{
		"public.customers": {Exclude: []string{"notes"}},
		"public.orders":    {Include: []string{"id", "total"}},
	}
	if d := cmp.Diff(wantPublished, cfg.Postgres(nil).PublishedColumns); d != "" {
		t.Errorf("published columns for the connector (-want +got):\n%s", d)
	}

	def, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if def.Schema.OnIncompatible != OnIncompatibleFail {
		t.Errorf("default schema.on_incompatible = %q, want fail", def.Schema.OnIncompatible)
	}

	withTLS, err := Parse([]byte(strings.Replace(minimal, "url: http://127.0.0.1:8081", "url: https://127.0.0.1:8081\n  username: u\n  password: p\n  tls: {ca_file: "+ca+"}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withTLS.NewRegistry(withTLS.Registry.URL); err == nil || !strings.Contains(err.Error(), "registry.tls.ca_file") {
		t.Errorf("a CA file without a certificate: %v, want an error naming registry.tls.ca_file", err)
	}
}

func TestParseRefusesBadMappings(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name  string
		extra string
		wants []string
	}{
		{"an unknown policy", "schema: {on_incompatible: ignore}", []string{`schema.on_incompatible: "ignore" is not a policy (use fail or new_topic)`}},
		{"a table that is not captured", "mapping: {public.nope: {exclude: [a]}}", []string{`mapping.public.nope: table public.nope is not in source.tables`}},
		{"include with exclude", "mapping: {orders: {include: [a], exclude: [b]}}", []string{`mapping.orders: include and exclude conflict (use one)`}},
		{"a hash without a salt", "mapping: {orders: {hash: [email]}}", []string{`mapping.orders.hash: needs a salt: set mapping.orders.salt or mapping_salt`}},
		{"masking and hashing one column", "mapping_salt: s\nmapping: {orders: {mask: {a: x}, hash: [a]}}", []string{`mapping.orders: column "a" is both masked and hashed`}},
		{"renaming an excluded column", "mapping: {orders: {exclude: [a], rename: {a: b}}}", []string{`mapping.orders.rename: column "a" is not published`}},
		{"a column not included", "mapping: {orders: {include: [id], mask: {a: x}}}", []string{`mapping.orders.mask: column "a" is not published`}},
		{"a masked key", "mapping: {orders: {key: [id], mask: {id: x}}}", []string{`mapping.orders.mask: key column "id" cannot be masked`}},
		{"a bad topic", "mapping: {orders: {topic: 'a b'}}", []string{`mapping.orders.topic: "a b" is not a topic name`}},
		{"two tables on one topic", "mapping: {orders: {topic: t}, public.customers: {topic: t}}", []string{`mapping.public.customers.topic: "t" is also the topic of mapping.orders`}},
		{"a topic that is another table's", "mapping: {orders: {topic: shop.public.customers}}", []string{`mapping.orders.topic: "shop.public.customers" is the topic of table public.customers`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.extra + "\n"))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	_, err := Parse([]byte(strings.Replace(minimal, "url: http://127.0.0.1:8081", "url: https://r\n  tls: {key_file: /nonexistent/key.pem}", 1)))
	for _, w := range []string{"registry.tls: cert_file and key_file go together", "registry.tls.key_file:"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}
