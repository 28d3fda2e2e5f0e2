package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// EmbeddedConfig is the kafka.embedded section: how the in-process broker
// of kafka.brokers: [embedded] and the registry of registry.url: embedded
// keep their data. Embedded mode is a single-process broker for trying
// liberator out and for development, never for production.
type EmbeddedConfig struct {
	// DataDir is the directory where the embedded broker keeps its topics,
	// the offsets topic with the stored positions among them, and the
	// embedded registry its schemas, under the same ids. A restart then
	// resumes from the stored position instead of snapshotting again. It
	// is created if missing, and one liberator at a time may use it.
	// Default: none: the broker and the registry keep everything in
	// memory, and every run starts over with a snapshot into new topics.
	DataDir string `yaml:"data_dir"`
}

// EmbeddedBroker reports whether kafka.brokers is [embedded].
func (c *Config) EmbeddedBroker() bool {
	return len(c.Kafka.Brokers) == 1 && c.Kafka.Brokers[0] == Embedded
}

// EmbeddedRegistry reports whether registry.url is embedded.
func (c *Config) EmbeddedRegistry() bool { return c.Registry.URL == Embedded }

// validateEmbedded checks kafka.embedded and what embedded mode cannot do.
func (c *Config) validateEmbedded() error {
	var errs []error
	dir := c.Embedded.DataDir
	switch {
	case dir == "":
	case strings.TrimSpace(dir) != dir:
		errs = append(errs, fmt.Errorf("kafka.embedded.data_dir: %q has leading or trailing spaces (write the directory's path alone)", dir))
	case !c.EmbeddedBroker() && !c.EmbeddedRegistry():
		errs = append(errs, fmt.Errorf("kafka.embedded.data_dir: %q is set, but neither kafka.brokers is [embedded] nor registry.url embedded, so nothing would keep its data there (remove it, or use embedded mode)", dir))
	default:
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			errs = append(errs, fmt.Errorf("kafka.embedded.data_dir: %q is a file, not a directory (name a directory; it is created if missing)", dir))
		}
	}
	// The events in a durable Kafka name their schemas by id: a registry
	// that forgets its schemas at a restart would hand the same ids to
	// other schemas.
	if c.EmbeddedRegistry() && !c.EmbeddedBroker() && dir == "" && len(c.Kafka.Brokers) > 0 {
		errs = append(errs, errors.New("registry.url: embedded keeps its schemas in memory, so at a restart their ids would start again while the events in kafka.brokers keep the old ones; "+
			"set kafka.embedded.data_dir to keep the schemas and their ids, or name a schema registry"))
	}
	return errors.Join(errs...)
}
