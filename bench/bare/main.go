// Command bare is the benchmark's baseline: the least a program must do to
// move the benchmark table into Kafka, written with the same libraries that
// liberator uses but none of liberator's own code. It reads rows (COPY or a
// streamed SELECT for a snapshot, pgoutput or the binlog for a drain),
// encodes each one with hamba/avro into the Confluent wire format, and
// produces it with franz-go (acks=all, idempotent, -compression, none by
// default as in liberator) until Kafka has acknowledged every record.
//
//	bare pg-snapshot    -dsn D -table T          -brokers B -topic X -rows N [-pipelined|-reader-only|-raw]
//	bare pg-drain       -dsn D -slot S -pub P    -brokers B -topic X -rows N [-pipelined|-reader-only|-count-only [-lags K]]
//	bare mysql-snapshot -addr A -db D -table T   -brokers B -topic X -rows N [-pipelined|-reader-only|-raw]
//	bare mysql-drain    -addr A -file F -pos P -db D -table T -brokers B -topic X -rows N [-pipelined|-reader-only|-count-only]
//
// By default one goroutine does everything: read, decode, encode, produce.
// With -pipelined the reading goroutine reads and decodes, and hands
// batches of rows over a channel to a second goroutine that encodes and
// produces them.
//
// With -reader-only it reads and decodes every column but neither encodes
// nor produces. The raw limits read without decoding: -raw (snapshots)
// copies COPY … TO STDOUT (FORMAT binary) into io.Discard, or counts the
// row packets of a streamed SELECT without parsing them; -count-only
// (drains) counts pgoutput insert messages without parsing them, or counts
// the rows of go-mysql's parsed binlog row events without converting
// their values. It exits 0 once it has handled -rows rows and prints one
// JSON line: {"events":N,"elapsed_s":S}.
//
// With -count-only, -lags K also times every pgoutput Commit after the
// first K: from the transaction's commit time to the walsender's send time
// in the XLogData header (send), and to the moment it was read here
// (receive). The JSON line then has send_p50_ms, send_p99_ms, recv_p50_ms
// and recv_p99_ms. It is the least latency any reader of the slot can see
// on this machine, beside liberator's in latency-postgres.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// item is one row of the benchmark table, shaped like the value record that
// liberator derives for it: the key column and NOT NULL account are plain,
// every other column is a ["null", T] union.
type item struct {
	ID      int64      `avro:"id"`
	Account int32      `avro:"account"`
	Name    *string    `avro:"name"`
	Amount  *big.Rat   `avro:"amount"`
	Note    *string    `avro:"note"`
	Created *time.Time `avro:"created"`
	Flag    *bool      `avro:"flag"`
}

type itemKey struct {
	ID int64 `avro:"id"`
}

const valueSchema = `{"type":"record","name":"Value","namespace":"bare.items","fields":[
 {"name":"id","type":"long"},
 {"name":"account","type":"int"},
 {"name":"name","type":["null","string"],"default":null},
 {"name":"amount","type":["null",{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}],"default":null},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"created","type":["null",{"type":"long","logicalType":"timestamp-micros"}],"default":null},
 {"name":"flag","type":["null","boolean"],"default":null}]}`

const keySchema = `{"type":"record","name":"Key","namespace":"bare.items","fields":[{"name":"id","type":"long"}]}`

// Schema ids written into the wire-format header. The baseline does not
// talk to a registry: registering two schemas once is no part of the
// per-row cost being measured.
const (
	keySchemaID   = 1
	valueSchemaID = 2
)

type options struct {
	dsn, table, slot, pub     string
	addr, db, file            string
	pos                       uint
	brokers, topic            string
	rows                      int64
	readerOnly, raw           bool
	countOnly, pipelined      bool
	compression               string
	serverID                  uint
	linger                    time.Duration
	maxBufferedRecs, timeoutS int
	lags                      int
}

