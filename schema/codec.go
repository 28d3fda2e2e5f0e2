// Package schema turns neutral table metadata into Avro schemas, encodes rows
// as Avro binary bodies, and talks to a Confluent-compatible schema registry.
//
// It knows Avro and the registry, and neither database: a connector describes
// its tables with connectors.Table and hands rows over as []any in the value
// forms listed on connectors.Kind.
package schema

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"

	"github.com/liberator-cdc/liberator/connectors"
)

// Record names of the two schemas a Codec derives.
const (
	// KeyRecordName is the name of the key record, in the Codec's namespace.
	KeyRecordName = "Key"
	// ValueRecordName is the name of the value record, in the Codec's
	// namespace.
	ValueRecordName = "Value"
)

// Codec holds the Avro key and value schemas derived from one table, and a
// precomputed plan to encode that table's rows into them. A Codec is
// immutable after NewCodec and safe for concurrent use.
type Codec struct {
	// Key is the key record: the table's key columns, in key order, none
	// of them nullable. It is a *avro.RecordSchema.
	Key avro.Schema
	// Value is the value record: every column of the table in ordinal
	// order. It is a *avro.RecordSchema.
	Value avro.Schema

	table string // "schema.name", for error messages
	width int    // len(Table.Columns): the length every row must have
	key   []field
	value []field
}

// field is the encoding plan of one record field.
type field struct {
	col      int    // index into the row
	column   string // column name, for error messages
	nullable bool   // encoded as a union of null and T
	// valueFirst says the union is [T, "null"] rather than ["null", T],
	// because the column has a non-null default (Avro takes a union's
	// default from its first branch).
	valueFirst bool
	typ        plan
}

// plan is the encoding plan of one Avro type.
type plan struct {
	kind             connectors.Kind
	precision, scale int   // for KindDecimal
	elem             *plan // for KindArray; elements are always ["null", elem]
}

