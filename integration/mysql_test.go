package integration

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

const mdbSchemaSQL = `CREATE DATABASE shop;
CREATE TABLE shop.items (
	id         BIGINT PRIMARY KEY,
	account    INT NOT NULL,
	small      SMALLINT,
	tiny       TINYINT UNSIGNED,
	name       VARCHAR(100),
	latin      VARCHAR(50) CHARACTER SET latin1,
	amount     DECIMAL(12,2),
	big_amount DECIMAL(38,10),
	ubig       BIGINT UNSIGNED,
	price      DOUBLE,
	ratio      FLOAT,
	flag       BIT(1),
	bits       BIT(12),
	created    TIMESTAMP(6) NULL,
	local_ts   DATETIME(6),
	day        DATE,
	at         TIME(6),
	yr         YEAR,
	doc        JSON,
	raw        BLOB,
	feeling    ENUM('sad', 'ok', 'happy'),
	tags       SET('a', 'b', 'c'),
	payload    MEDIUMTEXT
) DEFAULT CHARSET = utf8mb4;
CREATE TABLE shop.accounts (
	region  VARCHAR(10),
	num     INT,
	label   VARCHAR(20),
	balance DECIMAL(20,4),
	PRIMARY KEY (region, num)
) DEFAULT CHARSET = utf8mb4`

// mdbTables are the captured tables and their key columns.
var mdbTables = map[string][]string{"shop.items": {"id"}, "shop.accounts": {"region", "num"}}

// mdbKinds say how each non-text column is read back for comparison, in
// the form liberator's Avro decodes to.
var mdbKinds = map[string]string{
	"ubig": "unsigned-decimal", "amount": "decimal", "big_amount": "decimal", "balance": "decimal",
	"price": "double", "ratio": "float", "flag": "bool", "bits": "bytes", "raw": "bytes",
	"created": "time", "local_ts": "time", "day": "date", "at": "micros", "tags": "set",
}

type mdbEnv struct {
	db      *harness.MariaDBServer
	kafka   *harness.KafkaCluster
	reg     *harness.RegistryServer
	conn    *client.Conn
	cfgPath string
	client  *schema.Registry
}

func newMariaDBEnv(t *testing.T, ctx context.Context) *mdbEnv {
	t.Helper()
	e := &mdbEnv{db: harness.MariaDB(t), kafka: harness.Kafka(t), reg: harness.Registry(t)}
	var err error
	if e.conn, err = e.db.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	for _, q := range append([]string{"SET NAMES utf8mb4", "SET time_zone = '+00:00'"}, strings.Split(mdbSchemaSQL, ";\n")...) {
		if _, err := e.conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e.cfgPath = writeConfig(t, fmt.Sprintf(`
source:
  kind: mariadb
  dsn: %s
  tables: [shop.items, shop.accounts]
  mysql:
    server_id: 77
kafka:
  brokers: [%s]
  topic_prefix: mdb
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
`, e.db.DSN, strings.Join(e.kafka.Brokers, ","), e.reg.URL))
	if e.client, err = schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL}); err != nil {
		t.Fatal(err)
	}
	return e
}

// requireConverges waits until the topic of each table equals the table.
func (e *mdbEnv) requireConverges(t *testing.T, ctx context.Context) {
	t.Helper()
	read := func(table string) (rowSet, error) { return readMariaDBTable(e.conn, table, mdbTables[table]) }
	requireTopicsEqual(t, ctx, e.kafka.Brokers, e.client, read, func(table string) string { return "mdb." + table }, keysOf(mdbTables), 90*time.Second)
}

// readMariaDBTable reads a table in the binary protocol, with the server
// converting strings to UTF-8 and TIMESTAMP to UTC itself, independently of
// liberator's decoders, into the canonical form of replayTopic.
func readMariaDBTable(conn *client.Conn, table string, key []string) (rowSet, error) {
	// A prepared statement answers in the binary protocol: FLOAT arrives
	// as its four bytes.
	stmt, err := conn.Prepare("SELECT * FROM " + table)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	res, err := stmt.Execute()
	if err != nil {
		return nil, err
	}
	defer res.Close()
	out := rowSet{}
	for i := range res.Values {
		row := map[string]string{}
		keyRec := map[string]any{}
		for j, f := range res.Fields {
			name := string(f.Name)
			v, err := mdbValue(mdbKinds[name], &res.Values[i][j])
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", table, name, err)
			}
			row[name] = canon(v)
			for _, k := range key {
				if k == name {
					keyRec[k] = v
				}
			}
		}
		out[canon(keyRec)] = row
	}
	return out, nil
}

