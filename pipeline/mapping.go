package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/schema"
)

// TableMapping is one table's entry in the mapping section: how its rows
// become entities. Every field is optional.
type TableMapping struct {
	// Include lists the columns to publish; the others are left out.
	// Conflicts with Exclude.
	Include []string `yaml:"include"`
	// Exclude lists columns to leave out. Conflicts with Include.
	Exclude []string `yaml:"exclude"`
	// Rename maps a column to the name of its field.
	Rename map[string]string `yaml:"rename"`
	// Mask maps a column to a fixed text that replaces every value (NULL
	// stays NULL); the field becomes a string.
	Mask map[string]string `yaml:"mask"`
	// Hash lists columns whose values are replaced by the SHA-256 (lower
	// case hex) of the salt followed by the value's text; the field becomes
	// a string. NULL stays NULL.
	Hash []string `yaml:"hash"`
	// Salt of Hash, instead of mapping_salt. Give it as ${ENV} or
	// ${file:/path}.
	Salt string `yaml:"salt"`
	// Topic replaces the table's topic name, <topic_prefix>.<schema>.<table>.
	Topic string `yaml:"topic"`
	// Key names the columns that key a table without a primary key. For a
	// table with one it may only repeat it.
	Key []string `yaml:"key"`
}

// mappingFor returns the mapping of a table ("schema.table"), or nil.
func (c *Config) mappingFor(table string) (*TableMapping, string) {
	for name, m := range c.Mapping {
		if c.tableID(name) == table {
			return &m, name
		}
	}
	return nil, ""
}

// topicFor names the topic of a table ("schema.name", or as the config
// names it): mapping.<table>.topic when set, else
// <kafka.topic_prefix>.<schema>.<table>. Every part of liberator that
// names a table's topic asks here.
func (c *Config) topicFor(table string) string {
	id := c.tableID(table)
	if m, _ := c.mappingFor(id); m != nil && m.Topic != "" {
		return m.Topic
	}
	return c.Kafka.TopicPrefix + "." + id
}

// tableID turns a table as the config names it into Table.ID() form: a
// bare PostgreSQL table is in schema public.
func (c *Config) tableID(name string) string {
	if c.Source.Kind == "postgres" && !strings.Contains(name, ".") {
		return "public." + name
	}
	return name
}

// keyColumns are the mapping's key columns by table, for the connectors.
// A mapping of a table that is not captured is left to validateMapping.
func (c *Config) keyColumns() map[string][]string {
	out := map[string][]string{}
	for _, t := range c.Source.Tables {
		if m, _ := c.mappingFor(c.tableID(t)); m != nil && len(m.Key) > 0 {
			out[c.tableID(t)] = m.Key
		}
	}
	return out
}

// validateMapping checks the mapping section and mapping_salt without a
// database: which tables, which settings conflict, whether a salt is
// there. Columns are checked against the tables when they are first seen.
func (c *Config) validateMapping() error {
	var errs []error
	tables := map[string]bool{}
	for _, t := range c.Source.Tables {
		tables[c.tableID(t)] = true
	}
	topics := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(c.Mapping)) {
		m := c.Mapping[name]
		key := "mapping." + name
		if !tables[c.tableID(name)] {
			errs = append(errs, fmt.Errorf("%s: table %s is not in source.tables", key, c.tableID(name)))
		}
		if len(m.Include) > 0 && len(m.Exclude) > 0 {
			errs = append(errs, fmt.Errorf("%s: include and exclude conflict (use one)", key))
		}
		left := map[string]bool{}
		for _, col := range m.Exclude {
			left[col] = true
		}
		published := func(col string) bool {
			if len(m.Include) > 0 {
				return slices.Contains(m.Include, col)
			}
			return !left[col]
		}
		check := func(what, col string) {
			if col == "" {
				errs = append(errs, fmt.Errorf("%s.%s: a column name is empty", key, what))
			} else if !published(col) {
				errs = append(errs, fmt.Errorf("%s.%s: column %q is not published (see include and exclude)", key, what, col))
			}
		}
		for _, col := range slices.Sorted(maps.Keys(m.Rename)) {
			check("rename", col)
			if m.Rename[col] == "" {
				errs = append(errs, fmt.Errorf("%s.rename.%s: the new name is empty", key, col))
			}
		}
		for _, col := range slices.Sorted(maps.Keys(m.Mask)) {
			check("mask", col)
			if slices.Contains(m.Hash, col) {
				errs = append(errs, fmt.Errorf("%s: column %q is both masked and hashed (use one)", key, col))
			}
			if slices.Contains(m.Key, col) {
				errs = append(errs, fmt.Errorf("%s.mask: key column %q cannot be masked: every key would be the same", key, col))
			}
		}
		for _, col := range m.Hash {
			check("hash", col)
		}
		if len(m.Hash) > 0 && m.Salt == "" && c.MappingSalt == "" {
			errs = append(errs, fmt.Errorf("%s.hash: needs a salt: set %s.salt or mapping_salt, from ${ENV} or ${file:/path}", key, key))
		}
		for _, col := range m.Key {
			check("key", col)
		}
		if m.Topic != "" {
			if !validTopicName(m.Topic) {
				errs = append(errs, fmt.Errorf("%s.topic: %q is not a topic name (use a-z, A-Z, 0-9, '.', '_', '-'; at most 249 characters)", key, m.Topic))
			}
			if other, ok := topics[m.Topic]; ok {
				errs = append(errs, fmt.Errorf("%s.topic: %q is also the topic of mapping.%s", key, m.Topic, other))
			}
			topics[m.Topic] = name
		}
	}
	// A custom topic must not take the topic of a table without one.
	for _, t := range c.Source.Tables {
		id := c.tableID(t)
		if m, _ := c.mappingFor(id); m != nil && m.Topic != "" {
			continue
		}
		if other, ok := topics[c.Kafka.TopicPrefix+"."+id]; ok {
			errs = append(errs, fmt.Errorf("mapping.%s.topic: %q is the topic of table %s", other, c.Kafka.TopicPrefix+"."+id, id))
		}
	}
	return errors.Join(errs...)
}

