package main

// The outbox case: events per second from a backlog of rows inserted into
// an outbox table, each a JSON payload encoded with its subject's schema.

import (
	"context"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/schema"
)

// outboxTable is the outbox table of the outbox case.
const outboxTable = "outbox_events"

// outboxPayloadSchema is registered under the events' subject; each
// payload is about 100 bytes of JSON.
const outboxPayloadSchema = `{"type": "record", "name": "OrderPlaced", "namespace": "bench", "fields": [
  {"name": "order_id", "type": "string"}, {"name": "seq", "type": "long"}, {"name": "note", "type": "string"}]}`

// outboxSQL are a source's statements of the outbox case.
type outboxSQL interface {
	// resetOutbox re-creates outboxTable empty and removes what earlier
	// runs left behind.
	resetOutbox(ctx context.Context) error
	// insertOutbox inserts rows 1..n into outboxTable in transactions of
	// perTx rows: events of 1000 orders, aggregate type Order.
	insertOutbox(ctx context.Context, n, perTx int64) error
}

func (s *pgSource) resetOutbox(ctx context.Context) error {
	return s.exec(ctx, dropSlotsSQL, "DROP PUBLICATION IF EXISTS liberator", "DROP PUBLICATION IF EXISTS bare",
		"DROP TABLE IF EXISTS "+outboxTable,
		"CREATE TABLE "+outboxTable+" (id text PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb NOT NULL)",
		"CHECKPOINT")
}

func (s *pgSource) insertOutbox(ctx context.Context, n, perTx int64) error {
	for lo := int64(1); lo <= n; lo += perTx {
		hi := min(lo+perTx-1, n)
		q := fmt.Sprintf(`INSERT INTO %s SELECT 'e-' || g, 'Order', 'o-' || (g %% 1000), 'OrderPlaced',
		  jsonb_build_object('order_id', 'o-' || (g %% 1000), 'seq', g, 'note', md5(g::text) || md5((g + 1)::text))
		FROM generate_series(%d::bigint, %d::bigint) g`, outboxTable, lo, hi)
		if err := s.exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func (s *mariaSource) resetOutbox(ctx context.Context) error {
	return s.exec(ctx, "DROP TABLE IF EXISTS bench."+outboxTable,
		"CREATE TABLE bench."+outboxTable+" (id VARCHAR(32) PRIMARY KEY, aggregatetype VARCHAR(32) NOT NULL, aggregateid VARCHAR(32) NOT NULL, type VARCHAR(32) NOT NULL, payload JSON NOT NULL)",
		"FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW()")
}

func (s *mariaSource) insertOutbox(ctx context.Context, n, perTx int64) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for lo := int64(1); lo <= n; lo += perTx {
		hi := min(lo+perTx-1, n)
		q := fmt.Sprintf(`INSERT INTO bench.%s SELECT CONCAT('e-', seq), 'Order', CONCAT('o-', seq %% 1000), 'OrderPlaced',
		  JSON_OBJECT('order_id', CONCAT('o-', seq %% 1000), 'seq', seq, 'note', CONCAT(MD5(seq), MD5(seq + 1)))
		FROM bench.seq_%d_to_%d`, outboxTable, lo, hi)
		if _, err := conn.Execute(q); err != nil {
			return err
		}
	}
	return nil
}

// runOutbox starts liberator once on an empty outbox table (snapshot mode
// never), stops it, inserts a backlog of rows, and times liberator until
// Kafka has acknowledged every event.
func runOutbox(ctx context.Context, e *env, s source) (measure, error) {
	return outboxCase(ctx, e, s)
}

// outboxCase is runOutbox, with extra arguments for liberator's second
// start, the measured one.
func outboxCase(ctx context.Context, e *env, s source, extra ...string) (measure, error) {
	m := newMeasure()
	if ok, why := e.supports(ctx, s); !ok {
		m.Notes["skipped"] = why
		return m, nil
	}
	o, ok := s.(outboxSQL)
	if !ok {
		return skipped(s.Name() + " has no outbox case"), nil
	}
	if err := o.resetOutbox(ctx); err != nil {
		return measure{}, err
	}
	reg, err := schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL})
	if err != nil {
		return measure{}, err
	}
	topic := topicPrefix + ".Order"
	if _, err := reg.Register(ctx, topic+"-value", avro.MustParse(outboxPayloadSchema)); err != nil {
		return measure{}, err
	}
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	defer b.stop()
	cfg, admin, err := e.writeConfig(s, b.addr, outboxTable, "never", "outbox:\n  - table: "+s.qualified(outboxTable))
	if err != nil {
		return measure{}, err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		return measure{}, err
	}
	err = waitStreaming(ctx, p, admin, 2*time.Minute, s.nudge)
	if serr := p.stop(time.Minute); err == nil {
		err = serr
	}
	if err != nil {
		return measure{}, err
	}
	if err := o.insertOutbox(ctx, e.rows, 1000); err != nil {
		return measure{}, err
	}
	if p, err = e.startLiberator(e.liberator, "run", cfg, extra...); err != nil {
		return measure{}, err
	}
	if err := waitOffset(ctx, b.addr, topic, e.rows, timeoutFor(e.rows), p); err != nil {
		p.kill()
		return measure{}, err
	}
	elapsed, cpu := time.Since(p.started), p.cpu()
	peak, _ := p.memMB("VmHWM")
	if err := p.stop(time.Minute); err != nil {
		return measure{}, err
	}
	m.Fields["events_per_s"] = rate(e.rows, elapsed)
	m.Fields["cpu_s"] = cpu
	m.Fields["cpu_s_per_1m"] = cpu / float64(e.rows) * 1e6
	m.Fields["peak_rss_mb"] = peak
	return m, nil
}
