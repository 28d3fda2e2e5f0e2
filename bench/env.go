package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/liberator-cdc/liberator/internal/harness"
)

// env is what every case shares: the built binaries, a scratch directory,
// the registry and the database servers.
type env struct {
	root    string // repository root
	dir     string // scratch: binaries, configs, logs
	rows    int64
	profile bool
	commit  string
	// compression is kafka.compression for liberator and -compression for
	// the bare pipelines (KAFKA_COMPRESSION; default none, liberator's).
	compression string
	// baselines is false under BASELINES=0: snapshot and drain cases run
	// liberator alone.
	baselines bool

	liberator, bare, broker string

	reg       *harness.RegistryServer
	sources   map[string]source
	supported map[string]supportAnswer
}

func newEnv(ctx context.Context, rows int64, profile bool) (*env, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "liberator-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{root: root, dir: dir, rows: rows, profile: profile, sources: map[string]source{}, supported: map[string]supportAnswer{},
		compression: "none", baselines: os.Getenv("BASELINES") != "0"}
	if v := os.Getenv("KAFKA_COMPRESSION"); v != "" {
		if !slices.Contains([]string{"none", "gzip", "snappy", "lz4", "zstd"}, v) {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("KAFKA_COMPRESSION=%q is not one of none, gzip, snappy, lz4, zstd", v)
		}
		e.compression = v
	}
	if out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output(); err == nil {
		e.commit = strings.TrimSpace(string(out))
	}
	builds := []struct {
		dst *string
		pkg string
	}{
		{&e.liberator, "./cmd/liberator"},
		{&e.bare, "./bench/bare"},
		{&e.broker, "./bench/kfakebroker"},
	}
	for _, b := range builds {
		*b.dst = filepath.Join(dir, filepath.Base(b.pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *b.dst, b.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			e.Close()
			return nil, fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
		}
	}
	if e.reg, err = harness.StartRegistry(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close stops the servers and removes the scratch directory.
func (e *env) Close() {
	for _, s := range e.sources {
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	e.sources = map[string]source{}
	if e.reg != nil {
		e.reg.Close()
	}
	if e.dir != "" {
		if os.Getenv("BENCH_KEEP") == "1" {
			fmt.Fprintf(os.Stderr, "bench: logs and configs kept in %s\n", e.dir)
		} else {
			os.RemoveAll(e.dir)
		}
	}
}

func (e *env) source(ctx context.Context, name string) (source, error) {
	if s := e.sources[name]; s != nil {
		return s, nil
	}
	var s source
	var err error
	switch name {
	case "postgres":
		s, err = startPG(ctx, e)
	case "mariadb":
		s, err = startMariaDB(ctx, e)
	default:
		err = fmt.Errorf("unknown source %q", name)
	}
	if err != nil {
		return nil, err
	}
	e.sources[name] = s
	return s, nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/liberator-cdc/liberator\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the liberator repository (go run ./bench)")
		}
		dir = parent
	}
}

// broker is a kfakebroker process.
type broker struct {
	addr string
	proc *proc
}

// startBroker starts a fresh, empty broker.
func (e *env) startBroker(ctx context.Context) (*broker, error) {
	cmd := exec.Command(e.broker, "-port", "0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp(e.dir, "kfake-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start kfakebroker: %w", err)
	}
	p := watch(cmd, logf)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		addr, found := strings.CutPrefix(l, "listening ")
		if !ok || !found {
			p.kill()
			return nil, fmt.Errorf("kfakebroker did not start: %q\n%s", l, p.logTail())
		}
		return &broker{addr: addr, proc: p}, nil
	case <-time.After(30 * time.Second):
		p.kill()
		return nil, errors.New("kfakebroker did not start within 30s")
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

// stop ends the broker and frees everything it held.
func (b *broker) stop() {
	if b == nil {
		return
	}
	if err := b.proc.stop(30 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "bench: kfakebroker: %v\n", err)
	}
}

// writeConfig writes a liberator config for source s reading table, and
// returns its path and the admin listener's address. extra are top-level
// YAML lines added at the end.
func (e *env) writeConfig(s source, brokerAddr, table, mode string, extra ...string) (path, admin string, err error) {
	port, err := harness.FreePort()
	if err != nil {
		return "", "", err
	}
	admin = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`name: bench
source:
%s
snapshot:
  mode: %s
kafka:
  brokers: [%s]
  topic_prefix: %s
  compression: %s%s
registry:
  url: %s
http:
  listen: %s
log:
  level: info
`, s.configSection(table), mode, brokerAddr, topicPrefix, e.compression, lingerYAML(), e.reg.URL, admin)
	for _, l := range extra {
		cfg += l + "\n"
	}
	f, err := os.CreateTemp(e.dir, "liberator-*.yaml")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	if _, err := f.WriteString(cfg); err != nil {
		return "", "", err
	}
	return f.Name(), admin, nil
}

// lingerYAML sets kafka.linger from KAFKA_LINGER (a Go duration), if given.
func lingerYAML() string {
	if v := os.Getenv("KAFKA_LINGER"); v != "" {
		return "\n  linger: " + v
	}
	return ""
}

// topicPrefix is the kafka.topic_prefix of every liberator run.
const topicPrefix = "lib"

// startLiberator runs bin (the liberator binary) with
// `command --config cfg` and the extra arguments.
func (e *env) startLiberator(bin, command, cfg string, extra ...string) (*proc, error) {
	logf, err := os.CreateTemp(e.dir, "liberator-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{command, "--config", cfg}, extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	return watch(cmd, logf), nil
}

// liberatorSupports reports whether the liberator binary accepts a config
// for s, and if not, why: `liberator check` exits 2 on a config it cannot
// use.
func (e *env) liberatorSupports(ctx context.Context, s source) (bool, string) {
	cfg, _, err := e.writeConfig(s, "127.0.0.1:9", snapshotTable, "never")
	if err != nil {
		return false, err.Error()
	}
	cmd := exec.CommandContext(ctx, e.liberator, "check", "--config", cfg)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndex(msg, ": "); i >= 0 && strings.Contains(msg, "source.kind") {
			msg = msg[strings.Index(msg, "source.kind"):]
		}
		return false, strings.Join(strings.Fields(msg), " ")
	}
	return true, ""
}
