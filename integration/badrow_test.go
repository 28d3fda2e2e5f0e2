package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/kafka"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// poisonRowBytes is the size of the large rows: five times what a topic of
// 1 MB takes.
const poisonRowBytes = 5 << 20

// badRowDB is a source database with one table per case,
// items(id int primary key, price numeric(10,2), note text).
type badRowDB struct {
	kind string
	// create makes a table for case name and returns source.dsn, the
	// table as source.tables names it, and the source section's extra
	// lines.
	create func(t *testing.T, name string) (dsn, table, section string)
	// exec runs a statement; {items} stands for the table.
	exec func(t *testing.T, dsn, table, sql string)
}

func pgBadRowDB(t *testing.T) *badRowDB {
	pg := harness.Postgres(t)
	return &badRowDB{
		kind: "postgres",
		create: func(t *testing.T, name string) (string, string, string) {
			dsn, err := pg.CreateDatabase(name)
			require.NoError(t, err)
			require.NoError(t, pgExec(context.Background(), dsn, "CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2), note text)"))
			return dsn, "public.items", "  postgres:\n    slot: " + name
		},
		exec: func(t *testing.T, dsn, table, sql string) {
			t.Helper()
			require.NoError(t, pgExec(context.Background(), dsn, strings.ReplaceAll(sql, "{items}", table)))
		},
	}
}

func mariaDBBadRowDB(t *testing.T) *badRowDB {
	db := harness.MariaDB(t)
	serverID := 100
	return &badRowDB{
		kind: "mariadb",
		create: func(t *testing.T, name string) (string, string, string) {
			ctx := context.Background()
			require.NoError(t, db.Exec(ctx, "CREATE DATABASE "+name))
			require.NoError(t, db.Exec(ctx, "CREATE TABLE "+name+".items (id int PRIMARY KEY, price decimal(10,2), note longtext)"))
			serverID++
			return db.DSN, name + ".items", fmt.Sprintf("  mysql:\n    server_id: %d", serverID)
		},
		exec: func(t *testing.T, _, table, sql string) {
			t.Helper()
			require.NoError(t, db.Exec(context.Background(), strings.ReplaceAll(sql, "{items}", table)))
		},
	}
}

// badRowCase is one run of liberator over a table of db under a policy.
type badRowCase struct {
	db            *badRowDB
	dsn, table    string
	kafka         *harness.KafkaCluster
	reg           *schema.Registry
	cfg           string
	topic, letter string
}

// newBadRowCase makes a table, a broker, a registry and a config with
// errors.on_bad_row: policy and the kafka section's extra lines.
func newBadRowCase(t *testing.T, db *badRowDB, name, policy, kafkaExtra string) *badRowCase {
	c := &badRowCase{db: db, kafka: harness.Kafka(t)}
	dsn, table, section := db.create(t, name)
	c.dsn, c.table = dsn, table
	reg := harness.Registry(t)
	var err error
	c.reg, err = schema.NewRegistry(schema.RegistryConfig{URL: reg.URL})
	require.NoError(t, err)
	c.topic, c.letter = "bad."+table, "bad.dead_letter"
	c.cfg = writeConfig(t, fmt.Sprintf(`
source:
  kind: %s
  dsn: %s
  tables: [%s]
%s
kafka:
  brokers: [%s]
  topic_prefix: bad
%s
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 50ms
errors:
  on_bad_row: %s
`, db.kind, dsn, table, section, strings.Join(c.kafka.Brokers, ","), kafkaExtra, reg.URL, policy))
	return c
}

func (c *badRowCase) exec(t *testing.T, sql string) {
	t.Helper()
	c.db.exec(t, c.dsn, c.table, sql)
}

// ids reads the ids of the entity topic's records, in order.
func (c *badRowCase) ids(t *testing.T) []int {
	t.Helper()
	ids, err := c.readIDs()
	require.NoError(t, err, "read topic %s", c.topic)
	return ids
}

func (c *badRowCase) readIDs() ([]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := readRecords(ctx, c.kafka.Brokers, c.topic)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range recs {
		k, err := c.reg.Decode(ctx, r.Key)
		if err != nil {
			return nil, err
		}
		id, ok := k.(map[string]any)["id"].(int)
		if !ok {
			return nil, fmt.Errorf("key %v has no id", k)
		}
		out = append(out, id)
	}
	return out, nil
}

