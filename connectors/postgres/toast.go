package postgres

// Unchanged TOAST values under the default replica identity are read by
// key once the transaction that left them unchanged is visible (see the
// package doc).

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// fillUnchanged reads the current values of the columns that the tuple
// marked as unchanged TOAST values. It reports false if the row is gone.
func (s *Source) fillUnchanged(ctx context.Context, rel *relation, tup *pglogrepl.TupleData, row []any) (bool, error) {
	if err := s.waitVisible(ctx); err != nil {
		return false, err
	}
	params := make([][]byte, len(rel.table.Key))
	for n, i := range rel.table.Key {
		params[n] = tup.Columns[i].Data
	}
	rr := s.conn.PgConn().ExecParams(ctx, rel.selectByKey, params, nil, nil, nil)
	found := false
	for rr.NextRow() {
		found = true
		for i, col := range tup.Columns {
			if col.DataType != pglogrepl.TupleDataTypeToast {
				continue
			}
			v := rr.Values()[i]
			if v == nil {
				row[i] = nil
				continue
			}
			var err error
			if row[i], err = rel.decoders[i](v); err != nil {
				rr.Close()
				return false, rel.columnError(i, err)
			}
		}
	}
	if _, err := rr.Close(); err != nil {
		return false, connectors.MarkRetryable(fmt.Errorf("read unchanged TOAST values of %s: %w", rel.table.ID(), err))
	}
	return found, nil
}

// waitVisible waits until the transaction being decoded is visible to new
// snapshots. The walsender can decode a commit before the committing backend
// has left the proc array; in that window a query still sees the rows as
// they were before the transaction, and a look-up by the new key of a moved
// row would miss it.
func (s *Source) waitVisible(ctx context.Context) error {
	if s.visibleXid == s.txXid {
		return nil
	}
	wait := time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		var running bool
		// Not yet visible: still in the snapshot's running set, or at or
		// past its xmax (a snapshot can be reused from before the xid was
		// assigned). xids compare modulo 2^32.
		err := s.conn.QueryRow(ctx, `WITH s AS (SELECT pg_current_snapshot() AS s)
			SELECT EXISTS (SELECT 1 FROM s, pg_snapshot_xip(s.s) x WHERE (x::text::bigint & 4294967295) = $1)
			    OR (($1 - (pg_snapshot_xmax(s.s)::text::bigint & 4294967295)) & 4294967295) < 2147483648
			FROM s`, int64(s.txXid)).Scan(&running)
		if err != nil {
			return connectors.MarkRetryable(fmt.Errorf("wait for transaction %d to be visible: %w", s.txXid, err))
		}
		if !running {
			s.visibleXid = s.txXid
			return nil
		}
		if time.Now().After(deadline) {
			return connectors.MarkRetryable(fmt.Errorf("wait for transaction %d to be visible: still running after 30s", s.txXid))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}
