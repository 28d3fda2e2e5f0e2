package main

import (
	"bytes"
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
