package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/connectors/mysql"
	"github.com/liberator-cdc/liberator/connectors/postgres"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
)

// Config is liberator's config file. Its YAML keys are a public contract:
// keys are added, never renamed.
type Config struct {
	// Name identifies the pipeline: its position is stored under this key
	// in the offsets topic. Default: kafka.topic_prefix.
	Name     string         `yaml:"name"`
	Source   SourceConfig   `yaml:"source"`
	Snapshot SnapshotConfig `yaml:"snapshot"`
	Kafka    kafka.Config   `yaml:"kafka"`
	Registry RegistryConfig `yaml:"registry"`
	HTTP     HTTPConfig     `yaml:"http"`
	Log      LogConfig      `yaml:"log"`
	// ShutdownTimeout bounds the drain on SIGTERM: stop reading, flush the
	// producer, store the last position. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// CommitInterval is how often the acknowledged position is stored and
	// reported to the source. Default 1s.
	CommitInterval time.Duration `yaml:"commit_interval"`

	// Schema says what happens on an incompatible schema change.
	Schema SchemaConfig `yaml:"schema"`
	// Mapping maps tables to entities, by table as source.tables names it.
	Mapping map[string]TableMapping `yaml:"mapping"`
	// MappingSalt salts mapping.<table>.hash for tables without a salt of
	// their own. Give it as ${ENV} or ${file:/path}.
	MappingSalt string `yaml:"mapping_salt"`
}

// SourceConfig is the source section.
type SourceConfig struct {
	// Kind is postgres, mysql or mariadb.
	Kind string `yaml:"kind"`
	// DSN is the database URL; ${VAR} is taken from the environment.
	DSN string `yaml:"dsn"`
	// Tables are the captured tables: schema.table (PostgreSQL) or
	// database.table (MySQL).
	Tables   []string         `yaml:"tables"`
	Postgres postgres.Options `yaml:"postgres"`
	MySQL    mysql.Options    `yaml:"mysql"`
}

// SnapshotConfig is the snapshot section.
type SnapshotConfig struct {
	// Mode is initial (default), never or only.
	Mode connectors.SnapshotMode `yaml:"mode"`
	// Options are parallelism, chunk_size and signal_table.
	connectors.SnapshotOptions `yaml:",inline"`
}

// RegistryConfig is the registry section.
type RegistryConfig struct {
	// URL of a Confluent-compatible schema registry, or the word embedded.
	URL      string `yaml:"url"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS to the registry, for an https URL: a CA bundle, a client
	// certificate. Default: the system's roots.
	TLS tlsconfig.Config `yaml:"tls"`
}

// HTTPConfig is the http section.
type HTTPConfig struct {
	// Listen is the admin listener's address. Default 127.0.0.1:8080.
	// Empty after defaults only if set to "off".
	Listen string `yaml:"listen"`
}

// LogConfig is the log section.
type LogConfig struct {
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
	// Format is text (default) or json.
	Format string `yaml:"format"`
}

// Embedded is the word that, as the only broker or as the registry URL,
// starts an in-process broker or registry.
const Embedded = "embedded"

func (c *Config) defaults() {
	c.Kafka.Defaults()
	if c.Name == "" {
		c.Name = c.Kafka.TopicPrefix
	}
	if c.Snapshot.Mode == "" {
		c.Snapshot.Mode = connectors.SnapshotInitial
	}
	if c.Schema.OnIncompatible == "" {
		c.Schema.OnIncompatible = OnIncompatibleFail
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = time.Second
	}
}

// ConfigError is a config that cannot be used. The CLI exits 2 on it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Load reads a config file: ${VAR} and ${file:/path} are interpolated in
// values, unknown keys are errors, defaults are applied and the result is
// validated. Every error it returns is a *ConfigError.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("read config: %w", err)}
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("%s: %w", path, err)}
	}
	return cfg, nil
}

// Parse is Load without the file.
func Parse(b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if err := interpolate(&root); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	cfg := &Config{}
	dec := yaml.NewDecoder(&out)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

var refRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// interpolate replaces ${VAR} with the environment variable and
// ${file:/path} with the file's content (without a trailing newline) in
// every scalar value. Keys are left alone. An unset variable is an error.
func interpolate(n *yaml.Node) error {
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = refRE.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := ref[2 : len(ref)-1]
				if path, ok := strings.CutPrefix(name, "file:"); ok {
					b, err := os.ReadFile(path)
					if err != nil {
						errs = append(errs, fmt.Errorf("line %d: %s: %w", n.Line, ref, err))
						return ""
					}
					return strings.TrimRight(string(b), "\r\n")
				}
				v, ok := os.LookupEnv(name)
				if !ok {
					errs = append(errs, fmt.Errorf("line %d: %s: environment variable %s is not set", n.Line, ref, name))
				}
				return v
			})
			// A value that came from the environment is a string, even if
			// it looks like a number.
			if n.Tag != "!!str" && n.Style == 0 {
				n.Tag = ""
			}
		}
		for i, c := range n.Content {
			if n.Kind == yaml.MappingNode && i%2 == 0 {
				continue
			}
			walk(c)
		}
	}
	walk(n)
	return errors.Join(errs...)
}

// Validate reports every problem at once, each naming its key.
func (c *Config) Validate() error {
	var errs []error
	switch c.Source.Kind {
	case "postgres":
		pc := c.postgresConfig(nil)
		if err := pc.Validate(); err != nil {
			errs = append(errs, err)
		}
	case "mysql", "mariadb":
		if err := c.validateMySQL(); err != nil {
			errs = append(errs, err)
		}
	case "":
		errs = append(errs, errors.New("source.kind: is empty (use postgres, mysql or mariadb)"))
	default:
		errs = append(errs, fmt.Errorf("source.kind: %q is not a source (use postgres, mysql or mariadb)", c.Source.Kind))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Registry.URL == "" {
		errs = append(errs, errors.New("registry.url: is empty (use http(s)://host:port of a schema registry, or embedded)"))
	} else if c.Registry.URL != Embedded {
		if u, err := url.Parse(c.Registry.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("registry.url: %q is not an http(s) URL", c.Registry.URL))
		}
	}
	if err := c.Registry.TLS.Validate("registry.tls"); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateSchema(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateMapping(); err != nil {
		errs = append(errs, err)
	}
	if c.HTTP.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			errs = append(errs, fmt.Errorf("http.listen: %q is not host:port (or off)", c.HTTP.Listen))
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s must not be negative", c.ShutdownTimeout))
	}
	if c.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("commit_interval: %s must not be negative", c.CommitInterval))
	}
	return errors.Join(errs...)
}
