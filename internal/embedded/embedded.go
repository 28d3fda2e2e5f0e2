// Package embedded runs an in-process Kafka broker (kfake) and schema
// registry (srfake) for kafka.brokers: [embedded] and registry.url:
// embedded. They are a single-process broker and registry for trying
// liberator out and for development, never for production.
//
// Without kafka.embedded.data_dir they keep nothing across runs (the
// broker's log is in a temporary directory, the registry in memory): every
// run starts with an empty broker, so it starts over with a snapshot into
// new topics (see StartsOver). With a data dir the broker keeps its topics, the
// offsets topic among them, in <data_dir>/kafka (kfake.DataDir), and the
// registry journals the requests that changed it in <data_dir>/registry,
// so that a restart resumes from the stored position and every schema keeps
// its id.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/liberator-cdc/liberator/config"
)

// Env holds the in-process broker and registry of embedded mode.
type Env struct {
	cluster *kfake.Cluster
	reg     *registry
	srv     *http.Server
	lock    *os.File
	// tmp is the broker's temporary directory without a data dir, locked
	// by tmpLock and removed at Close.
	tmp     string
	tmpLock *os.File
	stop    context.CancelFunc
	done    chan struct{}
	fresh   bool
}

// Start starts what cfg asks for and points cfg at it: kafka.brokers at the
// broker's address, registry.url at the registry's. With a data dir it
// holds the directory's lock until Close: one process at a time may use it.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger) (_ *Env, err error) {
	e := &Env{done: make(chan struct{})}
	close(e.done)
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	dir := cfg.Embedded.DataDir
	if dir != "" && (cfg.EmbeddedBroker() || cfg.EmbeddedRegistry()) {
		if e.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	if cfg.EmbeddedBroker() {
		if err := e.startBroker(ctx, cfg, dir, log); err != nil {
			return nil, err
		}
	}
	if cfg.EmbeddedRegistry() {
		if err := e.startRegistry(ctx, cfg, dir, log); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Env) startBroker(ctx context.Context, cfg *config.Config, dir string, log *slog.Logger) error {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{
		"log.cleaner.backoff.ms": strconv.FormatInt(brokerBackoff.Milliseconds(), 10),
	})}
	e.fresh = true
	kdir := filepath.Join(dir, "kafka")
	if dir == "" {
		// Without a data dir the log still goes to files, in a directory
		// of its own that Close removes: kept in memory, it would be part
		// of the Go heap, and memory_limit (the runtime's soft limit)
		// would have the garbage collector run all the time.
		tmp, lock, err := tempDir(log)
		if err != nil {
			return fmt.Errorf("kafka.brokers: start the embedded broker: %w", err)
		}
		e.tmp, e.tmpLock = tmp, lock
		kdir = filepath.Join(tmp, "kafka")
	} else if _, err := os.Stat(filepath.Join(kdir, "meta.json")); err == nil {
		e.fresh = false
	}
	opts = append(opts, kfake.DataDir(kdir))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if dir != "" {
			return fmt.Errorf("kafka.embedded.data_dir: start the embedded broker from %q: %w (move the directory away to start over)", dir, err)
		}
		return fmt.Errorf("kafka.brokers: start the embedded broker: %w", err)
	}
	e.cluster = c
	p, err := newPacer(c, log)
	if err != nil {
		return fmt.Errorf("kafka.brokers: start the embedded broker: %w", err)
	}
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stop, e.done = stop, make(chan struct{})
	go func() {
		defer close(e.done)
		p.run(pctx)
	}()
	cfg.Kafka.Brokers = c.ListenAddrs()
	const notProd = "embedded Kafka broker started: a single-process broker for trying liberator out and for development, not for production"
	switch {
	case dir == "":
		log.Warn(notProd+"; it keeps its topics only while it runs, so each run starts over with a snapshot (set kafka.embedded.data_dir to keep them)", "brokers", c.ListenAddrs())
	case e.fresh:
		log.Warn(notProd+"; it keeps its topics and positions in kafka.embedded.data_dir, which is new", "brokers", c.ListenAddrs(), "data_dir", dir)
	default:
		log.Warn(notProd+"; its topics and positions are those kept in kafka.embedded.data_dir", "brokers", c.ListenAddrs(), "data_dir", dir)
	}
	return nil
}

