package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// embeddedConfig is a config of embedded mode; kafka holds the lines added
// to the kafka section.
func embeddedConfig(kafka string) string {
	return `
source:
  kind: postgres
  dsn: postgres://liberator@127.0.0.1:5432/shop
  tables: [public.customers]
kafka:
  brokers: [embedded]
  topic_prefix: shop
` + kafka + `registry:
  url: embedded
`
}

func TestEmbeddedDataDirLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name  string
		kafka string
		want  string
	}{
		{"without a data dir it is empty", "", ""},
		{"a data dir is read from under kafka", "  embedded:\n    data_dir: " + dir + "\n", dir},
		{"a data dir may name a directory that exists", "  embedded: {data_dir: " + t.TempDir() + "}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(embeddedConfig(tt.kafka)))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && cfg.Embedded.DataDir != tt.want {
				t.Errorf("kafka.embedded.data_dir = %q, want %q", cfg.Embedded.DataDir, tt.want)
			}
			if !cfg.EmbeddedBroker() || !cfg.EmbeddedRegistry() {
				t.Errorf("EmbeddedBroker %v, EmbeddedRegistry %v; want both", cfg.EmbeddedBroker(), cfg.EmbeddedRegistry())
			}
		})
	}
}

func TestEmbeddedDataDirFromTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DATA_DIR", dir)
	cfg, err := Parse([]byte(embeddedConfig("  embedded:\n    data_dir: ${DATA_DIR}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Embedded.DataDir != dir {
		t.Errorf("kafka.embedded.data_dir = %q, want %q", cfg.Embedded.DataDir, dir)
	}
}

func TestEmbeddedKeysAreValidatedByName(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	external := strings.NewReplacer("brokers: [embedded]", "brokers: [127.0.0.1:9092]", "url: embedded", "url: http://127.0.0.1:8081")
	tests := []struct {
		name string
		cfg  string
		want string
	}{
		{"an unknown key of kafka.embedded", embeddedConfig("  embedded:\n    data_dri: /tmp/x\n"),
			"kafka.embedded.data_dri: unknown key (allowed in kafka.embedded: data_dir)"},
		{"an unknown key of kafka still names embedded among the allowed", embeddedConfig("  embeded: {}\n"),
			"allowed in kafka: brokers, client_id, compression, embedded,"},
		{"a data dir that is a file", embeddedConfig("  embedded: {data_dir: " + file + "}\n"),
			"kafka.embedded.data_dir: \"" + file + "\" is a file, not a directory"},
		{"a data dir with spaces around it", embeddedConfig("  embedded: {data_dir: ' /tmp/x'}\n"),
			"kafka.embedded.data_dir: \" /tmp/x\" has leading or trailing spaces"},
		{"a data dir without embedded mode", external.Replace(embeddedConfig("  embedded: {data_dir: /tmp/x}\n")),
			"kafka.embedded.data_dir: \"/tmp/x\" is set, but neither kafka.brokers is [embedded] nor registry.url embedded"},
		{"a data dir that is not text", embeddedConfig("  embedded: {data_dir: [a, b]}\n"),
			"cannot read !!seq into a text"},
		{"an embedded registry that forgets ids under a durable Kafka",
			strings.Replace(embeddedConfig(""), "brokers: [embedded]", "brokers: [127.0.0.1:9092]", 1),
			"registry.url: embedded keeps its schemas in memory, so at a restart their ids would start again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.cfg))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestEmbeddedRegistryWithADataDirMayServeADurableKafka(t *testing.T) {
	cfg := strings.Replace(embeddedConfig("  embedded: {data_dir: "+t.TempDir()+"}\n"), "brokers: [embedded]", "brokers: [127.0.0.1:9092]", 1)
	if _, err := Parse([]byte(cfg)); err != nil {
		t.Fatal(err)
	}
}
