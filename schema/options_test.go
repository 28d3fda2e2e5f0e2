package schema

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

func TestWithFieldNamesRenamesFieldsAndKeepsDocs(t *testing.T) {
	table := shape(intCol, nullText)
	c, err := NewCodec("ns", table, WithFieldNames(map[string]string{"n": "count-of", "id": "key"}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range c.Value.(*avro.RecordSchema).Fields() {
		got = append(got, f.Name()+" ("+f.Doc()+")")
	}
	want := "key (column id, bigint), count_of (column n, integer), note (column note, text)"
	if strings.Join(got, ", ") != want {
		t.Errorf("fields = %s, want %s", strings.Join(got, ", "), want)
	}
	if k := c.Key.(*avro.RecordSchema).Fields()[0].Name(); k != "key" {
		t.Errorf("key field = %s, want key", k)
	}
	_, err = NewCodec("ns", table, WithFieldNames(map[string]string{"n": "note"}))
	if err == nil || !strings.Contains(err.Error(), `columns "n" and "note" both map to the Avro field name "note"`) {
		t.Errorf("a rename onto another column's field: %v, want a collision error", err)
	}
}