func validTopicName(s string) bool {
	if s == "" || len(s) > 249 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// colOp is what a view does to one published column's values.
type colOp uint8

const (
	opCopy colOp = iota
	opMask
	opHash
)

// view is a table as it is published: the mapped table (the published
// columns, renamed, with masked and hashed ones as strings) and how to
// project a source row onto it. It is made once per table shape.
type view struct {
	table *connectors.Table
	// identity says that rows pass through unchanged.
	identity bool
	src      []int   // per published column, its index in the source row
	ops      []colOp // per published column
	kinds    []connectors.Type
	mask     []string // per published column, the mask of opMask
	salt     string
	// columns maps each Avro field name to its source column, for messages.
	columns map[string]string
	// rename is the mapping's rename, for schema.WithFieldNames.
	rename map[string]string
}

// newView derives the published form of t under m (nil: publish t as it
// is). name is the mapping's key in the config, for messages. A column
// that m names and t lacks, a key column left out or masked, a hashed
// array, or a key that differs from t's primary key is an error naming
// the table and the column.
func newView(t *connectors.Table, m *TableMapping, name, salt string) (*view, error) {
	v := &view{columns: map[string]string{}}
	if m == nil {
		v.table, v.identity = t, true
		for _, c := range t.Columns {
			v.columns[schema.FieldName(c.Name)] = c.Name
		}
		return v, nil
	}
	if m.Salt != "" {
		salt = m.Salt
	}
	v.salt, v.rename = salt, m.Rename
	key := "mapping." + name
	index := map[string]int{}
	for i, c := range t.Columns {
		index[c.Name] = i
	}
	var errs []error
	known := func(what string, cols ...string) {
		for _, col := range cols {
			if _, ok := index[col]; !ok {
				errs = append(errs, fmt.Errorf("%s.%s: column %q is not a column of table %s", key, what, col, t.ID()))
			}
		}
	}
	known("include", m.Include...)
	known("exclude", m.Exclude...)
	known("rename", slices.Sorted(maps.Keys(m.Rename))...)
	known("mask", slices.Sorted(maps.Keys(m.Mask))...)
	known("hash", m.Hash...)
	known("key", m.Key...)
	if len(m.Key) > 0 {
		var pk []string
		for _, k := range t.Key {
			pk = append(pk, t.Columns[k].Name)
		}
		if !slices.Equal(pk, m.Key) {
			errs = append(errs, fmt.Errorf("%s.key: table %s is keyed by %s; key is for tables without a primary key, and may only repeat it", key, t.ID(), strings.Join(pk, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	published := make([]bool, len(t.Columns))
	for i, c := range t.Columns {
		switch {
		case len(m.Include) > 0:
			published[i] = slices.Contains(m.Include, c.Name)
		default:
			published[i] = !slices.Contains(m.Exclude, c.Name)
		}
	}
	for _, k := range t.Key {
		if !published[k] {
			errs = append(errs, fmt.Errorf("%s: key column %q of table %s must be published (see include and exclude)", key, t.Columns[k].Name, t.ID()))
		}
		if _, ok := m.Mask[t.Columns[k].Name]; ok {
			errs = append(errs, fmt.Errorf("%s.mask: key column %q of table %s cannot be masked: every key would be the same", key, t.Columns[k].Name, t.ID()))
		}
	}
	mt := &connectors.Table{Schema: t.Schema, Name: t.Name}
	newIndex := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		newIndex[i] = -1
		if !published[i] {
			continue
		}
		op, mask := opCopy, ""
		out := c
		if mv, ok := m.Mask[c.Name]; ok {
			op, mask = opMask, mv
			out.Type, out.SQLType = connectors.Type{Kind: connectors.KindString}, "masked "+c.SQLType
			if c.Default != nil {
				out.Default = mv
			}
		} else if slices.Contains(m.Hash, c.Name) {
			if c.Type.Kind == connectors.KindArray {
				errs = append(errs, fmt.Errorf("%s.hash: column %q of table %s is an array, which cannot be hashed", key, c.Name, t.ID()))
				continue
			}
			op = opHash
			out.Type, out.SQLType = connectors.Type{Kind: connectors.KindString}, "hashed "+c.SQLType
			if c.Default != nil {
				out.Default = hashValue(salt, c.Type, c.Default)
			}
		}
		newIndex[i] = len(mt.Columns)
		mt.Columns = append(mt.Columns, out)
		v.src = append(v.src, i)
		v.ops = append(v.ops, op)
		v.kinds = append(v.kinds, c.Type)
		v.mask = append(v.mask, mask)
		field := c.Name
		if r, ok := m.Rename[c.Name]; ok {
			field = r
		}
		v.columns[schema.FieldName(field)] = c.Name
	}
	for _, k := range t.Key {
		mt.Key = append(mt.Key, newIndex[k])
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v.table = mt
	return v, nil
}

// project maps a source row onto the view's columns. A nil row stays nil.
func (v *view) project(row []any) []any {
	if v.identity || row == nil {
		return row
	}
	out := make([]any, len(v.src))
	for i, s := range v.src {
		val := row[s]
		if val == nil {
			continue
		}
		switch v.ops[i] {
		case opCopy:
			out[i] = val
		case opMask:
			out[i] = v.mask[i]
		case opHash:
			out[i] = hashValue(v.salt, v.kinds[i], val)
		}
	}
	return out
}

// hashValue is the lower-case hex SHA-256 of salt followed by the value's
// text (see valueText).
func hashValue(salt string, t connectors.Type, v any) string {
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write(valueText(t, v))
	return hex.EncodeToString(h.Sum(nil))
}

// valueText is the text a hashed value is hashed as: strings, decimals,
// UUIDs and JSON as they are; bytes raw; integers in decimal; floats in
// the shortest form that reads back ("NaN", "+Inf", "-Inf" for the
// others); booleans true or false; dates 2006-01-02; timestamps in RFC
// 3339 with up to microseconds (UTC with Z; a local timestamp without a
// zone); times of day 15:04:05.999999.
func valueText(t connectors.Type, v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	case bool:
		return strconv.AppendBool(nil, v)
	case int32:
		if t.Kind == connectors.KindDate {
			return time.Unix(int64(v)*86400, 0).UTC().AppendFormat(nil, "2006-01-02")
		}
		return strconv.AppendInt(nil, int64(v), 10)
	case int64:
		switch t.Kind {
		case connectors.KindTimestamp:
			return time.UnixMicro(v).UTC().AppendFormat(nil, "2006-01-02T15:04:05.999999Z")
		case connectors.KindLocalTimestamp:
			return time.UnixMicro(v).UTC().AppendFormat(nil, "2006-01-02T15:04:05.999999")
		case connectors.KindTime:
			return time.UnixMicro(v).UTC().AppendFormat(nil, "15:04:05.999999")
		}
		return strconv.AppendInt(nil, v, 10)
	case float32:
		return appendFloat(float64(v), 32)
	case float64:
		return appendFloat(v, 64)
	}
	return fmt.Appendf(nil, "%v", v)
}

func appendFloat(f float64, bits int) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return []byte(strconv.FormatFloat(f, 'g', -1, bits))
	}
	return strconv.AppendFloat(nil, f, 'g', -1, bits)
}

// checkMapping checks the mapping against the tables as they are now, when
// the source can describe them before it opens, so that a column a table
// lacks stops liberator at start rather than at the table's first change.
// Without a mapping it does nothing.
func (p *Pipeline) checkMapping(ctx context.Context, src connectors.Source) error {
	d, ok := src.(connectors.Describer)
	if !ok || len(p.cfg.Mapping) == 0 {
		return nil
	}
	tables, err := d.Describe(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tables {
		if m, name := p.cfg.mappingFor(t.ID()); m != nil {
			if _, err := newView(t, m, name, p.cfg.MappingSalt); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
