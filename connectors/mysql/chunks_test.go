package mysql

import (
	"errors"
	"strings"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/go-cmp/cmp"

	"github.com/liberator-cdc/liberator/connectors"
)

// chunkColumns are the columns of d.t: region (latin1 text), num (int),
// price (decimal), feeling (enum).
func chunkColumns(key ...int) (*connectors.Table, []column) {
	cols := []column{
		{Column: connectors.Column{Name: "region", SQLType: "varchar(10)"}, conv: convString},
		{Column: connectors.Column{Name: "num", SQLType: "int(11)"}, conv: convInt32},
		{Column: connectors.Column{Name: "price", SQLType: "decimal(12,2)", Type: connectors.Type{Kind: connectors.KindDecimal, Precision: 12, Scale: 2}}, conv: convDecimal},
		{Column: connectors.Column{Name: "feeling", SQLType: "enum('a','b')"}, conv: convEnum},
	}
	t := &connectors.Table{Schema: "d", Name: "t", Key: key}
	for _, c := range cols {
		t.Columns = append(t.Columns, c.Column)
	}
	return t, cols
}

var (
	latin1   = map[string]string{"region": "latin1"}
	swedish  = map[string]string{"region": "latin1_swedish_ci"}
	regionP  = "CONVERT(UNHEX(?) USING latin1) COLLATE latin1_swedish_ci"
	allCols  = "`region`, `num`, `price`, `feeling`"
	fromPart = " FROM `d`.`t`"
)

func TestKeysetQueries(t *testing.T) {
	one, oneCols := chunkColumns(1)
	ks1, err := newKeyset(tableName{"d", "t"}, one, oneCols, latin1, swedish)
	if err != nil {
		t.Fatal(err)
	}
	two, twoCols := chunkColumns(0, 1)
	ks2, err := newKeyset(tableName{"d", "t"}, two, twoCols, latin1, swedish)
	if err != nil {
		t.Fatal(err)
	}
	dec, decCols := chunkColumns(2)
	ksd, err := newKeyset(tableName{"d", "t"}, dec, decCols, latin1, swedish)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		got   query
		sql   string
		order []int
	}{
		{"the first page has no WHERE", ks1.pageQuery(false, 100),
			"SELECT " + allCols + fromPart + " ORDER BY `num` LIMIT 100", nil},
		{"a later page starts after the last key", ks1.pageQuery(true, 100),
			"SELECT " + allCols + fromPart + " WHERE `num` > ? ORDER BY `num` LIMIT 100", []int{0}},
		{"a composite key is written out as ORs, text reinterpreted in its character set and collation", ks2.pageQuery(true, 10),
			"SELECT " + allCols + fromPart + " WHERE (`region` > " + regionP + " OR (`region` = " + regionP + " AND `num` > ?)) ORDER BY `region`, `num` LIMIT 10",
			[]int{0, 0, 1}},
		{"a chunk boundary reads the key of the n-th row", ks2.boundaryQuery(true, 500),
			"SELECT `region`, `num`" + fromPart + " WHERE (`region` > " + regionP + " OR (`region` = " + regionP + " AND `num` > ?)) ORDER BY `region`, `num` LIMIT 499, 1",
			[]int{0, 0, 1}},
		{"a bounded range numbers the upper key after the lower", ks2.rangeQuery(true, true),
			"SELECT " + allCols + fromPart + " WHERE (`region` > " + regionP + " OR (`region` = " + regionP + " AND `num` > ?)) AND (`region` < " + regionP + " OR (`region` = " + regionP + " AND `num` <= ?)) ORDER BY `region`, `num`",
			[]int{0, 0, 1, 2, 2, 3}},
		{"the first range has only the upper key", ks1.rangeQuery(false, true),
			"SELECT " + allCols + fromPart + " WHERE `num` <= ? ORDER BY `num`", []int{1}},
		{"a decimal key compares as DECIMAL", ksd.pageQuery(true, 5),
			"SELECT " + allCols + fromPart + " WHERE `price` > CAST(CONVERT(UNHEX(?) USING ascii) AS DECIMAL(12,2)) ORDER BY `price` LIMIT 5", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.sql != tt.sql {
				t.Errorf("got  %s\nwant %s", tt.got.sql, tt.sql)
			}
			if d := cmp.Diff(tt.order, tt.got.order); d != "" {
				t.Errorf("parameter order (-want +got):\n%s", d)
			}
		})
	}
}

func TestQueryArgsFollowTheParameterOrder(t *testing.T) {
	two, twoCols := chunkColumns(0, 1)
	ks, _ := newKeyset(tableName{"d", "t"}, two, twoCols, latin1, swedish)
	args, err := ks.rangeQuery(true, true).args([]string{"x:7ae9", "i:7"}, []string{"x:7573", "i:-1"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{"7ae9", "7ae9", int64(7), "7573", "7573", int64(-1)}, args); d != "" {
		t.Error(d)
	}
	args, err = ks.rangeQuery(false, true).args(nil, []string{"x:7573", "u:18446744073709551615"})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]any{"7573", "7573", uint64(18446744073709551615)}, args); d != "" {
		t.Errorf("without a lower key (-want +got):\n%s", d)
	}
	if _, err := ks.pageQuery(true, 1).args([]string{"x:zz", "i:1"}, nil); err == nil {
		t.Error("a bad key value was accepted")
	}
}

func TestKeysThatCannotBeChunked(t *testing.T) {
	enum, cols := chunkColumns(3)
	ks, err := newKeyset(tableName{"d", "t"}, enum, cols, latin1, swedish)
	if !errors.Is(err, errNotChunkable) || !strings.Contains(err.Error(), "feeling") {
		t.Errorf("an ENUM key: %v", err)
	}
	if ks.from != "`d`.`t`" || ks.columns != allCols {
		t.Errorf("the keyset of a whole-table read names %q, %q", ks.from, ks.columns)
	}
	str, cols := chunkColumns(0)
	if _, err := newKeyset(tableName{"d", "t"}, str, cols, nil, nil); !errors.Is(err, errNotChunkable) {
		t.Errorf("a text key without its collation: %v", err)
	}
}

func TestKeyValuesRoundTrip(t *testing.T) {
	tests := []struct {
		fv   gomysql.FieldValue
		enc  string
		back any
	}{
		{gomysql.NewFieldValue(gomysql.FieldValueTypeSigned, uint64(1<<63|5), nil), "i:-9223372036854775803", int64(-9223372036854775803)},
		{gomysql.NewFieldValue(gomysql.FieldValueTypeUnsigned, 18446744073709551615, nil), "u:18446744073709551615", uint64(18446744073709551615)},
		{gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, []byte("z\xe9")), "x:7ae9", "7ae9"},
		{gomysql.NewFieldValue(gomysql.FieldValueTypeString, 0, []byte{}), "x:", ""},
	}
	for _, tt := range tests {
		enc, err := keyValue(&tt.fv)
		if err != nil || enc != tt.enc {
			t.Errorf("keyValue = %q, %v; want %q", enc, err, tt.enc)
			continue
		}
		back, err := parseKeyValue(enc)
		if err != nil || back != tt.back {
			t.Errorf("parseKeyValue(%q) = %#v, %v; want %#v", enc, back, err, tt.back)
		}
	}
	null := gomysql.NewFieldValue(gomysql.FieldValueTypeNull, 0, nil)
	if _, err := keyValue(&null); err == nil {
		t.Error("a NULL key value was accepted")
	}
}

func FuzzParseKeyValue(f *testing.F) {
	for _, s := range []string{"i:1", "u:2", "x:7ae9", "x:", "q:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseKeyValue(s)
	})
}
