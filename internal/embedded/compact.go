package embedded

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfake compacts every compacted topic whole, on its one goroutine that
// also serves every request, each log.cleaner.backoff.ms, and slowly (about
// 20 s for a topic of 1M records here): while it compacts, the broker
// answers nothing. At a fixed pace that is either far too often for a large
// log (at 1s a 1M-record topic kept the broker compacting most of the time)
// or too seldom for a small one that changes a lot. The pacer compacts
// when a real broker with its defaults would: when at least half of the
// log is dirty (min.cleanable.dirty.ratio 0.5), and the dirty part is past
// the active segment, which is never cleaned (segment.bytes 1 GiB); and
// never for more than a share of the time.
const (
	// pacerTick is how often the pacer looks at the size of the log.
	pacerTick = 2 * time.Second
	// minCompactBytes is the least the log grows by, since the last
	// compaction left it, before the next: Kafka's segment.bytes.
	minCompactBytes = 1 << 30
	// compactShare bounds the share of the time spent compacting: after a
	// compaction that took d, the next waits d*(1/compactShare - 1).
	compactShare = 0.1
	// brokerBackoff is log.cleaner.backoff.ms of the embedded broker:
	// kfake's own ticker, which the pacer leaves to a day.
	brokerBackoff = 24 * time.Hour
)

// pacer compacts the embedded broker's log when it has at least doubled
// since the last compaction left it (or since the start, for a log loaded
// from a data dir), and grown by minCompactBytes: each compaction reads the
// log whole, so the bytes read over the run are about twice those written,
// whatever the log's size.
type pacer struct {
	c   *kfake.Cluster
	cl  *kgo.Client
	adm *kadm.Client
	log *slog.Logger

	after    int64 // the log's size after the last compaction
	lastEnd  time.Time
	lastTook time.Duration
}

func newPacer(c *kfake.Cluster, log *slog.Logger) (*pacer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ClientID("liberator-embedded-compaction"))
	if err != nil {
		return nil, err
	}
	return &pacer{c: c, cl: cl, adm: kadm.NewClient(cl), log: log}, nil
}

// due reports whether a log of size bytes is due for compaction at now.
func (p *pacer) due(size int64, now time.Time) bool {
	if size-p.after < max(minCompactBytes, p.after) {
		return false
	}
	rest := time.Duration(float64(p.lastTook) * (1/compactShare - 1))
	return now.Sub(p.lastEnd) >= rest
}

// run compacts when due, until ctx ends.
func (p *pacer) run(ctx context.Context) {
	defer p.cl.Close()
	if size, ok := p.size(ctx); ok {
		p.after = size
	}
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		size, ok := p.size(ctx)
		if !ok || !p.due(size, time.Now()) {
			continue
		}
		start := time.Now()
		p.c.Compact()
		p.lastEnd = time.Now()
		p.lastTook = p.lastEnd.Sub(start)
		if after, ok := p.size(ctx); ok {
			p.after = after
		} else {
			p.after = size
		}
		p.log.Debug("embedded broker compacted its log", "bytes_before", size, "bytes_after", p.after, "took", p.lastTook)
	}
}

// size is the bytes the broker holds in every topic.
func (p *pacer) size(ctx context.Context) (int64, bool) {
	topics, err := p.adm.ListTopics(ctx)
	if err != nil {
		return 0, false
	}
	var n int64
	for _, t := range topics.Names() {
		for _, pi := range p.c.PartitionInfos(t) {
			n += pi.NumBytes
		}
	}
	return n, true
}
