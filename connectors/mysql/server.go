package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// This file runs the SQL the connector needs. Each query's result is turned
// into plain rows by run and parsed by a function that takes those rows, so
// that the parsers are tested without a server.

// connectTimeout bounds the dial and handshake of a connection.
const connectTimeout = 30 * time.Second

// connect opens a client connection. ctx bounds the dial and the handshake:
// go-mysql's handshake does not watch ctx, so the socket gets a deadline and
// is closed if ctx ends first.
func connect(ctx context.Context, d dsn) (*client.Conn, error) {
	var mu sync.Mutex
	var raw net.Conn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: connectTimeout}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(connectTimeout))
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, nil
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			_ = raw.Close()
		}
	})
	conn, err := client.ConnectWithDialer(ctx, "tcp", d.addr(), d.user, d.password, d.db, dial,
		func(c *client.Conn) error {
			if d.tls != nil {
				c.SetTLSConfig(d.tls.Clone())
			}
			c.SetAttributes(map[string]string{"program_name": "liberator"})
			return nil
		})
	if !stop() {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, fmt.Errorf("connect to %s: %w", d.addr(), errors.Join(ctx.Err(), err))
	}
	if err != nil {
		if myErrorCode(err) != 0 {
			// The server answered and refused: access denied, unknown
			// database. Trying again does not help.
			return nil, fmt.Errorf("connect to %s: %w", d.addr(), err)
		}
		return nil, connectors.MarkRetryable(fmt.Errorf("connect to %s: %w", d.addr(), err))
	}
	_ = raw.SetDeadline(time.Time{})
	// Metadata (names, ENUM values, GTID text) is read as UTF-8.
	if _, err := run(ctx, conn, "SET NAMES utf8mb4"); err != nil {
		_ = conn.Close()
		return nil, connectors.MarkRetryable(fmt.Errorf("connect to %s: %w", d.addr(), err))
	}
	return conn, nil
}

// run executes one statement and returns its rows as text, NULL as "".
// With args it runs as a prepared statement. If ctx ends first, the socket
// is closed under the statement, which makes it fail.
func run(ctx context.Context, conn *client.Conn, query string, args ...any) ([][]string, error) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Conn.Conn.Close() })
	res, err := conn.Execute(query, args...)
	if !stop() {
		return nil, fmt.Errorf("run %q: %w", query, errors.Join(ctx.Err(), err))
	}
	if err != nil {
		return nil, fmt.Errorf("run %q: %w", query, err)
	}
	defer res.Close()
	if res.Resultset == nil {
		return nil, nil
	}
	rows := make([][]string, res.RowNumber())
	for i := range rows {
		rows[i] = make([]string, res.ColumnNumber())
		for j := range rows[i] {
			v, err := res.GetString(i, j)
			if err != nil {
				return nil, fmt.Errorf("run %q: row %d column %d: %w", query, i, j, err)
			}
			// v points into a buffer that Close gives back to a pool.
			rows[i][j] = strings.Clone(v)
		}
	}
	return rows, nil
}

// serverVariables are read from SHOW GLOBAL VARIABLES.
var serverVariables = []string{
	"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
	"binlog_row_value_options", "gtid_mode", "server_id",
}

func readVariables(ctx context.Context, conn *client.Conn) (map[string]string, error) {
	quoted := make([]string, len(serverVariables))
	for i, v := range serverVariables {
		quoted[i] = "'" + v + "'"
	}
	rows, err := run(ctx, conn, "SHOW GLOBAL VARIABLES WHERE Variable_name IN ("+strings.Join(quoted, ",")+")")
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, r := range rows {
		if len(r) == 2 {
			vars[strings.ToLower(r[0])] = r[1]
		}
	}
	return vars, nil
}

// serverSetup is what the server's variables decide.
type serverSetup struct {
	// gtid is true when positions carry GTIDs: always on MariaDB, with
	// gtid_mode=ON on MySQL.
	gtid bool
}

