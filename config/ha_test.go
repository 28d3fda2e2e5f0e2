package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHAIsOffByDefault(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(HAConfig{Mode: HAOff, Topic: DefaultHATopic, SessionTimeout: 10 * time.Second}, cfg.HA); diff != "" {
		t.Errorf("ha defaults (-want +got):\n%s", diff)
	}
	if cfg.HA.Enabled() {
		t.Error("ha is enabled by default")
	}
}

func TestHAStandbyLoads(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(minimal + "ha: {mode: standby, topic: shop-ha, session_timeout: 6s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(HAConfig{Mode: HAStandby, Topic: "shop-ha", SessionTimeout: 6 * time.Second}, cfg.HA); diff != "" {
		t.Errorf("ha (-want +got):\n%s", diff)
	}
}

func TestHAKeysAreValidatedByName(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name string
		add  string
		want string
	}{
		{"an unknown mode", "ha: {mode: leader}\n", `ha.mode: "leader" is not off or standby`},
		{"a short session timeout", "ha: {mode: standby, session_timeout: 100ms}\n", "ha.session_timeout: 100ms is too short"},
		{"the offsets topic as coordination topic", "ha: {mode: standby, topic: _liberator_offsets}\n", `ha.topic: "_liberator_offsets" is kafka.offsets_topic`},
		{"a coordination topic that is no topic name", "ha: {mode: standby, topic: 'ha topic'}\n", `ha.topic: "ha topic" is not a topic name`},
		{"an unknown key of ha", "ha: {mode: standby, lease: 5s}\n", "ha.lease: unknown key (allowed in ha: mode, session_timeout, topic)"},
		{"snapshot mode only", "ha: {mode: standby}\nsnapshot: {mode: only}\n", "ha.mode: standby runs a daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.add))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
