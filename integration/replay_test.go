package integration

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/liberator-cdc/liberator/schema"
)

// rowSet maps a row's canonical key to its canonical column values.
type rowSet map[string]map[string]string

// replayTopic reads a topic from the beginning to its current end as any
// Kafka consumer would, decodes keys and values with the registry, and keeps
// the latest value per key (a tombstone removes the key): what a compacted
// topic stands for.
func replayTopic(ctx context.Context, brokers []string, reg *schema.Registry, topic string) (rowSet, error) {
	// As a read_committed consumer; the markers of transactions
	// (delivery: exactly_once) are kept only to see where the log ends.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	if err := ends.Error(); err != nil {
		return nil, err
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	out := rowSet{}
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := fs.Err0(); err != nil {
			return nil, err
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() {
				continue
			}
			k, err := reg.Decode(ctx, r.Key)
			if err != nil {
				return nil, fmt.Errorf("decode key at offset %d: %w", r.Offset, err)
			}
			key := canon(k)
			if r.Value == nil {
				delete(out, key)
			} else {
				v, err := reg.Decode(ctx, r.Value)
				if err != nil {
					return nil, fmt.Errorf("decode value at offset %d: %w", r.Offset, err)
				}
				rec, ok := v.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("value at offset %d is %T, not a record", r.Offset, v)
				}
				row := map[string]string{}
				for name, fv := range rec {
					row[name] = canon(unwrapUnion(fv))
				}
				out[key] = row
			}
		}
	}
	return out, nil
}

// readTable reads a table through pgx's binary protocol, independently of
// liberator's text decoders, into the same canonical form.
func readTable(ctx context.Context, conn *pgx.Conn, table string, key []string) (rowSet, error) {
	// JSON is compared as PostgreSQL's own text output, which is what
	// liberator carries; everything else is read in binary.
	rows, err := conn.Query(ctx, "SELECT * FROM "+table,
		pgx.QueryResultFormatsByOID{pgtype.JSONOID: pgx.TextFormatCode, pgtype.JSONBOID: pgx.TextFormatCode, pgtype.NumericOID: pgx.TextFormatCode})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := rowSet{}
	fields := rows.FieldDescriptions()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		row := map[string]string{}
		keyRec := map[string]any{}
		for i, f := range fields {
			v := vals[i]
			switch raw := rows.RawValues()[i]; {
			case raw == nil:
			case f.DataTypeOID == pgtype.JSONOID || f.DataTypeOID == pgtype.JSONBOID:
				v = string(raw)
			case f.DataTypeOID == pgtype.NumericOID && f.TypeModifier == -1:
				// numeric without precision travels as its exact text.
				v = string(raw)
			case f.DataTypeOID == pgtype.NumericOID:
				r, ok := new(big.Rat).SetString(string(raw))
				if !ok {
					return nil, fmt.Errorf("numeric %q", raw)
				}
				v = r
			}
			row[f.Name] = canon(v)
			for _, k := range key {
				if k == f.Name {
					keyRec[k] = vals[i]
				}
			}
		}
		out[canon(keyRec)] = row
	}
	return out, rows.Err()
}

// unwrapUnion returns the value of a union that the generic decoder
// returned as {"type name": value}. The only records among liberator's
// field values are geometries, which have two fields, so any map of one
// entry there is such a union.
func unwrapUnion(v any) any {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		for _, inner := range m {
			return inner
		}
	}
	return v
}

// canon renders a value from either side in one form: numbers exactly,
// times as UTC microseconds, bytes as hex, NULL as NULL.
func canon(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case map[string]any:
		// A record, or a union decoded as {"type": value}.
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(k + ":" + canon(unwrapUnion(v[k])))
		}
		return b.String() + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = canon(unwrapUnion(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case int16:
		return strconv.Itoa(int(v))
	case int32:
		return strconv.Itoa(int(v))
	case int64:
		return strconv.FormatInt(v, 10)
	case float32:
		return canonFloat(float64(v), 32)
	case float64:
		return canonFloat(v, 64)
	case *big.Rat:
		return v.RatString()
	case pgtype.Numeric:
		if v.NaN {
			return "NaN"
		}
		r := new(big.Rat).SetInt(v.Int)
		e := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(v.Exp))), nil))
		if v.Exp < 0 {
			r.Quo(r, e)
		} else {
			r.Mul(r, e)
		}
		return r.RatString()
	case string:
		return strconv.Quote(v)
	case []byte:
		return "x" + hex.EncodeToString(v)
	case [16]byte:
		return strconv.Quote(fmt.Sprintf("%x-%x-%x-%x-%x", v[0:4], v[4:6], v[6:8], v[8:10], v[10:16]))
	case time.Time:
		// Seconds and microseconds: UnixMicro would overflow for the
		// dates below every calendar date that stand for MySQL's zero
		// dates.
		return "t" + strconv.FormatInt(v.Unix(), 10) + "." + fmt.Sprintf("%06d", v.Nanosecond()/1000)
	case time.Duration:
		return "us" + strconv.FormatInt(v.Microseconds(), 10)
	case pgtype.Time:
		return "us" + strconv.FormatInt(v.Microseconds, 10)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}

func canonFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

// requireConverges waits until the topic of each PostgreSQL table equals
// the table.
func requireConverges(t *testing.T, ctx context.Context, brokers []string, reg *schema.Registry, conn *pgx.Conn, topicOf func(table string) string, tables map[string][]string, timeout time.Duration) {
	t.Helper()
	read := func(table string) (rowSet, error) { return readTable(ctx, conn, table, tables[table]) }
	requireTopicsEqual(t, ctx, brokers, reg, read, topicOf, keysOf(tables), timeout)
}

func keysOf(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// requireTopicsEqual waits until the replayed topic of each table equals the
// table as read reads it, and fails the test with the differences if that
// does not happen within timeout.
func requireTopicsEqual(t *testing.T, ctx context.Context, brokers []string, reg *schema.Registry, read func(table string) (rowSet, error), topicOf func(table string) string, tables []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var last string
		for _, table := range tables {
			want, err := read(table)
			if err != nil {
				t.Fatalf("read table %s: %v", table, err)
			}
			got, err := replayTopic(ctx, brokers, reg, topicOf(table))
			if err != nil {
				last += fmt.Sprintf("replay %s: %v\n", topicOf(table), err)
				continue
			}
			if d := cmp.Diff(want, got); d != "" {
				last += fmt.Sprintf("table %s differs from its topic (-table +topic):\n%s\n", table, truncate(d, 6000))
			}
		}
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topics did not converge to the tables within %s:\n%s", timeout, last)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "\n..."
	}
	return s
}
