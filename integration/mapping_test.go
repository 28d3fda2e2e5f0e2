package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mapped applies the test's customer mapping to rows read from the table:
// notes left out, email hashed and renamed contact, ssn masked.
func mapped(rows rowSet, salt string) rowSet {
	out := rowSet{}
	for k, r := range rows {
		m := map[string]string{}
		for c, v := range r {
			switch c {
			case "notes":
			case "email":
				if v != "NULL" {
					s, _ := strconv.Unquote(v)
					sum := sha256.Sum256([]byte(salt + s))
					v = strconv.Quote(hex.EncodeToString(sum[:]))
				}
				m["contact"] = v
			case "ssn":
				if v != "NULL" {
					v = strconv.Quote("***")
				}
				m[c] = v
			default:
				m[c] = v
			}
		}
		out[k] = m
	}
	return out
}

// TestIntegrationPostgresMapping publishes a table through a mapping (a
// column left out, one hashed and renamed, one masked, a topic of its own)
// and a table without a primary key keyed by a configured column, and
// checks that a mapping naming a column the table lacks stops liberator at
// start, naming both.
func TestIntegrationPostgresMapping(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const salt = "pepper"
	t.Setenv("LIBERATOR_TEST_SALT", salt)
	e := newEvoPG(t, ctx, `
CREATE TABLE customers (id bigint PRIMARY KEY, email text, ssn text NOT NULL, notes text, score integer NOT NULL DEFAULT 0);
CREATE TABLE events (event_id uuid NOT NULL, kind text, payload jsonb);
ALTER TABLE events REPLICA IDENTITY FULL;
INSERT INTO customers SELECT g, 'c' || g || '@example.com', '123-45-' || g, 'private ' || g FROM generate_series(1, 10) g;
INSERT INTO events SELECT gen_random_uuid(), 'k' || g, jsonb_build_object('n', g) FROM generate_series(1, 10) g;`)
	mapping := `
mapping_salt: ${LIBERATOR_TEST_SALT}
mapping:
  public.customers:
    exclude: [notes]
    rename: {email: contact}
    mask: {ssn: "***"}
    hash: [email]
    topic: crm.customers
  events:
    key: [event_id]
`
	d := startDaemon(t, "run", e.config(t, []string{"public.customers", "public.events"}, mapping))
	customers := func() rowSet {
		rows, err := readTable(ctx, e.conn, "public.customers", []string{"id"})
		require.NoError(t, err)
		return mapped(rows, salt)
	}
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "crm.customers", customers)
	e.converges(t, ctx, "evo.public.events", "public.events", "event_id")

	e.exec(t, ctx, `UPDATE customers SET email = NULL WHERE id = 1; UPDATE customers SET email = 'new@example.com', notes = 'x' WHERE id = 2;
DELETE FROM customers WHERE id = 3; INSERT INTO customers (id, email, ssn) VALUES (11, 'ü@example.com', '000')`)
	e.exec(t, ctx, `UPDATE events SET kind = 'changed' WHERE kind = 'k1'; DELETE FROM events WHERE kind = 'k2';
UPDATE events SET event_id = gen_random_uuid() WHERE kind = 'k3'; INSERT INTO events VALUES (gen_random_uuid(), 'new', NULL)`)
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "crm.customers", customers)
	e.converges(t, ctx, "evo.public.events", "public.events", "event_id")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}

	t.Run("a column the table lacks stops liberator at start", func(t *testing.T) {
		bad := strings.Replace(mapping, "exclude: [notes]", "exclude: [nope]", 1)
		waitExit(t, startDaemon(t, "run", e.config(t, []string{"public.customers", "public.events"}, bad)), 1,
			"mapping.public.customers.exclude", "is not a column of table public.customers")
	})
	t.Run("a table keyed by columns needs REPLICA IDENTITY FULL", func(t *testing.T) {
		e.exec(t, ctx, `CREATE TABLE plain (a integer NOT NULL, b text)`)
		cfg := e.config(t, []string{"public.plain"}, "mapping: {plain: {key: [a]}}")
		waitExit(t, startDaemon(t, "run", cfg), 1, "public.plain: it is keyed by mapping.public.plain.key", "REPLICA IDENTITY FULL")
	})
}

