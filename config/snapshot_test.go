package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestParseReadsTheSnapshotKeys(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	cfg, err := Parse([]byte(minimal + "snapshot:\n  mode: only\n  parallelism: 3\n  chunk_size: 500\n  signal_table: ops.signals\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := connectors.SnapshotOptions{Parallelism: 3, ChunkSize: 500, SignalTable: "ops.signals"}
	if d := cmp.Diff(want, cfg.Snapshot.SnapshotOptions); d != "" {
		t.Errorf("snapshot options (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want, cfg.Postgres(nil).Snapshots); d != "" {
		t.Errorf("the PostgreSQL source's snapshot options (-want +got):\n%s", d)
	}
}

func TestParseRefusesBadSnapshotKeys(t *testing.T) {
	t.Setenv("TEST_PGPASSWORD", "x")
	_, err := Parse([]byte(minimal + "snapshot:\n  parallelism: -1\n  chunk_size: 2000000\n"))
	for _, want := range []string{"snapshot.parallelism: -1 is out of range", "snapshot.chunk_size: 2000000 is out of range"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
