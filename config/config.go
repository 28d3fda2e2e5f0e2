// Package config reads liberator's YAML file: every key is declared once,
// as a struct tag here or in the section's own package (kafka.Config,
// postgres.Options, mysql.Options, mapping.Table), with its default in
// Defaults. Values may name ${ENV} variables and ${file:/path} files.
// Every problem is reported at once, naming the full key path, the value
// and what is allowed.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/connectors/mysql"
	"github.com/liberator-cdc/liberator/connectors/postgres"
	"github.com/liberator-cdc/liberator/connectors/query"
	"github.com/liberator-cdc/liberator/internal/redact"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
	"github.com/liberator-cdc/liberator/mapping"
	"github.com/liberator-cdc/liberator/outbox"
	"github.com/liberator-cdc/liberator/schema"
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
	// reported to the source. Default 1s. Under delivery: exactly_once it
	// is also how long a transaction lasts at most; at most 30s there.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// Delivery is at_least_once (default) or exactly_once: the events and
	// the position are committed in Kafka transactions, so that
	// read_committed consumers see every change once across crashes, and a
	// second instance with the same name fences the first (see the
	// README's "Exactly once").
	Delivery string `yaml:"delivery"`
	// TransactionMaxBytes ends a transaction early, before
	// commit_interval, once the keys and values produced in it reach this
	// size (delivery: exactly_once). Written as 64MB or a number of bytes.
	// Default 64MB; at least 1MB.
	TransactionMaxBytes ByteSize `yaml:"transaction_max_bytes"`
	// MemoryLimit bounds the bytes of changes held between the source and
	// Kafka, shared out as Memory says, and is the Go runtime's soft memory
	// limit unless GOMEMLIMIT is set. Written as 256MB, 1GiB or a number of
	// bytes. Default 256MB; at least 32MB.
	MemoryLimit ByteSize `yaml:"memory_limit"`

	// Schema says what happens on an incompatible schema change.
	Schema SchemaConfig `yaml:"schema"`
	// Errors says what happens to a row that cannot be published.
	Errors ErrorsConfig `yaml:"errors"`
	// Mapping maps tables to entities, by table as source.tables names it.
	Mapping map[string]mapping.Table `yaml:"mapping"`
	// MappingSalt salts mapping.<table>.hash for tables without a salt of
	// their own. Give it as ${ENV} or ${file:/path}.
	MappingSalt string `yaml:"mapping_salt"`
	// Outbox lists the outboxes, tables or PostgreSQL message prefixes,
	// whose records are published as domain events (see outbox.Config).
	Outbox []outbox.Config `yaml:"outbox"`
	// HA runs the same config on several replicas, one of them active
	// (see HAConfig).
	HA HAConfig `yaml:"ha"`
	// Embedded is the kafka.embedded section (see EmbeddedConfig). It is
	// written under kafka, but kafka.Config is the sink's and knows
	// nothing of an in-process broker, so it is declared here and grafted
	// into kafka (see grafted in keys.go).
	Embedded EmbeddedConfig `yaml:"-"`
}

// SourceConfig is the source section.
type SourceConfig struct {
	// Kind is postgres, mysql or mariadb.
	Kind string `yaml:"kind"`
	// DSN is the database URL; ${VAR} is taken from the environment.
	DSN string `yaml:"dsn"`
	// Tables are the captured tables: schema.table (PostgreSQL; a bare
	// table is in schema public) or database.table (MySQL), a part quoted
	// where it holds a dot, a quote or a backtick, or {schema, table}
	// (see TableList); or patterns, a glob such as shop.* or a regular
	// expression between slashes (see connectors.TablePattern), which take
	// every table they match, at the start and while running.
	Tables TableList `yaml:"tables"`
	// TablesExclude are patterns (or names) of tables that the patterns of
	// Tables do not take. A table that Tables names one by one is captured
	// all the same.
	TablesExclude TableList `yaml:"tables_exclude"`
	// TablesPollInterval is how often the catalog is read for new tables
	// that the patterns of Tables match. Default 1s. MySQL and MariaDB
	// also look at once when the binary log shows a CREATE or RENAME TABLE.
	TablesPollInterval time.Duration `yaml:"tables_poll_interval"`
	// Capture is how changes are captured: log (default) reads the
	// database's log (PostgreSQL logical replication, the MySQL binary
	// log); query polls the tables with SELECTs, as Query says, for
	// databases that give no access to their log.
	Capture  string           `yaml:"capture"`
	Query    query.Options    `yaml:"query"`
	Postgres postgres.Options `yaml:"postgres"`
	MySQL    mysql.Options    `yaml:"mysql"`
}

