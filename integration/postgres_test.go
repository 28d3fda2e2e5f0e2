package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

const pgSchemaSQL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE items (
	id         bigint PRIMARY KEY,
	account    integer NOT NULL,
	small      smallint,
	name       text,
	amount     numeric(12,2),
	big_amount numeric(38,10),
	free       numeric,
	price      double precision,
	ratio      real,
	flag       boolean,
	created    timestamptz,
	local_ts   timestamp,
	day        date,
	at         time,
	uid        uuid,
	doc        jsonb,
	raw        json,
	blob       bytea,
	tags       text[],
	scores     integer[],
	feeling    mood,
	payload    text
);
CREATE TABLE accounts (
	region  text,
	num     integer,
	label   varchar(20),
	balance numeric(20,4),
	payload text,
	PRIMARY KEY (region, num)
);
ALTER TABLE accounts REPLICA IDENTITY FULL;
`

// pgTables are the captured tables and their key columns.
var pgTables = map[string][]string{"public.items": {"id"}, "public.accounts": {"region", "num"}}

type pgEnv struct {
	pg      *harness.PostgresServer
	kafka   *harness.KafkaCluster
	reg     *harness.RegistryServer
	dsn     string
	conn    *pgx.Conn
	cfgPath string
	client  *schema.Registry
}

// newPGEnv starts the servers and writes a config; extra is appended at the
// top level, and pgExtra (lines indented for the source.postgres section)
// goes under source.postgres.
func newPGEnv(t *testing.T, ctx context.Context, extra string, pgExtra ...string) *pgEnv {
	t.Helper()
	e := &pgEnv{pg: harness.Postgres(t), kafka: harness.Kafka(t), reg: harness.Registry(t)}
	var err error
	if e.dsn, err = e.pg.CreateDatabase("shop"); err != nil {
		t.Fatal(err)
	}
	if e.conn, err = pgx.Connect(ctx, e.dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.conn.Close(context.Background()) })
	if _, err := e.conn.Exec(ctx, pgSchemaSQL); err != nil {
		t.Fatal(err)
	}
	e.cfgPath = writeConfig(t, fmt.Sprintf(`
source:
  kind: postgres
  dsn: %s
  tables: [public.items, public.accounts]
  postgres:
    slot: liberator
