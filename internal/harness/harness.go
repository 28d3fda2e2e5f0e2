// Package harness starts throwaway servers for integration tests and
// benchmarks: a real PostgreSQL and a real MariaDB, each in its own temporary
// directory on a free loopback port, plus an in-process Kafka (kfake) and
// schema registry (srfake).
//
// Every Start function returns a handle whose Close stops the server and
// removes what it wrote. The test helpers (Postgres, MariaDB, Kafka, Registry)
// call Close through t.Cleanup and fail the test, never skip it, when a server
// cannot be started; the message says what to install.
//
// Waiting is always on a condition with a deadline: pg_ctl -w for PostgreSQL,
// a successful connection for MariaDB.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startTimeout bounds how long a server may take to start or to stop.
const startTimeout = 60 * time.Second

// maxPortAttempts is how many free ports a server start tries before giving
// up. A port found by FreePort can be taken by another process before the
// server binds it.
const maxPortAttempts = 3

// FreePort returns a TCP port on 127.0.0.1 that was free at the time of the
// call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinary returns the path of the first of names found in PATH or in one of
// dirs.
func findBinary(dirs []string, names ...string) (string, error) {
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found in PATH or in %s", strings.Join(names, " or "), strings.Join(dirs, ", "))
}

// makeTempDir makes a temporary directory whose path is short enough for a
// Unix socket inside it (sun_path holds 107 bytes) and which other local users
// can traverse, so that a server running as another user can reach it.
func makeTempDir(prefix string) (string, error) {
	base := os.TempDir()
	if len(base) > 60 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, prefix)
	if err != nil {
		return "", fmt.Errorf("make temp dir: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", errors.Join(fmt.Errorf("make temp dir: %w", err), os.RemoveAll(dir))
	}
	return dir, nil
}

// tail returns the last n lines of the file at path, or a note saying why it
// could not be read.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	// Logs of a failed start are small; read at most the last 64 KiB.
	if fi, err := f.Stat(); err == nil && fi.Size() > 64<<10 {
		_, _ = f.Seek(-64<<10, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// logFailure formats the tail of a server log for an error message.
func logFailure(path string) string {
	return fmt.Sprintf("last lines of %s:\n%s", path, tail(path, 30))
}

// fileContains reports whether the file at path contains any of subs.
func fileContains(path string, subs ...string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range subs {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
