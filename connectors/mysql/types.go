package mysql

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/liberator-cdc/liberator/connectors"
)

// conv names the conversion that turns a column's value into its neutral
// form. The snapshot and the binlog hand a value of the same column to the
// same conversion, so both give identical values.
type conv uint8

const (
	convInvalid   conv = iota
	convInt32          // TINYINT, SMALLINT, MEDIUMINT, signed INT, YEAR
	convInt64          // INT UNSIGNED, signed BIGINT
	convUint64         // BIGINT UNSIGNED, as decimal text
	convDecimal        // DECIMAL(p,s), as decimal text
	convFloat32        // FLOAT
	convFloat64        // DOUBLE
	convString         // character columns, through the charset
	convBytes          // VARBINARY, BLOB
	convBinary         // BINARY(n): padded with zero bytes to n
	convEnum           // ENUM
	convSet            // SET
	convBool           // BIT(1)
	convBits           // BIT(n), n > 1
	convDate           // DATE
	convDatetime       // DATETIME
	convTimestamp      // TIMESTAMP
	convTime           // TIME
	convJSON           // MySQL JSON (binary in the binlog, text in a snapshot)
	convJSONText       // MariaDB JSON: LONGTEXT checked with json_valid
	convGeometry       // GEOMETRY and its subtypes, as WKB and SRID
	convUUID           // MariaDB UUID: BINARY(16) in the binlog
	convInet4          // MariaDB INET4: BINARY(4) in the binlog
	convInet6          // MariaDB INET6: BINARY(16) in the binlog
	convSkip           // a column that is not published: always nil
)

var convNames = [...]string{"invalid", "int32", "int64", "uint64", "decimal", "float32", "float64", "string", "bytes", "binary", "enum", "set", "bool", "bits", "date", "datetime", "timestamp", "time", "json", "json-text", "geometry", "uuid", "inet4", "inet6", "skip"}

func (c conv) String() string {
	if int(c) < len(convNames) {
		return convNames[c]
	}
	return fmt.Sprintf("conv(%d)", c)
}

// column is everything known about one column: its neutral description and
// how its values are converted.
type column struct {
	connectors.Column
	conv conv
	// text decodes convString, convEnum, convSet and convJSONText values.
	text *textDecoder
	// width is the bit count of convBits and the byte length of convBinary.
	width int
	// labels are the ENUM or SET values, in UTF-8 (binlog only: a snapshot
	// reads the labels themselves).
	labels []string
}

var (
	stringType = connectors.Type{Kind: connectors.KindString}
	setType    = connectors.Type{Kind: connectors.KindArray, Elem: &stringType}
)

// kindOf returns the neutral type of a conversion.
func typeOf(c conv, precision, scale int) connectors.Type {
	switch c {
	case convInt32:
		return connectors.Type{Kind: connectors.KindInt32}
	case convInt64, convTime:
		return connectors.Type{Kind: connectors.KindInt64}
	case convUint64:
		return connectors.Type{Kind: connectors.KindDecimal, Precision: 20}
	case convDecimal:
		return connectors.Type{Kind: connectors.KindDecimal, Precision: precision, Scale: scale}
	case convFloat32:
		return connectors.Type{Kind: connectors.KindFloat32}
	case convFloat64:
		return connectors.Type{Kind: connectors.KindFloat64}
	case convString, convEnum, convInet4, convInet6:
		return stringType
	case convBytes, convBinary, convBits:
		return connectors.Type{Kind: connectors.KindBytes}
	case convGeometry:
		return connectors.Type{Kind: connectors.KindGeometry}
	case convUUID:
		return connectors.Type{Kind: connectors.KindUUID}
	case convSet:
		return setType
	case convBool:
		return connectors.Type{Kind: connectors.KindBool}
	case convDate:
		return connectors.Type{Kind: connectors.KindDate}
	case convDatetime:
		return connectors.Type{Kind: connectors.KindLocalTimestamp}
	case convTimestamp:
		return connectors.Type{Kind: connectors.KindTimestamp}
	case convJSON, convJSONText:
		return connectors.Type{Kind: connectors.KindJSON}
	}
	return connectors.Type{}
}