// report holds what a command adds to the JSON line beside events and
// elapsed_s.
var report = map[string]any{}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bare pg-snapshot|pg-drain|mysql-snapshot|mysql-drain [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	var o options
	fs := flag.NewFlagSet("bare "+cmd, flag.ExitOnError)
	fs.StringVar(&o.dsn, "dsn", "", "PostgreSQL DSN (URL form)")
	fs.StringVar(&o.table, "table", "items", "table name")
	fs.StringVar(&o.slot, "slot", "", "PostgreSQL replication slot, created before the changes")
	fs.StringVar(&o.pub, "pub", "", "PostgreSQL publication")
	fs.StringVar(&o.addr, "addr", "", "MariaDB host:port")
	fs.StringVar(&o.db, "db", "bench", "MariaDB database")
	fs.StringVar(&o.file, "file", "", "binlog file to start at")
	fs.UintVar(&o.pos, "pos", 4, "binlog offset to start at")
	fs.UintVar(&o.serverID, "server-id", 9001, "replica server id of the binlog connection")
	fs.StringVar(&o.brokers, "brokers", "", "Kafka seed brokers, comma-separated")
	fs.StringVar(&o.topic, "topic", "bare.items", "topic to produce to; created compacted")
	fs.Int64Var(&o.rows, "rows", 0, "rows to expect")
	fs.BoolVar(&o.readerOnly, "reader-only", false, "read and decode only")
	fs.BoolVar(&o.raw, "raw", false, "snapshots: read only, without decoding")
	fs.BoolVar(&o.countOnly, "count-only", false, "drains: count row messages without decoding them")
	fs.IntVar(&o.lags, "lags", -1, "pg-drain -count-only: time each commit after the first K (see the package doc)")
	fs.BoolVar(&o.pipelined, "pipelined", false, "read and decode on one goroutine, encode and produce on another")
	fs.StringVar(&o.compression, "compression", "none", "producer compression: none, gzip, snappy, lz4 or zstd (liberator's default is none)")
	fs.DurationVar(&o.linger, "linger", 5*time.Millisecond, "producer linger (liberator's default is 5ms)")
	fs.IntVar(&o.maxBufferedRecs, "max-buffered-records", 20_000, "producer buffer, in records (liberator's is 20000)")
	fs.IntVar(&o.timeoutS, "timeout", 1800, "give up after this many seconds")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(o.timeoutS)*time.Second)
	defer cancel()
	start := time.Now()
	var n int64
	var err error
	switch cmd {
	case "pg-snapshot":
		n, err = pgSnapshot(ctx, o)
	case "pg-drain":
		n, err = pgDrain(ctx, o)
	case "mysql-snapshot":
		n, err = mysqlSnapshot(ctx, o)
	case "mysql-drain":
		n, err = mysqlDrain(ctx, o)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bare %s: %v\n", cmd, err)
		os.Exit(1)
	}
	report["events"], report["elapsed_s"] = n, time.Since(start).Seconds()
	_ = json.NewEncoder(os.Stdout).Encode(report)
}

// producer encodes items and produces them, counting acknowledgements.
type producer struct {
	cl         *kgo.Client
	key, value avro.Schema
	acked      atomic.Int64
	failed     atomic.Pointer[error]
	promise    func(*kgo.Record, error)
}