// NewCodec derives the key and value schemas of t in the Avro namespace
// namespace (see Namespace), and plans how to encode t's rows.
//
// Field names come from FieldName; each field's doc is "column <name>,
// <SQL type>". A nullable column becomes the union ["null", T] with default
// null, except that key columns are never nullable, in either record. A
// column with a constant SQL default (connectors.Column.Default) gets it as
// its value field's Avro default; a nullable one then becomes [T, "null"],
// since the Avro specification takes a union's default from its first
// branch. Defaults that Avro cannot hold are left out: NaN and infinite
// floats, and arrays that are not empty; so are the defaults of time
// columns and of nullable date and timestamp columns, which hamba/avro
// v2.31.0 misreads (see avroDefault and unionDefaultUnreadable). Key fields have no defaults. The types map as
// follows:
//
//	bool            boolean
//	int32           int
//	int64           long
//	float32         float
//	float64         double
//	decimal         bytes, logicalType decimal (precision, scale)
//	string, json    string
//	uuid            string, logicalType uuid
//	bytes           bytes
//	date            int, logicalType date
//	timestamp       long, logicalType timestamp-micros
//	local-timestamp long, logicalType local-timestamp-micros
//	time            long, logicalType time-micros
//	array           array of ["null", element type]
//	geometry        record io.debezium.data.geometry.Geometry of wkb
//	                (bytes) and srid (["null", "int"], default null)
//
// A column of KindInvalid or an unknown kind, a decimal whose precision or
// scale is out of range, or an array without an element type is an error
// that wraps connectors.ErrUnsupportedType. Two columns whose field names
// collide, or a bad key, are errors too.
func NewCodec(namespace string, t *connectors.Table, opts ...CodecOption) (*Codec, error) {
	var o codecOptions
	for _, opt := range opts {
		opt(&o)
	}
	if t == nil {
		return nil, errors.New("derive schema: table is nil")
	}
	if len(t.Key) == 0 {
		return nil, fmt.Errorf("derive schema of table %s: table has no key columns", t.ID())
	}

	isKey := make([]bool, len(t.Columns))
	for _, k := range t.Key {
		if k < 0 || k >= len(t.Columns) {
			return nil, fmt.Errorf("derive schema of table %s: key column index %d is out of range (table has %d columns)", t.ID(), k, len(t.Columns))
		}
		if isKey[k] {
			return nil, fmt.Errorf("derive schema of table %s: column %q appears twice in the key", t.ID(), t.Columns[k].Name)
		}
		isKey[k] = true
	}

	c := &Codec{
		table: t.ID(),
		width: len(t.Columns),
		value: make([]field, len(t.Columns)),
		key:   make([]field, len(t.Key)),
	}
	valueFields := make([]*avro.Field, len(t.Columns))
	// Each record defines a named type (a geometry) once and refers to it
	// by name after that.
	valueNamed, keyNamed := namedTypes{}, namedTypes{}
	byName := make(map[string]string, len(t.Columns)) // field name -> column name
	for i, col := range t.Columns {
		name := FieldName(col.Name)
		if n, ok := o.fieldNames[col.Name]; ok {
			name = FieldName(n)
		}
		if other, ok := byName[name]; ok {
			return nil, fmt.Errorf("derive schema of table %s: columns %q and %q both map to the Avro field name %q", t.ID(), other, col.Name, name)
		}
		byName[name] = col.Name

		p, typ, err := derive(col.Type, valueNamed)
		if err != nil {
			return nil, fmt.Errorf("derive schema of table %s: column %q (%s): %w", t.ID(), col.Name, col.SQLType, err)
		}
		def, hasDef, err := avroDefault(col.Default, col.Type)
		if err != nil {
			return nil, fmt.Errorf("derive schema of table %s: column %q (%s): default: %w", t.ID(), col.Name, col.SQLType, err)
		}
		f := field{col: i, column: col.Name, nullable: col.Nullable && !isKey[i], typ: p}
		if f.nullable && hasDef && def != nil && unionDefaultUnreadable(col.Type.Kind) {
			def = nil
		}
		f.valueFirst = f.nullable && hasDef && def != nil
		af, err := newAvroField(name, col, typ, f.nullable, def, hasDef)
		if err != nil {
			return nil, fmt.Errorf("derive schema of table %s: column %q: %w", t.ID(), col.Name, err)
		}
		c.value[i] = f
		valueFields[i] = af
	}

	keyFields := make([]*avro.Field, len(t.Key))
	for i, k := range t.Key {
		c.key[i] = c.value[k]
		// A record owns its fields, so the key record gets its own copies.
		col := t.Columns[k]
		_, typ, err := derive(col.Type, keyNamed)
		if err != nil {
			return nil, fmt.Errorf("derive schema of table %s: column %q (%s): %w", t.ID(), col.Name, col.SQLType, err)
		}
		af, err := newAvroField(valueFields[k].Name(), col, typ, false, nil, false)
		if err != nil {
			return nil, fmt.Errorf("derive schema of table %s: column %q: %w", t.ID(), col.Name, err)
		}
		keyFields[i] = af
	}

	var err error
	if c.Key, err = avro.NewRecordSchema(KeyRecordName, namespace, keyFields); err != nil {
		return nil, fmt.Errorf("derive key schema of table %s: %w", t.ID(), err)
	}
	if c.Value, err = avro.NewRecordSchema(ValueRecordName, namespace, valueFields); err != nil {
		return nil, fmt.Errorf("derive value schema of table %s: %w", t.ID(), err)
	}
	return c, nil
}

// CodecOption changes how NewCodec derives a table's schemas.
type CodecOption func(*codecOptions)

type codecOptions struct {
	fieldNames map[string]string
}

// WithFieldNames names the fields of the columns in names (column name to
// field name) instead of the columns themselves; FieldName still makes
// them valid Avro names. The field doc keeps the column's name.
func WithFieldNames(names map[string]string) CodecOption {
	return func(o *codecOptions) { o.fieldNames = names }
}

