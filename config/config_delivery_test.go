package config

import (
	"strings"
	"testing"
	"time"
)

func TestDeliveryDefaultsToAtLeastOnceAndLoadsExactlyOnce(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Delivery != DeliveryAtLeastOnce || cfg.ExactlyOnce() || cfg.TransactionMaxBytes != DefaultTransactionMaxBytes {
		t.Errorf("defaults: delivery %q, transaction_max_bytes %s", cfg.Delivery, cfg.TransactionMaxBytes)
	}
	cfg, err = Parse([]byte(minimal + "delivery: exactly_once\ntransaction_max_bytes: 16MB\ncommit_interval: 200ms\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ExactlyOnce() || cfg.TransactionMaxBytes != 16_000_000 || cfg.CommitInterval != 200*time.Millisecond {
		t.Errorf("loaded: delivery %q, transaction_max_bytes %s, commit_interval %s", cfg.Delivery, cfg.TransactionMaxBytes, cfg.CommitInterval)
	}
}

func TestDeliveryRefusesWhatItCannotKeep(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	for _, tt := range []struct{ yaml, want string }{
		{"delivery: twice\n", `delivery: "twice" is not at_least_once or exactly_once`},
		{"delivery: exactly_once\ncommit_interval: 45s\n", "commit_interval: 45s is too long for delivery: exactly_once"},
		{"transaction_max_bytes: 1000\n", "transaction_max_bytes: 1.0 kB is too small (use at least 1MB)"},
	} {
		_, err := Parse([]byte(minimal + tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
