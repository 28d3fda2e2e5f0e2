package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liberator-cdc/liberator/connectors"
)

// Options is the source.postgres section of the config file.
type Options struct {
	// Slot is the logical replication slot. It is created if missing.
	// Default "liberator".
	Slot string `yaml:"slot"`
	// Publication is the publication the slot reads. It is created if
	// missing, for the configured tables, and tables missing from an
	// existing publication are added to it. Default "liberator".
	Publication string `yaml:"publication"`
	// HeartbeatInterval is how often a heartbeat is written while
	// streaming, so that the slot keeps moving while the captured tables
	// are idle. Default 10s; 0s turns heartbeats off.
	HeartbeatInterval *time.Duration `yaml:"heartbeat_interval"`
	// HeartbeatQuery is the statement a heartbeat runs. Default
	// SELECT pg_logical_emit_message(false, 'liberator.heartbeat', now()::text);
	// set it to, for instance, an UPDATE of a heartbeat table.
	HeartbeatQuery string `yaml:"heartbeat_query"`
	// RetainedWALWarn logs a warning when the slot retains more WAL than
	// this. Default 1GB.
	RetainedWALWarn ByteSize `yaml:"retained_wal_warn"`
	// RetainedWALLimit stops liberator, with an error, when the slot
	// retains more WAL than this, before the server's disk fills. Default
	// 0: no limit.
	RetainedWALLimit ByteSize `yaml:"retained_wal_limit"`
	// OnGap says what Open does when the slot has moved past the stored
	// position (another consumer of the slot, pg_replication_slot_advance,
	// or the slot dropped and created again), so that the changes in
	// between cannot be read: "fail" stops with an error that names both
	// positions (connectors.ErrGap); "resnapshot" streams from the slot's
	// position and re-snapshots every table with reconcile, so that rows
	// deleted in the gap are tombstoned. Default "fail". "resnapshot" needs
	// snapshot.mode initial.
	OnGap GapAction `yaml:"on_gap"`
	// Streaming has the server send a transaction larger than its
	// logical_decoding_work_mem while it runs (pgoutput protocol version
	// 2, streaming 'on'), instead of spilling it to the server's disk and
	// sending it after the commit. liberator spools each streamed
	// transaction to a file in $TMPDIR and produces it at its commit, so
	// Kafka never holds a row of a transaction that aborts. Default false.
	Streaming bool `yaml:"streaming"`
}

// GapAction is what Open does about a slot that moved past the stored
// position (Options.OnGap).
type GapAction string

const (
	// GapFail stops with an error wrapping connectors.ErrGap.
	GapFail GapAction = "fail"
	// GapResnapshot streams from the slot and re-snapshots with reconcile.
	GapResnapshot GapAction = "resnapshot"
)