// newAvroField builds the record field for col with the Avro type typ. A
// nullable field is the union ["null", typ] with default null, or [typ,
// "null"] with default def when def is not nil. hasDef says whether the
// field has a default at all (def, in the form hamba's WithDefault takes).
func newAvroField(name string, col connectors.Column, typ avro.Schema, nullable bool, def any, hasDef bool) (*avro.Field, error) {
	doc := "column " + col.Name
	if col.SQLType != "" {
		doc += ", " + col.SQLType
	}
	opts := []avro.SchemaOption{avro.WithDoc(doc)}
	if !nullable {
		if hasDef {
			opts = append(opts, avro.WithDefault(def))
		}
		return avro.NewField(name, typ, opts...)
	}
	branches := []avro.Schema{avro.NewNullSchema(), typ}
	if hasDef && def != nil {
		branches[0], branches[1] = typ, branches[0]
	} else {
		def = nil
	}
	u, err := avro.NewUnionSchema(branches)
	if err != nil {
		return nil, err
	}
	return avro.NewField(name, u, append(opts, avro.WithDefault(def))...)
}

// unionDefaultUnreadable reports the kinds whose default hamba/avro
// v2.31.0 cannot apply when it decodes generically (into an any) and the
// default belongs to the first branch of a union: an int or long with a
// logical type ("avro: unknown union type long"). A nullable column of such
// a kind keeps ["null", T] with default null rather than give Go consumers
// events they cannot read.
func unionDefaultUnreadable(k connectors.Kind) bool {
	switch k {
	case connectors.KindDate, connectors.KindTimestamp, connectors.KindLocalTimestamp, connectors.KindTime:
		return true
	}
	return false
}

// namedTypes are the named types a record has defined so far, by full
// name. Avro allows one definition of a name in a schema; later uses refer
// to it by name.
type namedTypes map[string]avro.NamedSchema

// GeometryRecordName is the full name of the record a geometry column
// becomes: the name of Debezium's io.debezium.data.geometry.Geometry, with
// the same fields, so that a reader schema written for Debezium's events
// resolves liberator's (Avro resolves records by name).
const GeometryRecordName = "io.debezium.data.geometry.Geometry"

// geometrySchema returns the geometry record, or a reference to it when
// named already defines it.
func geometrySchema(named namedTypes) (avro.Schema, error) {
	if s, ok := named[GeometryRecordName]; ok {
		return avro.NewRefSchema(s), nil
	}
	wkb, err := avro.NewField("wkb", avro.NewPrimitiveSchema(avro.Bytes, nil), avro.WithDoc("the shape in OGC well-known binary"))
	if err != nil {
		return nil, err
	}
	optInt, err := avro.NewUnionSchema([]avro.Schema{avro.NewNullSchema(), avro.NewPrimitiveSchema(avro.Int, nil)})
	if err != nil {
		return nil, err
	}
	srid, err := avro.NewField("srid", optInt, avro.WithDefault(nil), avro.WithDoc("the spatial reference system id; null when there is none (SRID 0)"))
	if err != nil {
		return nil, err
	}
	rec, err := avro.NewRecordSchema("Geometry", "io.debezium.data.geometry", []*avro.Field{wkb, srid}, avro.WithDoc("Geometry"))
	if err != nil {
		return nil, err
	}
	named[GeometryRecordName] = rec
	return rec, nil
}

