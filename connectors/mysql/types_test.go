package mysql

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// render prints columns one per line, with everything that decides their
// values.
func render(cols []column, key []int) string {
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "%-6s %-32s %-15s", c.Name, c.SQLType, typeString(c.Type))
		if c.Nullable {
			b.WriteString(" null")
		} else {
			b.WriteString(" not-null")
		}
		fmt.Fprintf(&b, " conv=%s", c.conv)
		if c.text != nil {
			fmt.Fprintf(&b, " charset=%s", c.text.charset)
		}
		if c.width != 0 {
			fmt.Fprintf(&b, " width=%d", c.width)
		}
		if c.labels != nil {
			fmt.Fprintf(&b, " labels=%q", c.labels)
		}
		b.WriteByte('\n')
	}
	if key != nil {
		fmt.Fprintf(&b, "key %v\n", key)
	}
	return b.String()
}

func typeString(t connectors.Type) string {
	switch t.Kind {
	case connectors.KindDecimal:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision, t.Scale)
	case connectors.KindArray:
		return "array<" + typeString(*t.Elem) + ">"
	}
	return t.Kind.String()
}

// testCollations stand for information_schema.COLLATIONS.
var testCollations = map[uint64]string{
	8: "latin1", 11: "ascii", 33: "utf8mb3", 45: "utf8mb4", 46: "utf8mb4", 63: "binary",
	28: "gbk", 54: "utf16", 10: "swe7",
}

// tmCol is one column of a synthetic TABLE_MAP event.
type tmCol struct {
	name      string
	tp        byte
	meta      uint16
	unsigned  bool
	nullable  bool
	collation uint64
	values    []string // ENUM or SET values
}

// tableMap builds the TABLE_MAP event a server with
// binlog_row_metadata=FULL writes for cols.
func tableMap(cols []tmCol, key ...uint64) *replication.TableMapEvent {
	ev := &replication.TableMapEvent{
		Schema: []byte("shop"), Table: []byte("things"), ColumnCount: uint64(len(cols)),
		NullBitmap: make([]byte, (len(cols)+7)/8), PrimaryKey: key,
	}
	var signed []bool
	for i, c := range cols {
		ev.ColumnType = append(ev.ColumnType, c.tp)
		ev.ColumnMeta = append(ev.ColumnMeta, c.meta)
		ev.ColumnName = append(ev.ColumnName, []byte(c.name))
		if c.nullable {
			ev.NullBitmap[i/8] |= 1 << (i % 8)
		}
		tp, _ := realType(c.tp, c.meta)
		switch tp {
		case gomysql.MYSQL_TYPE_TINY, gomysql.MYSQL_TYPE_SHORT, gomysql.MYSQL_TYPE_INT24, gomysql.MYSQL_TYPE_LONG,
			gomysql.MYSQL_TYPE_LONGLONG, gomysql.MYSQL_TYPE_NEWDECIMAL, gomysql.MYSQL_TYPE_FLOAT,
			gomysql.MYSQL_TYPE_DOUBLE, gomysql.MYSQL_TYPE_YEAR:
			signed = append(signed, c.unsigned)
		case gomysql.MYSQL_TYPE_STRING, gomysql.MYSQL_TYPE_VARCHAR, gomysql.MYSQL_TYPE_VAR_STRING, gomysql.MYSQL_TYPE_BLOB:
			ev.ColumnCharset = append(ev.ColumnCharset, c.collation)
		case gomysql.MYSQL_TYPE_ENUM, gomysql.MYSQL_TYPE_SET:
			ev.EnumSetColumnCharset = append(ev.EnumSetColumnCharset, c.collation)
			var vals [][]byte
			for _, v := range c.values {
				vals = append(vals, []byte(v))
			}
			if tp == gomysql.MYSQL_TYPE_ENUM {
				ev.EnumStrValue = append(ev.EnumStrValue, vals)
			} else {
				ev.SetStrValue = append(ev.SetStrValue, vals)
			}
		}
	}
	ev.SignednessBitmap = make([]byte, (len(signed)+7)/8)
	for i, u := range signed {
		if u {
			ev.SignednessBitmap[i/8] |= 0x80 >> (i % 8)
		}
	}
	return ev
}

// stringMeta is the metadata of a MYSQL_TYPE_STRING column of real type tp
// and byte length n, as the server packs it.
func stringMeta(tp byte, n int) uint16 {
	return uint16(tp^byte((n&0x300)>>4))<<8 | uint16(n&0xFF)
}

