package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/schema"
)

// oddTable is a table with an odd name: how SQL names it, how the config
// names it, and the topic it must get under topic prefix evo.
type oddTable struct {
	sql, config, topic string
}

// hashSuffix is the documented suffix of a sanitized topic name that
// collides: _ and the first 8 hex digits of the SHA-256 of the table's ID.
func hashSuffix(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "_" + hex.EncodeToString(sum[:])[:8]
}

// topicNames lists the topics that start with prefix.
func topicNames(t *testing.T, ctx context.Context, brokers []string, prefix string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(ctx)
	require.NoError(t, err)
	var out []string
	for _, n := range td.Names() {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// requireEmptyTableReady waits until the empty table's topic and both its
// subjects exist, while the daemon runs.
func requireEmptyTableReady(t *testing.T, ctx context.Context, d *daemon, brokers []string, reg *schema.Registry, topic string) {
	t.Helper()
	require.Eventually(t, func() bool {
		if d.exited() {
			return true
		}
		subjects, err := reg.Subjects(ctx, topic+"-")
		return err == nil && len(subjects) == 2 && slices.Contains(topicNames(t, ctx, brokers, topic), topic)
	}, 60*time.Second, 100*time.Millisecond)
	require.False(t, d.exited(), "liberator exited:\n%s", d.logTail())
	recs, err := readRecords(ctx, brokers, topic)
	require.NoError(t, err)
	require.Empty(t, recs, "the empty table's topic holds records")
}

// TestIntegrationPostgresOddNames captures tables whose names hold a dot, a
// quote, non-ASCII characters and characters a topic may not hold, named in
// source.tables in the quoted and in the section form, with two whose
// sanitized topics collide, and an empty table. check names each table's
// topic; the empty table's topic and subjects exist right after start;
// the snapshot and the stream reach each table's sanitized topic.
func TestIntegrationPostgresOddNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tables := []oddTable{
		{`"My.Schema"."Odd""Table"`, `'"My.Schema"."Odd""Table"'`, "evo.My_Schema.Odd_Table"},
		{`public."dot.table"`, `{schema: public, table: dot.table}`, "evo.public.dot_table"},
		{`"テスト"."café"`, `テスト.café`, "evo.___.caf_"},
		{`public."dbz5743中文"`, `public.dbz5743中文`, "evo.public.dbz5743__"},
		{`public."some|test@data"`, `'public.some|test@data'`, "evo.public.some_test_data"},
		{`public."a|b"`, `'public.a|b'`, "evo.public.a_b" + hashSuffix("public.a|b")},
		{`public."a@b"`, `'public.a@b'`, "evo.public.a_b" + hashSuffix("public.a@b")},
	}
	var ddl, configured, topics []string
	for _, tb := range tables {
		ddl = append(ddl, "CREATE TABLE "+tb.sql+" (id bigint PRIMARY KEY, v text)",
			"INSERT INTO "+tb.sql+" SELECT g, 'snap ' || g FROM generate_series(1, 5) g")
		configured = append(configured, tb.config)
		topics = append(topics, tb.topic)
	}
	e := newEvoPG(t, ctx, `CREATE SCHEMA "My.Schema"; CREATE SCHEMA "テスト"; CREATE TABLE empty_one (id bigint PRIMARY KEY, v text);
`+strings.Join(ddl, ";\n"))
	configured = append(configured, "empty_one")
	topics = append(topics, "evo.public.empty_one")
	cfg := e.config(t, configured, "")

	code, out := runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	for i, tb := range tables {
		require.Contains(t, out, "topic "+tb.topic+" of table ", "table %d", i)
	}
	require.Contains(t, out, `topic evo.My_Schema.Odd_Table of table "My.Schema"."Odd""Table" is compacted or can be created`)

	d := startDaemon(t, "run", cfg)
	requireEmptyTableReady(t, ctx, d, e.kafka.Brokers, e.client, "evo.public.empty_one")

	read := func(table string) (rowSet, error) { return readTable(ctx, e.conn, table, []string{"id"}) }
	topicOf := map[string]string{}
	var names []string
	for _, tb := range tables {
		topicOf[tb.sql] = tb.topic
		names = append(names, tb.sql)
	}
	converge := func() {
		t.Helper()
		requireTopicsEqual(t, ctx, e.kafka.Brokers, e.client, read, func(table string) string { return topicOf[table] }, names, 90*time.Second)
	}
	converge()
	for _, tb := range tables {
		e.exec(t, ctx, "INSERT INTO "+tb.sql+" VALUES (6, 'stream')")
		e.exec(t, ctx, "UPDATE "+tb.sql+" SET v = 'changed' WHERE id = 2")
		e.exec(t, ctx, "DELETE FROM "+tb.sql+" WHERE id = 3")
		e.exec(t, ctx, "UPDATE "+tb.sql+" SET id = 7 WHERE id = 4")
	}
	converge()
	slices.Sort(topics)
	require.Equal(t, topics, topicNames(t, ctx, e.kafka.Brokers, "evo."))
	require.False(t, d.exited(), d.logTail())
}

// TestIntegrationMariaDBOddNames is TestIntegrationPostgresOddNames for
// MariaDB, with backticks: a database with a dot, a table with a
// backtick, and names in backtick quotes.
func TestIntegrationMariaDBOddNames(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	tables := []oddTable{
		{"`odd.db`.`odd``table`", "'`odd.db`.`odd``table`'", "evo.odd_db.odd_table"},
		{"`app`.`Odd\"Quote`", `'"app"."Odd""Quote"'`, "evo.app.Odd_Quote"},
		{"`app`.`dot.table`", `{schema: app, table: dot.table}`, "evo.app.dot_table"},
		{"`テスト`.`café`", `テスト.café`, "evo.___.caf_"},
		{"`app`.`dbz5743中文`", `app.dbz5743中文`, "evo.app.dbz5743__"},
		{"`app`.`some|test@data`", `'app.some|test@data'`, "evo.app.some_test_data"},
		{"`app`.`a|b`", `'app.a|b'`, "evo.app.a_b" + hashSuffix("app.a|b")},
		{"`app`.`a@b`", `'app.a@b'`, "evo.app.a_b" + hashSuffix("app.a@b")},
	}
	stmts := []string{"CREATE DATABASE `odd.db`", "CREATE DATABASE app", "CREATE DATABASE `テスト`",
		"CREATE TABLE app.empty_one (id bigint PRIMARY KEY, v varchar(40))"}
	var configured, topics []string
	for _, tb := range tables {
		stmts = append(stmts, "CREATE TABLE "+tb.sql+" (id bigint PRIMARY KEY, v varchar(40))",
			"INSERT INTO "+tb.sql+" SELECT seq, CONCAT('snap ', seq) FROM app.seq_1_to_5")
		configured = append(configured, tb.config)
		topics = append(topics, tb.topic)
	}
	e := newEvoMariaDB(t, ctx, nil, stmts...)
	configured = append(configured, "app.empty_one")
	topics = append(topics, "evo.app.empty_one")
	cfg := e.config(t, configured, "")

	code, out := runCheck(t, cfg)
	require.Equal(t, 0, code, out)
	for i, tb := range tables {
		require.Contains(t, out, "topic "+tb.topic+" of table ", "table %d", i)
	}
	require.Contains(t, out, "topic evo.odd_db.odd_table of table \"odd.db\".\"odd`table\" is compacted or can be created")

	d := startDaemon(t, "run", cfg)
	requireEmptyTableReady(t, ctx, d, e.kafka.Brokers, e.client, "evo.app.empty_one")

	read := func(table string) (rowSet, error) { return readMariaDBRows(e.conn, table, []string{"id"}, nil) }
	topicOf := map[string]string{}
	var names []string
	for _, tb := range tables {
		topicOf[tb.sql] = tb.topic
		names = append(names, tb.sql)
	}
	converge := func() {
		t.Helper()
		requireTopicsEqual(t, ctx, e.kafka.Brokers, e.client, read, func(table string) string { return topicOf[table] }, names, 90*time.Second)
	}
	converge()
	for _, tb := range tables {
		e.exec(t, "INSERT INTO "+tb.sql+" VALUES (6, 'stream')",
			"UPDATE "+tb.sql+" SET v = 'changed' WHERE id = 2",
			"DELETE FROM "+tb.sql+" WHERE id = 3",
			"UPDATE "+tb.sql+" SET id = 7 WHERE id = 4")
	}
	converge()
	slices.Sort(topics)
	require.Equal(t, topics, topicNames(t, ctx, e.kafka.Brokers, "evo."))
	require.False(t, d.exited(), d.logTail())
}