// derive returns the encoding plan and the Avro schema of a column type.
// Named types it defines are added to named.
func derive(t connectors.Type, named namedTypes) (plan, avro.Schema, error) {
	p := plan{kind: t.Kind}
	var s avro.Schema
	switch t.Kind {
	case connectors.KindBool:
		s = avro.NewPrimitiveSchema(avro.Boolean, nil)
	case connectors.KindInt32:
		s = avro.NewPrimitiveSchema(avro.Int, nil)
	case connectors.KindInt64:
		s = avro.NewPrimitiveSchema(avro.Long, nil)
	case connectors.KindFloat32:
		s = avro.NewPrimitiveSchema(avro.Float, nil)
	case connectors.KindFloat64:
		s = avro.NewPrimitiveSchema(avro.Double, nil)
	case connectors.KindDecimal:
		if t.Precision < 1 || t.Scale < 0 || t.Scale > t.Precision {
			return p, nil, fmt.Errorf("decimal precision %d and scale %d are out of range (want 1 <= precision and 0 <= scale <= precision): %w", t.Precision, t.Scale, connectors.ErrUnsupportedType)
		}
		p.precision, p.scale = t.Precision, t.Scale
		s = avro.NewPrimitiveSchema(avro.Bytes, avro.NewDecimalLogicalSchema(t.Precision, t.Scale))
	case connectors.KindString, connectors.KindJSON:
		s = avro.NewPrimitiveSchema(avro.String, nil)
	case connectors.KindUUID:
		s = avro.NewPrimitiveSchema(avro.String, avro.NewPrimitiveLogicalSchema(avro.UUID))
	case connectors.KindBytes:
		s = avro.NewPrimitiveSchema(avro.Bytes, nil)
	case connectors.KindDate:
		s = avro.NewPrimitiveSchema(avro.Int, avro.NewPrimitiveLogicalSchema(avro.Date))
	case connectors.KindTimestamp:
		s = avro.NewPrimitiveSchema(avro.Long, avro.NewPrimitiveLogicalSchema(avro.TimestampMicros))
	case connectors.KindLocalTimestamp:
		s = avro.NewPrimitiveSchema(avro.Long, avro.NewPrimitiveLogicalSchema(avro.LocalTimestampMicros))
	case connectors.KindTime:
		s = avro.NewPrimitiveSchema(avro.Long, avro.NewPrimitiveLogicalSchema(avro.TimeMicros))
	case connectors.KindArray:
		if t.Elem == nil {
			return p, nil, fmt.Errorf("array has no element type: %w", connectors.ErrUnsupportedType)
		}
		ep, es, err := derive(*t.Elem, named)
		if err != nil {
			return p, nil, fmt.Errorf("array element: %w", err)
		}
		items, err := avro.NewUnionSchema([]avro.Schema{avro.NewNullSchema(), es})
		if err != nil {
			return p, nil, err
		}
		p.elem = &ep
		s = avro.NewArraySchema(items)
	case connectors.KindGeometry:
		var err error
		if s, err = geometrySchema(named); err != nil {
			return p, nil, err
		}
	default:
		return p, nil, fmt.Errorf("kind %s: %w", t.Kind, connectors.ErrUnsupportedType)
	}
	return p, s, nil
}

// FieldName returns the Avro field name of a column. Avro names match
// [A-Za-z_][A-Za-z0-9_]*, so every character (Unicode code point, or invalid
// UTF-8 byte) outside A-Z, a-z, 0-9 and _ becomes one _, and a name that
// starts with a digit gets a _ prefix. The empty name becomes "_". For
// example "order-id" becomes "order_id", "2fa" becomes "_2fa" and "größe"
// becomes "gr__e".
//
// Different columns can map to the same field name ("a-b" and "a_b");
// NewCodec reports such a collision as an error.
func FieldName(column string) string {
	if column == "" {
		return "_"
	}
	valid := !isDigit(column[0])
	for i := 0; i < len(column) && valid; i++ {
		valid = isNameByte(column[i])
	}
	if valid {
		return column
	}
	var b strings.Builder
	b.Grow(len(column) + 1)
	if isDigit(column[0]) {
		b.WriteByte('_')
	}
	for i := 0; i < len(column); {
		if c := column[i]; isNameByte(c) {
			b.WriteByte(c)
			i++
			continue
		}
		_, size := utf8.DecodeRuneInString(column[i:])
		b.WriteByte('_')
		i += size
	}
	return b.String()
}

// Namespace returns the Avro namespace for a Kafka topic: each dot-separated
// part of topic made a valid name by FieldName, so "app.public.orders-v2"
// becomes "app.public.orders_v2" and "1st..x" becomes "_1st._.x".
func Namespace(topic string) string {
	parts := strings.Split(topic, ".")
	for i, p := range parts {
		parts[i] = FieldName(p)
	}
	return strings.Join(parts, ".")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}
