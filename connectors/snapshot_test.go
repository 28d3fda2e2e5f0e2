package connectors

import (
	"testing"
	"time"
)

func TestTableProgressRateAndETA(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Second)
	tests := []struct {
		name  string
		p     TableProgress
		rate  float64
		eta   time.Duration
		etaOK bool
	}{
		{"a table under way", TableProgress{Rows: 1000, Estimated: 3000, Started: start}, 100, 20 * time.Second, true},
		{"no estimate, no ETA", TableProgress{Rows: 1000, Estimated: -1, Started: start}, 100, 0, false},
		{"past its estimate", TableProgress{Rows: 5000, Estimated: 3000, Started: start}, 500, 0, true},
		{"not started", TableProgress{Estimated: 10}, 0, 0, false},
		{"done: the rate up to the end", TableProgress{Rows: 1000, Estimated: 1000, Started: start, Finished: start.Add(5 * time.Second), Done: true}, 200, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Rate(now); got != tt.rate {
				t.Errorf("Rate = %v, want %v", got, tt.rate)
			}
			eta, ok := tt.p.ETA(now)
			if eta != tt.eta || ok != tt.etaOK {
				t.Errorf("ETA = %v, %v; want %v, %v", eta, ok, tt.eta, tt.etaOK)
			}
		})
	}
}

func TestSnapshotOptionsDefaultsAndLimits(t *testing.T) {
	o := SnapshotOptions{}.WithDefaults()
	if o.Parallelism < 1 || o.ChunkSize != DefaultChunkSize || o.SignalTable != "liberator.signal" {
		t.Errorf("defaults = %+v", o)
	}
	if err := (SnapshotOptions{Parallelism: 300}).Validate(); err == nil {
		t.Error("parallelism 300 was accepted")
	}
	if err := (SnapshotOptions{Parallelism: 4, ChunkSize: 100}).Validate(); err != nil {
		t.Error(err)
	}
}
