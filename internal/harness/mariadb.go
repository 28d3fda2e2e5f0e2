package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
)

// mariadbInstallHint says how to get the MariaDB server binaries.
const mariadbInstallHint = "install MariaDB with `apt-get install -y mariadb-server`"

// mariadbBinDirs are searched after PATH, which for a non-root user often
// lacks the sbin directories.
var mariadbBinDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}

// MariaDBOption configures StartMariaDB.
type MariaDBOption func(*mariadbConfig)

type mariadbConfig struct {
	port  int
	flags []string
}

// MariaDBPort makes the server listen on port instead of a free one. A start
// then fails if the port is taken.
func MariaDBPort(port int) MariaDBOption {
	return func(c *mariadbConfig) { c.port = port }
}

// MariaDBFlags passes extra command-line flags to mariadbd, after the
// defaults, so that a flag such as --binlog-row-metadata=MINIMAL overrides
// the default one. The flags apply to every Start of the server.
func MariaDBFlags(flags ...string) MariaDBOption {
	return func(c *mariadbConfig) { c.flags = append(c.flags, flags...) }
}

// MariaDBServer is a MariaDB server running in its own temporary directory,
// with the binary log on in ROW format with FULL row image and FULL row
// metadata, and server-id 1. Its methods are safe for concurrent use.
type MariaDBServer struct {
	// DSN connects as root, who has no password, over TCP:
	// mysql://root@127.0.0.1:PORT/.
	DSN string
	// Addr is 127.0.0.1:Port.
	Addr string
	// Port is the TCP port on 127.0.0.1. It stays the same across Stop and
	// Start.
	Port int
	// Dir is the temporary directory. It holds the data directory (data, with
	// the binary logs binlog.*), the error log (ErrLogPath) and the socket.
	Dir string
	// Socket is the server's Unix socket.
	Socket string
	// ErrLogPath is the server's error log.
	ErrLogPath string

	mariadbd string
	user     string
	flags    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	closed bool
}

// MariaDB starts a MariaDB server for the test and closes it when the test
// ends. It fails the test if the server cannot be started.
func MariaDB(t testing.TB, opts ...MariaDBOption) *MariaDBServer {
	t.Helper()
	m, err := StartMariaDB(opts...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	return m
}

// StartMariaDB runs mariadb-install-db in a new temporary directory and
// starts mariadbd on a free loopback port, ignoring every option file
// (--no-defaults). It returns once the server accepts connections.
func StartMariaDB(opts ...MariaDBOption) (*MariaDBServer, error) {
	var cfg mariadbConfig
	for _, o := range opts {
		o(&cfg)
	}
	m := &MariaDBServer{flags: cfg.flags}
	var err error
	if m.mariadbd, err = findBinary(mariadbBinDirs, "mariadbd"); err != nil {
		return nil, fmt.Errorf("start mariadb: %w: %s", err, mariadbInstallHint)
	}
	installDB, err := findBinary(mariadbBinDirs, "mariadb-install-db")
	if err != nil {
		return nil, fmt.Errorf("start mariadb: %w: %s", err, mariadbInstallHint)
	}
	// mariadbd refuses to run as root unless told to with --user=root.
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("start mariadb: %w", err)
	}
	m.user = u.Username

	if m.Dir, err = makeTempDir("liberator-mariadb-"); err != nil {
		return nil, fmt.Errorf("start mariadb: %w", err)
	}
	m.Socket = filepath.Join(m.Dir, "sock")
	m.ErrLogPath = filepath.Join(m.Dir, "err.log")
	fail := func(err error) (*MariaDBServer, error) {
		return nil, errors.Join(fmt.Errorf("start mariadb: %w", err), os.RemoveAll(m.Dir))
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// --auth-root-authentication-method=normal gives root@localhost,
	// root@127.0.0.1 and root@::1 an empty password instead of unix_socket
	// authentication, so root can connect over TCP.
	// Each server keeps its temporary files in its own directory: servers
	// installed at the same time otherwise collide in /tmp.
	if err := os.MkdirAll(m.tmpDir(), 0o755); err != nil {
		return fail(err)
	}
	install := exec.CommandContext(ctx, installDB, "--no-defaults", "--user="+m.user,
		"--datadir="+m.dataDir(), "--tmpdir="+m.tmpDir(), "--auth-root-authentication-method=normal", "--skip-test-db")
	install.Dir = m.Dir
	if out, err := install.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("run mariadb-install-db: %w\n%s", err, out))
	}

	for attempt := 1; ; attempt++ {
		m.Port = cfg.port
		if m.Port == 0 {
			if m.Port, err = FreePort(); err != nil {
				return fail(err)
			}
		}
		m.Addr = "127.0.0.1:" + strconv.Itoa(m.Port)
		m.DSN = "mysql://root@" + m.Addr + "/"
		err = m.start()
		if err == nil {
			break
		}
		if cfg.port != 0 || attempt == maxPortAttempts || !fileContains(m.ErrLogPath, "Address already in use", "Bind on TCP/IP port") {
			return fail(err)
		}
		// Another process took the port between FreePort and the bind.
		_ = os.Remove(m.ErrLogPath)
	}
	return m, nil
}