func newProducer(ctx context.Context, o options) (*producer, error) {
	p := &producer{}
	var err error
	if p.value, err = avro.Parse(valueSchema); err != nil {
		return nil, err
	}
	if p.key, err = avro.Parse(keySchema); err != nil {
		return nil, err
	}
	codec, ok := codecs[o.compression]
	if !ok {
		return nil, fmt.Errorf("-compression %q is not one of none, gzip, snappy, lz4, zstd", o.compression)
	}
	p.cl, err = kgo.NewClient(
		kgo.SeedBrokers(strings.Split(o.brokers, ",")...),
		// franz-go compresses with snappy unless told otherwise.
		kgo.ProducerBatchCompression(codec),
		kgo.DefaultProduceTopic(o.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
		kgo.ProducerLinger(o.linger),
		kgo.MaxBufferedRecords(o.maxBufferedRecs),
	)
	if err != nil {
		return nil, err
	}
	resp, err := kadm.NewClient(p.cl).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		p.cl.Close()
		return nil, fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	p.promise = func(_ *kgo.Record, err error) {
		if err != nil {
			p.failed.CompareAndSwap(nil, &err)
			return
		}
		p.acked.Add(1)
	}
	return p, nil
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// wire prefixes an Avro body with the Confluent wire-format header.
func wire(id int, body []byte) []byte {
	b := make([]byte, 5+len(body))
	b[1], b[2], b[3], b[4] = byte(id>>24), byte(id>>16), byte(id>>8), byte(id)
	copy(b[5:], body)
	return b
}

func (p *producer) produce(ctx context.Context, it *item) error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	k, err := avro.Marshal(p.key, itemKey{ID: it.ID})
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	v, err := avro.Marshal(p.value, it)
	if err != nil {
		return fmt.Errorf("encode value: %w", err)
	}
	p.cl.Produce(ctx, &kgo.Record{Key: wire(keySchemaID, k), Value: wire(valueSchemaID, v)}, p.promise)
	return nil
}

// finish waits until every record is acknowledged.
func (p *producer) finish(ctx context.Context, want int64) error {
	defer p.cl.Close()
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	if e := p.failed.Load(); e != nil {
		return *e
	}
	if got := p.acked.Load(); got != want {
		return fmt.Errorf("%d records acknowledged, want %d", got, want)
	}
	return nil
}

// handler is what a reader hands each decoded row to.
type handler struct {
	p    *producer // nil when reading only
	pipe *pipe     // nil unless -pipelined
	seen int64
}

func (h *handler) row(ctx context.Context, it *item) error {
	h.seen++
	switch {
	case h.pipe != nil:
		return h.pipe.add(ctx, it)
	case h.p != nil:
		return h.p.produce(ctx, it)
	}
	return nil
}

func newHandler(ctx context.Context, o options) (*handler, error) {
	if o.readerOnly || o.countOnly || o.raw {
		return &handler{}, nil
	}
	p, err := newProducer(ctx, o)
	if err != nil {
		return nil, err
	}
	h := &handler{p: p}
	if o.pipelined {
		h.pipe = newPipe(ctx, p)
	}
	return h, nil
}

func (h *handler) finish(ctx context.Context, want int64) (int64, error) {
	if h.pipe != nil {
		if err := h.pipe.close(ctx); err != nil {
			h.p.cl.Close()
			return h.seen, err
		}
	}
	if h.seen != want {
		return h.seen, fmt.Errorf("read %d rows, want %d", h.seen, want)
	}
	if h.p == nil {
		return h.seen, nil
	}
	return h.seen, h.p.finish(ctx, want)
}

// pipeBatch rows make a batch; pipeDepth batches may wait between the two
// goroutines of -pipelined while the reader fills another.
const (
	pipeBatch = 1024
	pipeDepth = 4
)

// rowCopy is a row the batch owns: an item and the values it points to.
type rowCopy struct {
	it         item
	name, note string
	amount     big.Rat
	created    time.Time
	flag       bool
}

func (r *rowCopy) set(it *item) {
	r.it = item{ID: it.ID, Account: it.Account}
	if it.Name != nil {
		r.name = *it.Name
		r.it.Name = &r.name
	}
	if it.Amount != nil {
		r.amount.Set(it.Amount)
		r.it.Amount = &r.amount
	}
	if it.Note != nil {
		r.note = *it.Note
		r.it.Note = &r.note
	}
	if it.Created != nil {
		r.created = *it.Created
		r.it.Created = &r.created
	}
	if it.Flag != nil {
		r.flag = *it.Flag
		r.it.Flag = &r.flag
	}
}

// pipe is the second goroutine of -pipelined: it encodes and produces the
// batches the reader sends, and returns the emptied batches for reuse.
type pipe struct {
	full, free chan []rowCopy
	cur        []rowCopy
	// failed is closed, with err set, when producing fails; done when
	// every batch has been produced.
	failed, done chan struct{}
	err          error
}

func newPipe(ctx context.Context, p *producer) *pipe {
	q := &pipe{full: make(chan []rowCopy, pipeDepth), free: make(chan []rowCopy, pipeDepth+1),
		failed: make(chan struct{}), done: make(chan struct{})}
	for range pipeDepth + 1 {
		q.free <- make([]rowCopy, 0, pipeBatch)
	}
	go func() {
		// The records keep ctx until they are produced: it must not be
		// cancelled once they are handed over.
		for b := range q.full {
			for i := range b {
				if err := p.produce(ctx, &b[i].it); err != nil {
					q.err = err
					close(q.failed)
					return
				}
			}
			q.free <- b[:0]
		}
		close(q.done)
	}()
	return q
}

func (q *pipe) add(ctx context.Context, it *item) error {
	if q.cur == nil {
		select {
		case q.cur = <-q.free:
		case <-q.failed:
			return q.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.cur = q.cur[:len(q.cur)+1]
	q.cur[len(q.cur)-1].set(it)
	if len(q.cur) < pipeBatch {
		return nil
	}
	return q.send(ctx)
}

func (q *pipe) send(ctx context.Context) error {
	select {
	case q.full <- q.cur:
		q.cur = nil
		return nil
	case <-q.failed:
		return q.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close hands over the last partial batch and waits until every row has
// been given to the producer.
func (q *pipe) close(ctx context.Context) error {
	if len(q.cur) > 0 {
		if err := q.send(ctx); err != nil {
			return err
		}
	}
	close(q.full)
	select {
	case <-q.done:
		return nil
	case <-q.failed:
		return q.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parseDecimal parses plain decimal text ("-12.30") into r.
func parseDecimal(r *big.Rat, s []byte) error {
	var num int64
	den := int64(1)
	neg, frac := false, false
	for i, c := range s {
		switch {
		case c == '-' && i == 0:
			neg = true
		case c == '.' && !frac:
			frac = true
		case c >= '0' && c <= '9':
			num = num*10 + int64(c-'0')
			if frac {
				den *= 10
			}
		default:
			return fmt.Errorf("bad decimal %q", s)
		}
	}
	if neg {
		num = -num
	}
	r.SetFrac64(num, den)
	return nil
}