func mdbValue(kind string, fv *gomysql.FieldValue) (any, error) {
	switch fv.Type {
	case gomysql.FieldValueTypeNull:
		return nil, nil
	case gomysql.FieldValueTypeSigned:
		return fv.AsInt64(), nil
	case gomysql.FieldValueTypeUnsigned:
		if kind == "unsigned-decimal" {
			return new(big.Rat).SetInt(new(big.Int).SetUint64(fv.AsUint64())), nil
		}
		return int64(fv.AsUint64()), nil
	case gomysql.FieldValueTypeFloat:
		if kind == "float" {
			return float32(fv.AsFloat64()), nil
		}
		return fv.AsFloat64(), nil
	}
	s := string(fv.AsString())
	switch kind {
	case "decimal":
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, fmt.Errorf("decimal %q", s)
		}
		return r, nil
	case "bool":
		return s != "\x00", nil
	case "bytes":
		return []byte(s), nil
	case "time":
		return time.Parse("2006-01-02 15:04:05.999999", s)
	case "date":
		return time.Parse("2006-01-02", s)
	case "zdate", "zdatetime":
		return zeroDateValue(kind, s)
	case "micros":
		neg := strings.HasPrefix(s, "-")
		var h, m int64
		var sec float64
		if _, err := fmt.Sscanf(strings.TrimPrefix(s, "-"), "%d:%d:%f", &h, &m, &sec); err != nil {
			return nil, fmt.Errorf("time %q: %w", s, err)
		}
		us := (h*3600+m*60)*1e6 + int64(math.Round(sec*1e6))
		if neg {
			us = -us
		}
		return us, nil
	case "set":
		out := []any{}
		if s != "" {
			for _, l := range strings.Split(s, ",") {
				out = append(out, l)
			}
		}
		return out, nil
	}
	return s, nil
}

// mdbWorkload makes random changes of every kind: inserts, updates,
// primary-key changes, deletes, NULLs, in transactions of one to five
// statements.
type mdbWorkload struct {
	rng    *rand.Rand
	ids    []int64
	nextID int64
	accts  [][2]any
}

func newMariaDBWorkload(seed uint64) *mdbWorkload {
	return &mdbWorkload{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), nextID: 1}
}

func (w *mdbWorkload) maybe(v any) any {
	if w.rng.IntN(8) == 0 {
		return nil
	}
	return v
}