// checkVariables refuses a server whose binary log cannot serve change data
// capture, naming each variable, the value found and the fix.
func checkVariables(flavor string, serverID uint32, vars map[string]string) (serverSetup, error) {
	var errs []error
	need := func(name, want, why string) {
		got, ok := vars[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s is not a variable of this server (MySQL 8.0.1 or later, or MariaDB 10.5 or later, has it); liberator needs %s=%s %s", name, name, want, why))
		case !strings.EqualFold(got, want):
			errs = append(errs, fmt.Errorf("%s is %s; liberator needs %s %s: set %s=%s in the server's configuration and restart it (or SET GLOBAL %s=%s, which applies to new sessions only)", name, got, want, why, name, want, name, want))
		}
	}
	if v := vars["log_bin"]; !strings.EqualFold(v, "ON") && v != "1" {
		errs = append(errs, fmt.Errorf("log_bin is %s; liberator reads the binary log: start the server with --log-bin and a server_id", orNone(v)))
	}
	need("binlog_format", "ROW", "(changes are read as rows)")
	need("binlog_row_image", "FULL", "(every column of every changed row)")
	need("binlog_row_metadata", "FULL", "(column names, signedness, character sets and the primary key are read from the binary log)")
	if v := vars["binlog_row_value_options"]; flavor == FlavorMySQL && v != "" {
		errs = append(errs, fmt.Errorf("binlog_row_value_options is %s; liberator needs whole JSON values: set binlog_row_value_options='' in the server's configuration", v))
	}
	if id, ok := vars["server_id"]; ok && id == strconv.FormatUint(uint64(serverID), 10) {
		errs = append(errs, fmt.Errorf("source.mysql.server_id: %d is the server's own server_id (choose another id, unique among its replicas)", serverID))
	}
	setup := serverSetup{gtid: flavor == FlavorMariaDB || strings.EqualFold(vars["gtid_mode"], "ON")}
	if err := errors.Join(errs...); err != nil {
		return setup, fmt.Errorf("%w:\n%w", ErrServerConfig, err)
	}
	return setup, nil
}

