package kafka

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
)

func TestValidateNamesEveryBadKey(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"a valid config passes", Config{Brokers: []string{"k:9092"}, TopicPrefix: "shop"}, nil},
		{"embedded passes alone", Config{Brokers: []string{"embedded"}, TopicPrefix: "shop"}, nil},
		{"every problem at once", Config{
			Brokers: []string{"embedded", "nohost"}, TopicPrefix: "sh op", Partitions: -1, ReplicationFactor: -2,
			Compression: "brotli", TopicConfigs: map[string]string{"cleanup.policy": "delete"},
			SASL: SASLConfig{Mechanism: "GSSAPI"}, TLS: tlsconfig.Config{CertFile: "/nonexistent"},
		}, []string{
			"kafka.brokers[0]: embedded cannot be combined", `kafka.brokers[1]: "nohost" is not host:port`,
			`kafka.topic_prefix: "sh op"`, "kafka.partitions: -1", "kafka.replication_factor: -2",
			`kafka.compression: "brotli"`, "kafka.topic_configs.cleanup.policy", `kafka.sasl.mechanism: "GSSAPI"`,
			"kafka.tls: cert_file and key_file go together", "kafka.tls.cert_file",
		}},
		{"SASL needs a user", Config{Brokers: []string{"k:9092"}, TopicPrefix: "p", SASL: SASLConfig{Mechanism: "PLAIN"}}, []string{"kafka.sasl.username: is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestRetryableProduceError(t *testing.T) {
	if retryableProduceError(nil) {
		t.Error("nil is not a retryable error")
	}
}

func TestOpenFailingAgainstAnUnreachableClusterCanBeRetried(t *testing.T) {
	cut := harness.NewCutter()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(cut.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cut.Cut()
	reg := prometheus.NewRegistry()
	open := func() (*Sink, error) {
		s, err := New(Config{Brokers: c.ListenAddrs(), TopicPrefix: "shop"}, slog.New(slog.DiscardHandler), WithMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return s, s.Open(ctx)
	}
	// Each failed attempt must let go of its client and its metrics, or
	// the next one registers them twice and panics.
	for range 2 {
		if _, err := open(); !connectors.IsRetryable(err) {
			t.Fatalf("Open with Kafka unreachable = %v, want a retryable error", err)
		}
	}
	cut.Restore()
	s, err := open()
	if err != nil {
		t.Fatalf("Open once Kafka is back = %v", err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func TestMaxMessageBytesIsValidated(t *testing.T) {
	base := Config{Brokers: []string{"k:9092"}, TopicPrefix: "p"}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"too small", func(c *Config) { c.MaxMessageBytes = 10 }, "kafka.max_message_bytes: 10 is out of range"},
		{"too large", func(c *Config) { c.MaxMessageBytes = 1 << 30 }, "kafka.max_message_bytes: 1073741824 is out of range"},
		{"a topic config that is no number", func(c *Config) { c.TopicConfigs = map[string]string{"max.message.bytes": "-1"} }, `kafka.topic_configs.max.message.bytes: "-1"`},
		{"eight megabytes pass", func(c *Config) { c.MaxMessageBytes = 8 << 20 }, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
