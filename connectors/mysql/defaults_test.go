package mysql

import (
	"errors"
	"math"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// TestColumnDefaults feeds columnFromInfo the COLUMN_DEFAULT and EXTRA
// values that MariaDB 10.11 prints (copied from a real server) and the
// bare values MySQL prints.
func TestColumnDefaults(t *testing.T) {
	maria := func(dataType, columnType, def string) infoColumn {
		return infoColumn{Name: "c", DataType: dataType, ColumnType: columnType, Nullable: true, Charset: charsetFor(dataType), Default: def, MariaDB: true}
	}
	withPrecision := func(ic infoColumn, p, s int) infoColumn {
		ic.Precision, ic.Scale = p, s
		return ic
	}
	tests := []struct {
		name string
		ic   infoColumn
		want any
	}{
		{"MariaDB: an int", maria("int", "int(11)", "42"), int32(42)},
		{"MariaDB: a negative int", maria("int", "int(11)", "-42"), int32(-42)},
		{"an int default wider than an int is no default, never wrapped", maria("int", "int(11)", "4294967296"), nil},
		{"MariaDB: the largest bigint unsigned", maria("bigint", "bigint(20) unsigned", "18446744073709551615"), "18446744073709551615"},
		{"MariaDB: a decimal", withPrecision(maria("decimal", "decimal(12,2)", "1.50"), 12, 2), "1.50"},
		{"MariaDB: a string with a doubled quote", maria("varchar", "varchar(20)", "'it''s'"), "it's"},
		{"MariaDB: a string with a backslash", maria("varchar", "varchar(20)", `'a\\b'`), `a\b`},
		{"MariaDB: the string NULL", maria("varchar", "varchar(20)", "'NULL'"), "NULL"},
		{"MariaDB: an empty string", maria("varchar", "varchar(5)", "''"), ""},
		{"MariaDB: unicode", maria("varchar", "varchar(10)", "'ü'"), "ü"},
		{"MariaDB: text", maria("text", "text", "'x'"), "x"},
		{"MariaDB: BIT(1)", withPrecision(maria("bit", "bit(1)", "b'1'"), 1, 0), true},
		{"MariaDB: BIT(12)", withPrecision(maria("bit", "bit(12)", "b'101'"), 12, 0), []byte{0, 5}},
		{"MariaDB: a date", maria("date", "date", "'2020-01-02'"), int32(18263)},
		{"MariaDB: a datetime", maria("datetime", "datetime(6)", "'2020-01-02 03:04:05.123456'"), int64(1577934245123456)},
		{"MariaDB: a zero datetime is its value", maria("datetime", "datetime", "'0000-00-00 00:00:00'"), int64(math.MinInt64)},
		{"MariaDB: a zero date is its value", maria("date", "date", "'0000-00-00'"), int32(math.MinInt32)},
		{"MariaDB: a UUID", maria("uuid", "uuid", "'123E4567-E89B-12D3-A456-426655440000'"), "123e4567-e89b-12d3-a456-426655440000"},
		{"MariaDB: an INET4", maria("inet4", "inet4", "'10.0.0.1'"), "10.0.0.1"},
		{"MariaDB: an IPv4-mapped INET6", maria("inet6", "inet6", "'::FFFF:10.0.0.1'"), "::ffff:10.0.0.1"},
		{"MariaDB: an INET6 that is no address is no default", maria("inet6", "inet6", "'x'"), nil},
		{"MariaDB: a timestamp is not carried", maria("timestamp", "timestamp(6)", "'2020-01-01 00:00:00.000000'"), nil},
		{"MariaDB: current_timestamp() is not constant", maria("timestamp", "timestamp", "current_timestamp()"), nil},
		{"MariaDB: a double", maria("double", "double", "1e300"), 1e300},
		{"MariaDB: a float", maria("float", "float", "-1.25"), float32(-1.25)},
		{"MariaDB: an enum", maria("enum", "enum('sad','ok')", "'ok'"), "ok"},
		{"MariaDB: a set", maria("set", "set('a','b','c')", "'a,c'"), []any{"a", "c"}},
		{"MariaDB: a time is not carried", maria("time", "time", "'12:00:00'"), nil},
		{"MariaDB: a year", maria("year", "year(4)", "2020"), int32(2020)},
		{"MariaDB: DEFAULT NULL", maria("int", "int(11)", "NULL"), nil},
		{"MariaDB: no default", func() infoColumn { ic := maria("int", "int(11)", ""); ic.NoDefault = true; return ic }(), nil},
		{"MariaDB: an expression", maria("int", "int(11)", "(1 + 2)"), nil},
		{"MariaDB: a decimal that does not fit", withPrecision(maria("decimal", "decimal(4,2)", "1.555"), 4, 2), nil},
		{"MariaDB: binary strings are not carried", maria("binary", "binary(3)", `'ab\0'`), nil},
		{"MySQL: a bare string", infoColumn{Name: "c", DataType: "varchar", ColumnType: "varchar(20)", Charset: "utf8mb4", Default: "it's"}, "it's"},
		{"MySQL: a bare string that looks quoted", infoColumn{Name: "c", DataType: "varchar", ColumnType: "varchar(20)", Charset: "utf8mb4", Default: "'x'"}, "'x'"},
		{"MySQL: an expression default", infoColumn{Name: "c", DataType: "int", ColumnType: "int", Default: "(1 + 2)", Extra: "DEFAULT_GENERATED"}, nil},
		{"MySQL: CURRENT_TIMESTAMP", infoColumn{Name: "c", DataType: "datetime", ColumnType: "datetime", Default: "CURRENT_TIMESTAMP"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := columnFromInfo("d.t", tt.ic)
			if err != nil {
				t.Fatal(err)
			}
			if !connectors.SameValue(tt.want, c.Default) {
				t.Errorf("default = %#v, want %#v", c.Default, tt.want)
			}
		})
	}
}

func charsetFor(dataType string) string {
	switch dataType {
	case "varchar", "char", "text", "enum", "set":
		return "utf8mb4"
	}
	return ""
}

func TestKeyColumnsKeyATableMapWithoutPrimaryKey(t *testing.T) {
	ev := tableMap([]tmCol{
		{name: "a", tp: gomysql.MYSQL_TYPE_LONG},
		{name: "b", tp: gomysql.MYSQL_TYPE_LONG},
	})
	if _, _, err := columnsFromTableMap(tableMeta{ev: ev, collations: testCollations}, nil); !errors.Is(err, ErrNoPrimaryKey) {
		t.Fatalf("without key columns: %v, want ErrNoPrimaryKey", err)
	}
	cols, key, err := columnsFromTableMap(tableMeta{ev: ev, collations: testCollations, keyColumns: []string{"b"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int{1}, key); d != "" {
		t.Errorf("key (-want +got):\n%s", d)
	}
	if cols[1].Nullable {
		t.Error("the key column is nullable")
	}
	if _, _, err := columnsFromTableMap(tableMeta{ev: ev, collations: testCollations, keyColumns: []string{"nope"}}, nil); !errors.Is(err, ErrNoPrimaryKey) {
		t.Errorf("an unknown key column: %v, want ErrNoPrimaryKey", err)
	}
}

func TestValidateKeyColumns(t *testing.T) {
	cfg := Config{Flavor: FlavorMariaDB, DSN: "mysql://u@h/", Tables: []string{"d.a"}, KeyColumns: map[string][]string{
		"d.a": {"x"}, "d.b": {"y"}, "nodot": {"z"},
	}}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	want := `mapping.d.b.key: d.b is not in source.tables
mapping.nodot.key: "nodot" is not a table name: the database is missing (use database.table; quote a part that holds a dot, a quote or a backtick: ` + "`odd.db`.`odd``table`" + ` or "odd.db"."odd""table"; or write {schema: ..., table: ...})`
	if d := cmp.Diff(want, err.Error()); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
}

// FuzzColumnDefault checks that any COLUMN_DEFAULT text gives nil or a
// value of the column kind's form, without panicking.
func FuzzColumnDefault(f *testing.F) {
	for _, s := range []string{"42", "'it''s'", `'a\\b'`, "b'101'", "NULL", "current_timestamp()", "'2020-01-02'", "1e300", "'a,c'"} {
		f.Add(s, true)
	}
	infos := []infoColumn{
		{DataType: "int", ColumnType: "int"}, {DataType: "bigint", ColumnType: "bigint unsigned"},
		{DataType: "decimal", ColumnType: "decimal(10,2)", Precision: 10, Scale: 2}, {DataType: "varchar", ColumnType: "varchar(9)", Charset: "utf8mb4"},
		{DataType: "bit", ColumnType: "bit(12)", Precision: 12}, {DataType: "date", ColumnType: "date"}, {DataType: "set", ColumnType: "set('a')", Charset: "utf8mb4"},
		{DataType: "double", ColumnType: "double"},
	}
	f.Fuzz(func(t *testing.T, def string, mariadb bool) {
		for _, ic := range infos {
			ic.Name, ic.Default, ic.MariaDB = "c", def, mariadb
			c, err := columnFromInfo("d.t", ic)
			if err != nil {
				t.Fatal(err)
			}
			if c.Default == nil {
				continue
			}
			var ok bool
			switch c.Type.Kind {
			case connectors.KindInt32, connectors.KindDate:
				_, ok = c.Default.(int32)
			case connectors.KindInt64:
				_, ok = c.Default.(int64)
			case connectors.KindDecimal, connectors.KindString:
				_, ok = c.Default.(string)
			case connectors.KindBytes:
				_, ok = c.Default.([]byte)
			case connectors.KindArray:
				_, ok = c.Default.([]any)
			case connectors.KindFloat64:
				_, ok = c.Default.(float64)
			}
			if !ok {
				t.Errorf("default %q of %s = %#v", def, ic.ColumnType, c.Default)
			}
		}
	})
}
