package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The database server's share of a case's work is read from /proc: the
// benchmark's servers run on this machine.
//
// For a snapshot it is the whole server's CPU time over the run (serverCPU):
// PostgreSQL's postmaster with every backend (the ones that have exited are
// in the postmaster's cutime and cstime), MariaDB's mariadbd process with all
// its threads.
//
// For a drain it is the CPU time of the thread that streams the log to the
// reader, as a streamMeter finds it while the run goes on: PostgreSQL's
// walsender process, MariaDB's binlog dump thread (the TID column of
// information_schema.PROCESSLIST, then /proc/PID/task/TID/stat).

// statCPU returns the utime+stime of a /proc stat file in seconds, and
// with children also the cutime+cstime of the children it has reaped.
func statCPU(path string, children bool) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime, stime, cutime, cstime are 14-17.
	if len(f) < 15 {
		return 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	n := 2
	if children {
		n = 4
	}
	var ticks float64
	for _, s := range f[11 : 11+n] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		ticks += v
	}
	return ticks / clockTicks, nil
}

// readPIDFile returns the number on the first line of a pid file.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

// childPIDs returns the children of process pid.
func childPIDs(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, s := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// treeCPU is the CPU time of process pid, of the children it has reaped and
// of its live children.
func treeCPU(pid int) (float64, error) {
	kids, err := childPIDs(pid)
	if err != nil {
		return 0, err
	}
	total, err := statCPU(fmt.Sprintf("/proc/%d/stat", pid), true)
	if err != nil {
		return 0, err
	}
	for _, k := range kids {
		// A child that has just exited is in the parent's cutime once
		// reaped; until then its own stat still has its times.
		if v, err := statCPU(fmt.Sprintf("/proc/%d/stat", k), false); err == nil {
			total += v
		}
	}
	return total, nil
}

// thread is a server thread or process that streams the log to a reader.
type thread struct {
	// key names the session: a new session on a reused thread is a new
	// key.
	key string
	// stat is its /proc stat file.
	stat string
}

// streamMeter follows the log-streaming threads of a server while a drain
// runs, and sums the CPU they used from their start (or from the meter's
// start, for a thread a server reuses) until stop.
type streamMeter struct {
	list   func() ([]thread, error)
	close  func()             // after the last list, if not nil
	base   map[string]float64 // stat file -> CPU when the meter started; reused threads only
	ignore map[string]bool    // sessions that were streaming before the meter started

	mu      sync.Mutex
	tracked map[string]*tracked
	err     error

	quit, done chan struct{}
}

type tracked struct {
	stat        string
	first, last float64
}

// meterInterval is how often a streamMeter looks for threads and reads
// their CPU time. A thread that ends on its own (a walsender whose client
// has gone) loses at most this much of its last work.
const meterInterval = 10 * time.Millisecond

// startStreamMeter starts following the threads list returns. base gives,
// for servers that reuse threads, each thread's CPU time before the meter
// started; a session first seen on a thread not in it started at zero.
func startStreamMeter(list func() ([]thread, error), base map[string]float64) (*streamMeter, error) {
	m := &streamMeter{list: list, base: base, ignore: map[string]bool{}, tracked: map[string]*tracked{},
		quit: make(chan struct{}), done: make(chan struct{})}
	before, err := list()
	if err != nil {
		return nil, err
	}
	for _, t := range before {
		m.ignore[t.key] = true
	}
	go func() {
		defer close(m.done)
		t := time.NewTicker(meterInterval)
		defer t.Stop()
		for {
			m.sample()
			select {
			case <-t.C:
			case <-m.quit:
				return
			}
		}
	}()
	return m, nil
}

func (m *streamMeter) sample() {
	ts, err := m.list()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.err == nil {
			m.err = err
		}
		return
	}
	for _, t := range ts {
		if m.ignore[t.key] {
			continue
		}
		tr := m.tracked[t.key]
		if tr == nil {
			tr = &tracked{stat: t.stat, first: m.base[t.stat]}
			m.tracked[t.key] = tr
		}
		if v, err := statCPU(t.stat, false); err == nil {
			tr.last = v
		}
	}
}

// stop reads every thread it followed once more, if it is still there,
// and returns the CPU seconds they used and how many sessions they were.
func (m *streamMeter) stop() (float64, int, error) {
	close(m.quit)
	<-m.done
	if m.close != nil {
		defer m.close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return 0, 0, m.err
	}
	var total float64
	for _, tr := range m.tracked {
		if v, err := statCPU(tr.stat, false); err == nil && v >= tr.last {
			tr.last = v
		}
		total += max(tr.last-tr.first, 0)
	}
	return total, len(m.tracked), nil
}

// meterStream starts a streamMeter on s, or returns nil and says why not
// on stderr: the figure is then missing, and the rest of the case goes on.
func meterStream(ctx context.Context, s source) *streamMeter {
	m, err := s.streamMeter(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: no server CPU for %s: %v\n", s.Name(), err)
		return nil
	}
	return m
}

// stopMeter stops m and stores its CPU seconds in field.
func stopMeter(m *streamMeter, fields map[string]float64, field string) {
	if m == nil {
		return
	}
	v, n, err := m.stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", field, err)
		return
	}
	if n == 0 {
		fmt.Fprintf(os.Stderr, "bench: %s: no log-streaming session seen\n", field)
		return
	}
	fields[field] = v
}