// waitID waits until the entity topic holds id, unless the daemon exits.
// The topic may not exist yet.
func (c *badRowCase) waitID(t *testing.T, d *daemon, id int) {
	t.Helper()
	require.Eventually(t, func() bool {
		ids, err := c.readIDs()
		return d.exited() || err == nil && slices.Contains(ids, id)
	}, time.Minute, 50*time.Millisecond)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
}

// start starts the daemon and waits until it streams, with row 1 in its
// topic.
func (c *badRowCase) start(t *testing.T) *daemon {
	d := startDaemon(t, "run", c.cfg)
	waitStoredPosition(t, d)
	c.exec(t, "INSERT INTO {items} VALUES (1, 1.50, 'one')")
	c.waitID(t, d, 1)
	return d
}

// deadLetters reads the dead-letter topic, by key id.
func (c *badRowCase) deadLetters(t *testing.T) map[int]deadLetter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[int]deadLetter{}
	for _, r := range topicRecords(t, ctx, c.kafka.Brokers, c.letter) {
		var dl deadLetter
		require.NoError(t, json.Unmarshal(r.Value, &dl.DeadLetter), "dead letter %q", r.Value)
		var key struct{ ID int }
		require.NoError(t, json.Unmarshal(r.Key, &key), "dead-letter key %q", r.Key)
		dl.headers = map[string]string{}
		for _, h := range r.Headers {
			dl.headers[h.Key] = string(h.Value)
		}
		out[key.ID] = dl
	}
	return out
}

type deadLetter struct {
	kafka.DeadLetter
	headers map[string]string
}

// oneMB limits the entity topics liberator creates to 1 MB.
const oneMB = `  topic_configs: {max.message.bytes: "1048576"}`

