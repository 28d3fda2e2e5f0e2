// Package kafka is liberator's sink: it creates compacted topics and
// produces entity events to them with an idempotent producer (acks=all),
// and keeps source positions in a compacted offsets topic. It knows Kafka,
// not SQL. With WithTransactions (delivery: exactly_once) the producer is
// transactional: events and positions are committed together, and a
// second producer of the same transactional.id fences the first
// (FencedError); see txn.go.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
)

// Config is the kafka section of the config file.
type Config struct {
	// Brokers are the seed brokers, host:port. The single word "embedded"
	// starts an in-process broker instead (see the pipeline package).
	Brokers []string `yaml:"brokers"`
	// TopicPrefix begins every topic name: <prefix>.<schema>.<table>.
	TopicPrefix string `yaml:"topic_prefix"`
	// Partitions of each created topic. Default 1. A row's changes always
	// land in one partition, in commit order, because records are keyed by
	// the primary key.
	Partitions int32 `yaml:"partitions"`
	// ReplicationFactor of each created topic. Default -1: the broker's
	// default.
	ReplicationFactor int16 `yaml:"replication_factor"`
	// TopicConfigs are extra configs for created topics, such as
	// min.insync.replicas. cleanup.policy is always compact.
	TopicConfigs map[string]string `yaml:"topic_configs"`
	// MaxMessageBytes is the largest record batch liberator produces, as
	// Kafka measures it against a topic's max.message.bytes. Default
	// 1048588, Kafka's own default of max.message.bytes. The producer's
	// batch limit is set to it, and entity topics that liberator creates
	// get it as their max.message.bytes unless TopicConfigs sets one. A
	// record larger than the smaller of it and its topic's own
	// max.message.bytes is a bad row (errors.on_bad_row).
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// OffsetsTopic holds the source positions, keyed by pipeline name.
	// Default "_liberator_offsets". It is created compacted if missing.
	OffsetsTopic string `yaml:"offsets_topic"`
	// Linger is how long the producer waits to fill a batch. Default 5ms.
	Linger time.Duration `yaml:"linger"`
	// Compression is none, gzip, snappy, lz4 or zstd. Default none.
	Compression string `yaml:"compression"`
	// ClientID identifies liberator to the brokers. Default "liberator".
	ClientID string `yaml:"client_id"`
	// TLS to the brokers.
	TLS tlsconfig.Config `yaml:"tls"`
	// SASL authentication.
	SASL SASLConfig `yaml:"sasl"`
}

// SASLConfig is the kafka.sasl section.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, best given as ${ENV} or ${file:/path}.
	Password string `yaml:"password"`
}

func (c SASLConfig) mechanism() sasl.Mechanism {
	switch c.Mechanism {
	case "PLAIN":
		return plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()
	}
	return nil
}

// clientOpts are the connection options every client of the sink uses.
func (c Config) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	tc, err := c.TLS.Load("kafka.tls")
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// ClientOptions are the options that connect a franz-go client to the
// configured brokers, with TLS and SASL, for consumers such as the tail
// command.
func (c Config) ClientOptions() ([]kgo.Opt, error) {
	c.Defaults()
	return c.clientOpts()
}

