package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/hamba/avro/v2"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// outboxEventSchema is the payload schema the tests register under each
// outbox topic's subject.
const outboxEventSchema = `{"type": "record", "name": "OrderEvent", "namespace": "shop", "fields": [
  {"name": "order_id", "type": "string"},
  {"name": "seq", "type": "long"},
  {"name": "note", "type": ["null", "string"], "default": null}]}`

// outboxDB is a source database with an entity table, orders, and the
// statements of one outbox event.
type outboxDB struct {
	kind, dsn, table, section string
	// event returns the statements that write an event in a transaction:
	// the order's change, the outbox record, and its deletion.
	event func(id, aggType, aggID, typ, payload string) []string
	// tx runs statements in one transaction that commits or rolls back.
	tx    func(ctx context.Context, stmts []string, commit bool) error
	close func()
}

func pgOutboxDB(t *testing.T, ctx context.Context, messages bool) *outboxDB {
	pg := harness.Postgres(t)
	dsn, err := pg.CreateDatabase("shop")
	require.NoError(t, err)
	require.NoError(t, pgExec(ctx, dsn, `CREATE TABLE orders (id text PRIMARY KEY, seq bigint NOT NULL);
		CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL, type text NOT NULL, payload jsonb NOT NULL)`))
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	db := &outboxDB{kind: "postgres", dsn: dsn, table: "public.orders", section: "  postgres:\n    heartbeat_interval: 200ms"}
	db.event = func(id, aggType, aggID, typ, payload string) []string {
		order := fmt.Sprintf("INSERT INTO orders VALUES ('%s', %s) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq", aggID, seqOf(payload))
		if messages {
			msg, _ := json.Marshal(map[string]any{"id": id, "aggregate_type": aggType, "aggregate_id": aggID, "type": typ, "payload": json.RawMessage(payload)})
			return []string{order, fmt.Sprintf("SELECT pg_logical_emit_message(true, 'liberator.outbox', '%s')", msg)}
		}
		return []string{order,
			fmt.Sprintf("INSERT INTO outbox VALUES ('%s', '%s', '%s', '%s', '%s')", id, aggType, aggID, typ, payload),
			fmt.Sprintf("DELETE FROM outbox WHERE id = '%s'", id)}
	}
	db.tx = func(ctx context.Context, stmts []string, commit bool) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		if commit {
			return tx.Commit(ctx)
		}
		return tx.Rollback(ctx)
	}
	db.close = func() { _ = conn.Close(context.Background()) }
	return db
}

// mariaDBOutboxDB names the outbox's columns its own way: the key column
// is order_ref.
func mariaDBOutboxDB(t *testing.T, ctx context.Context) *outboxDB {
	m := harness.MariaDB(t)
	for _, q := range []string{
		"CREATE DATABASE shop",
		"CREATE TABLE shop.orders (id varchar(20) PRIMARY KEY, seq bigint NOT NULL)",
		"CREATE TABLE shop.events (event_id char(36) PRIMARY KEY, kind varchar(50) NOT NULL, order_ref varchar(20) NOT NULL, event_type varchar(50) NOT NULL, body json NOT NULL)",
	} {
		require.NoError(t, m.Exec(ctx, q))
	}
	conn, err := m.Connect(ctx)
	require.NoError(t, err)
	db := &outboxDB{kind: "mariadb", dsn: m.DSN, table: "shop.orders", section: "  mysql:\n    server_id: 91"}
	db.event = func(id, aggType, aggID, typ, payload string) []string {
		return []string{
			fmt.Sprintf("INSERT INTO shop.orders VALUES ('%s', %s) ON DUPLICATE KEY UPDATE seq = VALUES(seq)", aggID, seqOf(payload)),
			fmt.Sprintf("INSERT INTO shop.events VALUES ('%s', '%s', '%s', '%s', '%s')", id, aggType, aggID, typ, payload),
			fmt.Sprintf("DELETE FROM shop.events WHERE event_id = '%s'", id),
		}
	}
	db.tx = func(_ context.Context, stmts []string, commit bool) error { return mariaDBTx(conn, stmts, commit) }
	db.close = func() { _ = conn.Close() }
	return db
}

func mariaDBTx(conn *client.Conn, stmts []string, commit bool) error {
	if _, err := conn.Execute("BEGIN"); err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := conn.Execute(s); err != nil {
			return err
		}
	}
	end := "ROLLBACK"
	if commit {
		end = "COMMIT"
	}
	_, err := conn.Execute(end)
	return err
}

func seqOf(payload string) string {
	var p struct{ Seq int64 }
	_ = json.Unmarshal([]byte(payload), &p)
	return fmt.Sprint(p.Seq)
}

// outboxRun is liberator over an outboxDB with a broker and a registry.
type outboxRun struct {
	db    *outboxDB
	kafka *harness.KafkaCluster
	reg   *schema.Registry
	cfg   string
	// committed are the payloads of the committed events by id;
	// rolledBack the ids of the events of rolled-back transactions.
	committed  map[string]string
	rolledBack []string
	next       int
}

