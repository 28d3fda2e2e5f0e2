// Package postgres is the PostgreSQL source connector. It reads tables
// through a logical replication slot with the pgoutput plugin, after an
// initial snapshot taken in the slot's exported snapshot, so that the
// hand-off from snapshot to stream neither loses nor repeats a change.
//
// # Unchanged TOAST values
//
// pgoutput does not send a large (TOASTed) value that an UPDATE left
// unchanged; the tuple says 'u' instead. Under REPLICA IDENTITY FULL the
// old tuple carries the value, and it is taken from there: exact, at the
// cost of more WAL. Under the default identity the source reads the row's
// current value by key. That value may be newer than the update being
// decoded; the later change that made it newer follows in the stream, so the
// compacted topic still converges to the table. If the row no longer exists,
// the update is skipped, because its later delete (or key change) follows.
package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

const (
	// maxBatch caps the changes in one batch; Config.Memory caps its
	// bytes. A huge transaction or table streams through in batches.
	maxBatch = 4096
	// queuedBatches is how many batches wait for Read in s.out.
	queuedBatches = 4
	// statusInterval is how often the standby status (the acknowledged
	// LSN) is reported to the server.
	statusInterval = time.Second
)

// sessionParams make every text form that the decoders read predictable.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"bytea_output":       "hex",
	"extra_float_digits": "1",
	"application_name":   "liberator",
}

// Source reads changes from PostgreSQL.
type Source struct {
	cfg Config
	log *slog.Logger

	conn *pgx.Conn      // catalog queries, snapshot, TOAST look-ups
	repl *pgconn.PgConn // replication=database
	// replNet is repl's connection, whose receive low water mark the
	// stream raises inside large transactions (lowat.go).
	replNet *lowatConn
	cat     *catalog
	want    map[tableName]bool
	// messages are the prefixes of Config.Messages.
	messages map[string]bool
	// snaps is the snapshot state (snapshot.go, incremental.go).
	snaps snapshot.Manager

	rels    map[uint32]*relation // by relation id, from relation messages
	byName  map[tableName]*relation
	startAt pglogrepl.LSN
	// snapshotName is set when Open created the slot and a snapshot must be
	// read before streaming.
	snapshotName string

	acked      atomic.Uint64 // highest acknowledged LSN
	walEnd     atomic.Uint64 // the server's WAL end, as last reported
	lastCommit atomic.Int64  // commit time of the newest transaction, Unix µs
	pgcfg      *pgx.ConnConfig

	out    chan connectors.Batch
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before out is closed

	closeOnce sync.Once

	// Stream state, owned by the reader goroutine.
	pending      connectors.Batch
	pendingBytes int64 // the estimated size of pending's changes
	// lent are the Changes slices of the batches handed to Read, some
	// of which come back (Recycle) for later batches.
	lent       connectors.ChangeSlices
	batchBytes int64 // the most bytes a batch holds (Config.Memory)
	lastCP     pglogrepl.LSN
	inTx       bool
	txPos      connectors.Position // a Position, boxed once per transaction rather than per change
	txID       string
	txXid      uint32 // the xid of txID
	// msgLSN is the WAL position of the message being handled (its
	// XLogData's start): a change's own, the first change's for a Begin.
	msgLSN pglogrepl.LSN
	// bigTx is set for a transaction of at least lowatSpan bytes of WAL,
	// read under the raised mark (lowat.go) until its last lowatTail
	// before txFinal, the LSN of its commit record.
	bigTx      bool
	txFinal    pglogrepl.LSN
	visibleXid uint32 // the last xid seen visible to new snapshots

	// discovered is when the catalog was last read for new tables of
	// Config.Patterns, skipped the tables found that cannot be captured
	// (discover.go); the reader goroutine owns both.
	discovered time.Time
	skipped    map[tableName]bool
	txTime     time.Time
	nextStatus time.Time
	// spools are the streamed transactions under way, by xid, and
	// inStream the one whose chunk is arriving (streamtx.go).
	spools   map[uint32]*spool
	inStream *spool
	// rows decodes row messages in place (tuple.go).
	rows rowReader
}

var _ connectors.Source = (*Source)(nil)

// New validates cfg and returns a Source. It does no I/O.
func New(cfg Config) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	want := map[tableName]bool{}
	for _, t := range cfg.Tables {
		tn, _ := parseTableName(t)
		want[tn] = true
	}
	messages := map[string]bool{}
	for _, p := range cfg.Messages {
		messages[p] = true
	}
	return &Source{cfg: cfg, log: cfg.Logger, want: want, messages: messages, rels: map[uint32]*relation{}, byName: map[tableName]*relation{},
		batchBytes: cfg.Memory.BatchBytes(queuedBatches)}, nil
}

// Open connects, checks the tables, makes sure the publication and the slot
// exist, and starts reading. See the package doc for how resume, the slot
// and the snapshot mode combine.
func (s *Source) Open(ctx context.Context, resume []byte) error {
	return retryableIfConnLost(s.open(ctx, resume))
}