// Defaults fills in the defaults documented on each field.
func (c *Config) Defaults() {
	if c.Partitions == 0 {
		c.Partitions = 1
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.OffsetsTopic == "" {
		c.OffsetsTopic = "_liberator_offsets"
	}
	if c.Linger == 0 {
		c.Linger = 5 * time.Millisecond
	}
	if c.Compression == "" {
		c.Compression = "none"
	}
	if c.ClientID == "" {
		c.ClientID = "liberator"
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
}

// DefaultMaxMessageBytes is the default of kafka.max_message_bytes:
// Kafka's own default of max.message.bytes.
const DefaultMaxMessageBytes = 1048588

// Bounds of kafka.max_message_bytes. franz-go takes batch limits of 512
// bytes to 1 GiB, and a produce request must hold the largest batch; half
// a gigabyte leaves room for the request around it.
const (
	minMaxMessageBytes = 1 << 10
	maxMaxMessageBytes = 512 << 20
)

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// Validate reports every problem at once, naming the config keys.
func (c Config) Validate() error {
	c.Defaults()
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: is empty (list host:port seeds, or the single word embedded)"))
	}
	for i, b := range c.Brokers {
		if b == "embedded" && len(c.Brokers) > 1 {
			errs = append(errs, fmt.Errorf("kafka.brokers[%d]: embedded cannot be combined with other brokers", i))
		} else if b != "embedded" && !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka.brokers[%d]: %q is not host:port", i, b))
		}
	}
	if c.TopicPrefix == "" {
		errs = append(errs, errors.New("kafka.topic_prefix: is empty (topics are named <prefix>.<schema>.<table>)"))
	} else if err := ValidTopic(c.TopicPrefix); err != nil {
		errs = append(errs, fmt.Errorf("kafka.topic_prefix: %w", err))
	}
	if c.Partitions < 1 {
		errs = append(errs, fmt.Errorf("kafka.partitions: %d must be at least 1", c.Partitions))
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor == 0 {
		errs = append(errs, fmt.Errorf("kafka.replication_factor: %d must be -1 (broker default) or at least 1", c.ReplicationFactor))
	}
	if err := ValidTopic(c.OffsetsTopic); err != nil {
		errs = append(errs, fmt.Errorf("kafka.offsets_topic: %w", err))
	}
	if _, ok := codecs[c.Compression]; !ok {
		errs = append(errs, fmt.Errorf("kafka.compression: %q is not one of none, gzip, snappy, lz4, zstd", c.Compression))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("kafka.linger: %s must not be negative", c.Linger))
	}
	if err := c.TLS.Validate("kafka.tls"); err != nil {
		errs = append(errs, err)
	}
	switch c.SASL.Mechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username == "" {
			errs = append(errs, errors.New("kafka.sasl.username: is empty"))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism))
	}
	if p, ok := c.TopicConfigs["cleanup.policy"]; ok && !strings.Contains(p, "compact") {
		errs = append(errs, fmt.Errorf("kafka.topic_configs.cleanup.policy: %q would not keep the latest row per key; leave it out (topics are compacted)", p))
	}
	if c.MaxMessageBytes < minMaxMessageBytes || c.MaxMessageBytes > maxMaxMessageBytes {
		errs = append(errs, fmt.Errorf("kafka.max_message_bytes: %d is out of range (use %d to %d bytes; Kafka's default is %d)", c.MaxMessageBytes, minMaxMessageBytes, maxMaxMessageBytes, DefaultMaxMessageBytes))
	}
	if v, ok := c.TopicConfigs["max.message.bytes"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("kafka.topic_configs.max.message.bytes: %q is not a positive whole number of bytes", v))
		}
	}
	return errors.Join(errs...)
}

// ValidTopic reports whether s can name a Kafka topic: 1 to 249 of a-z,
// A-Z, 0-9, '.', '_' and '-', and not "." or "..". Every topic name that
// liberator makes or takes from the config is checked here.
func ValidTopic(s string) error {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return fmt.Errorf("%q is not a topic name (use 1 to 249 of a-z, A-Z, 0-9, '.', '_', '-'; not . or ..)", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q is not a topic name: %q is not allowed (use a-z, A-Z, 0-9, '.', '_', '-')", s, r)
		}
	}
	return nil
}

// ErrUnreachable is wrapped by Open's error when no broker answers.
var ErrUnreachable = errors.New("cannot reach Kafka at")

// Sink produces to Kafka.
type Sink struct {
	cfg Config
	log *slog.Logger
	cl  *kgo.Client
	adm *kadm.Client

	mu     sync.Mutex
	topics map[string]bool // ensured
	// limits are the max.message.bytes of the topics ensured, where
	// Kafka said or liberator set it.
	limits map[string]int
	// refused are the records Kafka refused as too large in an earlier
	// run, by topic (Refused).
	refused map[string]refusal

	// limitsGen counts the changes of limits and refused, so that
	// CheckSize knows when the limit it keeps may have changed.
	limitsGen atomic.Uint64
	hdr       headerCache // owned by Produce's goroutine
	// checked is the Limit of the topic CheckSize checked last, owned by
	// Produce's goroutine.
	checked checkedLimit
	slab    []kgo.Record // records not yet handed out, owned by Produce's goroutine
	metrics prometheus.Registerer
	// bufferedBytes bounds the records buffered until Kafka acknowledges
	// them (WithBufferedBytes).
	bufferedBytes int64
	// txnID is the transactional.id of an exactly-once producer
	// (WithTransactions), empty otherwise.
	txnID string
}