// everyBinlogType has a column of each type the binlog carries.
var everyBinlogType = []tmCol{
	{name: "id", tp: gomysql.MYSQL_TYPE_LONG},
	{name: "ti", tp: gomysql.MYSQL_TYPE_TINY, nullable: true},
	{name: "tiu", tp: gomysql.MYSQL_TYPE_TINY, unsigned: true, nullable: true},
	{name: "si", tp: gomysql.MYSQL_TYPE_SHORT, nullable: true},
	{name: "mi", tp: gomysql.MYSQL_TYPE_INT24, unsigned: true, nullable: true},
	{name: "iu", tp: gomysql.MYSQL_TYPE_LONG, unsigned: true, nullable: true},
	{name: "bi", tp: gomysql.MYSQL_TYPE_LONGLONG, nullable: true},
	{name: "biu", tp: gomysql.MYSQL_TYPE_LONGLONG, unsigned: true, nullable: true},
	{name: "dec", tp: gomysql.MYSQL_TYPE_NEWDECIMAL, meta: 10<<8 | 2, nullable: true},
	{name: "decu", tp: gomysql.MYSQL_TYPE_NEWDECIMAL, meta: 65<<8 | 30, unsigned: true, nullable: true},
	{name: "f", tp: gomysql.MYSQL_TYPE_FLOAT, meta: 4, nullable: true},
	{name: "d", tp: gomysql.MYSQL_TYPE_DOUBLE, meta: 8, nullable: true},
	{name: "b1", tp: gomysql.MYSQL_TYPE_BIT, meta: 1, nullable: true},
	{name: "b10", tp: gomysql.MYSQL_TYPE_BIT, meta: 1<<8 | 2, nullable: true},
	{name: "y", tp: gomysql.MYSQL_TYPE_YEAR, nullable: true},
	{name: "dt", tp: gomysql.MYSQL_TYPE_DATE},
	{name: "tm", tp: gomysql.MYSQL_TYPE_TIME2, meta: 6, nullable: true},
	{name: "tm0", tp: gomysql.MYSQL_TYPE_TIME, nullable: true},
	{name: "dtm", tp: gomysql.MYSQL_TYPE_DATETIME2, nullable: true},
	{name: "dtm3", tp: gomysql.MYSQL_TYPE_DATETIME2, meta: 3, nullable: true},
	{name: "ts", tp: gomysql.MYSQL_TYPE_TIMESTAMP2, meta: 6},
	{name: "c", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 20), collation: 45, nullable: true},
	{name: "c100", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 400), collation: 45, nullable: true},
	{name: "bin", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 16), collation: 63, nullable: true},
	{name: "vc", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 200, collation: 46, nullable: true},
	{name: "l1", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 20, collation: 8, nullable: true},
	{name: "a1", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 20, collation: 11, nullable: true},
	{name: "u3", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 60, collation: 33, nullable: true},
	{name: "gb", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 40, collation: 28, nullable: true},
	{name: "u16", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 80, collation: 54, nullable: true},
	{name: "vb", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 10, collation: 63, nullable: true},
	{name: "tt", tp: gomysql.MYSQL_TYPE_BLOB, meta: 1, collation: 45, nullable: true},
	{name: "t", tp: gomysql.MYSQL_TYPE_BLOB, meta: 2, collation: 45, nullable: true},
	{name: "lt", tp: gomysql.MYSQL_TYPE_BLOB, meta: 4, collation: 45, nullable: true},
	{name: "mb", tp: gomysql.MYSQL_TYPE_BLOB, meta: 3, collation: 63, nullable: true},
	{name: "e", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_ENUM, 1), collation: 8, nullable: true, values: []string{"a", "caf\xe9", "it's"}},
	{name: "s", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_SET, 1), collation: 45, nullable: true, values: []string{"x", "y"}},
	{name: "j", tp: gomysql.MYSQL_TYPE_JSON, meta: 4, nullable: true},
	{name: "g", tp: gomysql.MYSQL_TYPE_GEOMETRY, meta: 4, nullable: true},
}

func TestColumnsFromTableMapMatchGolden(t *testing.T) {
	cols, key, err := columnsFromTableMap(tableMeta{ev: tableMap(everyBinlogType, 0), collations: testCollations}, nil)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "tablemap.golden", render(cols, key))
}

