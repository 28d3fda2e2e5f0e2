// Package query is the core of query-based capture, shared by the
// PostgreSQL and MySQL connectors: the modes, the per-table watermarks that
// make up a position, and the poll loop. A connector supplies a DB, which
// runs the SQL of its database; this package decides what to read, in what
// order, and what the rows become.
//
// # Modes
//
//   - bulk reads the whole table every TableOptions.Every, in key order,
//     as op r; each read is a re-snapshot with reconcile, so rows deleted
//     since the last read are tombstoned at its end.
//   - incrementing reads rows whose incrementing column (an id from a
//     sequence or AUTO_INCREMENT) is above the last one read, as op c. It
//     is for append-only tables: updates are not seen.
//   - timestamp reads rows whose timestamp column is above the last one
//     read, ordered by (timestamp, key), as op u (an upsert: a query cannot
//     tell an insert from an update).
//   - timestamp+incrementing is timestamp with the incrementing column as
//     the tie-breaker of rows with the same timestamp, ordered by
//     (timestamp, incrementing), as op u.
//
// Every mode but bulk reads only rows that can no longer be joined by an
// older one: each poll asks the DB for a horizon, below which every row
// that will ever be committed is committed already. How a DB finds it is
// the DB's (PostgreSQL: from the transactions in progress; MySQL and
// MariaDB: a lag behind the server's clock).
package query

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Mode is how a table is polled.
type Mode string

// The modes of TableOptions.Mode.
const (
	Bulk                  Mode = "bulk"
	Incrementing          Mode = "incrementing"
	Timestamp             Mode = "timestamp"
	TimestampIncrementing Mode = "timestamp+incrementing"
)

// Options is the source.query section of the config file.
type Options struct {
	// PollInterval is how often each table is polled. Default 5s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// PageSize is how many rows one query of a poll reads (keyset
	// pagination: each page starts after the last row of the one before).
	// Default 5000.
	PageSize int `yaml:"page_size"`
	// Tables says, by table as source.tables names it, how each table is
	// polled. Every captured table needs an entry.
	Tables map[string]TableOptions `yaml:"tables"`
	// SoftDelete names the column that marks a row deleted: a row where it
	// is not NULL (and not false) is published as a tombstone. It applies
	// to every table that has the column. Default: none.
	SoftDelete SoftDelete `yaml:"soft_delete"`
	// ReconcileEvery is how often every table polled incrementally is read
	// in full, so that rows deleted from it (hard deletes, which a query
	// cannot see) are tombstoned in its topic. Default 0: never.
	ReconcileEvery time.Duration `yaml:"reconcile_every"`
	// Lag is how far behind the server's clock a MySQL or MariaDB poll
	// reads: a row is read once its timestamp (or the moment its id was
	// seen committed) is Lag in the past, so that a transaction that
	// commits within Lag of writing its row is never skipped. PostgreSQL
	// needs no lag and ignores it. Default 5s.
	Lag time.Duration `yaml:"lag"`
}

// TableOptions is one entry of source.query.tables.
type TableOptions struct {
	// Mode is bulk, incrementing, timestamp or timestamp+incrementing.
	Mode Mode `yaml:"mode"`
	// Timestamp is the timestamp column of the timestamp modes. It must be
	// set by the database (now(), CURRENT_TIMESTAMP, a trigger) whenever
	// the row is written, soft deletes included.
	Timestamp string `yaml:"timestamp"`
	// Incrementing is the column of the incrementing modes: an id that
	// grows with every insert.
	Incrementing string `yaml:"incrementing"`
	// Key are the columns that key the table's events, for a view, a
	// query, or a table without a primary key. Default: the primary key.
	Key []string `yaml:"key"`
	// Query is a SELECT that is read instead of the table: its columns,
	// with types from the catalog, are the entity. It needs Key. The
	// table's name is then only a name, for the topic and the mapping.
	Query string `yaml:"query"`
	// Every is how often a bulk table is read. Default: poll_interval.
	Every time.Duration `yaml:"every"`
}

// SoftDelete is the source.query.soft_delete section.
type SoftDelete struct {
	// Column marks deleted rows: not NULL, and not false, means deleted.
	Column string `yaml:"column"`
}

// Defaults of Options.
const (
	DefaultPollInterval = 5 * time.Second
	DefaultPageSize     = 5000
	DefaultLag          = 5 * time.Second
)

// WithDefaults returns o with its zero fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Lag == 0 {
		o.Lag = DefaultLag
	}
	return o
}

