package embedded

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/liberator-cdc/liberator/config"
	"github.com/liberator-cdc/liberator/connectors/kafka"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func embeddedConfig(dir string) *config.Config {
	return &config.Config{
		Kafka:    kafkaConfig(),
		Registry: config.RegistryConfig{URL: config.Embedded},
		Embedded: config.EmbeddedConfig{DataDir: dir},
	}
}

func start(t *testing.T, cfg *config.Config) *Env {
	t.Helper()
	e, err := Start(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// produce writes one record to a new compacted topic and waits for it.
func produce(t *testing.T, brokers []string, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, topic); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func endOffset(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return -1
	}
	return o.Offset
}

func TestADataDirKeepsTopicsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := embeddedConfig(dir)
	e := start(t, cfg)
	if !e.StartsOver() {
		t.Error("a new data dir does not start over")
	}
	produce(t, cfg.Kafka.Brokers, "shop.public.customers")
	e.Close()

	cfg = embeddedConfig(dir)
	e = start(t, cfg)
	defer e.Close()
	if e.StartsOver() {
		t.Error("a data dir with a broker's log starts over")
	}
	if got := endOffset(t, cfg.Kafka.Brokers, "shop.public.customers"); got != 1 {
		t.Errorf("end offset after the restart %d, want 1", got)
	}
}

func TestWithoutADataDirEveryRunStartsOverAndLeavesNothing(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	cfg := embeddedConfig("")
	e := start(t, cfg)
	if !e.StartsOver() {
		t.Error("a broker without a data dir does not start over")
	}
	produce(t, cfg.Kafka.Brokers, "t")
	if got, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern)); len(got) != 1 {
		t.Errorf("temporary directories while running: %v, want one", got)
	}
	e.Close()
	if got, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern)); len(got) != 0 {
		t.Errorf("temporary directories left after Close: %v", got)
	}
	cfg = embeddedConfig("")
	e = start(t, cfg)
	defer e.Close()
	if got := endOffset(t, cfg.Kafka.Brokers, "t"); got != -1 {
		t.Errorf("the topic of the last run has end offset %d; want no topic", got)
	}
}

func TestAKilledProcessesTemporaryDirectoryIsRemoved(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	left := filepath.Join(os.TempDir(), "liberator-embedded-123")
	if err := os.MkdirAll(filepath.Join(left, "kafka"), 0o750); err != nil {
		t.Fatal(err)
	}
	// A directory whose lock is held belongs to a running process.
	busy, lock, err := tempDir(quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	e := start(t, embeddedConfig(""))
	defer e.Close()
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the directory a killed process left is still there (%v)", err)
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("the directory of a running process was removed: %v", err)
	}
}

func TestADataDirServesOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	e := start(t, embeddedConfig(dir))
	_, err := Start(context.Background(), embeddedConfig(dir), quiet)
	if err == nil || !strings.Contains(err.Error(), "is in use by another liberator process") {
		t.Errorf("a second Start on the data dir: %v, want an error saying it is in use", err)
	}
	e.Close()
	start(t, embeddedConfig(dir)).Close()
}

func TestPacerCompactsWhenHalfTheLogIsDirty(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		after    int64
		size     int64
		lastTook time.Duration
		lastEnd  time.Time
		want     bool
	}{
		{"a small log is left alone", 0, minCompactBytes - 1, 0, time.Time{}, false},
		{"a log past a segment is compacted", 0, minCompactBytes, 0, time.Time{}, true},
		{"a log less than half dirty is left alone", 3 * minCompactBytes, 5 * minCompactBytes, 0, time.Time{}, false},
		{"a log half dirty is compacted", 3 * minCompactBytes, 6 * minCompactBytes, 0, time.Time{}, true},
		{"not within nine times the last compaction's time", 0, minCompactBytes, time.Second, now.Add(-8 * time.Second), false},
		{"after nine times the last compaction's time", 0, minCompactBytes, time.Second, now.Add(-9 * time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pacer{after: tt.after, lastTook: tt.lastTook, lastEnd: tt.lastEnd}
			if got := p.due(tt.size, now); got != tt.want {
				t.Errorf("due(%d) after %d = %v, want %v", tt.size, tt.after, got, tt.want)
			}
		})
	}
}

func kafkaConfig() kafka.Config {
	return kafka.Config{Brokers: []string{config.Embedded}, TopicPrefix: "shop"}
}

func TestCheckDataDirSaysWhenAnotherProcessHoldsIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := CheckDataDir(dir); err != nil {
		t.Fatalf("a data dir nobody holds: %v", err)
	}
	e := start(t, embeddedConfig(dir))
	defer e.Close()
	if err := CheckDataDir(dir); err == nil || !strings.Contains(err.Error(), "is in use by another liberator process") {
		t.Errorf("a data dir a running liberator holds: %v, want an error saying it is in use", err)
	}
}