func (e *Env) startRegistry(ctx context.Context, cfg *config.Config, dir string, log *slog.Logger) error {
	rdir := ""
	if dir != "" {
		rdir = filepath.Join(dir, "registry")
	}
	reg, err := openRegistry(rdir)
	if err != nil {
		return fmt.Errorf("kafka.embedded.data_dir: %w", err)
	}
	e.reg = reg
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("registry.url: start the embedded registry: %w", err)
	}
	e.srv = &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("embedded registry stopped", "error", err)
		}
	}()
	cfg.Registry.URL = "http://" + ln.Addr().String()
	if rdir == "" {
		log.Warn("embedded schema registry started: for trying liberator out and for development, not for production; it keeps its schemas in memory", "url", cfg.Registry.URL)
	} else {
		log.Warn("embedded schema registry started: for trying liberator out and for development, not for production; it keeps its schemas and their ids in kafka.embedded.data_dir", "url", cfg.Registry.URL, "data_dir", dir)
	}
	return nil
}

// StartsOver reports whether the embedded broker started empty: without a
// data dir, or with a new one. No position can be stored in it, yet the
// source's server may keep a stream from an earlier run (a PostgreSQL
// replication slot), whose Kafka is gone with that run: see
// connectors.ErrStreamWithoutPosition.
func (e *Env) StartsOver() bool { return e.cluster != nil && e.fresh }

// Close stops the embedded broker and registry, which then save what they
// keep in the data dir, and lets the data dir go.
func (e *Env) Close() {
	if e.srv != nil {
		_ = e.srv.Close()
	}
	if e.stop != nil {
		e.stop()
	}
	<-e.done
	if e.cluster != nil {
		e.cluster.Close()
	}
	if e.reg != nil {
		_ = e.reg.close()
	}
	if e.lock != nil {
		_ = e.lock.Close()
	}
	if e.tmp != "" {
		_ = os.RemoveAll(e.tmp)
		_ = e.tmpLock.Close()
	}
}

// tempPattern names the temporary directories of the embedded broker.
const tempPattern = "liberator-embedded-*"

// tempDir makes and locks a temporary directory for the broker's log. It
// first removes those that earlier processes left when they were killed:
// the ones whose lock nobody holds.
func tempDir(log *slog.Logger) (string, *os.File, error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPattern))
	for _, d := range old {
		if f, err := lockDir(d); err == nil {
			if err := os.RemoveAll(d); err == nil {
				log.Info("removed the embedded broker's directory that a killed liberator left", "dir", d)
			}
			_ = f.Close()
		}
	}
	d, err := os.MkdirTemp("", tempPattern)
	if err != nil {
		return "", nil, err
	}
	f, err := lockDir(d)
	if err != nil {
		_ = os.RemoveAll(d)
		return "", nil, err
	}
	return d, f, nil
}

// CheckDataDir reports whether dir can be the data dir of this process: it
// can be created and locked, so no other liberator holds it. It holds the
// lock only while it checks.
func CheckDataDir(dir string) error {
	f, err := lockDir(dir)
	if err != nil {
		return err
	}
	return f.Close()
}

// lockDir creates dir if missing and takes its lock, which the process
// holds until it closes the file or exits, however it exits.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("kafka.embedded.data_dir: create %q: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("kafka.embedded.data_dir: open the lock of %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("kafka.embedded.data_dir: %q is in use by another liberator process (stop it first: one process at a time may use a data dir)", dir)
		}
		return nil, fmt.Errorf("kafka.embedded.data_dir: lock %q: %w", dir, err)
	}
	return f, nil
}
