package main

// The many-tables case: MANY_TABLES tables (default 1000) of MANY_ROWS rows
// (default 1000) each, captured through one pattern (source.tables:
// [<schema>.many_*]) by `liberator run` with snapshot mode initial.
//
// It reports
//
//	snapshot_s          from the start until every table's topic holds
//	                    all its rows
//	events_per_s, cpu_s, cpu_s_per_1m_rows, peak_rss_mb   of that snapshot
//	topic_create_ms     the mean time to create one compacted topic, one
//	                    CreateTopics request at a time as liberator does,
//	                    on a fresh broker (topics_s: all of them)
//	subject_register_ms the mean time to register one schema with a fresh
//	                    registry, over the subjects of the first 100 tables
//	                    (subjects_s: their key and value subjects); srfake
//	                    compares each new schema with all it holds, so with
//	                    1,000 tables the registry, not liberator, bounds
//	                    snapshot_s
//	new_table_ms        from the CREATE TABLE of a table the pattern
//	                    matches, made while liberator streams, with a row
//	                    inserted at once, until that row is in Kafka
//	                    (source.tables_poll_interval is its default, 1s)
//	new_topic_announce_ms  for a second table created while liberator
//	                    streams, left empty: from the source's log saying
//	                    it took the table to the pipeline's saying it set
//	                    up its topic and schemas (before any change of it)
//	new_topic_first_ms  once that is done, from the commit of the table's
//	                    first change to its acknowledgement: the produce
//	                    alone, the topic and schemas being ready
//	new_topic_second_ms the same for the table's second change: the way
//	                    of any change, for comparison
//	registry_new_table_ms  about what the registry takes to set up a new
//	                    table: a key and a value schema of one more table
//	                    registered on the registry as the run left it
//	                    (srfake's cost grows with the schemas it holds)

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// manyPrefix starts the name of every table of the many-tables case.
const manyPrefix = "many_"

// manySource reads every table whose name starts with manyPrefix, through a
// pattern.
type manySource struct{ source }

func (s manySource) configSection(string) string {
	section := s.source.configSection(manyPrefix + "placeholder")
	return strings.Replace(section, s.qualified(manyPrefix+"placeholder"), "'"+s.qualified(manyPrefix+"*")+"'", 1)
}

type execer interface {
	exec(ctx context.Context, sqls ...string) error
}

// manyTableSQL are the statements that create table and fill it with rows
// rows.
func manyTableSQL(s source, table string, rows int64) []string {
	if s.Name() == "postgres" {
		return []string{pgCreate(s.qualified(table)), manyFillSQL(s, table, 1, rows)}
	}
	return []string{mariaCreate(table), manyFillSQL(s, table, 1, rows)}
}

// manyFillSQL is the statement that inserts the rows from..to into table.
func manyFillSQL(s source, table string, from, to int64) string {
	if s.Name() == "postgres" {
		return pgFill(s.qualified(table), fmt.Sprint(from), fmt.Sprint(to))
	}
	return mariaFill(table, from, to)
}

// resetMany drops the tables of earlier runs (and PostgreSQL's slots and
// publications) and creates n tables of rows rows.
func resetMany(ctx context.Context, s source, n, rows int64) error {
	ex, ok := s.(execer)
	if !ok {
		return fmt.Errorf("%s cannot run statements", s.Name())
	}
	var drop []string
	if s.Name() == "postgres" {
		drop = append(drop, dropSlotsSQL, "DROP PUBLICATION IF EXISTS liberator", "DROP PUBLICATION IF EXISTS bare",
			`DO $$ DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'many\_%' LOOP EXECUTE 'DROP TABLE ' || quote_ident(r.tablename); END LOOP; END $$`)
	} else {
		drop = append(drop, "DROP DATABASE IF EXISTS many_scratch")
		for i := int64(0); i <= n; i++ {
			drop = append(drop, "DROP TABLE IF EXISTS "+s.qualified(manyTable(i)))
		}
		drop = append(drop, "DROP TABLE IF EXISTS "+s.qualified(manyPrefix+"new"), "DROP TABLE IF EXISTS "+s.qualified(manyPrefix+"new2"))
	}
	if err := ex.exec(ctx, drop...); err != nil {
		return err
	}
	var stmts []string
	for i := int64(1); i <= n; i++ {
		stmts = append(stmts, manyTableSQL(s, manyTable(i), rows)...)
		if len(stmts) >= 200 {
			if err := ex.exec(ctx, stmts...); err != nil {
				return err
			}
			stmts = stmts[:0]
		}
	}
	if s.Name() == "postgres" {
		stmts = append(stmts, "CHECKPOINT")
	} else {
		stmts = append(stmts, "FLUSH BINARY LOGS", "PURGE BINARY LOGS BEFORE NOW()")
	}
	return ex.exec(ctx, stmts...)
}

