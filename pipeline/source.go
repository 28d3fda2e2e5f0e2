package pipeline

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/postgres"
)

func (c *Config) postgresConfig(log *slog.Logger) postgres.Config {
	return postgres.Config{
		DSN:      c.Source.DSN,
		Tables:   c.Source.Tables,
		Options:  c.Source.Postgres,
		Snapshot: c.Snapshot.Mode,
		Logger:   log,
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

func (c *Config) validateMySQL() error {
	return errors.New("source.kind: mysql and mariadb are not available in this build")
}

func (c *Config) newMySQL(*slog.Logger) (connectors.Source, error) {
	return nil, c.validateMySQL()
}