// Values of source.capture.
const (
	CaptureLog   = "log"
	CaptureQuery = "query"
)

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
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// the admin listener. Default false: it shows the program's insides
	// and costs CPU while profiling.
	Pprof bool `yaml:"pprof"`
	// Token, when set, is required as "Authorization: Bearer <token>" by
	// every mutating request to the admin listener (POST /snapshot);
	// read-only endpoints stay open. Give it as ${file:/path} or ${ENV}.
	// Required when Listen is not a loopback address. Default: none.
	Token string `yaml:"token"`
}

// Loopback reports whether the listen address host:port accepts only
// connections from this machine: 127.0.0.0/8, ::1 or localhost. An empty
// host (":8080") listens everywhere.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// Defaults fills in every default.
func (c *Config) Defaults() {
	c.Kafka.Defaults()
	if c.Source.Capture == "" {
		c.Source.Capture = CaptureLog
	}
	if c.Source.TablesPollInterval == 0 {
		c.Source.TablesPollInterval = time.Second
	}
	if c.Name == "" {
		c.Name = c.Kafka.TopicPrefix
	}
	if c.Snapshot.Mode == "" {
		c.Snapshot.Mode = connectors.SnapshotInitial
	}
	if c.Schema.OnIncompatible == "" {
		c.Schema.OnIncompatible = OnIncompatibleFail
	}
	if c.Errors.OnBadRow == "" {
		c.Errors.OnBadRow = OnBadRowFail
	}
	if c.Errors.DeadLetterTopic == "" && c.Kafka.TopicPrefix != "" {
		c.Errors.DeadLetterTopic = c.Kafka.TopicPrefix + ".dead_letter"
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
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	c.HA.defaults()
	if c.Delivery == "" {
		c.Delivery = DeliveryAtLeastOnce
	}
	if c.TransactionMaxBytes == 0 {
		c.TransactionMaxBytes = DefaultTransactionMaxBytes
	}
	for i := range c.Outbox {
		c.Outbox[i] = c.Outbox[i].WithDefaults(c.Kafka.TopicPrefix)
	}
}

// Error is a config that cannot be used. The CLI exits 2 on it.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Load reads a config file: ${VAR} and ${file:/path} are interpolated in
// values, unknown keys are errors, defaults are applied and the result is
// validated. Every error it returns is a *Error.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{fmt.Errorf("read config: %w", err)}
	}
	cfg, err := Parse(b)
	if err != nil {
		return nil, &Error{fmt.Errorf("%s: %w", path, err)}
	}
	return cfg, nil
}

// Parse is Load without the file.
func Parse(b []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if err := interpolate(&root, routingTemplates(&root)); err != nil {
		return nil, err
	}
	if err := checkKeys(&root, reflect.TypeFor[Config]()); err != nil {
		return nil, err
	}
	cfg := &Config{}
	// Decoding the node itself keeps the file's line numbers in errors.
	if root.Kind != 0 {
		if err := root.Decode(cfg); err != nil {
			return nil, typeError(err)
		}
		if err := decodeGrafted(&root, cfg); err != nil {
			return nil, typeError(err)
		}
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		// A parser's message may quote a whole DSN or URL; the secrets
		// are scrubbed from whatever Validate says.
		return nil, cfg.Secrets().Error(err)
	}
	return cfg, nil
}

// Secrets are the config's values that are never shown: the passwords of
// source.dsn, registry.url, registry.password and kafka.sasl.password,
// http.token, and the salts of hashed columns.
func (c *Config) Secrets() redact.Secrets {
	s := redact.Secrets{
		redact.Password(c.Source.DSN), redact.Password(c.Registry.URL),
		c.Registry.Password, c.Kafka.SASL.Password, c.HTTP.Token, c.MappingSalt,
	}
	for _, t := range c.Mapping {
		s = append(s, t.Salt)
	}
	return slices.DeleteFunc(s, func(v string) bool { return v == "" })
}

