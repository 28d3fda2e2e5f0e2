package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

// ErrNoPrimaryKey is wrapped by the error for a configured table that has no
// primary key: its rows could not be keyed in a compacted topic.
var ErrNoPrimaryKey = errors.New("table has no primary key")

// ErrNoTable is wrapped by the error for a configured table that does not
// exist or cannot be seen by the connecting user.
var ErrNoTable = errors.New("table does not exist")

// pgType is what the catalog says about a column's type.
type pgType struct {
	oid      uint32
	typtype  byte   // b base, d domain, e enum, c composite, r range, ...
	elem     uint32 // element type of an array type, else 0
	base     uint32 // base type of a domain, else 0
	category byte   // 'A' for arrays
}

// relation is a captured table as the stream or a snapshot sees it, with a
// decoder per column.
type relation struct {
	table    *connectors.Table
	decoders []decoder
	// skipped marks the columns that are not decoded (see
	// connectors.ColumnFilter): their decoder gives nil.
	skipped []bool
	// text marks the columns whose value is their text (textColumns).
	text []bool
	// binary is the type OID of each column that the initial snapshot
	// reads in binary (binaryResult), 0 for the others; formats is the
	// result formats of the select list that go with it (resultFormats).
	binary  []uint32
	formats []int16
	// identity is pg_class.relreplident: 'd' default, 'f' full, 'i' index,
	// 'n' nothing.
	identity byte
	// keyText builds the WHERE clause to read a row by key.
	selectByKey string
}

// column is one column as read from pg_attribute.
type column struct {
	name    string
	typeOID uint32
	typmod  int32
	notNull bool
	sqlType string
	// def is the column's default as pg_get_expr prints it, "" if none.
	def string
}

// catalog answers questions about tables and types over a regular connection
// and caches types.
type catalog struct {
	conn  *pgx.Conn
	types map[uint32]pgType
	// keyColumns key the tables without a primary key (Config.KeyColumns).
	keyColumns map[tableName][]string
	// published says which columns of a table are decoded
	// (Config.PublishedColumns).
	published map[tableName]connectors.ColumnFilter
}

func newCatalog(conn *pgx.Conn) *catalog {
	return &catalog{conn: conn, types: map[uint32]pgType{}}
}

// withKeys sets the key columns of tables without a primary key, from
// Config.KeyColumns ("schema.table" to column names).
func (c *catalog) withKeys(keys map[string][]string) *catalog {
	c.keyColumns = map[tableName][]string{}
	for t, cols := range keys {
		if tn, err := parseTableName(t); err == nil {
			c.keyColumns[tn] = cols
		}
	}
	return c
}

// withPublished sets the columns that are decoded, from
// Config.PublishedColumns ("schema.table" to a filter).
func (c *catalog) withPublished(filters map[string]connectors.ColumnFilter) *catalog {
	c.published = map[tableName]connectors.ColumnFilter{}
	for t, f := range filters {
		if tn, err := parseTableName(t); err == nil {
			c.published[tn] = f
		}
	}
	return c
}

// builtinBases are the base types that baseType maps, which need no catalog
// round trip either.
var builtinBases = map[uint32]bool{
	pgtype.BoolOID: true, pgtype.Int2OID: true, pgtype.Int4OID: true, pgtype.Int8OID: true, pgtype.Float4OID: true,
	pgtype.Float8OID: true, pgtype.NumericOID: true, pgtype.TextOID: true, pgtype.VarcharOID: true, pgtype.BPCharOID: true,
	pgtype.UUIDOID: true, pgtype.JSONOID: true, pgtype.JSONBOID: true, pgtype.ByteaOID: true, pgtype.DateOID: true,
	pgtype.TimestampOID: true, pgtype.TimestamptzOID: true, pgtype.TimeOID: true,
}

