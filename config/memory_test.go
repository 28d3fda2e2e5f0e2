package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMemoryLimitReadsSizes(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name  string
		yaml  string
		bytes int64
	}{
		{"left out, it is 256MB", "", 256_000_000},
		{"MB are powers of 1000", "memory_limit: 64MB\n", 64_000_000},
		{"GiB are powers of 1024", "memory_limit: 1GiB\n", 1 << 30},
		{"a bare number is bytes", "memory_limit: 100000000\n", 100_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(minimal + tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := int64(cfg.MemoryLimit); got != tt.bytes {
				t.Errorf("memory_limit = %d, want %d", got, tt.bytes)
			}
		})
	}
}

func TestMemoryLimitRefuses(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	tests := []struct {
		name, yaml, says string
	}{
		{"a size below the minimum", "memory_limit: 8MB\n", "memory_limit: 8MB is below the minimum of 32MB"},
		{"a word that is no size", "memory_limit: lots\n", `"lots" is not a size`},
		{"a negative size", "memory_limit: -5MB\n", `"-5MB" is not a size`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Parse = %v, want an error saying %q", err, tt.says)
			}
		})
	}
}

func TestMemorySharesAddUpToLessThanTheLimit(t *testing.T) {
	c := &Config{MemoryLimit: 64 << 20}
	m := c.Memory()
	got := []int64{m.Limit, int64(m.Source), m.Producer, m.Arena}
	want := []int64{64 << 20, 16 << 20, 16 << 20, 4 << 20}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("limit, source, producer, arena (-want +got):\n%s", d)
	}
	if sum := int64(m.Source) + m.Producer + m.Arena; sum > m.Limit*5/8 {
		t.Errorf("the shares add up to %d, more than 5/8 of the limit %d: no room is left for the runtime", sum, m.Limit)
	}
}

func TestMemoryLimitLeavesTheProducerSeveralRecords(t *testing.T) {
	c := &Config{MemoryLimit: MinMemoryLimit}
	c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	if err := c.validateMemory(); err != nil {
		t.Errorf("the minimum memory_limit is refused: %v", err)
	}
	if m := c.Memory(); m.Producer < c.Kafka.MinBufferedBytes() {
		t.Errorf("at the minimum memory_limit the producer gets %d, less than %d", m.Producer, c.Kafka.MinBufferedBytes())
	}
}

func TestByteSizeStringsAsWritten(t *testing.T) {
	for in, want := range map[ByteSize]string{256_000_000: "256MB", 1 << 30: "1GiB", 64 << 20: "64MiB", 2_000_000_000: "2GB", 1234: "1.2 kB"} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}

func TestMemoryLimitRefusesTooSmallForTheLargestMessage(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	_, err := Parse([]byte(strings.Replace(minimal, "  topic_prefix: shop\n", "  topic_prefix: shop\n  max_message_bytes: 8388608\n", 1) + "memory_limit: 64MB\n"))
	if err == nil || !strings.Contains(err.Error(), "memory_limit: 64MB leaves the Kafka producer 16MB") || !strings.Contains(err.Error(), "kafka.max_message_bytes 8388608") {
		t.Errorf("Parse = %v, want memory_limit refused for kafka.max_message_bytes", err)
	}
}