// temporal reports whether a conversion can meet a zero date. Such columns
// are nullable whatever their declaration says: zero dates were NULL before
// they had a value of their own (see zeroDate), and making the fields of
// schemas registered then NOT NULL would be an incompatible change.
func (c conv) temporal() bool {
	return c == convDate || c == convDatetime || c == convTimestamp
}

// native reports MariaDB's own binary types, which the binlog describes as
// BINARY(n): UUID, INET4 and INET6.
func (c conv) native() bool {
	return c == convUUID || c == convInet4 || c == convInet6
}

// unsupported is the error for a column liberator cannot carry.
func unsupported(table, col, sqlType string) error {
	return fmt.Errorf("%w: %s.%s is %s", connectors.ErrUnsupportedType, table, col, sqlType)
}

// infoColumn is a row of information_schema.COLUMNS.
type infoColumn struct {
	Name       string
	DataType   string // lower case, e.g. "varchar"
	ColumnType string // e.g. "varchar(20)", "int(10) unsigned"
	Nullable   bool
	Charset    string // "" for non-character columns
	Precision  int    // NUMERIC_PRECISION: digits, or bits for BIT
	Scale      int    // NUMERIC_SCALE
	OctetLen   int    // CHARACTER_OCTET_LENGTH
	// JSON is set on MariaDB for a column checked with json_valid().
	JSON bool
	// Default is COLUMN_DEFAULT as the server spells it (see
	// defaultLiteral); NoDefault is set when it is SQL NULL.
	Default   string
	NoDefault bool
	// Extra is the EXTRA column: MySQL marks expression defaults
	// DEFAULT_GENERATED there.
	Extra string
	// MariaDB says that Default is spelled the MariaDB way.
	MariaDB bool
}

// skippedColumn is a column that the mapping leaves out (see
// connectors.ColumnFilter): it is not decoded, so its type is neither
// looked at nor refused, and its values are nil.
func skippedColumn(name, sqlType string) column {
	return column{Column: connectors.Column{Name: name, Type: stringType, Nullable: true, SQLType: sqlType}, conv: convSkip}
}

// columnFromInfo describes a column from information_schema. The snapshot
// uses it, and streaming takes SQLType and MariaDB's JSON from it.
func columnFromInfo(table string, ic infoColumn) (column, error) {
	c := column{Column: connectors.Column{Name: ic.Name, Nullable: ic.Nullable, SQLType: ic.ColumnType}}
	unsigned := strings.Contains(ic.ColumnType, "unsigned")
	var prec, scale int
	switch ic.DataType {
	case "tinyint", "smallint", "mediumint", "year":
		c.conv = convInt32
	case "int", "integer":
		c.conv = convInt32
		if unsigned {
			c.conv = convInt64
		}
	case "bigint":
		c.conv = convInt64
		if unsigned {
			c.conv = convUint64
		}
	case "decimal", "numeric":
		c.conv, prec, scale = convDecimal, ic.Precision, ic.Scale
	case "float":
		c.conv = convFloat32
	case "double", "real", "double precision":
		c.conv = convFloat64
	case "bit":
		c.conv, c.width = convBits, ic.Precision
		if ic.Precision == 1 {
			c.conv = convBool
		}
	case "date":
		c.conv = convDate
	case "datetime":
		c.conv = convDatetime
	case "timestamp":
		c.conv = convTimestamp
	case "time":
		c.conv = convTime
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		c.conv = convString
		if ic.Charset == binaryCharset {
			c.conv = convBytes
			if ic.DataType == "char" {
				c.conv, c.width = convBinary, ic.OctetLen
			}
		} else if ic.JSON {
			c.conv = convJSONText
		}
	case "binary":
		c.conv, c.width = convBinary, ic.OctetLen
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		c.conv = convBytes
	case "enum":
		c.conv = convEnum
	case "set":
		c.conv = convSet
	case "json":
		c.conv = convJSON
	case "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
		"multipolygon", "geometrycollection", "geomcollection":
		c.conv = convGeometry
	case "uuid":
		c.conv, c.width = convUUID, 16
	case "inet4":
		c.conv, c.width = convInet4, 4
	case "inet6":
		c.conv, c.width = convInet6, 16
	default:
		return column{}, unsupported(table, ic.Name, ic.ColumnType)
	}
	if c.conv == convString || c.conv == convEnum || c.conv == convSet || c.conv == convJSONText {
		if c.text = decoderFor(ic.Charset); c.text == nil {
			return column{}, unsupported(table, ic.Name, ic.ColumnType+" CHARACTER SET "+ic.Charset)
		}
	}
	c.Type = typeOf(c.conv, prec, scale)
	if c.conv.temporal() {
		c.Nullable = true
	}
	if lit, ok := defaultLiteral(ic); ok {
		c.Default = defaultValue(c, lit)
	}
	return c, nil
}