// builtinArrays are the array types of the built-in types, so that the
// common ones need no catalog round trip (and type mapping tests need no
// database).
var builtinArrays = map[uint32]uint32{
	pgtype.BoolArrayOID: pgtype.BoolOID, pgtype.Int2ArrayOID: pgtype.Int2OID, pgtype.Int4ArrayOID: pgtype.Int4OID,
	pgtype.Int8ArrayOID: pgtype.Int8OID, pgtype.Float4ArrayOID: pgtype.Float4OID, pgtype.Float8ArrayOID: pgtype.Float8OID,
	pgtype.NumericArrayOID: pgtype.NumericOID, pgtype.TextArrayOID: pgtype.TextOID, pgtype.VarcharArrayOID: pgtype.VarcharOID,
	pgtype.BPCharArrayOID: pgtype.BPCharOID, pgtype.UUIDArrayOID: pgtype.UUIDOID, pgtype.JSONBArrayOID: pgtype.JSONBOID,
	pgtype.JSONArrayOID: pgtype.JSONOID, pgtype.ByteaArrayOID: pgtype.ByteaOID, pgtype.DateArrayOID: pgtype.DateOID,
	pgtype.TimestampArrayOID: pgtype.TimestampOID, pgtype.TimestamptzArrayOID: pgtype.TimestamptzOID, pgtype.TimeArrayOID: pgtype.TimeOID,
}

// describe reads a table's columns, primary key and replica identity.
func (c *catalog) describe(ctx context.Context, tn tableName) (cols []column, key []string, identity byte, err error) {
	relid, identity, err := c.relation(ctx, tn, "'r', 'p'")
	if err != nil {
		return nil, nil, 0, err
	}
	if cols, err = c.columns(ctx, tn, relid); err != nil {
		return nil, nil, 0, err
	}
	if key, err = c.primaryKey(ctx, tn, relid); err != nil {
		return nil, nil, 0, err
	}
	if len(key) == 0 {
		kc, ok := c.keyColumns[tn]
		if !ok {
			return nil, nil, 0, fmt.Errorf("%w: %s (add a primary key, or name key columns in mapping.%s.key; a compacted topic needs a key for its events)", ErrNoPrimaryKey, tn, tn)
		}
		if err := checkKeyColumns(tn, cols, kc, identity); err != nil {
			return nil, nil, 0, err
		}
		key = kc
	}
	return cols, key, identity, nil
}

// relation finds a relation of one of relkinds (a quoted list, as
// "'r', 'p'") and returns its oid and replica identity.
func (c *catalog) relation(ctx context.Context, tn tableName, relkinds string) (relid uint32, identity byte, err error) {
	var ident8 string
	err = c.conn.QueryRow(ctx,
		`SELECT c.oid, c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN (`+relkinds+`)`, tn.schema, tn.name).Scan(&relid, &ident8)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, 0, fmt.Errorf("%w: %s (check the name and that the user may see it)", ErrNoTable, tn)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("describe table %s: %w", pgx.Identifier{tn.schema, tn.name}.Sanitize(), err)
	}
	return relid, ident8[0], nil
}

