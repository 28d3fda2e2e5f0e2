package mysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
)

// Errors that Open and Read return, for errors.Is.
var (
	// ErrServerConfig is wrapped by Open's error when the server's binary
	// log cannot serve change data capture (binlog_format, binlog_row_image,
	// binlog_row_metadata, log_bin). The message names each variable, the
	// value found and the fix.
	ErrServerConfig = errors.New("the server's binary log cannot serve change data capture")
	// ErrTableNotFound is wrapped when a configured table does not exist or
	// the user cannot see it.
	ErrTableNotFound = errors.New("table not found")
	// ErrNoPrimaryKey is wrapped when a configured table has no primary key:
	// its rows have no key for a compacted topic.
	ErrNoPrimaryKey = errors.New("table has no primary key")
	// ErrBinlogLost is wrapped when the server no longer has the binary log
	// at the resume position (it was purged, or the GTID is unknown):
	// changes since that position cannot be read, and a new snapshot is
	// needed.
	ErrBinlogLost = errors.New("binary log at the resume position is gone")
)

const (
	// maxBatch caps the changes in one batch; Config.Memory caps its
	// bytes. A huge transaction or table streams through in batches.
	maxBatch = 4096
	// eventCacheCount caps the events go-mysql reads ahead of Read.
	// go-mysql's default (10,240) let memory reach hundreds of MB. The
	// rows events among them are bounded by bytes too (eventBudget).
	eventCacheCount = 256
	// heartbeatPeriod is how often an idle server sends a heartbeat;
	// readTimeout declares the connection dead after missing a few.
	heartbeatPeriod = 10 * time.Second
	readTimeout     = 3 * heartbeatPeriod
	// idleCheckpoint is how often a checkpoint without changes is returned
	// while only uncaptured tables change, so that the acknowledged position
	// keeps up with the binary log.
	idleCheckpoint = time.Second
	// replicaHostname is what the binlog connection registers as.
	replicaHostname = "liberator"
)

// Source reads changes from MySQL or MariaDB. Create it with New.
type Source struct {
	cfg     Config
	dsn     dsn
	log     *slog.Logger
	tracked atomic.Pointer[trackedTables] // database -> table (discover.go)

	// ctx lives from Open to Close; goroutines and the binlog stream run
	// under it.
	ctx    context.Context
	cancel context.CancelFunc

	meta       *client.Conn // metadata queries, from Open and Read
	setup      serverSetup
	collations map[uint64]string
	start      Position // where streaming begins

	snap     *initialSnapshot // set while a snapshot is read
	snaps    snapshots        // snapshot progress and requests (chunked.go)
	inc      incremental
	finished bool // a snapshot-only run has returned its last batch
	// announceStart is set when Open chose the end of the binary log as the
	// start (snapshot mode never, nothing stored): the first Read returns it
	// as a checkpoint.
	announceStart bool
	failed        error // a snapshot or the stream failed; Read returns this from then on
	// discover is the look for new tables of Config.Patterns; the stream
	// goroutine owns it.
	discover discovery
	// engines caches whether a table's engine rolls back (xa.go); the
	// stream goroutine owns it.
	engines map[tableName]bool

	// The stream goroutine (streamLoop) owns syncer, stream, st, snaps and
	// inc once it runs; Read takes its batches from results.
	syncer     *replication.BinlogSyncer
	stream     *replication.BinlogStreamer
	st         streamState
	results    chan streamResult
	streamDone chan struct{} // closed when the stream goroutine returns

	// batchBytes is the most bytes (Change.Size) of changes in a batch,
	// from Config.Memory.
	batchBytes int64
	// events bounds the bytes of the rows events the binlog reader has
	// decoded ahead of the stream goroutine; one per binlog connection.
	events *eventBudget
	// plans are the row plans of the table maps the binlog reader meets
	// (rowimage.go).
	plans rowPlans

	ackMu sync.Mutex
	acked Position

	closeOnce sync.Once
	closeErr  error
}

var _ connectors.Source = (*Source)(nil)

