#!/usr/bin/env bash
# The MariaDB quickstart: starts a throwaway MariaDB with a small shop
# schema and an outbox table, runs liberator with the embedded Kafka broker
# and schema registry, makes a few changes and a few service-like
# transactions that write an order and its domain event, and prints the
# decoded entity events and domain events. Everything lives in a temporary
# directory that is removed at the end.
#
#   make quickstart SOURCE=mariadb
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
	say "installing MariaDB (apt-get install mariadb-server)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "MariaDB is missing; run as root, or: sudo apt-get install -y mariadb-server" >&2
		exit 1
	fi
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mariadb-server
fi
PATH=$PATH:/usr/sbin

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
mkdir -p "$dir/tmp"
export MYSQL_PORT HTTP_PORT
MYSQL_PORT=$(free_port)
HTTP_PORT=$(free_port)
pid= dbpid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	[ -n "$dbpid" ] && kill "$dbpid" 2>/dev/null && wait "$dbpid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

say "starting a throwaway MariaDB on port $MYSQL_PORT"
mariadb-install-db --no-defaults --user=root --datadir="$dir/data" --tmpdir="$dir/tmp" \
	--auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log"; exit 1; }
mariadbd --no-defaults --user=root --datadir="$dir/data" --tmpdir="$dir/tmp" --socket="$dir/sock" --pid-file="$dir/pid" \
	--port="$MYSQL_PORT" --bind-address=127.0.0.1 --log-bin="$dir/data/binlog" --binlog-format=ROW \
	--binlog-row-image=FULL --binlog-row-metadata=FULL --server-id=1 --log-error="$dir/err.log" \
	--skip-name-resolve --character-set-server=utf8mb4 &
dbpid=$!
sql() { mariadb --no-defaults -h 127.0.0.1 -P "$MYSQL_PORT" -u root --default-character-set=utf8mb4 "$@"; }
for _ in $(seq 1 100); do
	sql -e 'SELECT 1' >/dev/null 2>&1 && break
	sleep 0.1
done
sql -e 'SELECT 1' >/dev/null || { cat "$dir/err.log"; exit 1; }
sql <<'SQL'
CREATE DATABASE shop;
CREATE TABLE shop.customers (
  id      bigint PRIMARY KEY,
  name    varchar(100) NOT NULL,
  email   varchar(100),
  created datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
CREATE TABLE shop.orders (
  id          bigint PRIMARY KEY,
  customer_id bigint NOT NULL,
  total       decimal(12,2) NOT NULL,
  status      enum('new','paid','shipped') NOT NULL DEFAULT 'new',
  placed      timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);
INSERT INTO shop.customers (id, name, email) VALUES
  (1, 'Ada Lovelace', 'ada@example.com'),
  (2, 'Grace Hopper', 'grace@example.com'),
  (3, 'Edsger Dijkstra', NULL);
-- The outbox: each row is a domain event, written by the service in the
-- transaction of its change, and deleted in the same transaction.
CREATE TABLE shop.outbox (
  id            char(36) PRIMARY KEY DEFAULT (UUID()),
  aggregatetype varchar(64) NOT NULL,
  aggregateid   varchar(64) NOT NULL,
  type          varchar(64) NOT NULL,
  payload       json NOT NULL
);
INSERT INTO shop.orders (id, customer_id, total) VALUES (100, 1, 19.99), (101, 2, 1234.50);
SQL

say "building liberator"
go build -o "$dir/liberator" ./cmd/liberator

say "running: liberator run --config configs/quickstart-mariadb.yaml (embedded Kafka and registry)"
"$dir/liberator" run --config configs/quickstart-mariadb.yaml >"$dir/liberator.log" 2>&1 &
pid=$!
tail_topic() { "$dir/liberator" tail --config configs/quickstart-mariadb.yaml "$1" 2>/dev/null || true; }
for _ in $(seq 1 100); do
	[ "$(tail_topic shop.shop.orders | wc -l)" -ge 2 ] && break
	if ! kill -0 "$pid" 2>/dev/null; then cat "$dir/liberator.log"; exit 1; fi
	sleep 0.1
done
sed 's/^/  | /' "$dir/liberator.log"

say "changing rows: an insert, an update, a primary-key change and a delete"
sql <<'SQL'
INSERT INTO shop.customers (id, name, email) VALUES (4, 'Barbara Liskov', 'barbara@example.com');
UPDATE shop.orders SET total = 1199.00, status = 'paid' WHERE id = 101;
UPDATE shop.customers SET id = 30 WHERE id = 3;
DELETE FROM shop.orders WHERE id = 100;
SQL

say "a service's transactions: each writes an order and its domain event to the outbox, and deletes the outbox row at once"
sql <<'SQL'
BEGIN;
INSERT INTO shop.orders (id, customer_id, total) VALUES (102, 4, 42.00);
INSERT INTO shop.outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '102', 'OrderPlaced',
  '{"order_id": 102, "customer_id": 4, "total": "42.00"}');
DELETE FROM shop.outbox WHERE aggregateid = '102';
COMMIT;
BEGIN;
UPDATE shop.orders SET status = 'paid' WHERE id = 102;
INSERT INTO shop.outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '102', 'OrderPaid',
  '{"order_id": 102, "amount": "42.00", "method": "card"}');
DELETE FROM shop.outbox WHERE aggregateid = '102';
COMMIT;
BEGIN;
INSERT INTO shop.orders (id, customer_id, total) VALUES (103, 1, 7.50);
INSERT INTO shop.outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '103', 'OrderPlaced',
  '{"order_id": 103, "customer_id": 1, "total": "7.50"}');
DELETE FROM shop.outbox WHERE aggregateid = '103';
COMMIT;
-- Rolled back: neither the order nor its event is published.
BEGIN;
INSERT INTO shop.orders (id, customer_id, total) VALUES (104, 2, 99.00);
INSERT INTO shop.outbox (aggregatetype, aggregateid, type, payload) VALUES ('Order', '104', 'OrderPlaced',
  '{"order_id": 104, "customer_id": 2, "total": "99.00"}');
ROLLBACK;
SQL

# The changes add 2 events to customers and 2 to orders, the service 3 to
# orders (102 placed and paid, 103 placed) and 3 domain events (the outbox
# table itself has no topic).
for _ in $(seq 1 100); do
	c=$(tail_topic shop.shop.customers | wc -l) o=$(tail_topic shop.shop.orders | wc -l) e=$(tail_topic shop.Order.events | wc -l)
	[ "$c" -ge 6 ] && [ "$o" -ge 7 ] && [ "$e" -ge 3 ] && break
	sleep 0.1
done
for topic in shop.shop.customers shop.shop.orders; do
	say "liberator tail --config configs/quickstart-mariadb.yaml $topic"
	tail_topic "$topic"
done
say "liberator tail --config configs/quickstart-mariadb.yaml shop.Order.events (domain events: key = the order id, headers id and type)"
tail_topic shop.Order.events

say "stopping liberator (SIGTERM drains and stores the position)"
kill -TERM "$pid"
wait "$pid"
pid=
say "done: every row became an entity event; the delete and the old key are tombstones (value null)"
say "and each committed outbox insert became one domain event; the rolled-back one, and the outbox deletes, became nothing"
