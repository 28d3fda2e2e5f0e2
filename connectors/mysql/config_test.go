package mysql

import (
	"strings"
	"testing"

	"github.com/liberator-cdc/liberator/connectors"
)

func validConfig() Config {
	return Config{Flavor: FlavorMariaDB, DSN: "mysql://cdc:s3cret@db.example:3307/shop?tls=true", Tables: []string{"shop.orders"}}
}

func TestValidateAcceptsAGoodConfig(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	d, err := parseDSN(validConfig().DSN)
	if err != nil {
		t.Fatal(err)
	}
	if d.addr() != "db.example:3307" || d.user != "cdc" || d.password != "s3cret" || d.db != "shop" || d.tls == nil || d.tls.ServerName != "db.example" {
		t.Errorf("parseDSN = %+v", d)
	}
	if d, _ := parseDSN("mariadb://cdc@[::1]/"); d.addr() != "[::1]:3306" || d.tls != nil {
		t.Errorf("defaults: %+v", d)
	}
}

func TestNewFillsDefaults(t *testing.T) {
	src, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if src.cfg.ServerID != DefaultServerID || src.cfg.Snapshot != connectors.SnapshotInitial || src.cfg.Logger == nil {
		t.Errorf("defaults not applied: %+v", src.cfg)
	}
	if !src.tracked["shop"]["orders"] {
		t.Error("shop.orders is not tracked")
	}
}

func TestValidateReportsEveryProblemByKey(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"no flavor", func(c *Config) { c.Flavor = "" }, []string{"source.kind: is empty (use mysql or mariadb)"}},
		{"another database", func(c *Config) { c.Flavor = "postgres" }, []string{`source.kind: "postgres" is not a MySQL flavor`}},
		{"no DSN", func(c *Config) { c.DSN = "" }, []string{"source.dsn: is empty"}},
		{"a PostgreSQL DSN", func(c *Config) { c.DSN = "postgres://u:pw@h/db" }, []string{`source.dsn: "postgres://u:xxxxx@h/db" has scheme "postgres" (use mysql://)`}},
		{"no user and a bad port", func(c *Config) { c.DSN = "mysql://h:99999/" }, []string{
			`source.dsn: "mysql://h:99999/" has port "99999" (use 1 to 65535)`,
			`source.dsn: "mysql://h:99999/" names no user`,
		}},
		{"an unknown parameter and TLS mode", func(c *Config) { c.DSN = "mysql://u:pw@h/?tls=maybe&charset=latin1" }, []string{
			`has parameter "charset" (the only parameter is tls)`,
			`has tls="maybe" (use false, true or skip-verify)`,
		}},
		{"no tables", func(c *Config) { c.Tables = nil }, []string{"source.tables: is empty (list tables as database.table)"}},
		{"bad and repeated tables", func(c *Config) { c.Tables = []string{"orders", "shop.orders", "a.b.c", "shop.orders"} }, []string{
			`source.tables[0]: "orders" is not a table name (use database.table)`,
			`source.tables[2]: "a.b.c" is not a table name`,
			`source.tables[3]: "shop.orders" is listed twice`,
		}},
		{"an unknown snapshot mode", func(c *Config) { c.Snapshot = "sometimes" }, []string{`snapshot.mode: "sometimes" is not a mode (use initial, never or only)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows the password", err)
			}
			if _, err := New(c); err == nil {
				t.Error("New accepted what Validate refuses")
			}
		})
	}
}

func TestValidateNeverShowsAPasswordItCannotParse(t *testing.T) {
	c := validConfig()
	c.DSN = "mysql://u:p%zzsecret@h/"
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v", err)
	}
}