// TestIntegrationBadRows puts a NaN in a numeric(10,2) column of
// PostgreSQL, and a row of 5 MB in a topic that takes 1 MB in PostgreSQL
// and MariaDB, under each errors.on_bad_row policy; and lets a row of
// 5 MB through where the topic and kafka.max_message_bytes take 8 MB.
func TestIntegrationBadRows(t *testing.T) {
	for _, src := range []struct {
		name string
		open func(*testing.T) *badRowDB
		nan  bool // the source has a NaN numeric
	}{{"postgres", pgBadRowDB, true}, {"mariadb", mariaDBBadRowDB, false}} {
		t.Run(src.name, func(t *testing.T) {
			db := src.open(t)
			big := fmt.Sprintf("INSERT INTO {items} VALUES (%%d, 2.50, REPEAT('x', %d))", poisonRowBytes)
			if src.nan {
				t.Run("fail stops at a NaN and stays before it", func(t *testing.T) {
					testBadRowFail(t, db, "fail_nan", "INSERT INTO {items} VALUES (2, 'NaN', 'two')", `column \"price\"`, `decimal value \"NaN\"`)
				})
			}
			t.Run("fail stops at a row too large and stays before it", func(t *testing.T) {
				testBadRowFail(t, db, "fail_big", fmt.Sprintf(big, 2), "the row as a whole", "more than topic")
			})
			t.Run("skip delivers the rows after", func(t *testing.T) {
				c := newBadRowCase(t, db, "skip", "skip", oneMB)
				d := c.start(t)
				if src.nan {
					c.exec(t, "INSERT INTO {items} VALUES (2, 'NaN', 'two')")
				}
				c.exec(t, "INSERT INTO {items} VALUES (3, 3.50, 'three')")
				c.exec(t, fmt.Sprintf(big, 4))
				c.exec(t, "INSERT INTO {items} VALUES (5, 5.50, 'five')")
				c.waitID(t, d, 5)
				require.Equal(t, []int{1, 3, 5}, c.ids(t), "ids in the topic")
				require.True(t, d.logContains("bad row skipped"), "log:\n%s", d.logTail())
				require.Equal(t, 0, d.stop(30*time.Second))
			})
			t.Run("dead_letter delivers the rows after and writes the bad ones as JSON", func(t *testing.T) {
				c := newBadRowCase(t, db, "dead", "dead_letter", oneMB)
				d := c.start(t)
				if src.nan {
					c.exec(t, "INSERT INTO {items} VALUES (2, 'NaN', 'two')")
				}
				c.exec(t, "INSERT INTO {items} VALUES (3, 3.50, 'three')")
				c.exec(t, fmt.Sprintf(big, 4))
				c.exec(t, "INSERT INTO {items} VALUES (5, 5.50, 'five')")
				c.waitID(t, d, 5)
				require.Equal(t, []int{1, 3, 5}, c.ids(t), "ids in the topic")
				letters := c.deadLetters(t)
				want := []int{4}
				if src.nan {
					want = []int{2, 4}
				}
				require.ElementsMatch(t, want, slices.Collect(maps.Keys(letters)), "ids in the dead-letter topic")
				if src.nan {
					nan := letters[2]
					var row map[string]any
					require.NoError(t, json.Unmarshal(nan.Row, &row))
					require.Equal(t, map[string]any{"id": float64(2), "price": "NaN", "note": "two"}, row)
					require.Equal(t, "price", nan.Column)
					require.Equal(t, kafka.ReasonEncode, nan.Reason)
					require.Contains(t, nan.Error, `decimal value "NaN"`)
					require.Equal(t, map[string]string{"table": "public.items", "key": "id=2", "column": "price", "reason": "encode", "topic": c.topic},
						map[string]string{"table": nan.headers[kafka.HeaderErrorTable], "key": nan.headers[kafka.HeaderErrorKey],
							"column": nan.headers[kafka.HeaderErrorColumn], "reason": nan.headers[kafka.HeaderErrorReason], "topic": nan.headers[kafka.HeaderConnectTopic]})
					require.NotEmpty(t, nan.headers[kafka.HeaderErrorPosition])
					require.Equal(t, nan.Position, nan.headers[kafka.HeaderErrorPosition])
				}
				large := letters[4]
				require.Equal(t, kafka.ReasonTooLarge, large.Reason)
				require.True(t, large.RowOmitted, "a row of 5 MB is left out of a dead-letter topic of 1 MB")
				require.Equal(t, "null", string(large.Row))
				require.Equal(t, "true", large.headers[kafka.HeaderErrorRowOmitted])
				require.Equal(t, "id=4", large.headers[kafka.HeaderErrorKey])
				require.Equal(t, c.table, large.Table)
				require.Equal(t, "c", large.Op)
				require.NotEmpty(t, large.CommitTime)
				require.Contains(t, large.Error, "more than topic")
				require.Equal(t, 0, d.stop(30*time.Second))
			})
			t.Run("a row of 5 MB goes through where the topic takes 8 MB", func(t *testing.T) {
				c := newBadRowCase(t, db, "eight", "fail", "  max_message_bytes: 8388608")
				d := c.start(t)
				c.exec(t, fmt.Sprintf(big, 2))
				c.exec(t, "INSERT INTO {items} VALUES (3, 3.50, 'three')")
				c.waitID(t, d, 3)
				require.Equal(t, []int{1, 2, 3}, c.ids(t), "ids in the topic")
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				for _, r := range topicRecords(t, ctx, c.kafka.Brokers, c.topic) {
					if len(r.Value) > poisonRowBytes {
						return
					}
				}
				t.Fatal("no record of the topic holds the row of 5 MB")
			})
		})
	}
}

// testBadRowFail checks errors.on_bad_row: fail: liberator stops at the
// bad row with an error that names it, and a restart stops at it again,
// the rows before it in the topic and none after.
func testBadRowFail(t *testing.T, db *badRowDB, name, bad string, says ...string) {
	c := newBadRowCase(t, db, name, "fail", oneMB)
	d := c.start(t)
	c.exec(t, bad)
	c.exec(t, "INSERT INTO {items} VALUES (3, 3.50, 'three')")
	says = append([]string{"bad row in table " + c.table + ", key id=2", "set errors.on_bad_row to skip or dead_letter"}, says...)
	waitExit(t, d, 1, says...)
	require.Equal(t, []int{1}, c.ids(t), "ids in the topic after the stop")
	d = startDaemon(t, "run", c.cfg)
	waitExit(t, d, 1, says...)
	require.Equal(t, []int{1}, c.ids(t), "ids in the topic after a restart")
}
