package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBadRowPolicyDefaultsToFailAndADeadLetterTopicOfThePrefix(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{cfg.Errors.OnBadRow, cfg.Errors.DeadLetterTopic, cfg.Kafka.MaxMessageBytes}
	if d := cmp.Diff([]any{"fail", "shop.dead_letter", 1048588}, got); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}

func TestBadRowPolicyLoads(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	for _, s := range []string{
		"errors: {on_bad_row: skip}\n",
		"errors: {on_bad_row: dead_letter, dead_letter_topic: shop-bad-rows}\n",
		"errors: {on_bad_row: fail}\n",
	} {
		if _, err := Parse([]byte(minimal + s)); err != nil {
			t.Errorf("Parse(%q) = %v", s, err)
		}
	}
	cfg, err := Parse([]byte(strings.Replace(minimal, "topic_prefix: shop", "topic_prefix: shop\n  max_message_bytes: 8388608", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.MaxMessageBytes != 8<<20 {
		t.Errorf("kafka.max_message_bytes = %d, want 8388608", cfg.Kafka.MaxMessageBytes)
	}
}

func TestBadRowKeysAreValidatedByName(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name string
		add  string
		want string
	}{
		{"an unknown policy", "errors: {on_bad_row: ignore}\n", `errors.on_bad_row: "ignore" is not a policy (use fail, skip or dead_letter)`},
		{"a dead-letter topic that is no topic name", "errors: {dead_letter_topic: 'bad rows'}\n", `errors.dead_letter_topic: "bad rows" is not a topic name`},
		{"the offsets topic as dead-letter topic", "errors: {dead_letter_topic: _liberator_offsets}\n", `errors.dead_letter_topic: "_liberator_offsets" is kafka.offsets_topic`},
		{"an unknown key of errors", "errors: {tolerance: all}\n", "errors.tolerance: unknown key (allowed in errors: dead_letter_topic, on_bad_row)"},
		{"a tiny kafka.max_message_bytes", "", "kafka.max_message_bytes: 100 is out of range (use 1024 to 536870912 bytes"},
		{"a max.message.bytes topic config that is no number", "", `kafka.topic_configs.max.message.bytes: "1MB" is not a positive whole number of bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := minimal + tt.add
			switch {
			case strings.Contains(tt.want, "max_message_bytes"):
				s = strings.Replace(s, "topic_prefix: shop", "topic_prefix: shop\n  max_message_bytes: 100", 1)
			case strings.Contains(tt.want, "topic_configs"):
				s = strings.Replace(s, "topic_prefix: shop", "topic_prefix: shop\n  topic_configs: {max.message.bytes: 1MB}", 1)
			}
			_, err := Parse([]byte(s))
			if err == nil {
				t.Fatal("Parse accepted the config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}
