package integration

import (
	"context"
	binenc "encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors/mysql"
	"github.com/liberator-cdc/liberator/internal/harness"
	"github.com/liberator-cdc/liberator/schema"
)

// evoMariaDB is a MariaDB server, Kafka and a registry, for tests that
// change tables under liberator.
type evoMariaDB struct {
	db     *harness.MariaDBServer
	kafka  *harness.KafkaCluster
	reg    *harness.RegistryServer
	conn   *client.Conn
	client *schema.Registry
	// kinds say how columns are read back (see mdbValue), by name.
	kinds map[string]string
}

func newEvoMariaDB(t *testing.T, ctx context.Context, kinds map[string]string, statements ...string) *evoMariaDB {
	t.Helper()
	e := &evoMariaDB{db: harness.MariaDB(t), kafka: harness.Kafka(t), reg: harness.Registry(t), kinds: kinds}
	var err error
	if e.conn, err = e.db.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.conn.Close() })
	e.exec(t, "SET NAMES utf8mb4", "SET time_zone = '+00:00'")
	e.exec(t, statements...)
	if e.client, err = schema.NewRegistry(schema.RegistryConfig{URL: e.reg.URL}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *evoMariaDB) exec(t *testing.T, statements ...string) {
	t.Helper()
	for _, q := range statements {
		if _, err := e.conn.Execute(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// config writes a config for the tables, with topic prefix evo; extra is
// appended at the top level.
func (e *evoMariaDB) config(t *testing.T, tables []string, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
source:
  kind: mariadb
  dsn: %s
  tables: [%s]
  mysql:
    server_id: 78
kafka:
  brokers: [%s]
  topic_prefix: evo
registry:
  url: %s
http:
  listen: 127.0.0.1:0
commit_interval: 100ms
%s
`, e.db.DSN, strings.Join(tables, ", "), strings.Join(e.kafka.Brokers, ","), e.reg.URL, extra))
}

// read reads a table (or "table WHERE ...") in the form of replayTopic.
func (e *evoMariaDB) read(t *testing.T, table string, key ...string) rowSet {
	t.Helper()
	rows, err := readMariaDBRows(e.conn, table, key, e.kinds)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return rows
}

func (e *evoMariaDB) converges(t *testing.T, ctx context.Context, topic, table string, key ...string) {
	t.Helper()
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, topic, func() rowSet { return e.read(t, table, key...) })
}

// binlogPosition is the end of the binary log, as SHOW MASTER STATUS says.
func (e *evoMariaDB) binlogPosition(t *testing.T) (string, uint32) {
	t.Helper()
	res, err := e.conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	file, _ := res.GetString(0, 0)
	pos, _ := res.GetUint(0, 1)
	return file, uint32(pos)
}

// readMariaDBRows is readMariaDBTable with the columns' kinds given.
func readMariaDBRows(conn *client.Conn, table string, key []string, kinds map[string]string) (rowSet, error) {
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
			kind := kinds[name]
			fv := &res.Values[i][j]
			var v any
			if kind == "geometry" && fv.Value() != nil {
				// The protocol gives MySQL's SRID (little-endian) before
				// the WKB; SRID 0 is published as null.
				b := fv.AsString()
				var srid any
				if n := binenc.LittleEndian.Uint32(b); n != 0 {
					srid = int32(n)
				}
				v = map[string]any{"wkb": append([]byte(nil), b[4:]...), "srid": srid}
			} else if v, err = mdbValue(kind, fv); err != nil {
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

// TestIntegrationMariaDBSchemaEvolution is
// TestIntegrationPostgresSchemaEvolution for MariaDB, whose table shapes
// come from the binary log's table maps and whose defaults come from
// information_schema.
func TestIntegrationMariaDBSchemaEvolution(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, map[string]string{"price": "decimal", "d": "decimal"},
		"CREATE DATABASE evo",
		"CREATE TABLE evo.evo (id BIGINT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20), price DECIMAL(10,2)) DEFAULT CHARSET = utf8mb4",
		"INSERT INTO evo.evo SELECT seq, seq, CONCAT('b', seq), seq / 4 FROM evo.seq_1_to_20")
	const topic = "evo.evo.evo"
	d := startDaemon(t, "run", e.config(t, []string{"evo.evo"}, ""))
	e.converges(t, ctx, topic, "evo.evo", "id")

	e.exec(t, "ALTER TABLE evo.evo ADD COLUMN c INT NOT NULL DEFAULT 7, ADD COLUMN note VARCHAR(20) DEFAULT 'n/a', ADD COLUMN d DECIMAL(6,2) NOT NULL DEFAULT 1.25, ADD COLUMN e TEXT",
		"INSERT INTO evo.evo (id, a) VALUES (21, 21)")
	requireRows(t, ctx, "a reader on the latest schema", func() rowSet { return e.read(t, "evo.evo", "id") },
		func() (rowSet, error) { return replayLatest(ctx, e.kafka.Brokers, e.client, topic) })
	if filled := requireLatestReadsEveryEvent(t, ctx, e.kafka.Brokers, e.client, topic); filled < 20 {
		t.Errorf("%d events lacked a field of the latest schema, want the 20 written before the change", filled)
	}

	// MariaDB logs no row event for an UPDATE that changes nothing, so
	// each step changes every row.
	steps := [][]string{
		{"ALTER TABLE evo.evo DROP COLUMN b", "UPDATE evo.evo SET a = a + 1"},
		{"ALTER TABLE evo.evo RENAME COLUMN note TO remark", "UPDATE evo.evo SET a = a + 1"},
		{"ALTER TABLE evo.evo MODIFY a BIGINT NOT NULL", "UPDATE evo.evo SET a = a + 1"},
		{"ALTER TABLE evo.evo MODIFY price DECIMAL(12,2)", "UPDATE evo.evo SET price = price * 2 + 1"},
		{"ALTER TABLE evo.evo MODIFY c INT NULL", "UPDATE evo.evo SET c = IF(id % 2 = 0, NULL, c + 1)"},
	}
	for _, s := range steps {
		e.exec(t, s...)
		e.converges(t, ctx, topic, "evo.evo", "id")
	}
	if got := subjectVersions(t, ctx, e.client, topic+"-value"); len(got) != 2+len(steps) {
		t.Errorf("value subject versions %v, want %d: one per change", got, 2+len(steps))
	}
	if got := subjectVersions(t, ctx, e.client, topic+"-key"); len(got) != 1 {
		t.Errorf("key subject versions %v, want one", got)
	}
	requireLatestReadsEveryEvent(t, ctx, e.kafka.Brokers, e.client, topic)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}

// TestIntegrationMariaDBIncompatibleChange is
// TestIntegrationPostgresIncompatibleChange for MariaDB.
func TestIntegrationMariaDBIncompatibleChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newEvoMariaDB(t, ctx, nil,
		"CREATE DATABASE evo",
		"CREATE TABLE evo.evo (id BIGINT PRIMARY KEY, a INT NOT NULL, b VARCHAR(20) NOT NULL) DEFAULT CHARSET = utf8mb4",
		"INSERT INTO evo.evo SELECT seq, seq, CONCAT('b', seq) FROM evo.seq_1_to_10")
	const topic = "evo.evo.evo"
	failing := e.config(t, []string{"evo.evo"}, "")
	d := startDaemon(t, "run", failing)
	e.converges(t, ctx, topic, "evo.evo", "id")

	e.exec(t, "ALTER TABLE evo.evo MODIFY a VARCHAR(20) NOT NULL")
	file, offset := e.binlogPosition(t)
	e.exec(t, "INSERT INTO evo.evo VALUES (11, 'eleven', 'b11')")
	says := []string{"table evo.evo changed incompatibly (columns a)", "evo.evo.evo-value", "under BACKWARD", "is string in the new schema, which cannot read int of version 1"}
	waitExit(t, d, 1, says...)
	stored, err := mysql.ParsePosition(offsetsTopicPosition(t, ctx, e.kafka.Brokers, "evo"))
	if err != nil {
		t.Fatal(err)
	}
	if stored.File != file || stored.Offset > offset {
		t.Fatalf("stored position %s is past %s:%d, where the incompatible change begins", stored, file, offset)
	}

	// The change was not skipped: a restart meets it again.
	waitExit(t, startDaemon(t, "run", failing), 1, says...)

	moving := e.config(t, []string{"evo.evo"}, "schema: {on_incompatible: new_topic}")
	d = startDaemon(t, "run", moving)
	waitLog(t, d, "publishing it to a new topic")
	requireTopicEquals(t, ctx, e.kafka.Brokers, e.client, topic+".v2", func() rowSet { return e.read(t, "evo.evo WHERE id = 11", "id") })
	e.exec(t, "UPDATE evo.evo SET b = CONCAT(b, '!')")
	e.converges(t, ctx, topic+".v2", "evo.evo", "id")

	// A key change is incompatible too: the new key gets its own topic.
	e.exec(t, "ALTER TABLE evo.evo DROP PRIMARY KEY, ADD PRIMARY KEY (id, b)", "UPDATE evo.evo SET a = CONCAT(a, '.')")
	e.converges(t, ctx, topic+".v3", "evo.evo", "id", "b")
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}

	// A restart goes on with .v3, the highest version in the registry.
	d = startDaemon(t, "run", moving)
	e.exec(t, "INSERT INTO evo.evo VALUES (12, 'twelve', 'b12')")
	e.converges(t, ctx, topic+".v3", "evo.evo", "id", "b")
	subjects, err := e.client.Subjects(ctx, topic)
	require.NoError(t, err)
	require.Equal(t, []string{topic + "-key", topic + "-value", topic + ".v2-key", topic + ".v2-value", topic + ".v3-key", topic + ".v3-value"}, subjects)
	if code := d.stop(30 * time.Second); code != 0 {
		t.Fatalf("liberator exited %d after SIGTERM, want 0", code)
	}
}