// Option configures a Sink beyond its Config.
type Option func(*Sink)

// WithMetrics registers the producer's own metrics (franz-go's kprom:
// liberator_kafka_*) on reg while the sink is open.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(s *Sink) { s.metrics = reg }
}

// DefaultBufferedBytes is the producer's buffer when WithBufferedBytes is
// not given.
const DefaultBufferedBytes = 64 << 20

// MinBufferedBytes is the smallest producer buffer that c works with: a
// record larger than the buffer fails at once, and a buffer of a few
// records would send one batch at a time. It holds four of the largest
// records (kafka.max_message_bytes).
func (c Config) MinBufferedBytes() int64 {
	c.Defaults()
	return 4 * int64(c.MaxMessageBytes)
}

// WithBufferedBytes bounds the bytes (keys and values) of the records the
// producer buffers until Kafka acknowledges them: Produce blocks while
// they are all taken. It should be at least Config.MinBufferedBytes.
// Default DefaultBufferedBytes.
func WithBufferedBytes(n int64) Option {
	return func(s *Sink) { s.bufferedBytes = n }
}

// New validates cfg. It does no I/O.
func New(cfg Config, log *slog.Logger, opts ...Option) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Defaults()
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{cfg: cfg, log: log, topics: map[string]bool{}, limits: map[string]int{}, refused: map[string]refusal{}, bufferedBytes: DefaultBufferedBytes}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Open connects to the brokers.
func (s *Sink) Open(ctx context.Context) error {
	opts, err := s.cfg.clientOpts()
	if err != nil {
		return err
	}
	if s.metrics != nil {
		// The metrics are registered when the client starts and
		// unregistered when it closes.
		opts = append(opts, kgo.WithHooks(kprom.NewMetrics("liberator_kafka", kprom.Registerer(s.metrics))))
	}
	if s.txnID != "" {
		opts = append(opts, kgo.TransactionalID(s.txnID), kgo.TransactionTimeout(TransactionTimeout))
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(s.cfg.Linger),
		kgo.ProducerBatchCompression(codecs[s.cfg.Compression]),
		kgo.MaxBufferedRecords(20_000),
		kgo.MaxBufferedBytes(int(s.bufferedBytes)),
		// A batch never exceeds what its topic takes (Limit), so that
		// records that each fit are not refused together.
		kgo.ProducerBatchMaxBytesFn(s.batchLimit),
		kgo.BrokerMaxWriteBytes(brokerWriteBytes(s.cfg.MaxMessageBytes)),
		kgo.RecordPartitioner(newKeyPartitioner()),
		// By default franz-go goes on producing after it detects that a
		// partition may have lost or reordered records (an out-of-order
		// sequence number, an unknown producer id). Failing the records
		// instead keeps the position from passing them: the pipeline starts
		// over from the last stored position and sends them again.
		kgo.StopProducerOnDataLossDetected(),
		kgo.WithLogger(kslog.New(slog.New(warnings{Handler: s.log.Handler(), seen: clientWarnings}).With("component", "kafka"))),
	)...)
	if err != nil {
		return fmt.Errorf("kafka.brokers: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		// Closed here, since the caller closes only an open sink: the
		// client's metrics are unregistered when it closes, and the next
		// attempt registers them again.
		cl.Close()
		return connectors.MarkRetryable(fmt.Errorf("%w %v: %w", ErrUnreachable, s.cfg.Brokers, err))
	}
	s.cl, s.adm = cl, kadm.NewClient(cl)
	if s.txnID != "" {
		// Before anything is read: the position read next must not be
		// moved by an earlier producer of the id that is still running.
		if err := s.initTransactions(ctx); err != nil {
			cl.Close()
			s.cl, s.adm = nil, nil
			return err
		}
	}
	return nil
}