// TestIntegrationMariaDBKeyColumns keys a MariaDB table without a primary
// key by a configured column, with a hashed column, through the snapshot
// and the binlog.
func TestIntegrationMariaDBKeyColumns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const salt = "pepper"
	e := newEvoMariaDB(t, ctx, nil,
		"CREATE DATABASE m",
		"CREATE TABLE m.log (seq BIGINT NOT NULL, msg VARCHAR(40), level VARCHAR(10)) DEFAULT CHARSET = utf8mb4",
		"INSERT INTO m.log SELECT seq, CONCAT('message ', seq), 'info' FROM m.seq_1_to_10")
	d := startDaemon(t, "run", e.config(t, []string{"m.log"}, "mapping: {m.log: {key: [seq], hash: [msg], salt: "+salt+"}}"))
	want := func() rowSet {
		rows := e.read(t, "m.log", "seq")
		for _, r := range rows {
			s, _ := strconv.Unquote(r["msg"])
			sum := sha256.Sum256([]byte(salt + s))
			r["msg"] = strconv.Quote(hex.EncodeToString(sum[:]))
		}
		return rows
	}
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.m.log", want)
	e.exec(t, "UPDATE m.log SET level = 'warn' WHERE seq = 1", "DELETE FROM m.log WHERE seq = 2",
		"UPDATE m.log SET seq = 100 WHERE seq = 3", "INSERT INTO m.log VALUES (11, 'ü', 'debug')")
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.m.log", want)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}

// without returns rows without the columns cols.
func without(rows rowSet, cols ...string) rowSet {
	for _, r := range rows {
		for _, c := range cols {
			delete(r, c)
		}
	}
	return rows
}

// TestIntegrationPostgresExcludedColumnsAreNotDecoded excludes columns
// whose values liberator cannot carry (a NaN in a numeric(10,2), a
// multi-dimensional array) and checks that the table streams through the
// snapshot and the stream under errors.on_bad_row: fail, as if they were
// not there.
func TestIntegrationPostgresExcludedColumnsAreNotDecoded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoPG(t, ctx, `
CREATE TABLE items (id integer PRIMARY KEY, price numeric(10,2), grid integer[], note text);
INSERT INTO items VALUES (1, 'NaN', '{{1,2},{3,4}}', 'one'), (2, 1.50, '{1}', 'two'), (3, NULL, NULL, NULL);`)
	d := startDaemon(t, "run", e.config(t, []string{"public.items"}, "mapping: {public.items: {exclude: [price, grid]}}"))
	want := func() rowSet {
		// The test's own reader cannot read a NaN numeric either.
		rows, err := readTable(ctx, e.conn, "(SELECT id, note FROM items) AS published", []string{"id"})
		require.NoError(t, err)
		return rows
	}
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.public.items", want)
	e.exec(t, ctx, `INSERT INTO items VALUES (4, 'NaN', '{{5},{6}}', 'four');
UPDATE items SET price = 'NaN', grid = '{{7}}', note = 'two again' WHERE id = 2;
UPDATE items SET note = 'one again' WHERE id = 1; DELETE FROM items WHERE id = 3`)
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.public.items", want)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}

// TestIntegrationMariaDBExcludedColumnsAreNotDecoded excludes a column of
// a character set liberator cannot read, which refuses the table at start
// when it is published, and checks that the table streams through the
// snapshot and the binlog as if it were not there.
func TestIntegrationMariaDBExcludedColumnsAreNotDecoded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, map[string]string{"price": "decimal"},
		"CREATE DATABASE x",
		"CREATE TABLE x.items (id INT PRIMARY KEY, legacy VARCHAR(10) CHARACTER SET swe7, price DECIMAL(10,2), note VARCHAR(20)) DEFAULT CHARSET = utf8mb4",
		"INSERT INTO x.items VALUES (1, 'old', 1.50, 'one'), (2, NULL, NULL, NULL)")
	d := startDaemon(t, "run", e.config(t, []string{"x.items"}, "mapping: {x.items: {exclude: [legacy]}}"))
	want := func() rowSet { return without(e.read(t, "x.items", "id"), "legacy") }
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.x.items", want)
	e.exec(t, "INSERT INTO x.items VALUES (3, 'new', 3.00, 'three')",
		"UPDATE x.items SET legacy = 'changed', note = 'two' WHERE id = 2", "DELETE FROM x.items WHERE id = 1")
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, "evo.x.items", want)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}

	t.Run("the same column published refuses the table at start", func(t *testing.T) {
		waitExit(t, startDaemon(t, "run", e.config(t, []string{"x.items"}, "")), 1, "x.items.legacy", "swe7")
	})
}