// Validate reports every problem at once, each naming its key. tables are
// source.tables; canon turns a table name as the config writes it into
// its ID, so that entries and tables are matched whatever the spelling.
func (o Options) Validate(tables []string, canon func(string) (string, error)) error {
	o = o.WithDefaults()
	var errs []error
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("source.query.poll_interval: %s must not be negative", o.PollInterval))
	}
	if o.PageSize < 1 || o.PageSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("source.query.page_size: %d is out of range (use 1 to 1000000, or leave it out for %d)", o.PageSize, DefaultPageSize))
	}
	if o.ReconcileEvery < 0 {
		errs = append(errs, fmt.Errorf("source.query.reconcile_every: %s must not be negative (leave it out to never reconcile)", o.ReconcileEvery))
	}
	if o.Lag < 0 {
		errs = append(errs, fmt.Errorf("source.query.lag: %s must not be negative", o.Lag))
	}
	captured := map[string]bool{}
	for _, t := range tables {
		if id, err := canon(t); err == nil {
			captured[id] = true
		}
	}
	entries := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(o.Tables)) {
		key := "source.query.tables." + name
		id, err := canon(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		if !captured[id] {
			errs = append(errs, fmt.Errorf("%s: %s is not in source.tables (add it there, or remove this entry)", key, id))
		}
		if entries[id] {
			errs = append(errs, fmt.Errorf("%s: %s has two entries", key, id))
		}
		entries[id] = true
		errs = append(errs, o.Tables[name].validate(key))
	}
	for _, t := range tables {
		id, err := canon(t)
		if err == nil && !entries[id] {
			errs = append(errs, fmt.Errorf("source.query.tables: %s has no entry (give it a mode: {mode: bulk, key: [...]}, {mode: incrementing, incrementing: id}, {mode: timestamp, timestamp: updated_at} or {mode: timestamp+incrementing, timestamp: updated_at, incrementing: id})", id))
		}
	}
	return errors.Join(errs...)
}

func (t TableOptions) validate(key string) error {
	var errs []error
	switch t.Mode {
	case Bulk:
		if t.Timestamp != "" || t.Incrementing != "" {
			errs = append(errs, fmt.Errorf("%s: mode bulk reads the whole table and takes no timestamp or incrementing column", key))
		}
	case Incrementing:
		if t.Incrementing == "" {
			errs = append(errs, fmt.Errorf("%s.incrementing: is empty (mode incrementing needs the column of a growing id)", key))
		}
		if t.Timestamp != "" {
			errs = append(errs, fmt.Errorf("%s.timestamp: mode incrementing takes no timestamp column (use mode timestamp+incrementing)", key))
		}
	case Timestamp:
		if t.Timestamp == "" {
			errs = append(errs, fmt.Errorf("%s.timestamp: is empty (mode timestamp needs the column the database sets on every write)", key))
		}
		if t.Incrementing != "" {
			errs = append(errs, fmt.Errorf("%s.incrementing: mode timestamp takes no incrementing column (use mode timestamp+incrementing)", key))
		}
	case TimestampIncrementing:
		if t.Timestamp == "" {
			errs = append(errs, fmt.Errorf("%s.timestamp: is empty (mode timestamp+incrementing needs a timestamp column)", key))
		}
		if t.Incrementing == "" {
			errs = append(errs, fmt.Errorf("%s.incrementing: is empty (mode timestamp+incrementing needs an incrementing column)", key))
		}
	case "":
		errs = append(errs, fmt.Errorf("%s.mode: is empty (use bulk, incrementing, timestamp or timestamp+incrementing)", key))
	default:
		errs = append(errs, fmt.Errorf("%s.mode: %q is not a mode (use bulk, incrementing, timestamp or timestamp+incrementing)", key, t.Mode))
	}
	if t.Query != "" && len(t.Key) == 0 {
		errs = append(errs, fmt.Errorf("%s.key: is empty (a query has no primary key: name the columns that identify its rows)", key))
	}
	if t.Every < 0 {
		errs = append(errs, fmt.Errorf("%s.every: %s must not be negative", key, t.Every))
	}
	if t.Every != 0 && t.Mode != Bulk {
		errs = append(errs, fmt.Errorf("%s.every: only mode bulk takes every (the other modes are polled every source.query.poll_interval)", key))
	}
	return errors.Join(errs...)
}

// Lookup returns the entry of a table by its ID.
func (o Options) Lookup(id string, canon func(string) (string, error)) (TableOptions, bool) {
	for name, t := range o.Tables {
		if c, err := canon(name); err == nil && c == id {
			return t, true
		}
	}
	return TableOptions{}, false
}