// Config configures a Source.
type Config struct {
	// DSN is a PostgreSQL connection URL or keyword/value string.
	DSN string
	// Tables are the captured tables as "schema.table"; a bare name means
	// schema public.
	Tables []string
	// Patterns take, besides Tables, every table they match: those there
	// at Open, and those created while streaming, which are found by
	// reading the catalog every PatternPoll and snapshotted incrementally.
	Patterns connectors.TableFilter
	// PatternPoll is how often the catalog is read for new tables that
	// Patterns match. Default 1s.
	PatternPoll time.Duration
	Options
	// Snapshot says when the tables' existing rows are read. Default
	// connectors.SnapshotInitial.
	Snapshot connectors.SnapshotMode
	// Snapshots tunes how snapshots read the tables (chunk size,
	// parallelism); zero fields take their defaults.
	Snapshots connectors.SnapshotOptions
	// KeyColumns keys tables that have no primary key: "schema.table" to
	// the columns that identify a row (config: mapping.<table>.key). They
	// must be NOT NULL and the table's REPLICA IDENTITY FULL, so that
	// updates and deletes carry them. A table with a primary key is keyed
	// by it and its entry is not used.
	KeyColumns map[string][]string
	// PublishedColumns says, by "schema.table", which columns the mapping
	// publishes (config: mapping.<table>.include and exclude). The others
	// are not decoded: their values are nil, whatever they hold, and the
	// snapshot does not read them.
	PublishedColumns map[string]connectors.ColumnFilter
	// Messages are the prefixes of the logical decoding messages
	// (pg_logical_emit_message) that the source hands over as OpMessage
	// changes, at their place in the stream: a transactional message
	// between its transaction's changes, a non-transactional one when it
	// is written. Messages of other prefixes are not handed over. The
	// config fills it from the outbox section's message_prefix.
	Messages []string
	// Logger receives the connector's logs. Default slog.Default().
	Logger *slog.Logger
	// Memory bounds the bytes of decoded changes the source holds at once
	// (see connectors.Memory); the config's memory_limit sets it. Zero
	// means connectors.DefaultMemory.
	Memory connectors.Memory
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) setDefaults() {
	if c.Slot == "" {
		c.Slot = "liberator"
	}
	if c.Publication == "" {
		c.Publication = "liberator"
	}
	if c.Snapshot == "" {
		c.Snapshot = connectors.SnapshotInitial
	}
	if c.HeartbeatInterval == nil {
		d := 10 * time.Second
		c.HeartbeatInterval = &d
	}
	if c.OnGap == "" {
		c.OnGap = GapFail
	}
	if c.RetainedWALWarn == 0 {
		c.RetainedWALWarn = 1 << 30
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PatternPoll <= 0 {
		c.PatternPoll = time.Second
	}
}

// Validate reports every problem with the config at once. Messages name the
// config file's keys.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("source.dsn: is empty (use postgres://user:password@host:5432/db)"))
	} else if _, err := pgconn.ParseConfig(c.DSN); err != nil {
		errs = append(errs, fmt.Errorf("source.dsn: cannot be parsed: %w", err))
	}
	if len(c.Tables) == 0 && c.Patterns.Empty() {
		errs = append(errs, errors.New("source.tables: is empty (list tables as schema.table, or patterns such as shop.*)"))
	}
	seen := map[string]bool{}
	for i, t := range c.Tables {
		tn, err := parseTableName(t)
		if err != nil {
			errs = append(errs, fmt.Errorf("source.tables[%d]: %w", i, err))
			continue
		}
		if seen[tn.String()] {
			errs = append(errs, fmt.Errorf("source.tables[%d]: %q is listed twice", i, t))
		}
		seen[tn.String()] = true
	}
	if !identRE.MatchString(c.Slot) {
		errs = append(errs, fmt.Errorf("source.postgres.slot: %q is not a valid slot name (use a-z, 0-9, _; at most 63 characters)", c.Slot))
	}
	if !identRE.MatchString(c.Publication) {
		errs = append(errs, fmt.Errorf("source.postgres.publication: %q is not a valid publication name (use a-z, 0-9, _; at most 63 characters)", c.Publication))
	}
	if *c.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("source.postgres.heartbeat_interval: %s must not be negative", *c.HeartbeatInterval))
	}
	if c.RetainedWALLimit > 0 && c.RetainedWALWarn > c.RetainedWALLimit {
		errs = append(errs, fmt.Errorf("source.postgres.retained_wal_warn: %s is above retained_wal_limit %s", c.RetainedWALWarn, c.RetainedWALLimit))
	}
	if c.OnGap != GapFail && c.OnGap != GapResnapshot {
		errs = append(errs, fmt.Errorf("source.postgres.on_gap: %q is not an action (use fail or resnapshot)", c.OnGap))
	}
	if !c.Snapshot.Valid() {
		errs = append(errs, fmt.Errorf("snapshot.mode: %q is not a mode (use initial, never or only)", c.Snapshot))
	}
	if err := c.Snapshots.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, t := range slices.Sorted(maps.Keys(c.KeyColumns)) {
		cols := c.KeyColumns[t]
		tn, err := parseTableName(t)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("mapping.%s.key: %w", t, err))
		case !seen[tn.String()]:
			errs = append(errs, fmt.Errorf("mapping.%s.key: %s is not in source.tables", t, tn))
		case len(cols) == 0:
			errs = append(errs, fmt.Errorf("mapping.%s.key: is empty (list the columns that identify a row)", t))
		}
	}
	return errors.Join(errs...)
}

// tableName is a schema-qualified table name.
type tableName struct{ schema, name string }

// String is the table's ID (connectors.TableID): "schema.table", with a
// part that holds a dot or a quote quoted.
func (t tableName) String() string { return connectors.TableID(t.schema, t.name) }

// parseTableName reads "schema.table" or "table" (in schema public), with
// either part quoted as an SQL identifier where it holds a dot or a quote
// ("My.Schema"."Odd""Table"). Names are taken as they are written, quoted
// or not, so they match PostgreSQL's catalog spelling (lower case unless
// the table was created with a quoted name).
func parseTableName(s string) (tableName, error) {
	schema, name, err := connectors.ParseTableName(s, "public", false)
	if err != nil {
		return tableName{}, err
	}
	return tableName{schema, name}, nil
}

// canonicalName is the form of a table name that positions record and
// requests are checked against: "schema.table".
func canonicalName(s string) (string, error) {
	tn, err := parseTableName(s)
	if err != nil {
		return "", err
	}
	return tn.String(), nil
}
