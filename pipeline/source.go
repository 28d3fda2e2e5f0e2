package pipeline

import (
	"fmt"
	"log/slog"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/mysql"
	"github.com/liberator-cdc/liberator/connectors/postgres"
)

func (c *Config) postgresConfig(log *slog.Logger) postgres.Config {
	return postgres.Config{
		DSN:       c.Source.DSN,
		Tables:    c.Source.Tables,
		Options:   c.Source.Postgres,
		Snapshot:  c.Snapshot.Mode,
		Snapshots: c.Snapshot.SnapshotOptions,
		Logger:    log,

		KeyColumns: c.keyColumns(),
	}
}

// newSource builds the configured source connector.
func (c *Config) newSource(log *slog.Logger) (connectors.Source, error) {
	switch c.Source.Kind {
	case "postgres":
		return postgres.New(c.postgresConfig(log))
	case "mysql", "mariadb":
		return c.newMySQL(log)
	}
	return nil, fmt.Errorf("source.kind: %q is not a source", c.Source.Kind)
}

func (c *Config) mysqlConfig(log *slog.Logger) mysql.Config {
	return mysql.Config{
		Flavor:    c.Source.Kind,
		DSN:       c.Source.DSN,
		Tables:    c.Source.Tables,
		ServerID:  c.Source.MySQL.ServerID,
		Snapshot:  c.Snapshot.Mode,
		Logger:    log,
		Snapshots: c.Snapshot.SnapshotOptions,

		KeyColumns: c.keyColumns(),
	}
}

func (c *Config) validateMySQL() error { return c.mysqlConfig(nil).Validate() }

func (c *Config) newMySQL(log *slog.Logger) (connectors.Source, error) {
	return mysql.New(c.mysqlConfig(log))
}
