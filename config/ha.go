package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

// HA modes (ha.mode).
const (
	// HAOff runs one instance, which is always active. The default.
	HAOff = "off"
	// HAStandby runs the same config on two or more replicas: the one
	// Kafka's group coordinator gives the coordination topic's partition
	// to is active, the others wait.
	HAStandby = "standby"
)

// DefaultHATopic is the coordination topic of ha.mode standby.
const DefaultHATopic = "_liberator_ha"

// HAConfig is the ha section.
type HAConfig struct {
	// Mode is off (default: one instance, always active) or standby (the
	// same config on two or more replicas, one of them active, chosen
	// through a Kafka consumer group).
	Mode string `yaml:"mode"`
	// Topic is the coordination topic: one partition, no records. Its
	// consumer group is liberator-ha-<name>. Created if missing. Default
	// _liberator_ha.
	Topic string `yaml:"topic"`
	// SessionTimeout is the group session timeout: how long the broker
	// waits for a member's heartbeat before it gives the partition to a
	// standby, and how long an active instance cut off from Kafka goes on
	// before it stops. Heartbeats go every tenth of it. Default 10s; the
	// broker bounds it (group.min.session.timeout.ms, 6s on Apache Kafka).
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// Enabled reports whether ha.mode is standby.
func (h HAConfig) Enabled() bool { return h.Mode == HAStandby }

func (h *HAConfig) defaults() {
	if h.Mode == "" {
		h.Mode = HAOff
	}
	if h.Topic == "" {
		h.Topic = DefaultHATopic
	}
	if h.SessionTimeout == 0 {
		h.SessionTimeout = 10 * time.Second
	}
}

func (c *Config) validateHA() error {
	h := c.HA
	var errs []error
	switch h.Mode {
	case HAOff:
		return nil
	case HAStandby:
	default:
		return fmt.Errorf("ha.mode: %q is not off or standby", h.Mode)
	}
	if h.SessionTimeout < time.Second {
		errs = append(errs, fmt.Errorf("ha.session_timeout: %s is too short (use 1s or more; 10s is the default)", h.SessionTimeout))
	}
	if h.Topic == c.Kafka.OffsetsTopic {
		errs = append(errs, fmt.Errorf("ha.topic: %q is kafka.offsets_topic; give the coordination topic a name of its own", h.Topic))
	}
	if err := kafka.ValidTopic(h.Topic); err != nil {
		errs = append(errs, fmt.Errorf("ha.topic: %w", err))
	}
	if len(c.Kafka.Brokers) == 1 && c.Kafka.Brokers[0] == Embedded {
		errs = append(errs, errors.New("ha.mode: standby needs a Kafka the replicas share; kafka.brokers embedded is each replica's own (name the brokers)"))
	}
	if c.Snapshot.Mode == connectors.SnapshotOnly {
		errs = append(errs, errors.New("ha.mode: standby runs a daemon; snapshot.mode only ends after the snapshot (use ha.mode off)"))
	}
	return errors.Join(errs...)
}