// typeError rewrites the YAML decoder's type errors, which name Go types
// ("cannot unmarshal !!str `x` into int"), in the config's terms.
func typeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var errs []error
	for _, e := range te.Errors {
		msg := goTypeRE.ReplaceAllStringFunc(e, func(s string) string {
			switch t := s[len("into "):]; {
			case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
				return "into a whole number"
			case strings.HasPrefix(t, "float"):
				return "into a number"
			case t == "bool":
				return "into true or false"
			case t == "time.Duration":
				return "into a duration such as 500ms, 30s or 5m"
			case strings.HasPrefix(t, "[]"):
				return "into a list"
			case strings.HasPrefix(t, "map["):
				return "into a mapping of keys to values"
			case t == "string":
				return "into a text"
			}
			return "into a section"
		})
		errs = append(errs, errors.New(strings.Replace(msg, "cannot unmarshal", "cannot read", 1)))
	}
	return errors.Join(errs...)
}

var goTypeRE = regexp.MustCompile(`into [\w.\[\]*]+`)

var refRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// routingTemplates are the value nodes of outbox[*].topic, whose
// ${aggregate_type} and ${type} stand for an event's values, not for
// environment variables.
func routingTemplates(root *yaml.Node) map[*yaml.Node]bool {
	out := map[*yaml.Node]bool{}
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "outbox" || doc.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, e := range doc.Content[i+1].Content {
			if e.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(e.Content); j += 2 {
				if e.Content[j].Value == "topic" {
					out[e.Content[j+1]] = true
				}
			}
		}
	}
	return out
}

