package outbox

import "testing"

// BenchmarkFromRow turns a row of the outbox benchmark (bench/outbox.go)
// into its event, as the pipeline does for each insert.
func BenchmarkFromRow(b *testing.B) {
	rt := New([]Config{Config{Table: "outbox"}.WithDefaults("shop")}, id).Table("public.outbox")
	row := []any{"6f1c0b7e-0000-4000-8000-000000000001", "Order", int64(456), "OrderPlaced",
		`{"seq": 123456, "note": "e10adc3949ba59abbe56e057f20f883e4a7d1a6c1b0a2e3d8f1c2b3a4d5e6f70", "order_id": "o-456"}`, nil}
	if _, err := rt.FromRow(outboxTable, row, validTopic); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.FromRow(outboxTable, row, validTopic); err != nil {
			b.Fatal(err)
		}
	}
}
