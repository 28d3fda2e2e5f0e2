package schema

import (
	"testing"

	"github.com/hamba/avro/v2"
)

// BenchmarkAppendJSON encodes payloads as the outbox does, one event at a
// time into a reused buffer: the flat payload of the outbox benchmark
// (bench/outbox.go), and a nested one with a decimal, a timestamp, an
// enum default, a union, an array of records and a map.
func BenchmarkAppendJSON(b *testing.B) {
	flat := avro.MustParse(`{"type": "record", "name": "OrderPlaced", "namespace": "bench", "fields": [
  {"name": "order_id", "type": "string"}, {"name": "seq", "type": "long"}, {"name": "note", "type": "string"}]}`)
	for _, bc := range []struct {
		name    string
		schema  avro.Schema
		payload string
	}{
		{"flat", flat, `{"seq": 123456, "note": "e10adc3949ba59abbe56e057f20f883e4a7d1a6c1b0a2e3d8f1c2b3a4d5e6f70", "order_id": "o-456"}`},
		{"nested", avro.MustParse(orderPlaced), `{"order_id": "o-1", "total": "12.30", "placed_at": "2024-05-01T10:00:00.5Z", "note": "gift",
			"lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}], "tags": {"channel": "web"}, "ratio": 0.25}`},
	} {
		payload := []byte(bc.payload)
		if _, err := AppendJSON(nil, bc.schema, payload); err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = AppendJSON(buf[:0], bc.schema, payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