// realType returns a binlog column's type and, for MYSQL_TYPE_STRING, the
// real type (STRING, ENUM or SET) and byte length packed into its metadata.
// It follows go-mysql's RowsEvent.decodeValue.
func realType(tp byte, meta uint16) (byte, int) {
	if tp != gomysql.MYSQL_TYPE_STRING {
		return tp, 0
	}
	if meta < 256 {
		return tp, int(meta)
	}
	b0, b1 := uint8(meta>>8), uint8(meta&0xFF)
	if b0&0x30 != 0x30 {
		return b0 | 0x30, int(uint16(b1) | uint16((b0&0x30)^0x30)<<4)
	}
	return b0, int(b1)
}

// errNoColumnNames is returned for a TABLE_MAP event without column names:
// the server does not log FULL row metadata.
var errNoColumnNames = errors.New("the binlog's table map has no column names (binlog_row_metadata is not FULL)")

// tableMeta is what the binlog's TABLE_MAP event says about a table,
// together with the collation names of the server.
type tableMeta struct {
	ev         *replication.TableMapEvent
	collations map[uint64]string // collation id -> character set
	// keyColumns key a table without a primary key (Config.KeyColumns).
	keyColumns []string
	// published says which columns are decoded
	// (Config.PublishedColumns).
	published connectors.ColumnFilter
}

