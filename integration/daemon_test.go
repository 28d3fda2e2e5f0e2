package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is liberator running as a child process, as in production, so that
// it can be killed with SIGKILL.
type daemon struct {
	t    testing.TB
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// writeConfig writes a config file into the test's temp dir.
func writeConfig(t testing.TB, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "liberator.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startDaemon runs `liberator <command> --config cfg`.
func startDaemon(t testing.TB, command, cfg string) *daemon {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "liberator-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, command, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (a -timeout panic), the daemon dies with it
	// instead of running on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start liberator: %v", err)
	}
	d := &daemon{t: t, cmd: cmd, log: logf.Name(), done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("liberator log (%s):\n%s", command, d.logTail())
		}
	})
	return d
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	s := string(b)
	if len(s) > 8000 {
		s = "...\n" + s[len(s)-8000:]
	}
	return s
}

// kill sends SIGKILL and waits for the process to go.
func (d *daemon) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// stop sends SIGTERM and returns the exit code, failing the test if the
// process does not exit within the timeout.
func (d *daemon) stop(timeout time.Duration) int {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	return d.wait(timeout)
}

// wait waits for the process to exit by itself and returns its exit code.
func (d *daemon) wait(timeout time.Duration) int {
	d.t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		d.t.Fatalf("liberator did not exit within %s; log:\n%s", timeout, d.logTail())
	}
	var ee *exec.ExitError
	if errors.As(d.err, &ee) {
		return ee.ExitCode()
	}
	if d.err != nil {
		d.t.Fatalf("liberator: %v", d.err)
	}
	return 0
}

// exited reports whether the process has exited.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// logContains reports whether the log has s.
func (d *daemon) logContains(s string) bool {
	b, _ := os.ReadFile(d.log)
	return strings.Contains(string(b), s)
}