%s
kafka:
  brokers: [%s]
  topic_prefix: shop
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
%s`, e.dsn, strings.Join(pgExtra, "\n"), strings.Join(e.kafka.Brokers, ","), e.reg.URL, extra))
	if e.client, err = schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *pgEnv) requireConverges(t *testing.T, ctx context.Context) {
	t.Helper()
	requireConverges(t, ctx, e.kafka.Brokers, e.client, e.conn, func(table string) string { return "shop." + table }, pgTables, 90*time.Second)
}

// workload makes random changes of every kind: inserts, updates of some
// columns (leaving the TOASTed payload unchanged), primary-key changes,
// deletes, NULLs, in transactions of one to five statements.
type workload struct {
	rng    *rand.Rand
	ids    []int64
	nextID int64
	accts  [][2]any
}

func newWorkload(seed uint64) *workload {
	return &workload{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), nextID: 1}
}

func (w *workload) maybe(v any) any {
	if w.rng.IntN(8) == 0 {
		return nil
	}
	return v
}

func (w *workload) decimal(intDigits, scale int) string {
	var b strings.Builder
	if w.rng.IntN(2) == 0 {
		b.WriteByte('-')
	}
	b.WriteString(fmt.Sprint(w.rng.Int64N(int64(math.Pow10(min(intDigits, 18))))))
	if scale > 0 {
		b.WriteByte('.')
		for range scale {
			b.WriteByte(byte('0' + w.rng.IntN(10)))
		}
	}
	return b.String()
}

func (w *workload) float() float64 {
	switch w.rng.IntN(20) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1)
	case 2:
		return math.Inf(-1)
	case 3:
		return math.Copysign(0, -1)
	}
	return (w.rng.Float64() - 0.5) * math.Pow10(w.rng.IntN(40)-20)
}

func (w *workload) when() time.Time {
	// 1900 to 2100, at microsecond precision.
	return time.UnixMicro(-2208988800_000000 + w.rng.Int64N(6311433600_000000)).UTC()
}

func (w *workload) text(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz ÄéΩ漢字🙂\"',{}\\"
	r := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(r[w.rng.IntN(len(r))])
	}
	return b.String()
}

func (w *workload) itemValues() []any {
	t := w.when()
	tags := []string{}
	for range w.rng.IntN(4) {
		tags = append(tags, w.text(w.rng.IntN(6)))
	}
	return []any{
		w.rng.Int32(),
		w.maybe(int16(w.rng.IntN(65536) - 32768)),
		w.maybe(w.text(w.rng.IntN(30))),
		w.maybe(w.decimal(10, 2)),
		w.maybe(w.decimal(28, 10)),
		w.maybe(w.decimal(w.rng.IntN(30)+1, w.rng.IntN(20))),
		w.maybe(w.float()),
		w.maybe(float32(w.float())),
		w.maybe(w.rng.IntN(2) == 0),
		w.maybe(t),
		w.maybe(t.Add(time.Duration(w.rng.Int64N(1e6)) * time.Microsecond)),
		w.maybe(time.Date(1800+w.rng.IntN(400), time.Month(1+w.rng.IntN(12)), 1+w.rng.IntN(28), 0, 0, 0, 0, time.UTC)),
		w.maybe(pgtype.Time{Microseconds: w.rng.Int64N(86_400_000_000), Valid: true}),
		w.maybe(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", w.rng.Uint32(), w.rng.IntN(65536), w.rng.IntN(65536), w.rng.IntN(65536), w.rng.Int64N(1<<48))),
		w.maybe(fmt.Sprintf(`{"n": %d, "s": %q, "a": [1, 2.5, null]}`, w.rng.IntN(1000), w.text(5))),
		w.maybe(fmt.Sprintf(`{"raw":  %d}`, w.rng.IntN(1000))),
		w.maybe([]byte(w.text(w.rng.IntN(20)))),
		w.maybe(tags),
		w.maybe([]any{w.rng.Int32(), nil, w.rng.Int32()}),
		w.maybe([]string{"sad", "ok", "happy"}[w.rng.IntN(3)]),
	}
}

const itemColumns = `account, small, name, amount, big_amount, free, price, ratio, flag, created, local_ts, day, at, uid, doc, raw, blob, tags, scores, feeling`
const itemParams = `$2, $3, $4, $5::numeric, $6::numeric, $7::numeric, $8, $9, $10, $11, $12, $13, $14, $15::uuid, $16::jsonb, $17::json, $18, $19, $20, $21::mood`

// step runs one random transaction.
func (w *workload) step(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for range 1 + w.rng.IntN(5) {
		if err := w.statement(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func (w *workload) statement(ctx context.Context, tx pgx.Tx) error {
	op := w.rng.IntN(100)
	switch {
	case op < 35 || len(w.ids) < 5:
		id := w.nextID
		w.nextID++
		// A payload of 4 to 12 kB of incompressible text is stored out of
		// line (TOAST), so updates that leave it alone send 'u' for it.
		payload := w.maybe(w.text(2000 + w.rng.IntN(4000)))
		args := append([]any{id}, w.itemValues()...)
		args = append(args, payload)
		if _, err := tx.Exec(ctx, `INSERT INTO items (id, `+itemColumns+`, payload) VALUES ($1, `+itemParams+`, $22)`, args...); err != nil {
			return fmt.Errorf("insert item: %w", err)
		}
		w.ids = append(w.ids, id)
		if w.rng.IntN(3) == 0 {
			key := [2]any{[]string{"eu", "us", "apac"}[w.rng.IntN(3)], w.rng.Int32N(1000)}
			_, err := tx.Exec(ctx, `INSERT INTO accounts VALUES ($1, $2, $3, $4::numeric, $5) ON CONFLICT (region, num) DO UPDATE SET label = excluded.label`,
				key[0], key[1], w.maybe(w.text(w.rng.IntN(20))), w.maybe(w.decimal(16, 4)), w.maybe(w.text(3000)))
			if err != nil {
				return fmt.Errorf("insert account: %w", err)
			}
			w.accts = append(w.accts, key)
		}
	case op < 70:
		id := w.ids[w.rng.IntN(len(w.ids))]
		args := append([]any{id}, w.itemValues()...)
		if _, err := tx.Exec(ctx, `UPDATE items SET (`+itemColumns+`) = (`+itemParams+`) WHERE id = $1`, args...); err != nil {
			return fmt.Errorf("update item: %w", err)
		}
		if len(w.accts) > 0 {
			k := w.accts[w.rng.IntN(len(w.accts))]
			if _, err := tx.Exec(ctx, `UPDATE accounts SET balance = $3::numeric WHERE region = $1 AND num = $2`, k[0], k[1], w.decimal(16, 4)); err != nil {
				return fmt.Errorf("update account: %w", err)
			}
		}
	case op < 80:
		i := w.rng.IntN(len(w.ids))
		newID := w.nextID
		w.nextID++
		if _, err := tx.Exec(ctx, `UPDATE items SET id = $2, name = $3 WHERE id = $1`, w.ids[i], newID, w.text(8)); err != nil {
			return fmt.Errorf("change item key: %w", err)
		}
		w.ids[i] = newID
		if len(w.accts) > 0 {
			j := w.rng.IntN(len(w.accts))
			k := w.accts[j]
			nk := [2]any{k[0], 1000 + w.rng.Int32N(1_000_000)}
			if _, err := tx.Exec(ctx, `UPDATE accounts SET num = $3 WHERE region = $1 AND num = $2`, k[0], k[1], nk[1]); err != nil {
				return fmt.Errorf("change account key: %w", err)
			}
			w.accts[j] = nk
		}
	default:
		i := w.rng.IntN(len(w.ids))
		if _, err := tx.Exec(ctx, `DELETE FROM items WHERE id = $1`, w.ids[i]); err != nil {
			return fmt.Errorf("delete item: %w", err)
		}
		w.ids = append(w.ids[:i], w.ids[i+1:]...)
		if len(w.accts) > 0 && w.rng.IntN(2) == 0 {
			j := w.rng.IntN(len(w.accts))
			if _, err := tx.Exec(ctx, `DELETE FROM accounts WHERE region = $1 AND num = $2`, w.accts[j][0], w.accts[j][1]); err != nil {
				return fmt.Errorf("delete account: %w", err)
			}
			w.accts = append(w.accts[:j], w.accts[j+1:]...)
		}
	}
	return nil
}

func (w *workload) run(t *testing.T, ctx context.Context, conn *pgx.Conn, n int) {
	t.Helper()
	for range n {
		if err := w.step(ctx, conn); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
}