// columnsFromTableMap describes a table from its TABLE_MAP event alone:
// types, signedness, character sets, ENUM and SET values, nullability and
// the primary key all come from the binlog, never from today's schema.
// info, today's information_schema columns by name, only supplies SQLType
// (and MariaDB's JSON) for a column whose type it agrees with.
func columnsFromTableMap(m tableMeta, info map[string]infoColumn) ([]column, []int, error) {
	ev := m.ev
	table := string(ev.Schema) + "." + string(ev.Table)
	names := ev.ColumnNameString()
	if len(names) != int(ev.ColumnCount) {
		return nil, nil, errNoColumnNames
	}
	unsigned := ev.UnsignedMap()
	collation := ev.CollationMap()
	enumSetCollation := ev.EnumSetCollationMap()
	enums := ev.EnumStrValueMap()
	sets := ev.SetStrValueMap()
	primaryKey := ev.PrimaryKey
	if len(primaryKey) == 0 {
		if len(m.keyColumns) == 0 {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoPrimaryKey, table)
		}
		primaryKey = make([]uint64, 0, len(m.keyColumns))
		for _, k := range m.keyColumns {
			i := slices.Index(names, k)
			if i < 0 {
				return nil, nil, fmt.Errorf("%w: %s: key column %s (mapping.%s.key) is not in the binlog's table map", ErrNoPrimaryKey, table, k, table)
			}
			primaryKey = append(primaryKey, uint64(i))
		}
	}
	cols := make([]column, ev.ColumnCount)
	for i := range cols {
		if m.published.Skips(names[i]) && !slices.Contains(primaryKey, uint64(i)) {
			cols[i] = skippedColumn(names[i], info[names[i]].ColumnType)
			continue
		}
		c, err := columnFromTableMap(m, table, i, names[i], unsigned[i], collation, enumSetCollation, enums[i], sets[i])
		if err != nil {
			return nil, nil, err
		}
		if _, nullable := ev.Nullable(i); nullable || c.conv.temporal() {
			c.Nullable = true
		}
		if ic, ok := info[c.Name]; ok {
			if ci, err := columnFromInfo(table, ic); err == nil {
				switch {
				case ci.conv == c.conv && ci.Type.Kind == c.Type.Kind && ci.Type.Precision == c.Type.Precision && ci.Type.Scale == c.Type.Scale:
					c.SQLType, c.Default = ci.SQLType, ci.Default
				case ci.conv == convJSONText && c.conv == convString && c.text.charset == ci.text.charset:
					c.conv, c.Type, c.SQLType, c.Default = convJSONText, ci.Type, ci.SQLType, ci.Default
				case ci.conv.native() && c.conv == convBinary && c.width == ci.width:
					// MariaDB's UUID, INET4 and INET6 are BINARY(n) in the
					// binlog (the value in network byte order) but text in
					// a SELECT.
					c.conv, c.Type, c.SQLType, c.Default = ci.conv, ci.Type, ci.SQLType, ci.Default
				}
			}
		}
		cols[i] = c
	}
	key := make([]int, len(primaryKey))
	for i, k := range primaryKey {
		if int(k) >= len(cols) {
			return nil, nil, fmt.Errorf("table map of %s: key column %d of %d", table, k, len(cols))
		}
		key[i] = int(k)
		cols[k].Nullable = false
	}
	return cols, key, nil
}