func (w *mdbWorkload) decimal(intDigits, scale int) string {
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

func (w *mdbWorkload) text(alphabet string, n int) string {
	r := []rune(alphabet)
	var b strings.Builder
	for range n {
		b.WriteRune(r[w.rng.IntN(len(r))])
	}
	return b.String()
}

const (
	utf8Alphabet   = "abcdefghijklmnopqrstuvwxyz ÄéΩ漢字🙂\"',{}\\"
	latin1Alphabet = "abcdefghij ÄéÿüßÆ€‰"
)

func (w *mdbWorkload) when(from, span int64) string {
	us := from + w.rng.Int64N(span)
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000000")
}

func (w *mdbWorkload) itemValues() []any {
	tags := []string{}
	for _, t := range []string{"a", "b", "c"} {
		if w.rng.IntN(2) == 0 {
			tags = append(tags, t)
		}
	}
	at := time.Duration(w.rng.Int64N(2*838*3600e6)-838*3600e6) * time.Microsecond
	atText := fmt.Sprintf("%d:%02d:%02d.%06d", int64(at.Abs().Hours()), int64(at.Abs().Minutes())%60, int64(at.Abs().Seconds())%60, at.Abs().Microseconds()%1e6)
	if at < 0 {
		atText = "-" + atText
	}
	return []any{
		w.rng.Int32(),
		w.maybe(w.rng.IntN(65536) - 32768),
		w.maybe(w.rng.IntN(256)),
		w.maybe(w.text(utf8Alphabet, w.rng.IntN(30))),
		w.maybe(w.text(latin1Alphabet, w.rng.IntN(20))),
		w.maybe(w.decimal(10, 2)),
		w.maybe(w.decimal(28, 10)),
		w.maybe(strconv.FormatUint(w.rng.Uint64(), 10)),
		w.maybe((w.rng.Float64() - 0.5) * math.Pow10(w.rng.IntN(40)-20)),
		w.maybe((w.rng.Float64() - 0.5) * math.Pow10(w.rng.IntN(20)-10)),
		w.maybe(w.rng.IntN(2)),
		w.maybe(w.rng.IntN(4096)),
		// TIMESTAMP spans 1970 to 2038.
		w.maybe(w.when(1e6, 2_000_000_000e6)),
		w.maybe(w.when(-2208988800e6, 6311433600e6)),
		w.maybe(w.when(-5e15, 1e16)[:10]),
		w.maybe(atText),
		w.maybe(1901 + w.rng.IntN(255)),
		w.maybe(fmt.Sprintf(`{"n": %d, "s": %q, "a": [1, 2.5, null]}`, w.rng.IntN(1000), w.text(utf8Alphabet, 5))),
		w.maybe([]byte(w.text(utf8Alphabet, w.rng.IntN(20)))),
		w.maybe([]string{"sad", "ok", "happy"}[w.rng.IntN(3)]),
		w.maybe(strings.Join(tags, ",")),
	}
}

const mdbItemColumns = `account, small, tiny, name, latin, amount, big_amount, ubig, price, ratio, flag, bits, created, local_ts, day, at, yr, doc, raw, feeling, tags`
const mdbItemParams = `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`

func (w *mdbWorkload) step(conn *client.Conn) error {
	if err := conn.Begin(); err != nil {
		return err
	}
	for range 1 + w.rng.IntN(5) {
		if err := w.statement(conn); err != nil {
			_ = conn.Rollback()
			return err
		}
	}
	return conn.Commit()
}

func (w *mdbWorkload) statement(conn *client.Conn) error {
	op := w.rng.IntN(100)
	switch {
	case op < 35 || len(w.ids) < 5:
		id := w.nextID
		w.nextID++
		args := append([]any{id}, w.itemValues()...)
		args = append(args, w.maybe(w.text(utf8Alphabet, 2000+w.rng.IntN(4000))))
		if _, err := conn.Execute(`INSERT INTO shop.items (id, `+mdbItemColumns+`, payload) VALUES (?, `+mdbItemParams+`, ?)`, args...); err != nil {
			return fmt.Errorf("insert item: %w", err)
		}
		w.ids = append(w.ids, id)
		if w.rng.IntN(3) == 0 {
			key := [2]any{[]string{"eu", "us", "apac"}[w.rng.IntN(3)], w.rng.Int32N(1000)}
			_, err := conn.Execute(`INSERT INTO shop.accounts VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE label = VALUES(label)`,
				key[0], key[1], w.maybe(w.text(utf8Alphabet, w.rng.IntN(20))), w.maybe(w.decimal(16, 4)))
			if err != nil {
				return fmt.Errorf("insert account: %w", err)
			}
			w.accts = append(w.accts, key)
		}
	case op < 70:
		id := w.ids[w.rng.IntN(len(w.ids))]
		sets := strings.ReplaceAll(mdbItemColumns, ",", " = ?,") + " = ?"
		args := append(w.itemValues(), id)
		if _, err := conn.Execute(`UPDATE shop.items SET `+sets+` WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update item: %w", err)
		}
		if len(w.accts) > 0 {
			k := w.accts[w.rng.IntN(len(w.accts))]
			if _, err := conn.Execute(`UPDATE shop.accounts SET balance = ? WHERE region = ? AND num = ?`, w.decimal(16, 4), k[0], k[1]); err != nil {
				return fmt.Errorf("update account: %w", err)
			}
		}
	case op < 80:
		i := w.rng.IntN(len(w.ids))
		newID := w.nextID
		w.nextID++
		if _, err := conn.Execute(`UPDATE shop.items SET id = ?, name = ? WHERE id = ?`, newID, w.text(utf8Alphabet, 8), w.ids[i]); err != nil {
			return fmt.Errorf("change item key: %w", err)
		}
		w.ids[i] = newID
		if len(w.accts) > 0 {
			j := w.rng.IntN(len(w.accts))
			k := w.accts[j]
			nk := [2]any{k[0], 1000 + w.rng.Int32N(1_000_000)}
			if _, err := conn.Execute(`UPDATE IGNORE shop.accounts SET num = ? WHERE region = ? AND num = ?`, nk[1], k[0], k[1]); err != nil {
				return fmt.Errorf("change account key: %w", err)
			}
			w.accts[j] = nk
		}
	default:
		i := w.rng.IntN(len(w.ids))
		if _, err := conn.Execute(`DELETE FROM shop.items WHERE id = ?`, w.ids[i]); err != nil {
			return fmt.Errorf("delete item: %w", err)
		}
		w.ids = append(w.ids[:i], w.ids[i+1:]...)
		if len(w.accts) > 0 && w.rng.IntN(2) == 0 {
			j := w.rng.IntN(len(w.accts))
			if _, err := conn.Execute(`DELETE FROM shop.accounts WHERE region = ? AND num = ?`, w.accts[j][0], w.accts[j][1]); err != nil {
				return fmt.Errorf("delete account: %w", err)
			}
			w.accts = append(w.accts[:j], w.accts[j+1:]...)
		}
	}
	return nil
}

func (w *mdbWorkload) run(t *testing.T, conn *client.Conn, n int) {
	t.Helper()
	for range n {
		if err := w.step(conn); err != nil {
			t.Fatalf("workload: %v", err)
		}
	}
}