// interpolate replaces ${VAR} with the environment variable and
// ${file:/path} with the file's content (without a trailing newline) in
// every scalar value. Keys are left alone. An unset variable is an error.
// In the nodes of templates, ${aggregate_type} and ${type} are left as
// they are.
func interpolate(n *yaml.Node, templates map[*yaml.Node]bool) error {
	var errs []error
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
			n.Value = refRE.ReplaceAllStringFunc(n.Value, func(ref string) string {
				name := ref[2 : len(ref)-1]
				if templates[n] && (name == "aggregate_type" || name == "type") {
					return ref
				}
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
		if err := c.Postgres(nil).Validate(); err != nil {
			errs = append(errs, err)
		}
	case "mysql", "mariadb":
		if err := c.MySQL(nil).Validate(); err != nil {
			errs = append(errs, err)
		}
	case "":
		errs = append(errs, errors.New("source.kind: is empty (use postgres, mysql or mariadb)"))
	default:
		errs = append(errs, fmt.Errorf("source.kind: %q is not a source (use postgres, mysql or mariadb)", c.Source.Kind))
	}
	switch c.Source.Capture {
	case CaptureLog:
		if len(c.Source.Query.Tables) > 0 {
			errs = append(errs, errors.New("source.query.tables: is set but source.capture is log (set source.capture: query to poll the tables)"))
		}
	case CaptureQuery:
		for i, t := range c.Source.Tables {
			if connectors.IsTablePattern(t) {
				errs = append(errs, fmt.Errorf("source.tables[%d]: %q is a pattern, which source.capture: query does not take (name each table)", i, t))
			}
		}
		if len(c.Source.TablesExclude) > 0 {
			errs = append(errs, errors.New("source.tables_exclude: is set but source.capture is query, which takes no patterns (name each table in source.tables)"))
		}
		qc := query.Config{Tables: c.Source.Tables, Options: c.Source.Query, Canon: c.parseTableID, Snapshot: c.Snapshot.Mode}
		if err := qc.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("source.capture: %q is not a capture (use log or query)", c.Source.Capture))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Registry.URL == "" {
		errs = append(errs, errors.New("registry.url: is empty (use http(s)://host:port of a schema registry, or embedded)"))
	} else if c.Registry.URL != Embedded {
		if u, err := url.Parse(c.Registry.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("registry.url: %q is not an http(s) URL", redact.URL(c.Registry.URL)))
		}
	}
	if err := c.Registry.TLS.Validate("registry.tls"); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateSchema(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateErrors(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.TableFilter(); err != nil {
		errs = append(errs, err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Mapping)) {
		if _, err := c.parseTableID(name); err != nil {
			errs = append(errs, fmt.Errorf("mapping.%s: %w", name, err))
		}
	}
	if err := c.Mapper().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := outbox.Validate(c.Outbox, c.parseTableID, c.Source.Kind == "postgres", kafka.ValidTopic); err != nil {
		errs = append(errs, err)
	}
	for _, id := range c.OutboxTables() {
		if _, ok := c.Mapping[id]; ok {
			errs = append(errs, fmt.Errorf("mapping.%s: is an outbox table, whose rows become events, not entities; leave it out of mapping", id))
		}
	}
	if c.HTTP.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			errs = append(errs, fmt.Errorf("http.listen: %q is not host:port (or off)", c.HTTP.Listen))
		} else if c.HTTP.Token == "" && !Loopback(c.HTTP.Listen) {
			errs = append(errs, fmt.Errorf("http.listen: %q is not a loopback address and http.token is empty: anyone who reaches it could request snapshots "+
				"(set http.token, e.g. token: ${file:/run/secrets/admin-token}, or listen on 127.0.0.1)", c.HTTP.Listen))
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
	if err := c.validateMemory(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateHA(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateDelivery(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateEmbedded(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// The values of delivery.
const (
	DeliveryAtLeastOnce = "at_least_once"
	DeliveryExactlyOnce = "exactly_once"
)

// DefaultTransactionMaxBytes is the default of transaction_max_bytes.
const DefaultTransactionMaxBytes ByteSize = 64 << 20

// maxTransactionCommitInterval is the longest commit_interval under
// exactly_once: a transaction must end well within
// kafka.TransactionTimeout, or Kafka aborts it.
const maxTransactionCommitInterval = 30 * time.Second

// ExactlyOnce reports whether delivery is exactly_once.
func (c *Config) ExactlyOnce() bool { return c.Delivery == DeliveryExactlyOnce }

func (c *Config) validateDelivery() error {
	var errs []error
	switch c.Delivery {
	case DeliveryAtLeastOnce, DeliveryExactlyOnce:
	default:
		errs = append(errs, fmt.Errorf("delivery: %q is not at_least_once or exactly_once", c.Delivery))
	}
	if c.TransactionMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("transaction_max_bytes: %s is too small (use at least 1MB)", c.TransactionMaxBytes))
	}
	if c.ExactlyOnce() && c.CommitInterval > maxTransactionCommitInterval {
		errs = append(errs, fmt.Errorf("commit_interval: %s is too long for delivery: exactly_once, whose transactions last commit_interval and are aborted by Kafka after %s (use at most %s)",
			c.CommitInterval, kafka.TransactionTimeout, maxTransactionCommitInterval))
	}
	return errors.Join(errs...)
}

// SchemaConfig is the schema section.
type SchemaConfig struct {
	// OnIncompatible says what happens when a table changes so that its
	// new key or value schema is incompatible with its subject (under the
	// subject's compatibility level): fail (default) stops with an error
	// that names the table, the columns and why, and the position stays
	// before the change; new_topic publishes the table from then on to a
	// new topic, <topic>.v2, then .v3, with fresh subjects.
	OnIncompatible string `yaml:"on_incompatible"`
}

// Values of schema.on_incompatible.
const (
	OnIncompatibleFail     = "fail"
	OnIncompatibleNewTopic = "new_topic"
)

// validateSchema checks the schema section.
func (c *Config) validateSchema() error {
	switch c.Schema.OnIncompatible {
	case OnIncompatibleFail, OnIncompatibleNewTopic:
		return nil
	}
	return fmt.Errorf("schema.on_incompatible: %q is not a policy (use fail or new_topic)", c.Schema.OnIncompatible)
}

// ErrorsConfig is the errors section: what happens to a bad row, a change
// that cannot be published because a value cannot be encoded (a NaN in a
// numeric(p,s) column) or because its record is larger than its topic
// takes (kafka.max_message_bytes and the topic's max.message.bytes).
type ErrorsConfig struct {
	// OnBadRow is fail (default), skip or dead_letter. fail stops with an
	// error that names the table, the key, the column and the reason, and
	// the position stays before the row; skip logs the row at warn and
	// counts it; dead_letter writes it as JSON to DeadLetterTopic. Under
	// every policy the position passes the row only once it is handled.
	OnBadRow string `yaml:"on_bad_row"`
	// DeadLetterTopic is the topic of errors.on_bad_row: dead_letter.
	// Default <kafka.topic_prefix>.dead_letter. It is created with
	// cleanup.policy=delete, so that every bad row is kept.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
}

// Values of errors.on_bad_row.
const (
	OnBadRowFail       = "fail"
	OnBadRowSkip       = "skip"
	OnBadRowDeadLetter = "dead_letter"
)

// validateErrors checks the errors section.
func (c *Config) validateErrors() error {
	var errs []error
	switch c.Errors.OnBadRow {
	case OnBadRowFail, OnBadRowSkip, OnBadRowDeadLetter:
	default:
		errs = append(errs, fmt.Errorf("errors.on_bad_row: %q is not a policy (use fail, skip or dead_letter)", c.Errors.OnBadRow))
	}
	// A default made of a bad kafka.topic_prefix is reported there.
	derived := c.Errors.DeadLetterTopic == c.Kafka.TopicPrefix+".dead_letter" && kafka.ValidTopic(c.Kafka.TopicPrefix) != nil
	if c.Errors.DeadLetterTopic != "" && !derived {
		if err := kafka.ValidTopic(c.Errors.DeadLetterTopic); err != nil {
			errs = append(errs, fmt.Errorf("errors.dead_letter_topic: %w", err))
		} else if c.Errors.DeadLetterTopic == c.Kafka.OffsetsTopic {
			errs = append(errs, fmt.Errorf("errors.dead_letter_topic: %q is kafka.offsets_topic; give the bad rows a topic of their own", c.Errors.DeadLetterTopic))
		}
	}
	return errors.Join(errs...)
}

// TableID turns a table as the config names it, in source.tables or as
// a key of mapping, into Table.ID() form (connectors.TableID): a bare
// PostgreSQL table is in schema public, and a quoted part loses its quotes
// unless it needs them. A name that cannot be read is returned as it is;
// Validate reports it.
func (c *Config) TableID(name string) string {
	id, err := c.parseTableID(name)
	if err != nil {
		return name
	}
	return id
}

// parseTableID is TableID with the error of a name that cannot be read.
func (c *Config) parseTableID(name string) (string, error) {
	schema, table, err := c.parseTableName(name)
	if err != nil {
		return "", err
	}
	return connectors.TableID(schema, table), nil
}

// Captured are the tables of source.tables in Table.ID() form, in the
// config's order, but for outbox tables: the tables published as
// entities. Of the tables that patterns take, only those that mapping
// names are known before the source reads its catalog; they follow.
func (c *Config) Captured() []string {
	boxes := c.OutboxTables()
	out := make([]string, 0, len(c.Source.Tables))
	for _, t := range c.Source.Tables {
		if connectors.IsTablePattern(t) {
			continue
		}
		if id := c.TableID(t); !slices.Contains(boxes, id) {
			out = append(out, id)
		}
	}
	f, err := c.TableFilter()
	if err != nil || f.Empty() {
		return out
	}
	for _, name := range slices.Sorted(maps.Keys(c.Mapping)) {
		id, err := c.parseTableID(name)
		if err != nil || slices.Contains(out, id) || slices.Contains(boxes, id) {
			continue
		}
		if schema, table, err := c.parseTableName(id); err == nil && f.Match(schema, table) {
			out = append(out, id)
		}
	}
	return out
}

// TableFilter returns the patterns of source.tables and
// source.tables_exclude, or the error of the first that cannot be read.
func (c *Config) TableFilter() (connectors.TableFilter, error) {
	var f connectors.TableFilter
	def, backticks := c.nameDefaults()
	for i, t := range c.Source.Tables {
		if !connectors.IsTablePattern(t) {
			continue
		}
		p, err := connectors.ParseTablePattern(t, def, backticks)
		if err != nil {
			return f, fmt.Errorf("source.tables[%d]: %w", i, err)
		}
		f.Include = append(f.Include, p)
	}
	for i, t := range c.Source.TablesExclude {
		p, err := connectors.ParseTablePattern(t, def, backticks)
		if err != nil {
			return f, fmt.Errorf("source.tables_exclude[%d]: %w", i, err)
		}
		f.Exclude = append(f.Exclude, p)
	}
	if f.Empty() && len(f.Exclude) > 0 {
		return f, errors.New("source.tables_exclude: is set but source.tables has no pattern for it to narrow (add one, such as shop.*, or drop source.tables_exclude)")
	}
	return f, nil
}

// tableFilter is TableFilter, without the patterns that cannot be read
// (Validate reports them).
func (c *Config) tableFilter() connectors.TableFilter {
	f, _ := c.TableFilter()
	return f
}

// nameDefaults are the default schema and whether backticks quote, of the
// source's table names.
func (c *Config) nameDefaults() (def string, backticks bool) {
	if c.Source.Kind == "postgres" {
		return "public", false
	}
	return "", true
}

// parseTableName splits a table as the config names it into its parts.
func (c *Config) parseTableName(name string) (schema, table string, err error) {
	def, backticks := c.nameDefaults()
	return connectors.ParseTableName(name, def, backticks)
}

// OutboxTables are the tables of the outbox section, in Table.ID() form,
// in the config's order.
func (c *Config) OutboxTables() []string {
	var out []string
	for _, e := range c.Outbox {
		if e.Table != "" {
			out = append(out, c.TableID(e.Table))
		}
	}
	return out
}

// OutboxRouter returns the outbox section's router.
func (c *Config) OutboxRouter() *outbox.Router {
	return outbox.New(c.Outbox, c.TableID)
}

// sourceTables are the tables the source reads: source.tables, then the
// outbox tables it does not list. A name that cannot be read is left out
// (Validate reports it).
func (c *Config) sourceTables() []string {
	out := make([]string, 0, len(c.Source.Tables))
	seen := map[string]bool{}
	for _, t := range c.Source.Tables {
		if connectors.IsTablePattern(t) {
			continue
		}
		out = append(out, t)
		seen[c.TableID(t)] = true
	}
	for _, e := range c.Outbox {
		if e.Table == "" {
			continue
		}
		id, err := c.parseTableID(e.Table)
		if err != nil || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, e.Table)
	}
	return out
}

// snapshots are the snapshot options of the source: the outbox tables are
// never snapshotted.
func (c *Config) snapshots() connectors.SnapshotOptions {
	o := c.Snapshot.SnapshotOptions
	o.Never = c.OutboxTables()
	return o
}

// Mapper returns the mapping section, with mapping_salt and the topic
// prefix. Its Topic names every table's topic.
func (c *Config) Mapper() *mapping.Mapping {
	return mapping.New(c.Mapping, c.TableID, c.Captured(), c.MappingSalt, c.Kafka.TopicPrefix, kafka.ValidTopic)
}

// Postgres is the PostgreSQL connector's config, for source.kind postgres.
func (c *Config) Postgres(log *slog.Logger) postgres.Config {
	var prefixes []string
	for _, e := range c.Outbox {
		if e.MessagePrefix != "" {
			prefixes = append(prefixes, e.MessagePrefix)
		}
	}
	return postgres.Config{
		DSN:      c.Source.DSN,
		Tables:   c.sourceTables(),
		Options:  c.Source.Postgres,
		Patterns: c.tableFilter(),

		PatternPoll: c.Source.TablesPollInterval,
		Snapshot:    c.Snapshot.Mode,
		Snapshots:   c.snapshots(),
		Logger:      log,
		Memory:      c.Memory().Source,
		Messages:    prefixes,

		KeyColumns:       c.Mapper().KeyColumns(),
		PublishedColumns: c.Mapper().ColumnFilters(),
	}
}

// MySQL is the MySQL connector's config, for source.kind mysql or mariadb.
func (c *Config) MySQL(log *slog.Logger) mysql.Config {
	return mysql.Config{
		Flavor:   c.Source.Kind,
		DSN:      c.Source.DSN,
		Tables:   c.sourceTables(),
		ServerID: c.Source.MySQL.ServerID,
		Patterns: c.tableFilter(),

		PatternPoll: c.Source.TablesPollInterval,
		TLS:         c.Source.MySQL.TLS,
		Snapshot:    c.Snapshot.Mode,
		Logger:      log,
		Snapshots:   c.snapshots(),
		Memory:      c.Memory().Source,

		KeyColumns:       c.Mapper().KeyColumns(),
		PublishedColumns: c.Mapper().ColumnFilters(),
	}
}

// NewRegistry returns a client of the registry at url with the registry
// section's credentials and TLS.
func (c *Config) NewRegistry(url string) (*schema.Registry, error) {
	tc, err := c.Registry.TLS.Load("registry.tls")
	if err != nil {
		return nil, err
	}
	return schema.NewRegistry(schema.RegistryConfig{URL: url, Username: c.Registry.Username, Password: c.Registry.Password, TLS: tc})
}
