package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("source: {kind: oracle}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no command is bad usage", nil, 2, "usage: liberator"},
		{"an unknown command is bad usage", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"run without a config is bad usage", []string{"run"}, 2, "--config FILE is required"},
		{"a missing config file is a config error", []string{"run", "--config", "/nonexistent.yaml"}, 2, "read config"},
		{"an invalid config names the key", []string{"check", "--config", bad}, 2, `source.kind: "oracle"`},
		{"version succeeds", []string{"version"}, 0, "liberator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != tt.code {
				t.Errorf("exit code %d, want %d (stderr: %s)", code, tt.code, errOut.String())
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tt.says) {
				t.Errorf("output %q does not say %q", got, tt.says)
			}
		})
	}
}

func TestCheckNeverShowsAPassword(t *testing.T) {
	const pw = "s3cret-pw"
	// The registry refuses every request; the database is not there.
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error_code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	defer reg.Close()
	regURL := strings.Replace(reg.URL, "http://", "http://liberator:"+pw+"@", 1)
	cfg := filepath.Join(t.TempDir(), "liberator.yaml")
	if err := os.WriteFile(cfg, []byte(`
source:
  kind: postgres
  dsn: postgres://app:`+pw+`@127.0.0.1:1/shop?connect_timeout=5
  tables: [public.customers]
kafka:
  brokers: [embedded]
  topic_prefix: shop
registry:
  url: `+regURL+`
  password: `+pw+`
log:
  format: json
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--config", cfg}, &out, &errOut); code != 1 {
		t.Fatalf("exit code %d, want 1 (stdout: %s, stderr: %s)", code, out.String(), errOut.String())
	}
	got := out.String() + errOut.String()
	if strings.Contains(got, pw) {
		t.Errorf("check shows the password:\n%s", got)
	}
	if !strings.Contains(got, "liberator:xxxxx@127.0.0.1") {
		t.Errorf("check does not name the registry with its password masked:\n%s", got)
	}
}
