package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/embedded"
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
	if cfg.EmbeddedBroker() {
		if cfg.Embedded.DataDir == "" {
			return "", errors.New("kafka.brokers is [embedded] without kafka.embedded.data_dir: the embedded broker keeps nothing across runs, and each run starts over by itself " +
				"(it drops the replication slot an earlier run left and snapshots every table again), so there is nothing to reset")
		}
		// The broker of the data dir, started on a loopback port for the
		// reset alone. A running liberator holds the data dir: the reset
		// refuses until it stops, as it does for an active slot.
		env, err := embedded.Start(ctx, cfg, log)
		if err != nil {
			return "", err
		}
		defer env.Close()
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
