package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStatCPU(t *testing.T) {
	// Fields 14-17 are utime, stime, cutime, cstime, in ticks of 1/100 s;
	// the command name may hold spaces and parentheses.
	line := "4242 (postgres: wal (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 1000 500 20 0 1 0 7 0 0\n"
	path := filepath.Join(t.TempDir(), "stat")
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		children bool
		want     float64
	}{
		{"its own time is utime and stime", false, 3},
		{"with its children it adds cutime and cstime", true, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statCPU(path, tc.children)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("statCPU = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDerive(t *testing.T) {
	m := newMeasure()
	for k, v := range map[string]float64{
		"events_per_s": 200_000, "cpu_s": 1, "srv_cpu_s": 0.5,
		"bare_events_per_s": 100_000, "bare_cpu_s": 2,
		"raw_events_per_s": 400_000, "raw_cpu_s": 0.25, "raw_srv_cpu_s": 1,
	} {
		m.Fields[k] = v
	}
	derive(m, 500_000)
	want := map[string]float64{
		"cpu_s_per_1m": 2, "srv_cpu_s_per_1m": 1,
		"bare_cpu_s_per_1m": 4, "ratio_bare": 2, "cpu_ratio_bare": 0.5,
		"raw_cpu_s_per_1m": 0.5, "raw_srv_cpu_s_per_1m": 2, "raw_ratio": 0.5, "cpu_ratio_raw": 4,
	}
	got := map[string]float64{}
	for k := range want {
		if v, ok := m.Fields[k]; ok {
			got[k] = v
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("derived fields (-want +got):\n%s", d)
	}
	for _, k := range []string{"ratio_pipelined", "reader_ratio", "pipelined_cpu_s_per_1m"} {
		if _, ok := m.Fields[k]; ok {
			t.Errorf("%s is derived from runs that did not happen", k)
		}
	}
}
