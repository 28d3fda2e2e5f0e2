package config

import (
	"errors"
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/liberator-cdc/liberator/connectors"
)

// TableList is source.tables. Each entry is either a string, schema.table
// (PostgreSQL; a bare table is in schema public) or database.table
// (MySQL), with a part quoted as an SQL identifier where it holds a dot, a
// quote or a backtick:
//
//   - shop.orders
//   - '"My.Schema"."Odd""Table"'
//   - '`odd.db`.`odd“table`'          # MySQL only
//
// or a section that names the parts as they are, with no quoting:
//
//   - {schema: My.Schema, table: Odd"Table}
//
// A section becomes the string form (connectors.TableID), which is also
// how mapping.<table> names the table. Names are never folded to lower
// case.
type TableList []string

// TableEntry is the section form of an entry of source.tables.
type TableEntry struct {
	// Schema is the PostgreSQL schema (default public) or the MySQL
	// database.
	Schema string `yaml:"schema"`
	// Table is the table's name.
	Table string `yaml:"table"`
}

// UnmarshalYAML reads a list of strings and sections.
func (l *TableList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: source.tables: is not a list (list the tables, each as schema.table or {schema: ..., table: ...})", n.Line)
	}
	out := make(TableList, 0, len(n.Content))
	var errs []error
	for i, item := range n.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			out = append(out, item.Value)
			continue
		case yaml.MappingNode:
			var e TableEntry
			if err := item.Decode(&e); err != nil {
				errs = append(errs, fmt.Errorf("line %d: source.tables[%d]: %w", item.Line, i, typeError(err)))
				continue
			}
			if e.Table == "" {
				errs = append(errs, fmt.Errorf("line %d: source.tables[%d].table: is empty (name the table, as {schema: ..., table: ...})", item.Line, i))
				continue
			}
			out = append(out, connectors.TableID(e.Schema, e.Table))
			continue
		}
		errs = append(errs, fmt.Errorf("line %d: source.tables[%d]: is neither a name nor a section (use schema.table or {schema: ..., table: ...})", item.Line, i))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	*l = out
	return nil
}

// itemSection is what the unknown-key walker checks a section entry of
// source.tables against.
func (TableList) itemSection() reflect.Type { return reflect.TypeFor[TableEntry]() }