func orNone(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

// readCollations maps collation ids, as the binlog's table map carries them,
// to character set names. The server's own list is used because MySQL and
// MariaDB number some collations differently.
func readCollations(ctx context.Context, conn *client.Conn) (map[uint64]string, error) {
	rows, err := run(ctx, conn, "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE ID IS NOT NULL")
	if err != nil {
		return nil, err
	}
	return parseCollations(rows)
}

func parseCollations(rows [][]string) (map[uint64]string, error) {
	m := make(map[uint64]string, len(rows))
	for _, r := range rows {
		id, err := strconv.ParseUint(r[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("collation id %q: %w", r[0], err)
		}
		m[id] = r[1]
	}
	m[63] = binaryCharset
	return m, nil
}

// tableSchema is today's information_schema description of a table.
type tableSchema struct {
	name    tableName
	columns []infoColumn
	key     []string // primary-key column names in key order
	// published says which columns describe decodes
	// (Config.PublishedColumns); the others are skippedColumns.
	published connectors.ColumnFilter
}

// readTable reads a table's columns and primary key from information_schema.
// It returns ErrTableNotFound when the table does not exist (or cannot be
// seen by the user).
func readTable(ctx context.Context, conn *client.Conn, flavor string, t tableName) (tableSchema, error) {
	cols, err := run(ctx, conn, `SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE,
	COALESCE(CHARACTER_SET_NAME, ''), COALESCE(NUMERIC_PRECISION, 0), COALESCE(NUMERIC_SCALE, 0),
	COALESCE(CHARACTER_OCTET_LENGTH, 0), TABLE_NAME, COALESCE(COLUMN_DEFAULT, ''), COLUMN_DEFAULT IS NULL, EXTRA
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, t.db, t.name)
	if err != nil {
		return tableSchema{}, fmt.Errorf("read columns of %s: %w", t, err)
	}
	key, err := run(ctx, conn, `SELECT COLUMN_NAME FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, t.db, t.name)
	if err != nil {
		return tableSchema{}, fmt.Errorf("read primary key of %s: %w", t, err)
	}
	var checks [][]string
	if flavor == FlavorMariaDB {
		checks, err = run(ctx, conn, `SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, t.db, t.name)
		if err != nil {
			return tableSchema{}, fmt.Errorf("read check constraints of %s: %w", t, err)
		}
	}
	ts, err := parseTable(t, cols, key, checks)
	for i := range ts.columns {
		ts.columns[i].MariaDB = flavor == FlavorMariaDB
	}
	return ts, err
}

func parseTable(t tableName, cols, key, checks [][]string) (tableSchema, error) {
	ts := tableSchema{name: t}
	if len(cols) == 0 {
		return ts, fmt.Errorf("%w: %s", ErrTableNotFound, t)
	}
	if got := cols[0][8]; got != t.name {
		// information_schema compares names without regard to case on
		// some systems; the binlog does not.
		return ts, fmt.Errorf("%w: %s (the server spells it %s.%s)", ErrTableNotFound, t, t.db, got)
	}
	jsonCols := map[string]bool{}
	for _, c := range checks {
		// MariaDB's JSON is LONGTEXT with CHECK (json_valid(`col`)).
		col, ok := strings.CutPrefix(c[1], "json_valid(`")
		if col, ok2 := strings.CutSuffix(col, "`)"); ok && ok2 && col == c[0] {
			jsonCols[col] = true
		}
	}
	for _, r := range cols {
		atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
		ts.columns = append(ts.columns, infoColumn{
			Name:       r[0],
			DataType:   r[1],
			ColumnType: r[2],
			Nullable:   r[3] == "YES",
			Charset:    r[4],
			Precision:  atoi(r[5]),
			Scale:      atoi(r[6]),
			OctetLen:   atoi(r[7]),
			JSON:       jsonCols[r[0]],
		})
		if len(r) > 11 {
			ic := &ts.columns[len(ts.columns)-1]
			ic.Default, ic.NoDefault, ic.Extra = r[9], r[10] == "1", r[11]
		}
	}
	for _, r := range key {
		ts.key = append(ts.key, r[0])
	}
	if len(ts.key) == 0 {
		return ts, fmt.Errorf("%w: %s", ErrNoPrimaryKey, t)
	}
	return ts, nil
}

// describe turns today's schema into the table and columns a snapshot
// reads with.
func (ts tableSchema) describe() (*connectors.Table, []column, error) {
	cols := make([]column, len(ts.columns))
	table := &connectors.Table{Schema: ts.name.db, Name: ts.name.name, Columns: make([]connectors.Column, len(cols))}
	var errs []error
	for i, ic := range ts.columns {
		if ts.published.Skips(ic.Name) && !slices.Contains(ts.key, ic.Name) {
			cols[i] = skippedColumn(ic.Name, ic.ColumnType)
			continue
		}
		c, err := columnFromInfo(ts.name.String(), ic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cols[i] = c
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	for _, k := range ts.key {
		i := slices.IndexFunc(cols, func(c column) bool { return c.Name == k })
		if i < 0 {
			return nil, nil, fmt.Errorf("primary key column %s of %s is not a column", k, ts.name)
		}
		table.Key = append(table.Key, i)
		cols[i].Nullable = false
	}
	for i := range cols {
		table.Columns[i] = cols[i].Column
	}
	return table, cols, nil
}

// byName indexes the columns by name.
func (ts tableSchema) byName() map[string]infoColumn {
	m := make(map[string]infoColumn, len(ts.columns))
	for _, c := range ts.columns {
		m[c.Name] = c
	}
	return m
}

// currentPosition reads the end of the binary log: where a stream without
// a snapshot or resume position starts.
func currentPosition(ctx context.Context, conn *client.Conn, flavor string, gtid bool) (Position, error) {
	rows, err := run(ctx, conn, "SHOW MASTER STATUS")
	if err != nil && flavor == FlavorMySQL {
		// MySQL 8.4 renamed the statement.
		rows, err = run(ctx, conn, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return Position{}, fmt.Errorf("read binlog position: %w", err)
	}
	p, err := parseMasterStatus(flavor, gtid, rows)
	if err != nil {
		return Position{}, err
	}
	if flavor == FlavorMariaDB {
		return mariadbGTIDAt(ctx, conn, p)
	}
	return p, nil
}

// parseMasterStatus reads SHOW MASTER STATUS: File, Position, Binlog_Do_DB,
// Binlog_Ignore_DB and, on MySQL, Executed_Gtid_Set.
func parseMasterStatus(flavor string, gtid bool, rows [][]string) (Position, error) {
	if len(rows) != 1 || len(rows[0]) < 2 {
		return Position{}, errors.New("read binlog position: SHOW MASTER STATUS returned no row (is log_bin on, and has the user the REPLICATION CLIENT or BINLOG MONITOR privilege?)")
	}
	r := rows[0]
	off, err := strconv.ParseUint(r[1], 10, 32)
	if err != nil {
		return Position{}, fmt.Errorf("read binlog position: offset %q: %w", r[1], err)
	}
	p := Position{Flavor: flavor, File: r[0], Offset: uint32(off)}
	if flavor == FlavorMySQL && gtid && len(r) >= 5 {
		if p.GTID, err = canonicalGTID(flavor, r[4]); err != nil {
			return Position{}, fmt.Errorf("read binlog position: %w", err)
		}
	}
	return p, nil
}

// mariadbGTIDAt completes a MariaDB file position with the GTID state at
// that point, which BINLOG_GTID_POS() computes from the binary log itself.
func mariadbGTIDAt(ctx context.Context, conn *client.Conn, p Position) (Position, error) {
	rows, err := run(ctx, conn, "SELECT COALESCE(BINLOG_GTID_POS(?, ?), '')", p.File, p.Offset)
	if err != nil {
		return Position{}, fmt.Errorf("read GTID state at %s: %w", p, err)
	}
	if len(rows) == 1 && rows[0][0] != "" {
		if p.GTID, err = canonicalGTID(FlavorMariaDB, rows[0][0]); err != nil {
			return Position{}, fmt.Errorf("read GTID state at %s: %w", p, err)
		}
	}
	return p, nil
}

// parseSnapshotStatus reads MariaDB's SHOW STATUS LIKE 'binlog_snapshot_%':
// the binlog position matching a START TRANSACTION WITH CONSISTENT
// SNAPSHOT of the same session.
func parseSnapshotStatus(rows [][]string) (Position, error) {
	p := Position{Flavor: FlavorMariaDB}
	var haveOff bool
	for _, r := range rows {
		switch strings.ToLower(r[0]) {
		case "binlog_snapshot_file":
			p.File = r[1]
		case "binlog_snapshot_position":
			off, err := strconv.ParseUint(r[1], 10, 32)
			if err != nil {
				return Position{}, fmt.Errorf("read snapshot position: offset %q: %w", r[1], err)
			}
			p.Offset, haveOff = uint32(off), true
		}
	}
	if p.File == "" || !haveOff {
		return Position{}, errors.New("read snapshot position: binlog_snapshot_file or binlog_snapshot_position is missing (is log_bin on?)")
	}
	return p, nil
}

// parseLogStatus reads the LOCAL column of MySQL's
// performance_schema.log_status.
func parseLogStatus(local string, gtid bool) (Position, error) {
	var st struct {
		GTIDExecuted string `json:"gtid_executed"`
		File         string `json:"binary_log_file"`
		Position     uint64 `json:"binary_log_position"`
	}
	if err := json.Unmarshal([]byte(local), &st); err != nil {
		return Position{}, fmt.Errorf("read log_status: %w", err)
	}
	if st.File == "" || st.Position > 1<<32-1 {
		return Position{}, fmt.Errorf("read log_status: no binary log position in %s", local)
	}
	p := Position{Flavor: FlavorMySQL, File: st.File, Offset: uint32(st.Position)}
	if gtid {
		var err error
		if p.GTID, err = canonicalGTID(FlavorMySQL, st.GTIDExecuted); err != nil {
			return Position{}, fmt.Errorf("read log_status: %w", err)
		}
	}
	return p, nil
}

// quoteIdent quotes a MySQL identifier.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// myErrorCode returns the server's error code in err, or 0.
func myErrorCode(err error) uint16 {
	var me *gomysql.MyError
	if errors.As(err, &me) {
		return me.Code
	}
	return 0
}
