package config

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestShippedConfigsLoad keeps configs/ in step with the code: every
// example config, and the one in the Kubernetes ConfigMap, loads.
func TestShippedConfigsLoad(t *testing.T) {
	for k, v := range map[string]string{
		"PGPASSWORD": "secret", "REGISTRY_PASSWORD": "secret", "PII_SALT": "salt",
		"PGPORT": "5432", "MYSQL_PORT": "3306", "HTTP_PORT": "8080",
	} {
		t.Setenv(k, v)
	}
	paths, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no configs found: %v", err)
	}
	// The examples name files under /etc/liberator; they stand in a
	// temporary folder here.
	etc := t.TempDir()
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.ReplaceAll(b, []byte("/etc/liberator/"), []byte(etc+"/"))
			for _, m := range regexp.MustCompile(`(?m)^\s*\w+_file: (\S+)`).FindAllSubmatch(b, -1) {
				if err := os.WriteFile(string(m[1]), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(t.TempDir(), filepath.Base(p))
			if err := os.WriteFile(cfg, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(cfg); err != nil {
				t.Error(err)
			}
		})
	}
	for _, name := range []string{"kubernetes/config.yaml", "kubernetes/ha-deployment.yaml"} {
		t.Run(name, func(t *testing.T) { testKubernetesConfigMap(t, "../configs/"+name) })
	}
}

// testKubernetesConfigMap loads the liberator.yaml of the ConfigMap in the
// Kubernetes manifest at path.
func testKubernetesConfigMap(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if cfg, ok := doc.Data["liberator.yaml"]; ok && doc.Kind == "ConfigMap" {
			found = true
			if _, err := Parse(secretFiles(t, cfg)); err != nil {
				t.Error(err)
			}
		}
	}
	if !found {
		t.Error("no ConfigMap with liberator.yaml")
	}
}

// secretFiles points every ${file:/path} of cfg, a secret mounted from a
// Kubernetes Secret, at a file in a temporary folder holding "secret".
func secretFiles(t *testing.T, cfg string) []byte {
	t.Helper()
	dir := t.TempDir()
	return regexp.MustCompile(`\$\{file:([^}]+)\}`).ReplaceAllFunc([]byte(cfg), func(ref []byte) []byte {
		p := filepath.Join(dir, filepath.Base(string(ref[len("${file:"):len(ref)-1])))
		if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return []byte("${file:" + p + "}")
	})
}