func manyTable(i int64) string { return fmt.Sprintf("%s%04d", manyPrefix, i) }

func runManyTables(ctx context.Context, e *env, s source) (measure, error) {
	if ok, why := e.supports(ctx, s); !ok {
		return skipped(why), nil
	}
	n, rows := envInt("MANY_TABLES", 1000), envInt("MANY_ROWS", 1000)
	m := newMeasure()
	m.Notes["tables"] = fmt.Sprintf("%d tables of %d rows", n, rows)
	loadStart := time.Now()
	if err := resetMany(ctx, s, n, rows); err != nil {
		return measure{}, err
	}
	fmt.Fprintf(os.Stderr, "bench: many-tables-%s: %d tables loaded in %s\n", s.Name(), n, time.Since(loadStart).Round(time.Millisecond))

	// A registry of its own: srfake compares a new schema with every
	// schema it holds, so the schemas of other cases would slow this one.
	reg, err := harness.StartRegistry()
	if err != nil {
		return measure{}, err
	}
	defer reg.Close()
	shared := e.reg
	e.reg = reg
	defer func() { e.reg = shared }()
	b, err := e.startBroker(ctx)
	if err != nil {
		return measure{}, err
	}
	defer b.stop()
	ms := manySource{s}
	cfg, _, err := e.writeConfig(ms, b.addr, "", "initial")
	if err != nil {
		return measure{}, err
	}
	p, err := e.startLiberator(e.liberator, "run", cfg)
	if err != nil {
		return measure{}, err
	}
	defer p.kill()
	topics := make([]string, n)
	for i := range topics {
		topics[i] = s.topic(manyTable(int64(i + 1)))
	}
	// srfake's registration cost grows with the schemas it holds (see
	// creationCosts): give the snapshot time beyond timeoutFor.
	if err := waitAllOffsets(ctx, b.addr, topics, rows, timeoutFor(n*rows)+time.Duration(n)*time.Second, p); err != nil {
		return measure{}, err
	}
	elapsed := time.Since(p.started)
	m.Fields["snapshot_s"] = elapsed.Seconds()
	m.Fields["events_per_s"] = rate(n*rows, elapsed)
	m.Fields["cpu_s"] = p.cpu()
	m.Fields["cpu_s_per_1m_rows"] = m.Fields["cpu_s"] / float64(n*rows) * 1e6
	m.Fields["peak_rss_mb"], _ = p.memMB("VmHWM")

	// A table created while liberator streams, with a row at once.
	ex := s.(execer)
	newTable := manyPrefix + "new"
	newTopic := s.topic(newTable)
	created := time.Now()
	if err := ex.exec(ctx, manyTableSQL(s, newTable, 1)...); err != nil {
		return measure{}, err
	}
	if err := waitAllOffsets(ctx, b.addr, []string{newTopic}, 1, time.Minute, p); err != nil {
		return measure{}, err
	}
	m.Fields["new_table_ms"] = float64(time.Since(created).Microseconds()) / 1000

	// Once the next one is picked up, its first change's way to Kafka.
	second := manyPrefix + "new2"
	create := manyTableSQL(s, second, 1)[0]
	if err := ex.exec(ctx, create); err != nil {
		return measure{}, err
	}
	if err := waitLog(ctx, p, s.qualified(second), time.Minute); err != nil {
		return measure{}, err
	}
	taken := time.Now()
	if err := waitLog(ctx, p, `msg="publishing table" table=`+s.qualified(second)+" ", time.Minute); err != nil {
		return measure{}, err
	}
	m.Fields["new_topic_announce_ms"] = float64(time.Since(taken).Microseconds()) / 1000
	fill := manyTableSQL(s, second, 1)[1]
	committed := time.Now()
	if err := ex.exec(ctx, fill); err != nil {
		return measure{}, err
	}
	if err := waitAllOffsets(ctx, b.addr, []string{s.topic(second)}, 1, time.Minute, p); err != nil {
		return measure{}, err
	}
	m.Fields["new_topic_first_ms"] = float64(time.Since(committed).Microseconds()) / 1000
	// The same way for the table's second change, which nothing about the
	// table holds up: what is left of the first's is the path itself.
	committed = time.Now()
	if err := ex.exec(ctx, manyFillSQL(s, second, 2, 2)); err != nil {
		return measure{}, err
	}
	if err := waitAllOffsets(ctx, b.addr, []string{s.topic(second)}, 2, time.Minute, p); err != nil {
		return measure{}, err
	}
	m.Fields["new_topic_second_ms"] = float64(time.Since(committed).Microseconds()) / 1000
	// What of that the registry takes: a key and a value schema of one
	// more table, registered on the registry as the run left it.
	if m.Fields["registry_new_table_ms"], err = registerOne(ctx, reg.URL, "cost.extra"); err != nil {
		return measure{}, err
	}
	if err := p.stop(time.Minute); err != nil {
		return measure{}, err
	}
	b.stop()

	// What liberator pays per table for its topic and its subjects,
	// measured alone.
	if err := creationCosts(ctx, e, n, m); err != nil {
		return measure{}, err
	}
	return m, nil
}

