package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// errNoReset is returned for a source that cannot be reset.
var errNoReset = errors.New("this source cannot be reset")

// reset discards the source's stream (PostgreSQL: drops the replication
// slot) and stores the position from which the next run streams from the
// server's current point and re-snapshots every table with reconcile. It
// returns what it did, for the operator.
func reset(ctx context.Context, cfg *config.Config, log *slog.Logger) (string, error) {
	src, err := newSource(cfg, log)
	if err != nil {
		return "", err
	}
	rs, ok := src.(connectors.Resetter)
	if !ok {
		return "", fmt.Errorf("source.kind %s: %w", cfg.Source.Kind, errNoReset)
	}
	if len(cfg.Kafka.Brokers) == 1 && cfg.Kafka.Brokers[0] == config.Embedded {
		return "", errors.New("kafka.brokers is embedded: the embedded broker keeps nothing across runs, so there is nothing to reset")
	}
	sink, err := kafka.New(cfg.Kafka, log)
	if err != nil {
		return "", &config.Error{Err: err}
	}
	if err := sink.Open(ctx); err != nil {
		return "", err
	}
	defer sink.Close()
	identity := ""
	if id, ok := src.(connectors.Identifier); ok {
		if identity, err = id.Identity(ctx); err != nil {
			return "", err
		}
	}
	stored, err := sink.ReadOffset(ctx, cfg.Name)
	if err != nil {
		return "", err
	}
	pos, err := rs.Reset(ctx)
	if err != nil {
		return "", err
	}
	if err := sink.WriteOffset(ctx, cfg.Name, kafka.Stored{Source: identity, Position: string(pos.Encode())}); err != nil {
		return "", err
	}
	was := "none"
	if stored != nil {
		was = stored.Position
	}
	return fmt.Sprintf("stored under key %q in offsets topic %q: %s (was: %s)", cfg.Name, cfg.Kafka.OffsetsTopic, pos, was), nil
}
