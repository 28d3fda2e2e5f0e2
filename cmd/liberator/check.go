package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/embedded"
	"github.com/liberator-cdc/liberator/internal/ha"
	"github.com/liberator-cdc/liberator/internal/redact"
	"github.com/liberator-cdc/liberator/outbox"
	"github.com/liberator-cdc/liberator/schema"
)

// preflight runs every preflight check: the source's (settings, privileges,
// tables), Kafka's (reachable, topics creatable or compacted, the offsets
// topic) and the registry's (reachable). It changes nothing. It returns all
// the checks; the config is ready when none has an error.
func preflight(ctx context.Context, cfg *config.Config, log *slog.Logger) []connectors.Check {
	var out []connectors.Check
	src, err := newSource(cfg, log)
	if err != nil {
		return []connectors.Check{{Name: "the source config is valid", Err: err}}
	}
	if c, ok := src.(connectors.Checker); ok {
		out = append(out, c.Check(ctx)...)
	}
	out = append(out, outboxTableChecks(ctx, cfg, src)...)

	if len(cfg.Kafka.Brokers) == 1 && cfg.Kafka.Brokers[0] == config.Embedded {
		out = append(out, connectors.Check{Name: "Kafka is embedded (nothing to check)"})
		out = append(out, topicChecks(cfg)...)
	} else {
		out = append(out, checkKafka(ctx, cfg, log)...)
	}

	if dir := cfg.Embedded.DataDir; dir != "" {
		out = append(out, connectors.Check{Name: "kafka.embedded.data_dir " + dir + " is free for this process", Err: embedded.CheckDataDir(dir)})
	}
	if cfg.Registry.URL == config.Embedded {
		out = append(out, connectors.Check{Name: "the registry is embedded (nothing to check)"})
	} else {
		reg, err := newRegistry(cfg)
		if err == nil {
			_, err = reg.Client().Subjects(ctx)
		}
		if err != nil {
			err = fmt.Errorf("list subjects at %s: %w (check registry.url and its credentials)", redact.URL(cfg.Registry.URL), err)
		}
		out = append(out, connectors.Check{Name: "the schema registry is reachable", Err: err})
		if err == nil {
			out = append(out, outboxSubjectChecks(ctx, cfg, reg)...)
		}
	}
	return out
}

// outboxTableChecks check that each outbox table has the columns its
// entry names, of kinds that can hold them.
func outboxTableChecks(ctx context.Context, cfg *config.Config, src connectors.Source) []connectors.Check {
	boxes := cfg.OutboxTables()
	d, ok := src.(connectors.Describer)
	if len(boxes) == 0 || !ok {
		return nil
	}
	tables, err := d.Describe(ctx)
	if err != nil {
		return []connectors.Check{{Name: "the outbox tables can be described", Err: err}}
	}
	router := cfg.OutboxRouter()
	var out []connectors.Check
	for _, t := range tables {
		if router.Table(t.ID()) != nil {
			out = append(out, connectors.Check{Name: "outbox table " + t.ID() + " has the outbox's columns", Err: router.Check([]*connectors.Table{t})})
		}
	}
	return out
}

// outboxSubjectChecks check that the subject of each outbox whose topic
// is fixed has a schema, unless the outbox infers one. The subjects of a
// topic routed by aggregate type, or named after the event type, are
// known only from the events.
func outboxSubjectChecks(ctx context.Context, cfg *config.Config, reg *schema.Registry) []connectors.Check {
	var out []connectors.Check
	for _, e := range cfg.Outbox {
		name := "outbox " + e.Table + e.MessagePrefix
		switch {
		case e.InferSchema:
			out = append(out, connectors.Check{Name: name + ": subjects without a schema get one inferred from their first event (infer_schema)"})
		case strings.Contains(e.Topic, "${") || e.Subject != outbox.SubjectTopic:
			out = append(out, connectors.Check{Name: name + ": its subjects depend on each event (topic " + e.Topic + ", subject " + e.Subject + "); each must have a schema before its first event"})
		default:
			subject := e.Topic + "-value"
			_, _, err := reg.Latest(ctx, subject)
			if errors.Is(err, schema.ErrNoSchema) {
				err = fmt.Errorf("%w: register the payload's Avro schema under %q, or set infer_schema: true", err, subject)
			}
			out = append(out, connectors.Check{Name: name + ": subject " + subject + " has a schema", Err: err})
		}
	}
	return out
}

