package mysql

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/tlsconfig"
)

// Flavors accepted in Config.Flavor.
const (
	FlavorMySQL   = "mysql"
	FlavorMariaDB = "mariadb"
)

// DefaultServerID is the replica id the binlog connection registers with
// when Config.ServerID is zero. A server drops the older of two replica
// connections with the same id, so two liberator pipelines reading the same
// server need distinct ids (source.mysql.server_id).
const DefaultServerID uint32 = 4242

// defaultPort is used when the DSN names no port.
const defaultPort = 3306

// Options is the source.mysql section of the config file.
type Options struct {
	// ServerID is the replica id used on the binlog connection. It must be
	// unique among the server's replicas and differ from the server's own
	// server_id. Default DefaultServerID (4242).
	ServerID uint32 `yaml:"server_id"`
	// TLS is TLS to the server with a CA bundle and a client certificate,
	// for every connection (metadata, snapshots, the binlog). Its server
	// name defaults to the DSN's host. It and the DSN's tls parameter are
	// one or the other. Default: as the DSN's tls parameter says.
	TLS tlsconfig.Config `yaml:"tls"`
}

// Config configures a Source.
type Config struct {
	// Flavor is "mysql" or "mariadb" (the source.kind key). It selects the
	// GTID dialect and the snapshot method.
	Flavor string
	// DSN is mysql://user:password@host:port/db?tls=MODE. The port defaults
	// to 3306 and the database is optional (tables are always qualified).
	// tls is false (default), true (verify the server's certificate against
	// the system roots and the host name) or skip-verify.
	DSN string
	// Tables are the captured tables as "database.table", spelled as the
	// server spells them.
	Tables []string
	// Patterns take, besides Tables, every table they match: those there
	// at Open, and those created while streaming, which are found by
	// reading the catalog every PatternPoll and snapshotted incrementally.
	Patterns connectors.TableFilter
	// PatternPoll is how often the catalog is read for new tables that
	// Patterns match. Default 1s.
	PatternPoll time.Duration
	// ServerID is the replica id of the binlog connection. Default
	// DefaultServerID.
	ServerID uint32
	// TLS is the source.mysql.tls section: a CA bundle, a client
	// certificate. When on, it is used instead of the DSN's tls parameter,
	// which must then be absent or false.
	TLS tlsconfig.Config
	// Snapshot says when the tables' existing rows are read. Default
	// connectors.SnapshotInitial.
	Snapshot connectors.SnapshotMode
	// Snapshots tunes how snapshots read the tables (chunk size,
	// parallelism, signal table); zero fields take their defaults.
	Snapshots connectors.SnapshotOptions
	// KeyColumns keys tables that have no primary key: "database.table" to
	// the columns that identify a row (config: mapping.<table>.key). They
	// must be NOT NULL; binlog_row_image=FULL makes updates and deletes
	// carry them. A table with a primary key is keyed by it and its entry
	// is not used.
	KeyColumns map[string][]string
	// PublishedColumns says, by "database.table", which columns the
	// mapping publishes (config: mapping.<table>.include and exclude). The
	// others are not decoded: their values are nil, whatever they hold,
	// and their types are not refused.
	PublishedColumns map[string]connectors.ColumnFilter
	// Logger receives the connector's logs. Default slog.Default().
	Logger *slog.Logger // Memory bounds the bytes of decoded changes the source holds at once
	// (see connectors.Memory); the config's memory_limit sets it. Zero
	// means connectors.DefaultMemory.
	Memory connectors.Memory
}

func (c *Config) setDefaults() {
	if c.ServerID == 0 {
		c.ServerID = DefaultServerID
	}
	if c.Snapshot == "" {
		c.Snapshot = connectors.SnapshotInitial
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PatternPoll <= 0 {
		c.PatternPoll = time.Second
	}
}

// Validate reports every problem with the config at once. Messages name the
// config file's keys; a password in the DSN is never shown.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	switch c.Flavor {
	case FlavorMySQL, FlavorMariaDB:
	case "":
		errs = append(errs, errors.New("source.kind: is empty (use mysql or mariadb)"))
	default:
		errs = append(errs, fmt.Errorf("source.kind: %q is not a MySQL flavor (use mysql or mariadb)", c.Flavor))
	}
	if d, err := parseDSN(c.DSN); err != nil {
		errs = append(errs, prefixEach("source.dsn", err)...)
	} else if d.tls != nil && c.TLS.On() {
		errs = append(errs, errors.New("source.dsn: has a tls parameter and source.mysql.tls is set (use one: drop tls= from the DSN)"))
	}
	if err := c.TLS.Validate("source.mysql.tls"); err != nil {
		errs = append(errs, err)
	}
	if len(c.Tables) == 0 && c.Patterns.Empty() {
		errs = append(errs, errors.New("source.tables: is empty (list tables as database.table, or patterns such as shop.*)"))
	}
	seen := map[tableName]bool{}
	for i, t := range c.Tables {
		tn, err := parseTableName(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("source.tables[%d]: %w", i, err))
			continue
		}
		if seen[tn] {
			errs = append(errs, fmt.Errorf("source.tables[%d]: %q is listed twice", i, t))
		}
		seen[tn] = true
	}
	if !c.Snapshot.Valid() {
		errs = append(errs, fmt.Errorf("snapshot.mode: %q is not a mode (use initial, never or only)", c.Snapshot))
	}
	if err := c.Snapshots.Validate(); err != nil {
		errs = append(errs, err)
	}
	if st := c.Snapshots.SignalTable; st != "" {
		if _, err := parseTableName(st); err != nil {
			errs = append(errs, fmt.Errorf("snapshot.signal_table: %w", err))
		}
	}
	for _, t := range slices.Sorted(maps.Keys(c.KeyColumns)) {
		tn, err := parseTableName(t)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("mapping.%s.key: %w", t, err))
		case !seen[tn]:
			errs = append(errs, fmt.Errorf("mapping.%s.key: %s is not in source.tables", t, tn))
		case len(c.KeyColumns[t]) == 0:
			errs = append(errs, fmt.Errorf("mapping.%s.key: is empty (list the columns that identify a row)", t))
		}
	}
	return errors.Join(errs...)
}