func TestColumnsFromTableMapTakeSpellingsFromAgreeingSchema(t *testing.T) {
	ev := tableMap([]tmCol{
		{name: "id", tp: gomysql.MYSQL_TYPE_LONG},
		{name: "k", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 40, collation: 45},
		{name: "j", tp: gomysql.MYSQL_TYPE_BLOB, meta: 4, collation: 46, nullable: true},
		{name: "was", tp: gomysql.MYSQL_TYPE_LONG, nullable: true},
		{name: "gone", tp: gomysql.MYSQL_TYPE_LONGLONG, nullable: true},
		{name: "u", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 16), collation: 63},
		{name: "ip4", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 4), collation: 63, nullable: true},
		{name: "ip6", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 16), collation: 63, nullable: true},
		{name: "was16", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 4), collation: 63, nullable: true},
	}, 1, 0)
	info := map[string]infoColumn{
		"u":     {Name: "u", DataType: "uuid", ColumnType: "uuid"},
		"ip4":   {Name: "ip4", DataType: "inet4", ColumnType: "inet4", Nullable: true},
		"ip6":   {Name: "ip6", DataType: "inet6", ColumnType: "inet6", Nullable: true},
		"was16": {Name: "was16", DataType: "inet6", ColumnType: "inet6", Nullable: true},
		"id":    {Name: "id", DataType: "int", ColumnType: "int(11)"},
		"k":     {Name: "k", DataType: "varchar", ColumnType: "varchar(10)", Charset: "utf8mb4"},
		"j":     {Name: "j", DataType: "longtext", ColumnType: "longtext", Charset: "utf8mb4", Nullable: true, JSON: true},
		"was":   {Name: "was", DataType: "varchar", ColumnType: "varchar(5)", Charset: "utf8mb4", Nullable: true},
	}
	cols, key, err := columnsFromTableMap(tableMeta{ev: ev, collations: testCollations}, info)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "tablemap_info.golden", render(cols, key))
}