// New validates cfg and returns a Source. It does no input/output beyond
// reading the files of cfg.TLS.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	tc, err := cfg.TLS.Load("source.mysql.tls")
	if err != nil {
		return nil, err
	}
	d, _ := parseDSN(cfg.DSN)
	d = d.withTLS(tc)
	s := &Source{
		cfg: cfg,
		dsn: d,
		log: cfg.Logger.With("source", cfg.Flavor),
		// At most streamAhead batches wait in results, one is being
		// read and one is with the pipeline.
		batchBytes: cfg.Memory.BatchBytes(streamAhead),
	}
	s.tracked.Store(&trackedTables{})
	named := make([]tableName, 0, len(cfg.Tables))
	for _, t := range cfg.Tables {
		tn, _ := parseTableName(t)
		named = append(named, tn)
	}
	s.track(named...)
	return s, nil
}

// Open connects, refuses a server whose binary log lacks what liberator
// needs, checks every table, and decides where streaming starts: at resume
// if given, else after a snapshot (SnapshotInitial, SnapshotOnly) or at the
// end of the binary log (SnapshotNever).
func (s *Source) Open(ctx context.Context, resume []byte) error {
	return retryableIfConnLost(s.open(ctx, resume))
}

func (s *Source) open(ctx context.Context, resume []byte) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var from *Position
	if resume != nil {
		p, err := ParsePosition(resume)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		from = &p
	}
	var err error
	if s.meta, err = connect(ctx, s.dsn); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	vars, err := readVariables(ctx, s.meta)
	if err != nil {
		return fmt.Errorf("open: %w", connectors.MarkRetryable(err))
	}
	if s.setup, err = checkVariables(s.cfg.Flavor, s.cfg.ServerID, vars); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	if s.collations, err = readCollations(ctx, s.meta); err != nil {
		return fmt.Errorf("open: %w", connectors.MarkRetryable(err))
	}
	named := s.cfg.Tables
	if err := s.resolvePatterns(ctx); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var errs []error
	for _, t := range named {
		tn, _ := parseTableName(t)
		ts, err := s.readKeyedTable(ctx, s.meta, tn)
		if err == nil {
			_, _, err = ts.describe()
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("open: %w", err)
	}

	if err := s.initSnapshots(); err != nil {
		return fmt.Errorf("open: %w", err)
	}
	start, err := decideStart(from, s.cfg.Flavor, s.cfg.Snapshot, s.setup.gtid)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	switch start {
	case startReset:
		if s.start, err = currentPosition(ctx, s.meta, s.cfg.Flavor, s.setup.gtid); err != nil {
			return fmt.Errorf("open: %w", err)
		}
		s.snaps.Reconcile(s.snaps.Tables...)
		s.log.Info("starting over after liberator reset: streaming from the end of the binary log and snapshotting every table again with reconcile",
			"position", s.start.String(), "tables", s.snaps.Tables)
		// The start, with every table queued, is stored at once: a
		// restart resumes the reconcile rather than forgetting it.
		s.announceStart = true
	case startResume:
		s.start = *from
		if resumed, err := s.resumeSnapshots(ctx, *from); err != nil || resumed {
			return err
		}
		if s.cfg.Snapshot == connectors.SnapshotOnly {
			s.log.Info("snapshot already taken; nothing to do", "position", s.start.String())
			s.finished = true
			return nil
		}
		s.log.Info("resuming binlog stream", "position", s.start.String())
	case startAtEnd:
		if s.start, err = currentPosition(ctx, s.meta, s.cfg.Flavor, s.setup.gtid); err != nil {
			return fmt.Errorf("open: %w", err)
		}
		s.log.Info("streaming from the end of the binary log", "position", s.start.String())
		// Hand the start over as a checkpoint at once, so that it is stored
		// even if the binlog stays idle: a restart must begin here, not at
		// the end of a log that has moved on meanwhile.
		s.announceStart = true
	case startSnapshot:
		if err := s.beginSnapshot(ctx); err != nil {
			return fmt.Errorf("open: %w", err)
		}
	}
	return nil
}