// columns reads a relation's columns in their order.
func (c *catalog) columns(ctx context.Context, tn tableName, relid uint32) ([]column, error) {
	rows, err := c.conn.Query(ctx,
		`SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, format_type(a.atttypid, a.atttypmod),
		        CASE WHEN a.attgenerated = '' THEN coalesce(pg_get_expr(d.adbin, d.adrelid), '') ELSE '' END
		 FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, relid)
	if err != nil {
		return nil, fmt.Errorf("describe columns of %s: %w", tn, err)
	}
	var cols []column
	for rows.Next() {
		var col column
		if err := rows.Scan(&col.name, &col.typeOID, &col.typmod, &col.notNull, &col.sqlType, &col.def); err != nil {
			rows.Close()
			return nil, fmt.Errorf("describe columns of %s: %w", tn, err)
		}
		cols = append(cols, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("describe columns of %s: %w", tn, err)
	}
	return cols, nil
}

// primaryKey reads the columns of a relation's primary key, in key order;
// none for a relation without one (a view).
func (c *catalog) primaryKey(ctx context.Context, tn tableName, relid uint32) ([]string, error) {
	rows, err := c.conn.Query(ctx,
		`SELECT a.attname FROM pg_index i
		 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		 WHERE i.indrelid = $1 AND i.indisprimary
		 ORDER BY array_position(i.indkey::int2[], a.attnum)`, relid)
	if err != nil {
		return nil, fmt.Errorf("describe primary key of %s: %w", tn, err)
	}
	key, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("describe primary key of %s: %w", tn, err)
	}
	return key, nil
}

// typeOf looks a type up in pg_type, once.
func (c *catalog) typeOf(ctx context.Context, oid uint32) (pgType, error) {
	if t, ok := c.types[oid]; ok {
		return t, nil
	}
	if elem, ok := builtinArrays[oid]; ok {
		return pgType{oid: oid, typtype: 'b', elem: elem, category: 'A'}, nil
	}
	if builtinBases[oid] {
		return pgType{oid: oid, typtype: 'b'}, nil
	}
	t := pgType{oid: oid}
	var typtype, category string
	err := c.conn.QueryRow(ctx,
		`SELECT typtype::text, typelem, typbasetype, typcategory::text FROM pg_type WHERE oid = $1`, oid).
		Scan(&typtype, &t.elem, &t.base, &category)
	if err != nil {
		return t, fmt.Errorf("describe type %d: %w", oid, err)
	}
	t.typtype, t.category = typtype[0], category[0]
	c.types[oid] = t
	return t, nil
}

// neutralType maps a column's type to its neutral type, resolving domains
// and array element types through the catalog.
func (c *catalog) neutralType(ctx context.Context, oid uint32, typmod int32) (connectors.Type, error) {
	t, err := c.typeOf(ctx, oid)
	if err != nil {
		return connectors.Type{}, err
	}
	switch {
	case t.typtype == 'd' && t.base != 0:
		return c.neutralType(ctx, t.base, typmod)
	case t.category == 'A' && t.elem != 0:
		elem, err := c.neutralType(ctx, t.elem, typmod)
		if err != nil {
			return connectors.Type{}, err
		}
		if elem.Kind == connectors.KindArray {
			elem = connectors.Type{Kind: connectors.KindString}
		}
		return connectors.Type{Kind: connectors.KindArray, Elem: &elem}, nil
	}
	return baseType(oid, typmod), nil
}

// baseType maps a built-in type. Every type without a closer Avro match,
// enums included, is carried as a string in PostgreSQL's text form.
func baseType(oid uint32, typmod int32) connectors.Type {
	switch oid {
	case pgtype.BoolOID:
		return connectors.Type{Kind: connectors.KindBool}
	case pgtype.Int2OID, pgtype.Int4OID:
		return connectors.Type{Kind: connectors.KindInt32}
	case pgtype.Int8OID:
		return connectors.Type{Kind: connectors.KindInt64}
	case pgtype.Float4OID:
		return connectors.Type{Kind: connectors.KindFloat32}
	case pgtype.Float8OID:
		return connectors.Type{Kind: connectors.KindFloat64}
	case pgtype.NumericOID:
		if p, s, ok := numericTypmod(typmod); ok {
			switch {
			case s < 0:
				// numeric(3,-2) holds integers of up to p-s digits
				// (multiples of 100 below 100000), which PostgreSQL
				// prints in full.
				return connectors.Type{Kind: connectors.KindDecimal, Precision: p - s}
			case s > p:
				// numeric(2,5) holds fractions below 10^(p-s), with s
				// digits after the point; Avro wants scale <= precision.
				return connectors.Type{Kind: connectors.KindDecimal, Precision: s, Scale: s}
			}
			return connectors.Type{Kind: connectors.KindDecimal, Precision: p, Scale: s}
		}
		return connectors.Type{Kind: connectors.KindString}
	case pgtype.UUIDOID:
		return connectors.Type{Kind: connectors.KindUUID}
	case pgtype.JSONOID, pgtype.JSONBOID:
		return connectors.Type{Kind: connectors.KindJSON}
	case pgtype.ByteaOID:
		return connectors.Type{Kind: connectors.KindBytes}
	case pgtype.DateOID:
		return connectors.Type{Kind: connectors.KindDate}
	case pgtype.TimestampOID:
		return connectors.Type{Kind: connectors.KindLocalTimestamp}
	case pgtype.TimestamptzOID:
		return connectors.Type{Kind: connectors.KindTimestamp}
	case pgtype.TimeOID:
		return connectors.Type{Kind: connectors.KindTime}
	}
	return connectors.Type{Kind: connectors.KindString}
}

// numericTypmod splits the typmod of numeric(p,s): ((p << 16) | (s &
// 0x7ff)) + 4, where s is an 11-bit signed number (PostgreSQL 15 allows
// scales from -1000 to 1000, so greater than p or negative). ok is false
// for numeric without precision (typmod -1).
func numericTypmod(typmod int32) (precision, scale int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	m := typmod - 4
	return int(m>>16) & 0xffff, int((m&0x7ff)^1024) - 1024, true
}

// buildRelation makes the relation of a table from its catalog description.
// names and oids/typmods give the column layout of the tuples that will be
// decoded (the stream's relation message, or the snapshot's select list).
func (c *catalog) buildRelation(ctx context.Context, tn tableName, cols []column, key []string, identity byte) (*relation, error) {
	t := &connectors.Table{Schema: tn.schema, Name: tn.name}
	rel := &relation{table: t, identity: identity}
	index := map[string]int{}
	filter := c.published[tn]
	for i, col := range cols {
		index[col.name] = i
		if filter.Skips(col.name) && !slices.Contains(key, col.name) {
			// Not published, so not decoded: its type is never looked
			// at, and its values are nil.
			t.Columns = append(t.Columns, connectors.Column{Name: col.name, Type: connectors.Type{Kind: connectors.KindString}, Nullable: true, SQLType: col.sqlType})
			rel.decoders = append(rel.decoders, skipValue)
			rel.skipped = append(rel.skipped, true)
			continue
		}
		typ, err := c.neutralType(ctx, col.typeOID, col.typmod)
		if err != nil {
			return nil, fmt.Errorf("describe column %q of %s: %w", col.name, tn, err)
		}
		dec, err := decoderFor(typ)
		if err != nil {
			return nil, fmt.Errorf("column %q of %s (%s): %w", col.name, tn, col.sqlType, err)
		}
		t.Columns = append(t.Columns, connectors.Column{Name: col.name, Type: typ, Nullable: !col.notNull, SQLType: col.sqlType,
			Default: parseDefault(col.def, typ, col.typeOID, col.typmod, dec)})
		rel.decoders = append(rel.decoders, dec)
		rel.skipped = append(rel.skipped, false)
		if binaryResult(col.typeOID) {
			if rel.binary == nil {
				rel.binary = make([]uint32, len(cols))
			}
			rel.binary[i] = col.typeOID
		}
	}
	rel.formats = resultFormats(rel.binary)
	where := ""
	for n, k := range key {
		i, ok := index[k]
		if !ok {
			return nil, fmt.Errorf("%w: %s: key column %q is not published", ErrNoPrimaryKey, tn, k)
		}
		t.Key = append(t.Key, i)
		t.Columns[i].Nullable = false
		if n > 0 {
			where += " AND "
		}
		where += fmt.Sprintf("%s = $%d", pgx.Identifier{k}.Sanitize(), n+1)
	}
	rel.text = textColumns(t, rel.skipped)
	rel.selectByKey = "SELECT " + rel.selectList() + " FROM " + pgx.Identifier{tn.schema, tn.name}.Sanitize() + " WHERE " + where
	return rel, nil
}

// selectList quotes a table's column names for a SELECT. A column that is
// not decoded is read as NULL, so that its value is never sent.
func (r *relation) selectList() string {
	s := ""
	for i, col := range r.table.Columns {
		if i > 0 {
			s += ", "
		}
		if r.skipped != nil && r.skipped[i] {
			s += "NULL"
			continue
		}
		s += pgx.Identifier{col.Name}.Sanitize()
	}
	return s
}

// checkKeyColumns checks the configured key columns of a table without a
// primary key: they exist, and the replica identity is FULL, so that
// updates and deletes carry them in their old tuple.
func checkKeyColumns(tn tableName, cols []column, key []string, identity byte) error {
	for _, k := range key {
		i := slices.IndexFunc(cols, func(c column) bool { return c.name == k })
		if i < 0 {
			return fmt.Errorf("%w: %s: key column %q (mapping.%s.key) is not a column of the table", ErrNoPrimaryKey, tn, k, tn)
		}
		if !cols[i].notNull {
			return fmt.Errorf("%w: %s: key column %q (mapping.%s.key) may be NULL, which cannot key an event: ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
				ErrNoPrimaryKey, tn, k, tn, pgx.Identifier{tn.schema, tn.name}.Sanitize(), pgx.Identifier{k}.Sanitize())
		}
	}
	if identity != 'f' {
		return fmt.Errorf("%w: %s: it is keyed by mapping.%s.key, so its updates and deletes must carry every column: ALTER TABLE %s REPLICA IDENTITY FULL",
			ErrNoPrimaryKey, tn, tn, pgx.Identifier{tn.schema, tn.name}.Sanitize())
	}
	return nil
}