func columnFromTableMap(m tableMeta, table string, i int, name string, unsigned bool,
	collation, enumSetCollation map[int]uint64, enumLabels, setLabels []string,
) (column, error) {
	ev := m.ev
	tp, length := realType(ev.ColumnType[i], ev.ColumnMeta[i])
	meta := ev.ColumnMeta[i]
	c := column{Column: connectors.Column{Name: name}}
	var prec, scale int
	charset := ""
	if id, ok := collation[i]; ok {
		charset = m.collations[id]
		if charset == "" {
			return column{}, unsupported(table, name, fmt.Sprintf("a column of unknown collation %d", id))
		}
	}
	sign := func(s string) string {
		if unsigned {
			return s + " unsigned"
		}
		return s
	}
	switch tp {
	case gomysql.MYSQL_TYPE_TINY:
		c.conv, c.SQLType = convInt32, sign("tinyint")
	case gomysql.MYSQL_TYPE_SHORT:
		c.conv, c.SQLType = convInt32, sign("smallint")
	case gomysql.MYSQL_TYPE_INT24:
		c.conv, c.SQLType = convInt32, sign("mediumint")
	case gomysql.MYSQL_TYPE_LONG:
		c.conv, c.SQLType = convInt32, sign("int")
		if unsigned {
			c.conv = convInt64
		}
	case gomysql.MYSQL_TYPE_LONGLONG:
		c.conv, c.SQLType = convInt64, sign("bigint")
		if unsigned {
			c.conv = convUint64
		}
	case gomysql.MYSQL_TYPE_YEAR:
		c.conv, c.SQLType = convInt32, "year"
	case gomysql.MYSQL_TYPE_NEWDECIMAL:
		prec, scale = int(meta>>8), int(meta&0xFF)
		c.conv, c.SQLType = convDecimal, sign(fmt.Sprintf("decimal(%d,%d)", prec, scale))
	case gomysql.MYSQL_TYPE_FLOAT:
		c.conv, c.SQLType = convFloat32, sign("float")
	case gomysql.MYSQL_TYPE_DOUBLE:
		c.conv, c.SQLType = convFloat64, sign("double")
	case gomysql.MYSQL_TYPE_BIT:
		c.width = int(meta>>8)*8 + int(meta&0xFF)
		c.conv, c.SQLType = convBits, fmt.Sprintf("bit(%d)", c.width)
		if c.width == 1 {
			c.conv = convBool
		}
	case gomysql.MYSQL_TYPE_DATE:
		c.conv, c.SQLType = convDate, "date"
	case gomysql.MYSQL_TYPE_TIME, gomysql.MYSQL_TYPE_TIME2:
		c.conv, c.SQLType = convTime, withFsp("time", tp == gomysql.MYSQL_TYPE_TIME2, meta)
	case gomysql.MYSQL_TYPE_DATETIME, gomysql.MYSQL_TYPE_DATETIME2:
		c.conv, c.SQLType = convDatetime, withFsp("datetime", tp == gomysql.MYSQL_TYPE_DATETIME2, meta)
	case gomysql.MYSQL_TYPE_TIMESTAMP, gomysql.MYSQL_TYPE_TIMESTAMP2:
		c.conv, c.SQLType = convTimestamp, withFsp("timestamp", tp == gomysql.MYSQL_TYPE_TIMESTAMP2, meta)
	case gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING:
		c.conv, c.SQLType = convString, "varchar"
		if charset == binaryCharset {
			c.conv, c.SQLType = convBytes, fmt.Sprintf("varbinary(%d)", meta)
		}
	case gomysql.MYSQL_TYPE_STRING:
		c.conv, c.SQLType = convString, "char"
		if charset == binaryCharset {
			c.conv, c.width, c.SQLType = convBinary, length, fmt.Sprintf("binary(%d)", length)
		}
	case gomysql.MYSQL_TYPE_ENUM:
		c.conv, c.SQLType = convEnum, "enum"
		charset = m.collations[enumSetCollation[i]]
		c.labels = enumLabels
	case gomysql.MYSQL_TYPE_SET:
		c.conv, c.SQLType = convSet, "set"
		charset = m.collations[enumSetCollation[i]]
		c.labels = setLabels
	case gomysql.MYSQL_TYPE_BLOB:
		kinds := [...]string{"", "tiny", "", "medium", "long"}
		prefix := ""
		if int(meta) < len(kinds) {
			prefix = kinds[meta]
		}
		c.conv, c.SQLType = convString, prefix+"text"
		if charset == binaryCharset {
			c.conv, c.SQLType = convBytes, prefix+"blob"
		}
	case gomysql.MYSQL_TYPE_JSON:
		c.conv, c.SQLType = convJSON, "json"
	case gomysql.MYSQL_TYPE_GEOMETRY:
		c.conv, c.SQLType = convGeometry, "geometry"
	default:
		return column{}, unsupported(table, name, fmt.Sprintf("binlog type %d", tp))
	}
	if c.conv == convString || c.conv == convEnum || c.conv == convSet {
		if c.text = decoderFor(charset); c.text == nil {
			return column{}, unsupported(table, name, c.SQLType+" CHARACTER SET "+charset)
		}
		if c.conv != convString {
			// The labels are in the column's character set.
			if c.labels == nil {
				return column{}, errNoColumnNames
			}
			utf := make([]string, len(c.labels))
			quoted := make([]string, len(c.labels))
			for j, l := range c.labels {
				utf[j] = c.text.decode([]byte(l))
				quoted[j] = "'" + strings.ReplaceAll(utf[j], "'", "''") + "'"
			}
			c.labels = utf
			c.SQLType += "(" + strings.Join(quoted, ",") + ")"
		}
	}
	c.Type = typeOf(c.conv, prec, scale)
	return c, nil
}

// withFsp spells a temporal type with its fractional-second precision,
// which only the TIME2/DATETIME2/TIMESTAMP2 encodings record.
func withFsp(name string, v2 bool, meta uint16) string {
	if v2 && meta > 0 {
		return name + "(" + strconv.Itoa(int(meta)) + ")"
	}
	return name
}
