package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process whose exit is watched, and whose CPU time and
// memory are read from /proc while it runs and from its rusage once it has
// exited.
type proc struct {
	cmd     *exec.Cmd
	log     *os.File
	started time.Time
	done    chan struct{}
	err     error
}

func watch(cmd *exec.Cmd, log *os.File) *proc {
	p := &proc{cmd: cmd, log: log, started: time.Now(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit by itself; an exit code other than 0
// is an error.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s; killed it\n%s", p.name(), timeout, p.logTail())
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name(), p.err, p.logTail())
	}
	return nil
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(timeout time.Duration) error {
	if p.exited() {
		return p.wait(0)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(timeout)
}

func (p *proc) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) name() string { return p.cmd.Args[0] }

func (p *proc) logTail() string {
	if p.log == nil {
		return ""
	}
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 6000 {
		b = append([]byte("...\n"), b[len(b)-6000:]...)
	}
	return string(b)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// cpu returns the user+system CPU seconds the process has used so far.
func (p *proc) cpu() float64 {
	if p.exited() {
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return tv(ru.Utime) + tv(ru.Stime)
		}
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / clockTicks
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// memMB returns a /proc/PID/status memory figure (VmRSS, VmHWM) in MiB, or
// for an exited process its peak RSS from rusage whatever the key.
func (p *proc) memMB(key string) (float64, error) {
	if p.exited() {
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return float64(ru.Maxrss) / 1024, nil
		}
		return 0, errors.New("no rusage")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, p.cmd.Process.Pid)
}