func checkKafka(ctx context.Context, cfg *config.Config, log *slog.Logger) []connectors.Check {
	sink, err := kafka.New(cfg.Kafka, log)
	if err == nil {
		err = sink.Open(ctx)
	}
	if err != nil {
		return append([]connectors.Check{{Name: "Kafka is reachable", Err: err}}, topicChecks(cfg)...)
	}
	defer sink.Close()
	out := []connectors.Check{{Name: "Kafka is reachable"}}
	out = append(out, connectors.Check{Name: "the offsets topic " + cfg.Kafka.OffsetsTopic + " is usable", Err: sink.CheckTopic(ctx, cfg.Kafka.OffsetsTopic)})
	m := cfg.Mapper()
	var topics []string
	for _, id := range cfg.Captured() {
		topic := m.Topic(id)
		topics = append(topics, topic)
		out = append(out, connectors.Check{Name: "topic " + topic + " of table " + id + " is compacted or can be created", Err: sink.CheckTopic(ctx, topic)})
	}
	if cfg.HA.Enabled() {
		out = append(out, connectors.Check{
			Name: "the coordination topic " + cfg.HA.Topic + " (ha.topic) has one partition or can be created",
			Err:  sink.CheckCoordinationTopic(ctx, cfg.HA.Topic),
		})
		group := ha.GroupName(cfg.Name)
		note, err := sink.CheckGroup(ctx, group)
		out = append(out, kafkaCheck("the principal may use consumer group "+group+" (ha.mode: standby)", note, err))
	}
	if cfg.ExactlyOnce() {
		// A probe with an id of its own: initializing the pipeline's
		// transactional.id would fence a running pipeline.
		out = append(out, connectors.Check{Name: "the principal may use transactions (delivery: exactly_once)", Err: cfg.Kafka.CheckTransactions(ctx, cfg.Name)})
		// One transaction holds the events and their position: the
		// offsets topic and every event topic must be on one cluster.
		id, err := sink.CheckSameCluster(ctx, topics...)
		name := "the offsets topic and the event topics are on the same cluster"
		if id != "" {
			name += " (cluster ID " + id + ")"
		}
		out = append(out, kafkaCheck(name, "", err))
	}
	return out
}

// kafkaCheck is a check of Kafka's, with the note that says what it was
// based on; one that Kafka gave no way to make is a warning.
func kafkaCheck(name, note string, err error) connectors.Check {
	if note != "" {
		name += ": " + note
	}
	return connectors.Check{Name: name, Err: err, Warning: errors.Is(err, kafka.ErrNotChecked)}
}

// topicChecks name each table's topic, as kafka.topic_prefix, the naming
// rule (mapping.Mapping.Topic) and mapping.<table>.topic make it, where
// the broker cannot be asked about the topics.
func topicChecks(cfg *config.Config) []connectors.Check {
	var out []connectors.Check
	m := cfg.Mapper()
	for _, id := range cfg.Captured() {
		out = append(out, connectors.Check{Name: "table " + id + " is published to topic " + m.Topic(id)})
	}
	return out
}

func newRegistry(cfg *config.Config) (*schema.Registry, error) {
	return cfg.NewRegistry(cfg.Registry.URL)
}

// printChecks writes one line per check and reports whether all passed.
func printChecks(w io.Writer, checks []connectors.Check) bool {
	ok := true
	for _, c := range checks {
		if c.Err == nil {
			fmt.Fprintf(w, "ok    %s\n", c.Name)
			continue
		}
		if c.Warning {
			fmt.Fprintf(w, "WARN  %s\n      %v\n", c.Name, c.Err)
			continue
		}
		ok = false
		fmt.Fprintf(w, "FAIL  %s\n      %v\n", c.Name, c.Err)
	}
	return ok
}
