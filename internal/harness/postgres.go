package harness

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// pgInstallHint says how to get the PostgreSQL server binaries.
const pgInstallHint = "install PostgreSQL 15 with `apt-get install -y postgresql`, or set LIBERATOR_PG_BINDIR to the directory that holds initdb, pg_ctl and postgres"

// PostgresOption configures StartPostgres.
type PostgresOption func(*pgConfig)

type pgConfig struct {
	port     int
	settings [][2]string
}

// PostgresPort makes the server listen on port instead of a free one. A start
// then fails if the port is taken.
func PostgresPort(port int) PostgresOption {
	return func(c *pgConfig) { c.port = port }
}

// PostgresSetting passes -c name=value to the server, after the defaults
// (wal_level=logical, max_replication_slots=10, max_wal_senders=10,
// fsync=off), so it can override them.
func PostgresSetting(name, value string) PostgresOption {
	return func(c *pgConfig) { c.settings = append(c.settings, [2]string{name, value}) }
}

// PostgresServer is a PostgreSQL server running in its own temporary
// directory. Its methods are safe for concurrent use.
type PostgresServer struct {
	// DSN connects as the superuser postgres to the database postgres over
	// TCP, without TLS.
	DSN string
	// Port is the TCP port on 127.0.0.1. It stays the same across Stop and
	// Start.
	Port int
	// Dir is the temporary directory. It holds the data directory (data), the
	// server log (LogPath) and the Unix socket.
	Dir string
	// LogPath is the server log.
	LogPath string
	// BinDir holds the PostgreSQL binaries in use.
	BinDir string

	settings [][2]string
	runAs    string // user to run the binaries as; "" for the current user

	mu      sync.Mutex
	running bool
	closed  bool
}

// Postgres starts a PostgreSQL server for the test and closes it when the
// test ends. It fails the test if the server cannot be started.
func Postgres(t testing.TB, opts ...PostgresOption) *PostgresServer {
	t.Helper()
	p, err := StartPostgres(opts...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("harness: %v", err)
		}
	})
	return p
}