func (s *Source) open(ctx context.Context, resume []byte) error {
	pgcfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("source.dsn: %w", err)
	}
	for k, v := range sessionParams {
		pgcfg.RuntimeParams[k] = v
	}
	s.pgcfg = pgcfg
	replCfg := pgcfg.Config.Copy()
	replCfg.RuntimeParams["replication"] = "database"
	s.replNet = nil
	replCfg.AfterNetConnect = func(_ context.Context, _ *pgconn.Config, conn net.Conn) (net.Conn, error) {
		tcp, ok := conn.(*net.TCPConn)
		if !ok {
			return conn, nil
		}
		s.replNet = newLowatConn(tcp)
		return s.replNet, nil
	}
	replCfg.BuildFrontend = func(r io.Reader, w io.Writer) *pgproto3.Frontend {
		return pgproto3.NewFrontend(bufio.NewReaderSize(r, replReadBuffer), w)
	}

	if s.conn, err = pgx.ConnectConfig(ctx, pgcfg); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres: %w", err))
	}
	s.cat = newCatalog(s.conn).withKeys(s.cfg.KeyColumns).withPublished(s.cfg.PublishedColumns)
	if err := s.resolvePatterns(ctx); err != nil {
		return err
	}
	var errs []error
	for _, t := range s.cfg.Tables {
		tn, _ := parseTableName(t)
		cols, key, identity, err := s.cat.describe(ctx, tn)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rel, err := s.cat.buildRelation(ctx, tn, cols, key, identity)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.byName[tn] = rel
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	parts, err := readPartitionInfos(ctx, s.conn, s.tableNames())
	if err != nil {
		return err
	}
	for _, p := range parts {
		errs = append(errs, capturedTwiceProblem(p, s.want))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.ensurePublication(ctx, parts); err != nil {
		return err
	}
	if s.repl, err = pgconn.ConnectConfig(ctx, replCfg); err != nil {
		return connectors.MarkRetryable(fmt.Errorf("connect to postgres for replication: %w", err))
	}
	if err := s.prepareStart(ctx, resume); err != nil {
		return err
	}

	rctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.out = make(chan connectors.Batch, queuedBatches)
	s.done = make(chan struct{})
	go s.run(rctx)
	return nil
}

// Read returns the next batch.
func (s *Source) Read(ctx context.Context) (connectors.Batch, error) {
	select {
	case b, ok := <-s.out:
		if !ok {
			return connectors.Batch{}, s.err
		}
		return b, nil
	case <-ctx.Done():
		return connectors.Batch{}, ctx.Err()
	}
}

// Ack records that everything up to pos is in Kafka. The reader reports it
// to the server with its next standby status update.
func (s *Source) Ack(_ context.Context, pos connectors.Position) error {
	p, ok := pos.(Position)
	if !ok {
		return fmt.Errorf("ack %v: not a PostgreSQL position", pos)
	}
	for {
		cur := s.acked.Load()
		if uint64(p.LSN) <= cur || s.acked.CompareAndSwap(cur, uint64(p.LSN)) {
			return nil
		}
	}
}

// Close stops the reader, reports the last acknowledged LSN and closes the
// connections. Batches not yet returned by Read are dropped; they are read
// again after a restart because they were never acknowledged.
func (s *Source) Close(ctx context.Context) error {
	var errs []error
	s.closeOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		if s.repl != nil {
			if s.startedStreaming() {
				errs = append(errs, s.sendStatus(ctx))
			}
			errs = append(errs, s.repl.Close(ctx))
		}
		if s.conn != nil {
			errs = append(errs, s.conn.Close(ctx))
		}
	})
	return errors.Join(errs...)
}

func (s *Source) startedStreaming() bool { return !s.nextStatus.IsZero() }

// run is the reader goroutine: it takes the snapshot if one is due, then
// streams, handing batches to Read through s.out.
func (s *Source) run(ctx context.Context) {
	defer close(s.done)
	err := s.readAll(ctx)
	if ctx.Err() != nil && !errors.Is(err, io.EOF) {
		err = context.Canceled
	}
	// The reader's errors come from the stream, the catalog, TOAST
	// look-ups, the snapshot and the heartbeats alike: any of them caused by
	// a lost connection is retried.
	if err != io.EOF { // the end of a snapshot-only run, not a lost connection
		err = retryableIfConnLost(err)
	}
	s.err = err
	close(s.out)
}

func (s *Source) readAll(ctx context.Context) error {
	if s.snaps.Initial {
		if err := s.initialSnapshot(ctx); err != nil {
			return err
		}
		if s.cfg.Snapshot == connectors.SnapshotOnly {
			return io.EOF
		}
	} else if s.cfg.Snapshot == connectors.SnapshotOnly {
		s.log.Info("snapshot already taken; nothing to do", "slot", s.cfg.Slot)
		return io.EOF
	}
	if s.lastCP == 0 {
		// A new slot without a snapshot: record where streaming begins.
		s.lastCP = s.startAt
		s.pending.Checkpoint = Position{LSN: s.startAt}
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.stream(gctx) })
	g.Go(func() error { return s.watch(gctx, s.pgcfg) })
	return g.Wait()
}