// EnsureTopic creates topic, compacted, unless it exists. An existing topic
// that is not compacted is an error: it would not keep every row. Either
// way the sink learns the topic's max.message.bytes (Limit).
func (s *Sink) EnsureTopic(ctx context.Context, topic string) error {
	return s.ensureTopic(ctx, topic, s.cfg.Partitions, s.entityConfigs(), true)
}

// entityConfigs are the configs of a created entity topic: compacted, with
// max.message.bytes of kafka.max_message_bytes, and kafka.topic_configs.
func (s *Sink) entityConfigs() map[string]*string {
	configs := map[string]*string{
		"cleanup.policy":    kadm.StringPtr("compact"),
		"max.message.bytes": kadm.StringPtr(strconv.Itoa(s.cfg.MaxMessageBytes)),
	}
	for k, v := range s.cfg.TopicConfigs {
		configs[k] = kadm.StringPtr(v)
	}
	return configs
}

// ensureTopic creates topic with configs unless it exists; an existing
// topic must be compacted when compacted is true. It records the topic's
// max.message.bytes.
func (s *Sink) ensureTopic(ctx context.Context, topic string, partitions int32, configs map[string]*string, compacted bool) error {
	s.mu.Lock()
	done := s.topics[topic]
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := ValidTopic(topic); err != nil {
		return err
	}
	limit := 0
	resp, err := s.adm.CreateTopic(ctx, partitions, s.cfg.ReplicationFactor, configs, topic)
	switch {
	case err == nil && resp.Err == nil:
		s.log.Info("created topic", "topic", topic, "partitions", partitions, "cleanup.policy", *configs["cleanup.policy"])
		s.awaitTopic(ctx, topic)
		if v := configs["max.message.bytes"]; v != nil {
			limit, _ = strconv.Atoi(*v)
		}
	case errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists):
		if limit, err = s.checkExisting(ctx, topic, compacted); err != nil {
			return err
		}
	case err != nil:
		return connectors.MarkRetryable(fmt.Errorf("create topic %q: %w", topic, err))
	default:
		return fmt.Errorf("create topic %q: %w (%s)", topic, resp.Err, resp.ErrMessage)
	}
	s.mu.Lock()
	s.topics[topic] = true
	if limit > 0 {
		s.limits[topic] = limit
		s.limitsGen.Add(1)
	}
	s.mu.Unlock()
	return nil
}