// StartPostgres initialises a cluster in a new temporary directory and starts
// it on a free loopback port with wal_level=logical, max_replication_slots=10,
// max_wal_senders=10 and fsync=off. When run as root it runs the server as
// the user postgres, since PostgreSQL refuses to run as root.
//
// It looks for the binaries in LIBERATOR_PG_BINDIR, then in
// /usr/lib/postgresql/15/bin, then in the newest /usr/lib/postgresql/*/bin,
// then in PATH.
func StartPostgres(opts ...PostgresOption) (*PostgresServer, error) {
	var cfg pgConfig
	for _, o := range opts {
		o(&cfg)
	}
	binDir, err := findPgBinDir()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p := &PostgresServer{BinDir: binDir, settings: cfg.settings}

	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("start postgres: look up user postgres (PostgreSQL refuses to run as root; the Debian package creates this user: %s): %w", pgInstallHint, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		p.runAs = "postgres"
	}

	p.Dir, err = makeTempDir("liberator-pg-")
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	p.LogPath = filepath.Join(p.Dir, "log")
	fail := func(err error) (*PostgresServer, error) {
		return nil, errors.Join(fmt.Errorf("start postgres: %w", err), os.RemoveAll(p.Dir))
	}
	if uid >= 0 {
		if err := os.Chown(p.Dir, uid, gid); err != nil {
			return fail(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	initdb := p.command(ctx, "initdb", "-D", p.dataDir(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("run initdb: %w\n%s", err, out))
	}

	for attempt := 1; ; attempt++ {
		p.Port = cfg.port
		if p.Port == 0 {
			if p.Port, err = FreePort(); err != nil {
				return fail(err)
			}
		}
		err = p.start()
		if err == nil {
			break
		}
		if cfg.port != 0 || attempt == maxPortAttempts || !fileContains(p.LogPath, "could not bind") {
			return fail(err)
		}
		// Another process took the port between FreePort and the bind.
		_ = os.Remove(p.LogPath)
	}
	p.DSN = p.DSNFor("postgres")
	return p, nil
}

func findPgBinDir() (string, error) {
	has := func(dir string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if d := os.Getenv("LIBERATOR_PG_BINDIR"); d != "" {
		if !has(d) {
			return "", fmt.Errorf("LIBERATOR_PG_BINDIR=%s does not hold initdb, pg_ctl and postgres", d)
		}
		return d, nil
	}
	if d := "/usr/lib/postgresql/15/bin"; has(d) {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	// Debian puts wrappers, not the server binaries, in /usr/bin, so PATH is
	// the last resort.
	if initdb, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(initdb)) {
		return filepath.Dir(initdb), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in /usr/lib/postgresql/*/bin or PATH: %s", pgInstallHint)
}

func (p *PostgresServer) dataDir() string { return filepath.Join(p.Dir, "data") }

// command builds a command that runs the PostgreSQL binary name as the server
// user, in Dir.
func (p *PostgresServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	bin := filepath.Join(p.BinDir, name)
	var cmd *exec.Cmd
	if p.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.runAs, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// The server user may not be able to enter the caller's directory.
	cmd.Dir = p.Dir
	return cmd
}

// start runs pg_ctl start, which waits until the server accepts connections.
func (p *PostgresServer) start() error {
	serverOpts := []string{
		"-p", strconv.Itoa(p.Port),
		"-k", shellQuote(p.Dir),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "wal_level=logical",
		"-c", "max_replication_slots=10",
		"-c", "max_wal_senders=10",
		"-c", "fsync=off",
	}
	for _, s := range p.settings {
		serverOpts = append(serverOpts, "-c", shellQuote(s[0]+"="+s[1]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := p.command(ctx, "pg_ctl", "-D", p.dataDir(), "-l", p.LogPath, "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds())), "-o", strings.Join(serverOpts, " "), "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("run pg_ctl start on port %d: %w\n%s\n%s", p.Port, err, out, logFailure(p.LogPath))
	}
	p.running = true
	return nil
}

// shellQuote quotes s for the shell that pg_ctl passes -o through.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DSNFor returns a DSN that connects as postgres to the database db.
func (p *PostgresServer) DSNFor(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     "127.0.0.1:" + strconv.Itoa(p.Port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates the database name and returns a DSN for it.
func (p *PostgresServer) CreateDatabase(name string) (dsn string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := p.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %q: %w", name, err)
	}
	return p.DSNFor(name), nil
}

// Connect opens a connection to the database postgres as postgres.
func (p *PostgresServer) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres on port %d: %w", p.Port, err)
	}
	return conn, nil
}

// Exec runs one SQL statement (or, without args, several separated by
// semicolons) in the database postgres on a new connection.
func (p *PostgresServer) Exec(ctx context.Context, sql string, args ...any) error {
	conn, err := p.Connect(ctx)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, sql, args...)
	if err != nil {
		err = fmt.Errorf("exec %q: %w", abbreviate(sql), err)
	}
	return errors.Join(err, conn.Close(ctx))
}

// Stop stops the server with pg_ctl stop -m fast and waits until it is down.
// Stopping a stopped server does nothing.
func (p *PostgresServer) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop("fast")
}

func (p *PostgresServer) stop(mode string) error {
	if !p.running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := p.command(ctx, "pg_ctl", "-D", p.dataDir(), "-m", mode, "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds())), "stop")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("stop postgres on port %d: run pg_ctl stop -m %s: %w\n%s\n%s", p.Port, mode, err, out, logFailure(p.LogPath))
	}
	p.running = false
	return nil
}

// Start starts a stopped server again on the same port and data directory.
// Starting a running server does nothing.
func (p *PostgresServer) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("start postgres: server is closed")
	}
	if p.running {
		return nil
	}
	if err := p.start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	return nil
}

// Close stops the server, if it runs, and removes Dir. It may be called more
// than once.
func (p *PostgresServer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	err := p.stop("fast")
	if err != nil {
		// Dir goes away below; make sure no server is left writing to it.
		err = errors.Join(err, p.stop("immediate"))
	}
	if err != nil {
		return fmt.Errorf("close postgres: %w", err)
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		return fmt.Errorf("close postgres: %w", err)
	}
	return nil
}

// abbreviate shortens a SQL statement for an error message.
func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 80 {
		return sql[:77] + "..."
	}
	return sql
}
