package harness

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// KafkaOption configures StartKafka.
type KafkaOption func(*kafkaConfig)

type kafkaConfig struct {
	port    int
	configs map[string]string
	extra   []kfake.Opt
}

// KafkaPort makes the broker listen on port instead of a free one.
func KafkaPort(port int) KafkaOption {
	return func(c *kafkaConfig) { c.port = port }
}

// KafkaBrokerConfig sets a broker configuration, overriding the default
// log.cleaner.backoff.ms=100 if name is that key.
func KafkaBrokerConfig(name, value string) KafkaOption {
	return func(c *kafkaConfig) { c.configs[name] = value }
}

// KafkaClusterOptions passes options to kfake.NewCluster after the harness's
// own, so they override them. kfake.Ports or kfake.NumBrokers here conflict
// with KafkaPort.
func KafkaClusterOptions(opts ...kfake.Opt) KafkaOption {
	return func(c *kafkaConfig) { c.extra = append(c.extra, opts...) }
}

// KafkaCluster is an in-process Kafka cluster (kfake) that keeps everything
// in memory. Auto topic creation is off.
type KafkaCluster struct {
	// Brokers are the seed addresses, host:port on 127.0.0.1.
	Brokers []string
	// Cluster is the fake itself, for control hooks.
	Cluster *kfake.Cluster
}

// Kafka starts a Kafka cluster for the test and closes it when the test ends.
func Kafka(t testing.TB, opts ...KafkaOption) *KafkaCluster {
	t.Helper()
	k, err := StartKafka(opts...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// StartKafka starts a one-broker kfake cluster on a free loopback port, with
// log.cleaner.backoff.ms=100 so that compaction and retention run soon after
// they are due.
func StartKafka(opts ...KafkaOption) (*KafkaCluster, error) {
	cfg := kafkaConfig{configs: map[string]string{"log.cleaner.backoff.ms": "100"}}
	for _, o := range opts {
		o(&cfg)
	}
	// Port 0 lets the kernel choose, so no other process can take the port
	// between choosing and binding.
	kopts := append([]kfake.Opt{kfake.Ports(cfg.port), kfake.BrokerConfigs(cfg.configs)}, cfg.extra...)
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start kafka: %w", err)
	}
	return &KafkaCluster{Brokers: c.ListenAddrs(), Cluster: c}, nil
}

// Close shuts the cluster down. It may be called more than once.
func (k *KafkaCluster) Close() { k.Cluster.Close() }

// RegistryServer is a fake Confluent schema registry (srfake) served over
// HTTP. It answers every compatibility check with "compatible".
type RegistryServer struct {
	// URL is the registry's base URL, http://127.0.0.1:PORT.
	URL string
	// Fake is the registry itself, for seeding and inspection.
	Fake *srfake.Registry

	srv *httptest.Server
}

// Registry starts a schema registry for the test and closes it when the test
// ends.
func Registry(t testing.TB) *RegistryServer {
	t.Helper()
	r, err := StartRegistry()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// StartRegistry starts a fake schema registry on a free loopback port.
func StartRegistry() (*RegistryServer, error) {
	// httptest.NewServer panics when it cannot listen; listen here to
	// return an error instead.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	fake := srfake.NewRegistry()
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: fake.Handler()}}
	srv.Start()
	return &RegistryServer{URL: srv.URL, Fake: fake, srv: srv}, nil
}

// Close shuts the server down, waiting for requests in flight. It may be
// called more than once.
func (r *RegistryServer) Close() { r.srv.Close() }