// awaitTopic waits, for at most topicVisibleWait, until a topic just
// created has a leader for every partition in the brokers' metadata. The
// first produce to a topic the client does not know asks for its metadata
// at once; were the topic not visible yet, the client would ask again only
// 250 ms later, and after eight tries every MetadataMinAge (5 s). Waiting
// here, with short pauses, lets a new table's first events go out within
// milliseconds of its topic's creation. The wait ends early, silently, on
// any error: producing retries on its own.
func (s *Sink) awaitTopic(ctx context.Context, topic string) {
	ctx, cancel := context.WithTimeout(ctx, topicVisibleWait)
	defer cancel()
	pause := time.Millisecond
	for {
		md, err := s.adm.Metadata(ctx, topic)
		if err != nil {
			return
		}
		if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) > 0 && leaders(td.Partitions) {
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// topicVisibleWait bounds awaitTopic.
const topicVisibleWait = 5 * time.Second

// leaders reports whether every partition has a leader.
func leaders(ps kadm.PartitionDetails) bool {
	for _, p := range ps {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return true
}

// CheckTopic checks, without creating anything, that topic either exists
// compacted or could be created by this client.
func (s *Sink) CheckTopic(ctx context.Context, topic string) error {
	resp, err := s.adm.ValidateCreateTopics(ctx, s.cfg.Partitions, s.cfg.ReplicationFactor, s.entityConfigs(), topic)
	if err != nil {
		return fmt.Errorf("validate creating topic %q: %w", topic, err)
	}
	r, err := resp.On(topic, nil)
	switch {
	case err != nil:
		return fmt.Errorf("validate creating topic %q: %w", topic, err)
	case errors.Is(r.Err, kerr.TopicAlreadyExists):
		_, err := s.checkExisting(ctx, topic, true)
		return err
	case r.Err != nil:
		return fmt.Errorf("topic %q cannot be created: %w %s (grant CREATE on the cluster or topic, or create it compacted beforehand)", topic, r.Err, r.ErrMessage)
	}
	return nil
}

// checkExisting describes an existing topic and returns its
// max.message.bytes (0 if Kafka does not say). When compacted is true, a
// topic that is not compacted is an error.
func (s *Sink) checkExisting(ctx context.Context, topic string, compacted bool) (int, error) {
	rcs, err := s.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return 0, connectors.MarkRetryable(fmt.Errorf("describe topic %q: %w", topic, err))
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return 0, fmt.Errorf("describe topic %q: %w", topic, err)
	}
	if rc.Err != nil {
		return 0, fmt.Errorf("describe topic %q: %w", topic, rc.Err)
	}
	limit := 0
	for _, c := range rc.Configs {
		switch c.Key {
		case "cleanup.policy":
			if compacted && !strings.Contains(c.MaybeValue(), "compact") {
				return 0, fmt.Errorf("topic %q exists with cleanup.policy=%s; entity topics must be compacted (kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)", topic, c.MaybeValue(), topic)
			}
			if !compacted && strings.Contains(c.MaybeValue(), "compact") {
				s.log.Warn("the topic is compacted: of the records of one key (a dead-letter topic's bad rows, an outbox topic's events), only the last is kept (set its cleanup.policy=delete)", "topic", topic)
			}
		case "max.message.bytes":
			limit, _ = strconv.Atoi(c.MaybeValue())
		}
	}
	return limit, nil
}

// Ping asks the cluster for its metadata (no topics) and reports whether a
// broker answered before ctx ended. The producer learns of an outage only
// when it has records to send; Ping lets an idle pipeline find out too.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.cl.Ping(ctx); err != nil {
		return fmt.Errorf("ping kafka %v: %w", s.cfg.Brokers, err)
	}
	return nil
}

// Flush waits until every buffered record is acknowledged or failed.
func (s *Sink) Flush(ctx context.Context) error {
	return s.cl.Flush(ctx)
}

// Close closes the client. Records still buffered are failed.
func (s *Sink) Close() {
	if s.cl != nil {
		s.cl.Close()
	}
}

// warnings is a slog handler that passes on warnings and errors only: the
// client's own info and debug lines are for debugging franz-go. While a
// broker is unreachable the client warns on every attempt to reach it, so
// a message is passed on at most once per warnEvery.
type warnings struct {
	slog.Handler
	seen *warnSeen // shared by the handlers derived with With
}

// warnEvery is how often one message of the client is logged at most.
const warnEvery = 10 * time.Second

type warnSeen struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// clientWarnings is shared by the clients of every sink: a pipeline opens
// a new one at each attempt, and an outage must not reset the rate limit.
var clientWarnings = &warnSeen{last: map[string]time.Time{}}

func newWarnings(h slog.Handler) warnings {
	return warnings{Handler: h, seen: &warnSeen{last: map[string]time.Time{}}}
}

func (w warnings) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}

func (w warnings) Handle(ctx context.Context, r slog.Record) error {
	w.seen.mu.Lock()
	last, ok := w.seen.last[r.Message]
	pass := !ok || r.Time.Sub(last) >= warnEvery
	if pass {
		w.seen.last[r.Message] = r.Time
	}
	w.seen.mu.Unlock()
	if !pass {
		return nil
	}
	return w.Handler.Handle(ctx, r)
}

func (w warnings) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnings{Handler: w.Handler.WithAttrs(attrs), seen: w.seen}
}

func (w warnings) WithGroup(name string) slog.Handler {
	return warnings{Handler: w.Handler.WithGroup(name), seen: w.seen}
}