func (m *MariaDBServer) dataDir() string { return filepath.Join(m.Dir, "data") }

func (m *MariaDBServer) tmpDir() string { return filepath.Join(m.Dir, "tmp") }

// start starts mariadbd and waits until it accepts connections over TCP.
func (m *MariaDBServer) start() error {
	args := append([]string{
		"--no-defaults",
		"--user=" + m.user,
		"--datadir=" + m.dataDir(),
		"--tmpdir=" + m.tmpDir(),
		"--socket=" + m.Socket,
		"--pid-file=" + filepath.Join(m.Dir, "pid"),
		"--port=" + strconv.Itoa(m.Port),
		"--bind-address=127.0.0.1",
		"--log-bin=" + filepath.Join(m.dataDir(), "binlog"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--binlog-row-metadata=FULL",
		"--server-id=1",
		"--log-error=" + m.ErrLogPath,
		"--skip-name-resolve",
	}, m.flags...)
	cmd := exec.Command(m.mariadbd, args...)
	cmd.Dir = m.Dir
	// Whatever mariadbd writes before it opens its error log goes there too.
	out, err := os.OpenFile(m.ErrLogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = serverSysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run mariadbd: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := client.ConnectWithTimeout(m.Addr, "root", "", "", time.Second)
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return errors.Join(
				fmt.Errorf("mariadbd did not accept connections on %s within %s: %w\n%s", m.Addr, startTimeout, err, logFailure(m.ErrLogPath)),
				m.kill())
		}
		select {
		case <-exited:
			return fmt.Errorf("mariadbd exited during start-up (%v)\n%s", cmd.ProcessState, logFailure(m.ErrLogPath))
		case <-tick.C:
		}
	}
}

// running reports whether the server process is alive.
func (m *MariaDBServer) running() bool {
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// kill stops the server with SIGTERM, then SIGKILL, and waits for it to exit.
func (m *MariaDBServer) kill() error {
	if !m.running() {
		return nil
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
		return nil
	case <-time.After(startTimeout):
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	return fmt.Errorf("mariadbd did not stop within %s of SIGTERM; killed it", startTimeout)
}

// Connect opens a connection as root over TCP, with no default database.
func (m *MariaDBServer) Connect(ctx context.Context) (*client.Conn, error) {
	conn, err := client.ConnectWithContext(ctx, m.Addr, "root", "", "", startTimeout)
	if err != nil {
		return nil, fmt.Errorf("connect to mariadb on %s: %w", m.Addr, err)
	}
	return conn, nil
}

// Exec runs one SQL statement on a new connection. With args it runs as a
// prepared statement. If ctx ends first, the connection is closed, which
// makes the statement fail.
func (m *MariaDBServer) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := m.Connect(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	_, err = conn.Execute(sql, args...)
	if !stop() {
		// The connection was closed under the statement.
		return fmt.Errorf("exec %q: %w", abbreviate(sql), errors.Join(ctx.Err(), err))
	}
	if err != nil {
		err = fmt.Errorf("exec %q: %w", abbreviate(sql), err)
	}
	return errors.Join(err, conn.Close())
}

// Stop shuts the server down and waits until the process has exited.
// Stopping a stopped server does nothing.
//
// It sends the SHUTDOWN statement, which does what mariadb-admin shutdown
// does, and then waits on the process itself: mariadb-admin polls for the
// server's exit once a second, which made every stop take a second.
func (m *MariaDBServer) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stop()
}

func (m *MariaDBServer) stop() error {
	if !m.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	conn, err := client.ConnectWithContext(ctx, m.Socket, "root", "", "", startTimeout)
	if err != nil {
		return errors.Join(fmt.Errorf("stop mariadb on %s: connect to %s: %w", m.Addr, m.Socket, err), m.kill())
	}
	_, err = conn.Execute("SHUTDOWN")
	_ = conn.Close()
	select {
	case <-m.exited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop mariadb on %s: mariadbd still runs %s after SHUTDOWN (%v)\n%s", m.Addr, startTimeout, err, logFailure(m.ErrLogPath))
	}
}

// Start starts a stopped server again on the same port and data directory,
// and waits until it accepts connections. Starting a running server does
// nothing.
func (m *MariaDBServer) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("start mariadb: server is closed")
	}
	if m.running() {
		return nil
	}
	if err := m.start(); err != nil {
		return fmt.Errorf("start mariadb: %w", err)
	}
	return nil
}

// Close stops the server, if it runs, and removes Dir. It may be called more
// than once.
func (m *MariaDBServer) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	err := m.stop()
	if err != nil {
		// Dir goes away below; make sure no server is left writing to it.
		err = errors.Join(err, m.kill())
	}
	if err != nil {
		return fmt.Errorf("close mariadb: %w", err)
	}
	if err := os.RemoveAll(m.Dir); err != nil {
		return fmt.Errorf("close mariadb: %w", err)
	}
	return nil
}