func newOutboxRun(t *testing.T, ctx context.Context, db *outboxDB, outboxSection, policy string) *outboxRun {
	r := &outboxRun{db: db, kafka: harness.Kafka(t), committed: map[string]string{}}
	rs := harness.Registry(t)
	var err error
	r.reg, err = schema.NewRegistry(schema.RegistryConfig{URL: rs.URL})
	require.NoError(t, err)
	s := avro.MustParse(outboxEventSchema)
	for _, subject := range []string{"shop.Order-value", "shop.Payment-value"} {
		_, err := r.reg.Register(ctx, subject, s)
		require.NoError(t, err)
	}
	r.cfg = writeConfig(t, fmt.Sprintf(`
source:
  kind: %s
  dsn: %s
  tables: [%s]
%s
kafka:
  brokers: [%s]
  topic_prefix: shop
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 50ms
errors:
  on_bad_row: %s
outbox:
%s
`, db.kind, db.dsn, db.table, db.section, strings.Join(r.kafka.Brokers, ","), rs.URL, policy, outboxSection))
	return r
}

// write runs n transactions, each the event of one of 6 orders (even
// orders are of aggregate type Order, odd ones Payment); every 5th rolls
// back.
func (r *outboxRun) write(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	for range n {
		r.next++
		i := r.next
		agg := i % 6
		aggType := "Order"
		if agg%2 == 1 {
			aggType = "Payment"
		}
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		payload := fmt.Sprintf(`{"order_id": "o-%d", "seq": %d, "note": "event %d"}`, agg, i, i)
		commit := i%5 != 0
		require.NoError(t, r.db.tx(ctx, r.db.event(id, aggType, fmt.Sprintf("o-%d", agg), aggType+"Changed", payload), commit))
		if commit {
			r.committed[id] = payload
		} else {
			r.rolledBack = append(r.rolledBack, id)
		}
	}
}

// outboxRecord is one event as a consumer reads it.
type outboxRecord struct {
	id, key, typ string
	seq          int64
	value        map[string]any
}

func (r *outboxRun) read(ctx context.Context, topic string) ([]outboxRecord, error) {
	recs, err := readRecords(ctx, r.kafka.Brokers, topic)
	if err != nil {
		return nil, err
	}
	out := make([]outboxRecord, 0, len(recs))
	for _, rec := range recs {
		v, err := r.reg.Decode(ctx, rec.Value)
		if err != nil {
			return nil, err
		}
		m := v.(map[string]any)
		or := outboxRecord{key: string(rec.Key), value: m, seq: m["seq"].(int64)}
		for _, h := range rec.Headers {
			switch h.Key {
			case "id":
				or.id = string(h.Value)
			case "type":
				or.typ = string(h.Value)
			}
		}
		out = append(out, or)
	}
	return out, nil
}

