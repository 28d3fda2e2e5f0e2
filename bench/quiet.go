package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The machine may be shared: a test suite running beside the benchmark
// takes CPU from every process under test and makes the figures
// meaningless. Before each run the benchmark therefore waits until the
// machine is quiet, that is until less than quietBusy of its CPU time was
// used over one second (between runs the benchmark's own servers are idle),
// for at most QUIET_WAIT seconds.
const quietBusy = 0.25

// cpuTimes returns the busy and total jiffies of all CPUs from /proc/stat.
func cpuTimes() (busy, total float64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		if i >= 8 { // guest times are already counted in user and nice
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// hostBusy returns the fraction of all CPU time that was busy during d.
func hostBusy(ctx context.Context, d time.Duration) (float64, error) {
	b0, t0, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	b1, t1, err := cpuTimes()
	if err != nil || t1 == t0 {
		return 0, err
	}
	return (b1 - b0) / (t1 - t0), nil
}

// waitQuiet waits until the machine is quiet and returns how busy it was
// in the last second it looked at.
func waitQuiet(ctx context.Context) float64 {
	deadline := time.Now().Add(time.Duration(envIntFrom("QUIET_WAIT", 300, 0)) * time.Second)
	said := false
	for {
		busy, err := hostBusy(ctx, time.Second)
		if err != nil || busy < quietBusy || ctx.Err() != nil {
			return busy
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "bench: machine still %.0f%% busy; measuring anyway\n", busy*100)
			return busy
		}
		if !said {
			fmt.Fprintf(os.Stderr, "bench: machine %.0f%% busy with other work; waiting for it to be quiet\n", busy*100)
			said = true
		}
	}
}
