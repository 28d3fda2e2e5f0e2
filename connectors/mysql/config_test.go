package mysql

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
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
	if !src.isTracked("shop", "orders") {
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
		{"no tables", func(c *Config) { c.Tables = nil }, []string{"source.tables: is empty (list tables as database.table, or patterns such as shop.*)"}},
		{"bad and repeated tables", func(c *Config) { c.Tables = []string{"orders", "shop.orders", "a.b.c", "shop.orders"} }, []string{
			`source.tables[0]: "orders" is not a table name: the database is missing (use database.table; quote a part`,
			`source.tables[2]: "a.b.c" is not a table name`,
			`source.tables[3]: "shop.orders" is listed twice`,
		}},
		{"an unknown snapshot mode", func(c *Config) { c.Snapshot = "sometimes" }, []string{`snapshot.mode: "sometimes" is not a mode (use initial, never or only)`}},
		{"tls in the DSN and source.mysql.tls", func(c *Config) { c.TLS = tlsconfig.Config{Enabled: true} }, []string{
			"source.dsn: has a tls parameter and source.mysql.tls is set (use one: drop tls= from the DSN)"}},
		{"a CA file that is not there", func(c *Config) {
			c.DSN = "mysql://cdc:s3cret@db.example/"
			c.TLS = tlsconfig.Config{CAFile: "/nonexistent/ca.pem"}
		}, []string{"source.mysql.tls.ca_file: stat /nonexistent/ca.pem"}},
		{"a client certificate without its key", func(c *Config) {
			c.DSN = "mysql://cdc:s3cret@db.example/"
			c.TLS = tlsconfig.Config{CertFile: "/nonexistent/client.pem"}
		}, []string{"source.mysql.tls: cert_file and key_file go together"}},
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

// writeCert writes a self-signed certificate and its key as PEM files.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestNewUsesTheTLSSectionForEveryConnection(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writeCert(t, dir, "ca")
	cert, key := writeCert(t, dir, "client")
	tests := []struct {
		name       string
		tls        tlsconfig.Config
		serverName string
	}{
		{"the server name defaults to the DSN's host", tlsconfig.Config{CAFile: ca, CertFile: cert, KeyFile: key}, "db.example"},
		{"server_name overrides the host", tlsconfig.Config{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "mysql.internal"}, "mysql.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.DSN = "mysql://cdc:s3cret@db.example:3307/shop"
			c.TLS = tt.tls
			src, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			tc := src.dsn.tls
			switch {
			case tc == nil:
				t.Fatal("no TLS on the source's connections")
			case tc.RootCAs == nil:
				t.Error("the CA file is not used")
			case len(tc.Certificates) != 1:
				t.Errorf("%d client certificates, want 1", len(tc.Certificates))
			case tc.ServerName != tt.serverName:
				t.Errorf("server name %q, want %q", tc.ServerName, tt.serverName)
			}
		})
	}

	t.Run("a CA file without a certificate is a config error", func(t *testing.T) {
		empty := filepath.Join(dir, "empty.pem")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		c := validConfig()
		c.DSN = "mysql://cdc:s3cret@db.example/"
		c.TLS = tlsconfig.Config{CAFile: empty}
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), "source.mysql.tls.ca_file") {
			t.Errorf("New: %v, want an error naming source.mysql.tls.ca_file", err)
		}
	})
}