// prefixEach puts key in front of err, or of each error err joins.
func prefixEach(key string, err error) []error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			errs = append(errs, prefixEach(key, e)...)
		}
		return errs
	}
	return []error{fmt.Errorf("%s: %w", key, err)}
}

// tableName is a database-qualified table name.
type tableName struct{ db, name string }

// String is the table's ID (connectors.TableID): "database.table", with a
// part that holds a dot, a quote or a backtick quoted.
func (t tableName) String() string { return connectors.TableID(t.db, t.name) }

// parseTableName reads "database.table", spelled as the server spells the
// names, with either part quoted where it holds a dot, a quote or a
// backtick: as an SQL identifier ("odd.db"."Odd""Table") or in backticks
// (`odd.db`.`odd“table`).
func parseTableName(s string) (tableName, error) {
	db, name, err := connectors.ParseTableName(s, "", true)
	if err != nil {
		return tableName{}, err
	}
	return tableName{db, name}, nil
}

// canonicalName is the form of a table name that positions record and
// requests are checked against: "database.table".
func canonicalName(s string) (string, error) {
	tn, err := parseTableName(s)
	if err != nil {
		return "", err
	}
	return tn.String(), nil
}

// dsn is a parsed Config.DSN.
type dsn struct {
	host     string
	port     uint16
	user     string
	password string
	db       string
	tls      *tls.Config
}

func (d dsn) addr() string { return net.JoinHostPort(d.host, strconv.Itoa(int(d.port))) }

// withTLS returns d using tc, the loaded source.mysql.tls, when it is not
// nil. A certificate is checked against the DSN's host unless tc names
// another server.
func (d dsn) withTLS(tc *tls.Config) dsn {
	if tc == nil {
		return d
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = d.host
	}
	d.tls = tc
	return d
}

// parseDSN reads mysql://user:password@host:port/db?tls=MODE. Its errors
// never contain the password.
func parseDSN(s string) (dsn, error) {
	if s == "" {
		return dsn{}, errors.New("is empty (use mysql://user:password@host:3306/)")
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse quotes the whole input, password included.
		return dsn{}, errors.New("is not a URL (use mysql://user:password@host:3306/)")
	}
	shown := u.Redacted()
	var d dsn
	var errs []error
	if u.Scheme != "mysql" && u.Scheme != "mariadb" {
		errs = append(errs, fmt.Errorf("%q has scheme %q (use mysql://)", shown, u.Scheme))
	}
	d.host = u.Hostname()
	if d.host == "" {
		errs = append(errs, fmt.Errorf("%q names no host (use mysql://user:password@host:3306/)", shown))
	}
	d.port = defaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("%q has port %q (use 1 to 65535)", shown, p))
		}
		d.port = uint16(n)
	}
	if u.User != nil {
		d.user = u.User.Username()
		d.password, _ = u.User.Password()
	}
	if d.user == "" {
		errs = append(errs, fmt.Errorf("%q names no user (use mysql://user:password@host:3306/)", shown))
	}
	d.db = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(d.db, "/") {
		errs = append(errs, fmt.Errorf("%q has path %q (use at most one database name)", shown, u.Path))
	}
	q := u.Query()
	for k := range q {
		if k != "tls" {
			errs = append(errs, fmt.Errorf("%q has parameter %q (the only parameter is tls)", shown, k))
		}
	}
	switch mode := q.Get("tls"); mode {
	case "", "false":
	case "true":
		d.tls = &tls.Config{ServerName: d.host, MinVersion: tls.VersionTLS12}
	case "skip-verify":
		d.tls = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by tls=skip-verify
	default:
		errs = append(errs, fmt.Errorf("%q has tls=%q (use false, true or skip-verify)", shown, mode))
	}
	return d, errors.Join(errs...)
}