// Read returns the next batch: snapshot rows first, if a snapshot was
// taken, then binlog changes. A batch ends at a transaction's commit (its
// Checkpoint is set) or after about maxBatch changes inside a transaction or
// a snapshot (Checkpoint nil). The last snapshot batch carries the position
// at which the snapshot was taken.
func (s *Source) Read(ctx context.Context) (connectors.Batch, error) {
	// The errors of the stream, the metadata connection and the snapshot
	// readers alike: any of them caused by a lost connection is retried.
	b, err := s.read(ctx)
	return b, retryableIfConnLost(err)
}

func (s *Source) read(ctx context.Context) (connectors.Batch, error) {
	if s.ctx == nil {
		return connectors.Batch{}, errors.New("read: the source is not open")
	}
	if s.failed != nil {
		return connectors.Batch{}, s.failed
	}
	if s.finished {
		return connectors.Batch{}, io.EOF
	}
	if s.snap != nil {
		return s.readSnapshot(ctx)
	}
	if s.announceStart {
		s.announceStart = false
		return connectors.Batch{Checkpoint: s.decorate(s.start)}, nil
	}
	if s.results == nil {
		s.results = make(chan streamResult, streamAhead)
		s.streamDone = make(chan struct{})
		go s.streamLoop()
	}
	select {
	case r := <-s.results:
		if r.err != nil {
			s.failed = r.err
		}
		return r.batch, r.err
	case <-ctx.Done():
		return connectors.Batch{}, ctx.Err()
	}
}

// streamAhead is how many batches the stream goroutine reads ahead of
// Read: converting rows overlaps encoding and producing the batch before.
const streamAhead = 2

// streamResult is a batch of the binary log, or the error that ended the
// stream.
type streamResult struct {
	batch connectors.Batch
	err   error
}

// streamLoop reads the binary log into results until an error or Close.
func (s *Source) streamLoop() {
	defer close(s.streamDone)
	for {
		var r streamResult
		if s.stream == nil {
			r.err = s.startStream()
		}
		if r.err == nil {
			r.batch, r.err = s.readStreamOrRecover(s.ctx)
		}
		select {
		case s.results <- r:
		case <-s.ctx.Done():
			return
		}
		if r.err != nil {
			return
		}
	}
}

// Ack records that everything up to pos is in Kafka. MySQL keeps its binary
// log by time or size, not by replica progress, so nothing is sent to the
// server.
func (s *Source) Ack(_ context.Context, pos connectors.Position) error {
	p, ok := pos.(Position)
	if !ok {
		return fmt.Errorf("ack: %T is not a MySQL position", pos)
	}
	s.ackMu.Lock()
	s.acked = p
	s.ackMu.Unlock()
	return nil
}

// Acked returns the last acknowledged position (the zero Position before
// the first Ack).
func (s *Source) Acked() Position {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.acked
}

// Close stops the binlog stream and the snapshot and closes every
// connection. It is safe after a failed Open and more than once.
func (s *Source) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
		}
		var errs []error
		if s.streamDone != nil {
			select {
			case <-s.streamDone:
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("close: the binlog reader did not stop: %w", ctx.Err()))
			}
		}
		s.closeSyncer()
		if s.snap != nil {
			if err := s.snap.close(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
		}
		if err := s.closeIncremental(); err != nil {
			errs = append(errs, fmt.Errorf("close snapshot connection: %w", err))
		}
		if s.meta != nil {
			if err := s.meta.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close metadata connection: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// metaRun runs a metadata query, reconnecting once if the connection was
// lost (an idle connection may pass the server's wait_timeout).
func (s *Source) metaRun(ctx context.Context, f func(*client.Conn) error) error {
	if s.meta != nil {
		err := f(s.meta)
		if err == nil || myErrorCode(err) != 0 || ctx.Err() != nil {
			return err
		}
		_ = s.meta.Close()
		s.meta = nil
	}
	conn, err := connect(ctx, s.dsn)
	if err != nil {
		return err
	}
	s.meta = conn
	return f(s.meta)
}

// quietLogger passes go-mysql's warnings and errors on and drops its
// chatter (it logs every connection and its whole config at info).
func quietLogger(l *slog.Logger) *slog.Logger {
	return slog.New(minLevel{l.Handler(), slog.LevelWarn}).With("component", "go-mysql")
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