func TestColumnsFromTableMapRefuse(t *testing.T) {
	tests := []struct {
		name string
		ev   *replication.TableMapEvent
		info map[string]infoColumn
		want error
		msg  string
	}{
		{
			name: "a table map without column names",
			ev: func() *replication.TableMapEvent {
				ev := tableMap([]tmCol{{name: "id", tp: gomysql.MYSQL_TYPE_LONG}}, 0)
				ev.ColumnName = nil
				return ev
			}(),
			want: errNoColumnNames,
		},
		{
			name: "a table without a primary key",
			ev:   tableMap([]tmCol{{name: "id", tp: gomysql.MYSQL_TYPE_LONG}}),
			want: ErrNoPrimaryKey,
			msg:  "shop.things",
		},
		{
			name: "a type liberator does not carry",
			ev:   tableMap([]tmCol{{name: "id", tp: gomysql.MYSQL_TYPE_LONG}, {name: "v", tp: gomysql.MYSQL_TYPE_VECTOR, meta: 4}}, 0),
			want: connectors.ErrUnsupportedType,
			msg:  "shop.things.v is binlog type 242",
		},
		{
			name: "a character set liberator cannot read",
			ev:   tableMap([]tmCol{{name: "id", tp: gomysql.MYSQL_TYPE_LONG}, {name: "s", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 10, collation: 10}}, 0),
			want: connectors.ErrUnsupportedType,
			msg:  "shop.things.s is varchar CHARACTER SET swe7",
		},
		{
			name: "a collation the server did not list",
			ev:   tableMap([]tmCol{{name: "id", tp: gomysql.MYSQL_TYPE_LONG}, {name: "s", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 10, collation: 999}}, 0),
			want: connectors.ErrUnsupportedType,
			msg:  "unknown collation 999",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := columnsFromTableMap(tableMeta{ev: tt.ev, collations: testCollations}, tt.info)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v is not %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// everyInfoType has a column of each information_schema DATA_TYPE.
var everyInfoType = []infoColumn{
	{Name: "id", DataType: "int", ColumnType: "int(11)"},
	{Name: "ti", DataType: "tinyint", ColumnType: "tinyint(4)", Nullable: true},
	{Name: "tiu", DataType: "tinyint", ColumnType: "tinyint(3) unsigned", Nullable: true},
	{Name: "si", DataType: "smallint", ColumnType: "smallint(6)", Nullable: true},
	{Name: "mi", DataType: "mediumint", ColumnType: "mediumint(8) unsigned", Nullable: true},
	{Name: "iu", DataType: "int", ColumnType: "int(10) unsigned", Nullable: true},
	{Name: "bi", DataType: "bigint", ColumnType: "bigint(20)", Nullable: true},
	{Name: "biu", DataType: "bigint", ColumnType: "bigint(20) unsigned", Nullable: true},
	{Name: "dec", DataType: "decimal", ColumnType: "decimal(10,2)", Precision: 10, Scale: 2, Nullable: true},
	{Name: "f", DataType: "float", ColumnType: "float", Nullable: true},
	{Name: "d", DataType: "double", ColumnType: "double", Nullable: true},
	{Name: "b1", DataType: "bit", ColumnType: "bit(1)", Precision: 1, Nullable: true},
	{Name: "b10", DataType: "bit", ColumnType: "bit(10)", Precision: 10, Nullable: true},
	{Name: "y", DataType: "year", ColumnType: "year(4)", Nullable: true},
	{Name: "dt", DataType: "date", ColumnType: "date"},
	{Name: "dtm", DataType: "datetime", ColumnType: "datetime(3)", Nullable: true},
	{Name: "ts", DataType: "timestamp", ColumnType: "timestamp(6)"},
	{Name: "tm", DataType: "time", ColumnType: "time", Nullable: true},
	{Name: "c", DataType: "char", ColumnType: "char(5)", Charset: "utf8mb4", Nullable: true},
	{Name: "cb", DataType: "char", ColumnType: "char(3)", Charset: "binary", OctetLen: 3, Nullable: true},
	{Name: "vc", DataType: "varchar", ColumnType: "varchar(50)", Charset: "latin1", Nullable: true},
	{Name: "t", DataType: "mediumtext", ColumnType: "mediumtext", Charset: "utf8mb3", Nullable: true},
	{Name: "j", DataType: "longtext", ColumnType: "longtext", Charset: "utf8mb4", JSON: true, Nullable: true},
	{Name: "mj", DataType: "json", ColumnType: "json", Nullable: true},
	{Name: "bin", DataType: "binary", ColumnType: "binary(4)", OctetLen: 4, Nullable: true},
	{Name: "vb", DataType: "varbinary", ColumnType: "varbinary(10)", Nullable: true},
	{Name: "bl", DataType: "longblob", ColumnType: "longblob", Nullable: true},
	{Name: "e", DataType: "enum", ColumnType: "enum('a','b')", Charset: "utf8mb4", Nullable: true},
	{Name: "s", DataType: "set", ColumnType: "set('x','y')", Charset: "ascii", Nullable: true},
	{Name: "g", DataType: "point", ColumnType: "point", Nullable: true},
	{Name: "u", DataType: "uuid", ColumnType: "uuid", Nullable: true},
	{Name: "ip4", DataType: "inet4", ColumnType: "inet4", Nullable: true},
	{Name: "ip6", DataType: "inet6", ColumnType: "inet6"},
}

func TestTableFromInformationSchemaMatchesGolden(t *testing.T) {
	ts := tableSchema{name: tableName{"shop", "things"}, columns: everyInfoType, key: []string{"dt", "id"}}
	table, cols, err := ts.describe()
	if err != nil {
		t.Fatal(err)
	}
	for i := range cols {
		if diff := cmp.Diff(cols[i].Column, table.Columns[i]); diff != "" {
			t.Errorf("column %d of the table differs from its description (-want +got):\n%s", i, diff)
		}
	}
	golden(t, "information_schema.golden", render(cols, table.Key))
}

func TestTableFromInformationSchemaNamesEveryUnsupportedColumn(t *testing.T) {
	ts := tableSchema{name: tableName{"shop", "things"}, key: []string{"id"}, columns: []infoColumn{
		{Name: "id", DataType: "int", ColumnType: "int(11)"},
		{Name: "v", DataType: "vector", ColumnType: "vector(3)"},
		{Name: "x", DataType: "xml", ColumnType: "xml"},
		{Name: "s", DataType: "varchar", ColumnType: "varchar(3)", Charset: "dec8"},
	}}
	_, _, err := ts.describe()
	if !errors.Is(err, connectors.ErrUnsupportedType) {
		t.Fatalf("error %v is not ErrUnsupportedType", err)
	}
	for _, want := range []string{"shop.things.v is vector(3)", "shop.things.x is xml", "shop.things.s is varchar(3) CHARACTER SET dec8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestSameTableMapSeesEveryDifference(t *testing.T) {
	base := func() *replication.TableMapEvent { return tableMap(everyBinlogType, 0) }
	if !sameTableMap(base(), base()) {
		t.Fatal("a table map differs from its copy")
	}
	changes := map[string]func(*replication.TableMapEvent){
		"table id":    func(e *replication.TableMapEvent) { e.TableID++ },
		"column type": func(e *replication.TableMapEvent) { e.ColumnType[1] = gomysql.MYSQL_TYPE_SHORT },
		"metadata":    func(e *replication.TableMapEvent) { e.ColumnMeta[8] = 12<<8 | 2 },
		"nullability": func(e *replication.TableMapEvent) { e.NullBitmap[0] ^= 1 },
		"signedness":  func(e *replication.TableMapEvent) { e.SignednessBitmap[0] ^= 0x80 },
		"a name":      func(e *replication.TableMapEvent) { e.ColumnName[2] = []byte("other") },
		"a charset":   func(e *replication.TableMapEvent) { e.ColumnCharset[0] = 8 },
		"enum values": func(e *replication.TableMapEvent) { e.EnumStrValue[0] = append(e.EnumStrValue[0], []byte("new")) },
		"set values":  func(e *replication.TableMapEvent) { e.SetStrValue[0][1] = []byte("z") },
		"the key":     func(e *replication.TableMapEvent) { e.PrimaryKey = []uint64{0, 1} },
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			e := base()
			change(e)
			if sameTableMap(base(), e) {
				t.Errorf("a change of %s goes unseen", name)
			}
		})
	}
}

// TestColumnsNotPublishedAreNotDecoded leaves out columns of types that
// liberator refuses: the table is described all the same, from the binlog
// and from information_schema, their values are nil, and the snapshot does
// not read them. A key column is decoded even when the filter leaves it
// out.
func TestColumnsNotPublishedAreNotDecoded(t *testing.T) {
	filter := connectors.ColumnFilter{Exclude: []string{"id", "v", "s", "u"}}
	ev := tableMap([]tmCol{
		{name: "id", tp: gomysql.MYSQL_TYPE_LONG},
		{name: "v", tp: gomysql.MYSQL_TYPE_VECTOR, meta: 4},
		{name: "s", tp: gomysql.MYSQL_TYPE_VARCHAR, meta: 10, collation: 10, nullable: true},
		{name: "u", tp: gomysql.MYSQL_TYPE_STRING, meta: stringMeta(gomysql.MYSQL_TYPE_STRING, 16), collation: 63, nullable: true},
		{name: "n", tp: gomysql.MYSQL_TYPE_LONG, nullable: true},
	}, 0)
	info := map[string]infoColumn{
		"s": {Name: "s", DataType: "varchar", ColumnType: "varchar(10)", Charset: "swe7", Nullable: true},
		"u": {Name: "u", DataType: "uuid", ColumnType: "uuid", Nullable: true},
	}
	cols, key, err := columnsFromTableMap(tableMeta{ev: ev, collations: testCollations, published: filter}, info)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{0}, key); d != "" {
		t.Errorf("key (-want +got):\n%s", d)
	}
	var convs []string
	for _, c := range cols {
		convs = append(convs, c.conv.String()+" "+c.SQLType)
	}
	if d := cmp.Diff([]string{"int32 int", "skip ", "skip varchar(10)", "skip uuid", "int32 int"}, convs); d != "" {
		t.Errorf("conversions (-want +got):\n%s", d)
	}
	row, err := rowFromBinlog(cols, []any{int32(1), []byte{1, 2, 3, 4}, "\x7b", []byte("0123456789abcdef"), int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{int32(1), nil, nil, nil, int32(5)}, row); d != "" {
		t.Errorf("binlog row (-want +got):\n%s", d)
	}

	ts := tableSchema{name: tableName{"shop", "things"}, key: []string{"id"}, published: filter, columns: []infoColumn{
		{Name: "id", DataType: "int", ColumnType: "int(11)"},
		{Name: "u", DataType: "uuid", ColumnType: "uuid", Nullable: true},
		{Name: "s", DataType: "varchar", ColumnType: "varchar(10)", Charset: "swe7", Nullable: true},
		{Name: "n", DataType: "int", ColumnType: "int(11)", Nullable: true},
	}}
	table, scols, err := ts.describe()
	if err != nil {
		t.Fatal(err)
	}
	snap := text("x")
	if v, err := scols[1].fromSnapshot(&snap); err != nil || v != nil {
		t.Errorf("a column that is not decoded gave %v, %v from a snapshot, want nil", v, err)
	}
	k, err := newKeyset(ts.name, table, scols, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "`id`, NULL, NULL, `n`"; k.columns != want {
		t.Errorf("snapshot select list = %s, want %s", k.columns, want)
	}
}
