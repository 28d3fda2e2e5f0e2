package redact

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a registry URL shows the user, not the password", "https://user:pass@registry:8081/x", "https://user:xxxxx@registry:8081/x"},
		{"a PostgreSQL DSN shows the user, not the password", "postgres://app:s3cr:t@db:5432/shop?sslmode=require", "postgres://app:xxxxx@db:5432/shop?sslmode=require"},
		{"a MySQL DSN shows the user, not the password", "mysql://app:pw%40x@db:3306/shop", "mysql://app:xxxxx@db:3306/shop"},
		{"a URL that does not parse still hides its password", "postgres://app:pw@db:port/shop", "postgres://app:xxxxx@db:port/shop"},
		{"a key=value DSN hides its password", "host=db user=app password=s3cret dbname=shop", "host=db user=app password=xxxxx dbname=shop"},
		{"a quoted key=value password is hidden", "host=db password='a b' dbname=shop", "host=db password=xxxxx dbname=shop"},
		{"a URL without a password is unchanged", "http://registry:8081", "http://registry:8081"},
		{"the word embedded is unchanged", "embedded", "embedded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := URL(tt.in); got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://app:s3cr:t@db/shop", "s3cr:t"},
		{"mysql://app:pw%40x@db:3306/", "pw@x"},
		{"postgres://app:pw@db:port/shop", "pw"},
		{"host=db password='a b' dbname=shop", "a b"},
		{"host=db password=plain", "plain"},
		{"postgres://app@db/shop", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Password(tt.in); got != tt.want {
			t.Errorf("Password(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecretsAreScrubbed(t *testing.T) {
	s := Secrets{"pw@x/long", "abc"}
	got := s.String("dial mysql://app:pw%40x%2Flong@db and pw@x/long; abc stays")
	if want := "dial mysql://app:xxxxx@db and xxxxx; abc stays"; got != want {
		t.Errorf("String = %q, want %q (a secret shorter than MinLen stays)", got, want)
	}

	err := s.Error(&fs.PathError{Op: "open", Path: "pw@x/long", Err: fs.ErrNotExist})
	if strings.Contains(err.Error(), "pw@x") {
		t.Errorf("Error() = %q shows the secret", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the scrubbed error lost its chain: %v", err)
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}

func TestLogsAreScrubbed(t *testing.T) {
	s := Secrets{`pa"ss\word`}
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		opts := &slog.HandlerOptions{ReplaceAttr: s.ReplaceAttr}
		var h slog.Handler = slog.NewTextHandler(&buf, opts)
		if json {
			h = slog.NewJSONHandler(&buf, opts)
		}
		log := slog.New(h)
		log.Error(`connect with pa"ss\word`, "dsn", `postgres://u:pa"ss\word@db`,
			"error", errors.New(`auth pa"ss\word failed`), "list", []string{`pa"ss\word`}, "n", 3)
		out := buf.String()
		for _, leak := range []string{`pa"ss`, `pa\"ss`, "ss\\\\word"} {
			if strings.Contains(out, leak) {
				t.Errorf("json=%v: log %q shows the secret", json, out)
			}
		}
		if n := strings.Count(out, Mask); n != 4 {
			t.Errorf("json=%v: log %q masks %d values, want 4 (message, dsn, error, list)", json, out, n)
		}
	}
}
