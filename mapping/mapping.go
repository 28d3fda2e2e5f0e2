// Package mapping turns a table into the entity that liberator publishes:
// which columns, under which names, with which values masked or hashed,
// keyed by which columns, to which topic. It knows neither the databases
// nor Kafka.
package mapping

import (
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

// Table is one table's entry in the mapping section: how its rows
// become entities. Every field is optional.
type Table struct {
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
	// Topic replaces the table's topic name, <topic_prefix>.<schema>.<table>
	// (see Mapping.Topic). It is taken as it is, and must be a valid topic
	// name.
	Topic string `yaml:"topic"`
	// Key names the columns that key a table without a primary key. For a
	// table with one it may only repeat it.
	Key []string `yaml:"key"`
}

// Mapping is the mapping section of a pipeline: each table's entry, the
// salt of hashed columns, and the topic prefix.
type Mapping struct {
	byID   map[string]*Table // by Table.ID()
	names  map[string]string // Table.ID() -> the name in the config
	salt   string
	prefix string
	// validTopic checks a topic name; the sink's rules.
	validTopic func(string) error
	// captured are the tables of source.tables, in Table.ID form.
	captured []string
	// topics are the captured tables' topics (nameTopics).
	topics map[string]string
}

// New returns the mapping of entries, keyed by the tables' names in the
// config; id turns such a name into Table.ID form ("schema.name").
// captured are the tables of source.tables in that form, salt is
// mapping_salt, prefix is kafka.topic_prefix, and validTopic checks a
// topic name.
func New(entries map[string]Table, id func(string) string, captured []string, salt, prefix string, validTopic func(string) error) *Mapping {
	m := &Mapping{byID: map[string]*Table{}, names: map[string]string{}, salt: salt, prefix: prefix, validTopic: validTopic,
		captured: captured}
	for name, e := range entries {
		m.byID[id(name)] = &e
		m.names[id(name)] = name
	}
	m.nameTopics(captured)
	return m
}

// For returns the entry of a table ("schema.name"), or nil.
func (m *Mapping) For(table string) *Table { return m.byID[table] }

// Topic names the topic of a table ("schema.name", Table.ID): its
// entry's topic when set, else <prefix>.<schema>.<table>, sanitized as
// Kafka requires. Every part of liberator that names a table's topic asks
// here.
//
// The rule, after Debezium's topic naming strategy: every character of the
// schema and of the table's name outside a-z, A-Z, 0-9, _ and - becomes
// one _ (each Unicode code point; the dot too, since it separates the
// parts). When that makes a captured table's topic the same as another
// captured table's, the table whose name was changed gets a suffix, _ and
// the first 8 hex digits of the SHA-256 of its ID; a table whose name
// needed no change keeps its topic. A name longer than Kafka's 249
// characters is cut to 240 and given the suffix. So "テスト"."café" under
// prefix app is app.___.caf_, and "some|test@data" is app.public.some_test_data.
func (m *Mapping) Topic(table string) string {
	if t, ok := m.topics[table]; ok {
		return t
	}
	if e := m.byID[table]; e != nil && e.Topic != "" {
		return e.Topic
	}
	t, _ := defaultTopic(m.prefix, table)
	return t
}

// Topics are the topics of the captured tables, by Table.ID.
func (m *Mapping) Topics() map[string]string { return maps.Clone(m.topics) }

// KeyColumns are the entries' key columns by table, for the connectors.
func (m *Mapping) KeyColumns() map[string][]string {
	out := map[string][]string{}
	for id, e := range m.byID {
		if len(e.Key) > 0 {
			out[id] = e.Key
		}
	}
	return out
}

// ColumnFilters are the entries' include and exclude lists by table, for
// the connectors, which do not decode the columns left out.
func (m *Mapping) ColumnFilters() map[string]connectors.ColumnFilter {
	out := map[string]connectors.ColumnFilter{}
	for id, e := range m.byID {
		if len(e.Include) > 0 || len(e.Exclude) > 0 {
			out[id] = connectors.ColumnFilter{Include: e.Include, Exclude: e.Exclude}
		}
	}
	return out
}

// View derives the published form of t under its entry.
func (m *Mapping) View(t *connectors.Table) (*View, error) {
	return NewView(t, m.byID[t.ID()], m.names[t.ID()], m.salt)
}

// Validate checks the mapping section and mapping_salt without a
// database: which tables, which settings conflict, whether a salt is
// there, that every captured table's topic is a valid name, and that no
// two tables share a topic. Columns are checked against the tables when
// they are first seen (NewView).
func (m *Mapping) Validate() error {
	captured := m.captured
	salt := m.salt
	var errs []error
	tables := map[string]bool{}
	for _, t := range captured {
		tables[t] = true
	}
	topics := map[string]string{}
	validTopic := m.validTopic
	ids := map[string]string{} // config name -> Table.ID
	for id, name := range m.names {
		ids[name] = id
	}
	for _, name := range slices.Sorted(maps.Keys(ids)) {
		id := ids[name]
		m := m.byID[id]
		key := "mapping." + name
		if !tables[id] {
			errs = append(errs, fmt.Errorf("%s: table %s is not in source.tables", key, id))
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
		if len(m.Hash) > 0 && m.Salt == "" && salt == "" {
			errs = append(errs, fmt.Errorf("%s.hash: needs a salt: set %s.salt or mapping_salt, from ${ENV} or ${file:/path}", key, key))
		}
		for _, col := range m.Key {
			check("key", col)
		}
		if m.Topic != "" {
			if err := validTopic(m.Topic); err != nil {
				errs = append(errs, fmt.Errorf("%s.topic: %w", key, err))
			}
			if other, ok := topics[m.Topic]; ok {
				errs = append(errs, fmt.Errorf("%s.topic: %q is also the topic of mapping.%s", key, m.Topic, other))
			}
			topics[m.Topic] = name
		}
	}
	// A custom topic must not take the topic of a table without one, and
	// no two tables may share a topic.
	byTopic := map[string]string{}
	for _, id := range captured {
		topic := m.Topic(id)
		if e := m.byID[id]; e == nil || e.Topic == "" {
			if other, ok := topics[topic]; ok {
				errs = append(errs, fmt.Errorf("mapping.%s.topic: %q is the topic of table %s", other, topic, id))
				continue
			}
			if err := validTopic(topic); err != nil {
				errs = append(errs, fmt.Errorf("source.tables: table %s: its topic %w (set mapping.%s.topic or kafka.topic_prefix)", id, err, id))
			}
			if other, ok := byTopic[topic]; ok && other != id {
				errs = append(errs, fmt.Errorf("source.tables: tables %s and %s would both publish to topic %q (set mapping.<table>.topic for one)", other, id, topic))
			}
			byTopic[topic] = id
		}
	}
	return errors.Join(errs...)
}

// colOp is what a view does to one published column's values.
type colOp uint8

const (
	opCopy colOp = iota
	opMask
	opHash
)

// View is a table as it is published: the mapped table (the published
// columns, renamed, with masked and hashed ones as strings) and how to
// project a source row onto it. It is made once per table shape.
type View struct {
	// Table is the published table.
	Table *connectors.Table
	// identity says that rows pass through unchanged.
	identity bool
	src      []int   // per published column, its index in the source row
	ops      []colOp // per published column
	kinds    []connectors.Type
	mask     []string // per published column, the mask of opMask
	salt     string
	// Columns maps each Avro field name to its source column, for messages.
	Columns map[string]string
	// Rename is the mapping's rename, for schema.WithFieldNames.
	Rename map[string]string
}

// NewView derives the published form of t under m (nil: publish t as it
// is). name is the mapping's key in the config, for messages. A column
// that m names and t lacks, a key column left out or masked, a hashed
// array, or a key that differs from t's primary key is an error naming
// the table and the column.
func NewView(t *connectors.Table, m *Table, name, salt string) (*View, error) {
	v := &View{Columns: map[string]string{}}
	if m == nil {
		v.Table, v.identity = t, true
		for _, c := range t.Columns {
			v.Columns[schema.FieldName(c.Name)] = c.Name
		}
		return v, nil
	}
	if m.Salt != "" {
		salt = m.Salt
	}
	v.salt, v.Rename = salt, m.Rename
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
		v.Columns[schema.FieldName(field)] = c.Name
	}
	for _, k := range t.Key {
		mt.Key = append(mt.Key, newIndex[k])
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v.Table = mt
	return v, nil
}

// Project maps a source row onto the view's columns. A nil row stays nil.
func (v *View) Project(row []any) []any {
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
			if _, bad := val.(connectors.BadValue); bad {
				// A value out of its type's range has no text to hash
				// by the documented rule: it stays, for the encoder to
				// refuse as a bad row.
				out[i] = val
				continue
			}
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
// zone); times of day 15:04:05.999999; geometries their WKB, as when
// they were published as bytes, so that their hashes stay the same.
func valueText(t connectors.Type, v any) []byte {
	switch v := v.(type) {
	case string:
		return []byte(v)
	case []byte:
		return v
	case connectors.Geometry:
		return v.WKB
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

// Check checks the mapping against the tables as they are now, as the
// source describes them before it opens (connectors.Describer), so that a
// column a table lacks stops liberator at start rather than at the
// table's first change.
func (m *Mapping) Check(tables []*connectors.Table) error {
	var errs []error
	for _, t := range tables {
		if _, err := m.View(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
