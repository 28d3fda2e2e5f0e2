package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

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
}

// Config configures a Source.
type Config struct {
	// DSN is a PostgreSQL connection URL or keyword/value string.
	DSN string
	// Tables are the captured tables as "schema.table"; a bare name means
	// schema public.
	Tables []string
	Options
	// Snapshot says when the tables' existing rows are read. Default
	// connectors.SnapshotInitial.
	Snapshot connectors.SnapshotMode
	// Logger receives the connector's logs. Default slog.Default().
	Logger *slog.Logger
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
	if c.Logger == nil {
		c.Logger = slog.Default()
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
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("source.tables: is empty (list tables as schema.table)"))
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
	if !c.Snapshot.Valid() {
		errs = append(errs, fmt.Errorf("snapshot.mode: %q is not a mode (use initial, never or only)", c.Snapshot))
	}
	return errors.Join(errs...)
}

// tableName is a schema-qualified table name.
type tableName struct{ schema, name string }

func (t tableName) String() string { return t.schema + "." + t.name }

// parseTableName reads "schema.table" or "table". Names are taken as they are
// written, so they match PostgreSQL's catalog spelling (lower case unless the
// table was created with a quoted name).
func parseTableName(s string) (tableName, error) {
	parts := strings.Split(s, ".")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return tableName{"public", parts[0]}, nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return tableName{parts[0], parts[1]}, nil
	}
	return tableName{}, fmt.Errorf("%q is not a table name (use schema.table)", s)
}