// requireEvents waits until every committed event is in its topic, then
// checks the ledger: each exactly as its payload, none of a rolled-back
// transaction, and each aggregate's events in commit order (duplicates of
// at-least-once delivery, told by their id, aside).
func (r *outboxRun) requireEvents(t *testing.T, ctx context.Context, d *daemon) {
	t.Helper()
	var got map[string]outboxRecord
	var byKey map[string][]outboxRecord
	require.Eventually(t, func() bool {
		if d.exited() {
			return true
		}
		got, byKey = map[string]outboxRecord{}, map[string][]outboxRecord{}
		for _, topic := range []string{"shop.Order", "shop.Payment"} {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			recs, err := r.read(rctx, topic)
			cancel()
			if err != nil {
				return false
			}
			for _, rec := range recs {
				if _, dup := got[rec.id]; !dup {
					got[rec.id] = rec
					byKey[rec.key] = append(byKey[rec.key], rec)
				}
			}
		}
		for id := range r.committed {
			if _, ok := got[id]; !ok {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
	for id, payload := range r.committed {
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(payload), &want))
		rec := got[id]
		gotJSON := map[string]any{"order_id": rec.value["order_id"], "seq": float64(rec.seq), "note": unwrapNote(rec.value["note"])}
		require.Equal(t, want, gotJSON, "event %s", id)
		require.Equal(t, want["order_id"], rec.key, "key of event %s", id)
	}
	for _, id := range r.rolledBack {
		_, ok := got[id]
		require.False(t, ok, "event %s of a rolled-back transaction was published", id)
	}
	for key, recs := range byKey {
		for i := 1; i < len(recs); i++ {
			require.Less(t, recs[i-1].seq, recs[i].seq, "events of aggregate %s out of order", key)
		}
	}
}

func unwrapNote(v any) any {
	if m, ok := v.(map[string]any); ok {
		return m["string"]
	}
	return v
}

// testOutboxKill writes events, kills liberator with SIGKILL mid-way,
// writes more while it is down, restarts it, and checks the ledger.
func testOutboxKill(t *testing.T, ctx context.Context, r *outboxRun) {
	d := startDaemon(t, "run", r.cfg)
	waitStoredPosition(t, d)
	r.write(t, ctx, 200)
	require.Eventually(t, func() bool {
		recs, err := r.read(ctx, "shop.Order")
		return d.exited() || err == nil && len(recs) > 10
	}, time.Minute, 50*time.Millisecond)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
	r.write(t, ctx, 100)
	d.kill()
	r.write(t, ctx, 100)
	d = startDaemon(t, "run", r.cfg)
	r.write(t, ctx, 100)
	r.requireEvents(t, ctx, d)
}

// TestIntegrationOutboxPostgresTable publishes a PostgreSQL outbox table
// whose rows are deleted in the transaction that wrote them, across a
// SIGKILL, to two topics routed by aggregate type.
func TestIntegrationOutboxPostgresTable(t *testing.T) {
	ctx := context.Background()
	db := pgOutboxDB(t, ctx, false)
	defer db.close()
	r := newOutboxRun(t, ctx, db, "  - table: public.outbox", "fail")
	testOutboxKill(t, ctx, r)
}

// TestIntegrationOutboxPostgresMessages publishes pg_logical_emit_message
// events mixed with an entity table, across a SIGKILL.
func TestIntegrationOutboxPostgresMessages(t *testing.T) {
	ctx := context.Background()
	db := pgOutboxDB(t, ctx, true)
	defer db.close()
	r := newOutboxRun(t, ctx, db, "  - message_prefix: liberator.outbox", "fail")
	testOutboxKill(t, ctx, r)
	// The entity table is published beside the events.
	recs, err := readRecords(ctx, r.kafka.Brokers, "shop.public.orders")
	require.NoError(t, err)
	require.NotEmpty(t, recs, "the entity table's topic is empty")
}

// TestIntegrationOutboxMariaDBTable publishes a MariaDB outbox table with
// columns of its own names, keyed by order_ref, across a SIGKILL.
func TestIntegrationOutboxMariaDBTable(t *testing.T) {
	ctx := context.Background()
	db := mariaDBOutboxDB(t, ctx)
	defer db.close()
	r := newOutboxRun(t, ctx, db, `  - table: shop.events
    id: event_id
    aggregate_type: kind
    aggregate_id: order_ref
    type: event_type
    payload: body`, "fail")
	testOutboxKill(t, ctx, r)
}

// TestIntegrationOutboxBadPayload writes an event whose payload breaks its
// schema: under fail liberator stops at it, naming the event and the
// field; under dead_letter the event goes to the dead-letter topic and the
// next one is published.
func TestIntegrationOutboxBadPayload(t *testing.T) {
	ctx := context.Background()
	bad := `{"order_id": "o-0", "seq": "many"}`
	badID := "00000000-0000-4000-8000-00000000bad0"
	t.Run("fail stops at the event", func(t *testing.T) {
		db := pgOutboxDB(t, ctx, false)
		defer db.close()
		r := newOutboxRun(t, ctx, db, "  - table: public.outbox", "fail")
		d := startDaemon(t, "run", r.cfg)
		waitStoredPosition(t, d)
		r.write(t, ctx, 3)
		require.NoError(t, db.tx(ctx, db.event(badID, "Order", "o-0", "OrderChanged", bad), true))
		waitExit(t, d, 1, "bad outbox event "+badID+" of public.outbox", "payload.seq", "not a whole number (an Avro long)")
	})
	t.Run("dead_letter goes past it", func(t *testing.T) {
		db := pgOutboxDB(t, ctx, false)
		defer db.close()
		r := newOutboxRun(t, ctx, db, "  - table: public.outbox", "dead_letter")
		d := startDaemon(t, "run", r.cfg)
		waitStoredPosition(t, d)
		r.write(t, ctx, 3)
		require.NoError(t, db.tx(ctx, db.event(badID, "Order", "o-0", "OrderChanged", bad), true))
		r.write(t, ctx, 3)
		r.requireEvents(t, ctx, d)
		var letters []kafka.DeadLetter
		require.Eventually(t, func() bool {
			recs, err := readRecords(ctx, r.kafka.Brokers, "shop.dead_letter")
			if err != nil {
				return false
			}
			letters = letters[:0]
			for _, rec := range recs {
				var dl kafka.DeadLetter
				require.NoError(t, json.Unmarshal(rec.Value, &dl))
				letters = append(letters, dl)
			}
			return len(letters) > 0
		}, time.Minute, 100*time.Millisecond)
		require.Len(t, letters, 1)
		require.Equal(t, "payload.seq", letters[0].Column)
		require.Equal(t, kafka.ReasonPayload, letters[0].Reason)
		require.JSONEq(t, `{"id": "`+badID+`"}`, string(letters[0].Key))
	})
}