// waitAllOffsets polls every topic's end offset until each reaches want.
// Several topics are polled every 250 ms: snapshot_s is that coarse.
func waitAllOffsets(ctx context.Context, brokerAddr string, topics []string, want int64, timeout time.Duration, p *proc) error {
	cl, adm, err := newAdmin(brokerAddr)
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	left := topics
	// One topic is polled often, for its latency; many seldom, so that
	// the polling does not load the broker that liberator is measured on.
	pause := 2 * time.Millisecond
	if len(topics) > 1 {
		pause = 250 * time.Millisecond
	}
	for {
		ends, err := adm.ListEndOffsets(ctx, left...)
		if err == nil {
			var still []string
			for _, t := range left {
				if o, ok := ends.Lookup(t, 0); !ok || o.Err != nil || o.Offset < want {
					still = append(still, t)
				}
			}
			left = still
		}
		if len(left) == 0 {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("liberator exited with %d topics short of %d records: %v\n%s", len(left), want, p.err, p.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d topics short of %d records after %s (first: %s)", len(left), want, timeout, left[0])
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// waitLog waits until p's log mentions s.
func waitLog(ctx context.Context, p *proc, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.log.Name())
		if strings.Contains(string(b), s) {
			return nil
		}
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("liberator's log does not mention %s:\n%s", s, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// registerOne registers a key and a value schema under subject's
// subjects, and returns how long that took, in milliseconds.
func registerOne(ctx context.Context, url, subject string) (float64, error) {
	reg, err := schema.NewRegistry(schema.RegistryConfig{URL: url})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := reg.RegisterKey(ctx, subject+"-key", avro.MustParse(costKey)); err != nil {
		return 0, err
	}
	if _, err := reg.Register(ctx, subject+"-value", avro.MustParse(costValue)); err != nil {
		return 0, err
	}
	return float64(time.Since(start).Microseconds()) / 1000, nil
}

// The schemas creationCosts and registerOne register.
const (
	costKey   = `{"type": "record", "name": "Key", "namespace": "cost", "fields": [{"name": "id", "type": "long"}]}`
	costValue = `{"type": "record", "name": "Value", "namespace": "cost", "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": ["null", "string"], "default": null}]}`
)

// costTables is how many tables' subjects creationCosts registers.
const costTables = 100

// creationCosts creates n compacted topics on a fresh broker, one request
// at a time, registers a key and a value schema for each of the first
// costTables of them on a fresh registry, and records the mean cost of
// each.
func creationCosts(ctx context.Context, e *env, n int64, m measure) error {
	b, err := e.startBroker(ctx)
	if err != nil {
		return err
	}
	defer b.stop()
	cl, adm, err := newAdmin(b.addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	for i := int64(1); i <= n; i++ {
		resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, fmt.Sprintf("cost.%s", manyTable(i)))
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("create topic: %w", err)
		}
	}
	d := time.Since(start)
	m.Fields["topics_s"] = d.Seconds()
	m.Fields["topic_create_ms"] = d.Seconds() * 1000 / float64(n)

	// A fresh registry, and the first costTables tables only: srfake
	// compares each new schema with every one it holds, a cost that grows
	// with the registry and that a real registry does not have.
	srv, err := harness.StartRegistry()
	if err != nil {
		return err
	}
	defer srv.Close()
	reg, err := schema.NewRegistry(schema.RegistryConfig{URL: srv.URL})
	if err != nil {
		return err
	}
	n = min(n, costTables)
	key, value := avro.MustParse(costKey), avro.MustParse(costValue)
	start = time.Now()
	for i := int64(1); i <= n; i++ {
		subject := fmt.Sprintf("cost.%s", manyTable(i))
		if _, err := reg.RegisterKey(ctx, subject+"-key", key); err != nil {
			return err
		}
		if _, err := reg.Register(ctx, subject+"-value", value); err != nil {
			return err
		}
	}
	d = time.Since(start)
	m.Fields["subjects_s"] = d.Seconds()
	m.Fields["subject_register_ms"] = d.Seconds() * 1000 / float64(2*n)
	return nil
}
