package postgres

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/internal/harness"
)

func TestBinaryValuesDecodeAsTheirTextDoes(t *testing.T) {
	pg := harness.Postgres(t)
	dsn, err := pg.CreateDatabase("bin")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(context.Background())

	types := []struct {
		sql  string
		oid  uint32
		kind connectors.Kind
		vals []string
	}{
		{"boolean", pgtype.BoolOID, connectors.KindBool, []string{"true", "false"}},
		{"smallint", pgtype.Int2OID, connectors.KindInt32, []string{"0", "-32768", "32767", "255", "256"}},
		{"integer", pgtype.Int4OID, connectors.KindInt32, []string{"0", "-2147483648", "2147483647", "-1", "70000"}},
		{"bigint", pgtype.Int8OID, connectors.KindInt64, []string{"0", "-9223372036854775808", "9223372036854775807", "255", "123456789012"}},
		{"date", pgtype.DateOID, connectors.KindDate, []string{"2024-02-29", "1970-01-01", "1969-12-31", "2000-01-01", "4713-01-01 BC", "5874897-12-31", "infinity", "-infinity"}},
		{"timestamp", pgtype.TimestampOID, connectors.KindLocalTimestamp, []string{"2024-02-29 13:14:15.123456", "1970-01-01 00:00:00", "1999-12-31 23:59:59.5", "4713-01-01 00:00:00 BC",
			"294247-01-10 04:00:54.775806", "294247-01-10 04:00:54.775807", "294276-12-31 23:59:59.999999", "294276-12-31 23:59:59.5", "294276-12-31 23:59:59", "infinity", "-infinity"}},
		{"timestamptz", pgtype.TimestamptzOID, connectors.KindTimestamp, []string{"2024-02-29 13:14:15.123456+05:30", "1970-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC",
			"294247-01-10 04:00:54.775806+00", "294276-12-31 23:59:59.999999+00", "294276-12-31 23:59:59.000001+00", "infinity", "-infinity"}},
	}
	for _, typ := range types {
		t.Run(typ.sql, func(t *testing.T) {
			require.True(t, binaryResult(typ.oid))
			dec, err := decoderFor(connectors.Type{Kind: typ.kind})
			require.NoError(t, err)
			for _, v := range typ.vals {
				q := "SELECT $1::text::" + typ.sql
				text := conn.PgConn().ExecParams(ctx, q, [][]byte{[]byte(v)}, nil, nil, nil).Read()
				require.NoError(t, text.Err, v)
				bin := conn.PgConn().ExecParams(ctx, q, [][]byte{[]byte(v)}, nil, nil, resultFormats([]uint32{typ.oid})).Read()
				require.NoError(t, bin.Err, v)
				want, err := dec(text.Rows[0][0])
				require.NoError(t, err, v)
				for _, slab := range []*connectors.RowSlab{nil, {}} {
					got, err := decodeBinary(typ.oid, bin.Rows[0][0], slab)
					require.NoError(t, err, v)
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s %s in binary (-text +binary):\n%s", typ.sql, v, diff)
					}
				}
			}
		})
	}
}

func TestBinaryValuesOfTheWrongSizeAreErrors(t *testing.T) {
	for _, oid := range []uint32{pgtype.BoolOID, pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.DateOID, pgtype.TimestampOID, pgtype.TimestamptzOID} {
		_, err := decodeBinary(oid, []byte{1, 2, 3}, nil)
		require.ErrorIs(t, err, errBadText, "type %d", oid)
	}
	_, err := binaryDate(math.MaxInt32-1, nil)
	require.ErrorIs(t, err, errBadText)
}

func TestOnlyBaseTypesAreReadInBinary(t *testing.T) {
	require.Nil(t, resultFormats([]uint32{0, 0}))
	if diff := cmp.Diff([]int16{0, 1, 0}, resultFormats([]uint32{0, pgtype.Int8OID, 0})); diff != "" {
		t.Errorf("formats (-want +got):\n%s", diff)
	}
	for _, oid := range []uint32{pgtype.NumericOID, pgtype.TextOID, pgtype.Float8OID, pgtype.TimeOID, pgtype.UUIDOID, 0} {
		require.False(t, binaryResult(oid), "type %d", oid)
	}
}
