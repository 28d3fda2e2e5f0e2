#!/usr/bin/env bash
# The quickstart: starts a throwaway PostgreSQL with a small shop schema and
# an outbox table, runs liberator with the embedded Kafka broker and schema
# registry, makes a few changes and a few service-like transactions that
# write an order and its domain event, and prints the decoded entity events
# and domain events. Everything lives in a temporary directory that is
# removed at the end.
#
#   make quickstart            (or: bash scripts/quickstart.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

SOURCE=${SOURCE:-postgres}
if [ "$SOURCE" != postgres ]; then
	exec bash "scripts/quickstart-$SOURCE.sh"
fi

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

pgbin=/usr/lib/postgresql/15/bin
if [ ! -x "$pgbin/initdb" ]; then
	say "installing PostgreSQL 15 (apt-get install postgresql)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "PostgreSQL is missing; run as root, or: sudo apt-get install -y postgresql" >&2
		exit 1
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
fi

free_port() {
	local p
	while :; do
		# Below the ephemeral range (32768-60999), which clients take ports from.
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

dir=$(mktemp -d /tmp/liberator-quickstart.XXXXXX)
chmod 755 "$dir"
export PGPORT HTTP_PORT
PGPORT=$(free_port)
HTTP_PORT=$(free_port)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
	chown postgres "$dir"
	as_pg=(runuser -u postgres --)
fi
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

say "starting a throwaway PostgreSQL on port $PGPORT"
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -o "-p $PGPORT -k $dir -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c fsync=off" start >/dev/null
psql() { command psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE shop"
psql -d shop <<'SQL'
CREATE TABLE customers (
  id      bigint PRIMARY KEY,
  name    text NOT NULL,
  email   text,
  created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
  id          bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers,
  total       numeric(12,2) NOT NULL,
  items       text[],
  placed      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (id, name, email) VALUES
  (1, 'Ada Lovelace', 'ada@example.com'),
  (2, 'Grace Hopper', 'grace@example.com'),
  (3, 'Edsger Dijkstra', NULL);
-- The outbox: each row is a domain event, written by the service in the
-- transaction of its change, and deleted in the same transaction.
CREATE TABLE outbox (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregatetype text NOT NULL,
  aggregateid   text NOT NULL,
  type          text NOT NULL,
  payload       jsonb NOT NULL
);
INSERT INTO orders (id, customer_id, total, items) VALUES
  (100, 1, 19.99, '{book}'),
  (101, 2, 1234.50, '{laptop,mouse}');
SQL

say "building liberator"
go build -o "$dir/liberator" ./cmd/liberator

say "running: liberator run --config configs/quickstart-postgres.yaml (embedded Kafka and registry)"
"$dir/liberator" run --config configs/quickstart-postgres.yaml >"$dir/liberator.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	if grep -q 'msg=streaming' "$dir/liberator.log"; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/liberator.log"; exit 1; fi
	sleep 0.1
done
grep -q 'msg=streaming' "$dir/liberator.log" || { cat "$dir/liberator.log"; echo "liberator did not start streaming" >&2; exit 1; }
sed 's/^/  | /' "$dir/liberator.log"

say "changing rows: an insert, an update, a primary-key change and a delete"
psql -d shop <<'SQL'
INSERT INTO customers (id, name, email) VALUES (4, 'Barbara Liskov', 'barbara@example.com');
UPDATE orders SET total = 1199.00 WHERE id = 101;
UPDATE customers SET id = 30 WHERE id = 3;
DELETE FROM orders WHERE id = 100;
SQL

say "a service's transactions: each writes an order and its domain event to the outbox, and deletes the outbox row at once"
psql -d shop <<'SQL'
BEGIN;
INSERT INTO orders (id, customer_id, total, items) VALUES (102, 4, 42.00, '{lamp}');
INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '102', 'OrderPlaced',
  '{"order_id": 102, "customer_id": 4, "total": "42.00", "items": ["lamp"]}');
DELETE FROM outbox WHERE aggregateid = '102';
COMMIT;
BEGIN;
INSERT INTO orders (id, customer_id, total, items) VALUES (103, 1, 7.50, '{pen,ink}');
INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '103', 'OrderPlaced',
  '{"order_id": 103, "customer_id": 1, "total": "7.50", "items": ["pen", "ink"]}');
DELETE FROM outbox WHERE aggregateid = '103';
COMMIT;
BEGIN;
DELETE FROM orders WHERE id = 102;
INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '102', 'OrderCancelled',
  '{"order_id": 102, "reason": "changed my mind"}');
DELETE FROM outbox WHERE aggregateid = '102';
COMMIT;
-- Rolled back: neither the order nor its event is published.
BEGIN;
INSERT INTO orders (id, customer_id, total, items) VALUES (104, 2, 99.00, '{chair}');
INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '104', 'OrderPlaced',
  '{"order_id": 104, "customer_id": 2, "total": "99.00", "items": ["chair"]}');
ROLLBACK;
SQL

tail_topic() { "$dir/liberator" tail --config configs/quickstart-postgres.yaml "$1"; }
# The snapshot gave 3 + 2 events; the changes add 2 (insert, key change as
# tombstone + row) to customers and 2 (update, delete) to orders, the
# service 4 (102 placed, 103 placed, 102 deleted) to orders and 3 domain
# events (the outbox table itself has no topic).
for _ in $(seq 1 100); do
	c=$(tail_topic shop.public.customers | wc -l) o=$(tail_topic shop.public.orders | wc -l)
	e=$(tail_topic shop.Order.events 2>/dev/null | wc -l)
	[ "$c" -ge 6 ] && [ "$o" -ge 7 ] && [ "$e" -ge 3 ] && break
	sleep 0.1
done
for topic in shop.public.customers shop.public.orders; do
	say "liberator tail --config configs/quickstart-postgres.yaml $topic"
	tail_topic "$topic"
done
say "liberator tail --config configs/quickstart-postgres.yaml shop.Order.events (domain events: key = the order id, headers id and type)"
tail_topic shop.Order.events

say "stopping liberator (SIGTERM drains and stores the position)"
kill -TERM "$pid"
wait "$pid"
pid=
tail -n 3 "$dir/liberator.log" | sed 's/^/  | /'
say "done: every row became an entity event; the delete and the old key are tombstones (value null)"
say "and each committed outbox insert became one domain event; the rolled-back one, and the outbox deletes, became nothing"
