package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

const pgColumns = "id, account, name, amount, note, created, flag"

// pgSnapshot reads the table with COPY TO STDOUT in binary format.
func pgSnapshot(ctx context.Context, o options) (int64, error) {
	conn, err := pgconn.Connect(ctx, o.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if o.raw {
		tag, err := conn.CopyTo(ctx, io.Discard, "COPY "+o.table+" ("+pgColumns+") TO STDOUT (FORMAT binary)")
		return tag.RowsAffected(), err
	}
	h, err := newHandler(ctx, o)
	if err != nil {
		return 0, err
	}
	w := &copyReader{ctx: ctx, h: h}
	if _, err := conn.CopyTo(ctx, w, "COPY "+o.table+" ("+pgColumns+") TO STDOUT (FORMAT binary)"); err != nil {
		return 0, errors.Join(err, w.err)
	}
	if len(w.pending) != 0 || !w.trailer {
		return 0, fmt.Errorf("copy ended inside a tuple (%d bytes left, trailer %v)", len(w.pending), w.trailer)
	}
	return h.finish(ctx, o.rows)
}

// copyReader parses the binary COPY stream as pgconn writes it, keeping a
// tuple that straddles two writes until it is complete.
type copyReader struct {
	ctx     context.Context
	h       *handler
	pending []byte
	header  bool
	trailer bool
	err     error

	it      item
	name    string
	note    string
	amount  big.Rat
	created time.Time
	flag    bool
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

func (c *copyReader) Write(p []byte) (int, error) {
	data := p
	if len(c.pending) > 0 {
		c.pending = append(c.pending, p...)
		data = c.pending
	}
	used, err := c.parse(data)
	if err != nil {
		c.err = err
		return 0, err
	}
	rest := data[used:]
	c.pending = append(c.pending[:0], rest...)
	return len(p), nil
}

// parse consumes whole tuples from data and returns how many bytes it used.
func (c *copyReader) parse(data []byte) (int, error) {
	off := 0
	if !c.header {
		if len(data) < 19 {
			return 0, nil
		}
		if string(data[:11]) != string(copySignature) {
			return 0, errors.New("not a binary COPY stream")
		}
		ext := int(binary.BigEndian.Uint32(data[15:19]))
		if len(data) < 19+ext {
			return 0, nil
		}
		off = 19 + ext
		c.header = true
	}
	var fields [7][]byte
	for {
		if len(data)-off < 2 {
			return off, nil
		}
		nf := int16(binary.BigEndian.Uint16(data[off:]))
		if nf == -1 {
			c.trailer = true
			return off + 2, nil
		}
		if nf != 7 {
			return 0, fmt.Errorf("tuple has %d fields, want 7", nf)
		}
		q := off + 2
		for i := range 7 {
			if len(data)-q < 4 {
				return off, nil
			}
			n := int32(binary.BigEndian.Uint32(data[q:]))
			q += 4
			if n < 0 {
				fields[i] = nil
				continue
			}
			if len(data)-q < int(n) {
				return off, nil
			}
			fields[i] = data[q : q+int(n)]
			q += int(n)
		}
		if err := c.row(&fields); err != nil {
			return 0, err
		}
		off = q
	}
}

// pgEpochMicros is 2000-01-01 in Unix microseconds.
const pgEpochMicros = 946684800_000000

func (c *copyReader) row(f *[7][]byte) error {
	it := &c.it
	*it = item{}
	it.ID = int64(binary.BigEndian.Uint64(f[0]))
	it.Account = int32(binary.BigEndian.Uint32(f[1]))
	if f[2] != nil {
		c.name = string(f[2])
		it.Name = &c.name
	}
	if f[3] != nil {
		if ok := pgNumeric(&c.amount, f[3]); ok {
			it.Amount = &c.amount
		}
	}
	if f[4] != nil {
		c.note = string(f[4])
		it.Note = &c.note
	}
	if f[5] != nil {
		c.created = time.UnixMicro(int64(binary.BigEndian.Uint64(f[5])) + pgEpochMicros).UTC()
		it.Created = &c.created
	}
	if f[6] != nil {
		c.flag = f[6][0] != 0
		it.Flag = &c.flag
	}
	return c.h.row(c.ctx, it)
}

// pgNumeric decodes a binary numeric that fits an int64 when unscaled (the
// table's numeric(12,2) always does). It reports false for NaN.
func pgNumeric(r *big.Rat, b []byte) bool {
	ndigits := int(binary.BigEndian.Uint16(b[0:]))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	dscale := int(binary.BigEndian.Uint16(b[6:]))
	if sign == 0xC000 {
		return false
	}
	var acc int64
	for i := range ndigits {
		acc = acc*10000 + int64(binary.BigEndian.Uint16(b[8+2*i:]))
	}
	// acc is in units of 10000^(weight-ndigits+1); bring it to 10^-dscale.
	e := 4*(weight-ndigits+1) + dscale
	for ; e > 0; e-- {
		acc *= 10
	}
	for ; e < 0; e++ {
		acc /= 10
	}
	if sign == 0x4000 {
		acc = -acc
	}
	den := int64(1)
	for range dscale {
		den *= 10
	}
	r.SetFrac64(acc, den)
	return true
}

// pgDrain streams the slot with pgoutput and handles every insert into the
// table until it has seen -rows of them.
func pgDrain(ctx context.Context, o options) (int64, error) {
	conn, err := pgconn.Connect(ctx, o.dsn+"&replication=database&timezone=UTC")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	h, err := newHandler(ctx, o)
	if err != nil {
		return 0, err
	}
	// Start position 0 means the slot's confirmed_flush_lsn.
	err = pglogrepl.StartReplication(ctx, conn, o.slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + o.pub + "'"},
	})
	if err != nil {
		return 0, fmt.Errorf("start replication: %w", err)
	}
	lags := commitLags{skip: o.lags}
	defer lags.report()
	var (
		relID        uint32
		last         pglogrepl.LSN
		it           item
		name, note   string
		amount       big.Rat
		created      time.Time
		flag         bool
		nextStatus   = time.Now().Add(10 * time.Second)
		sendStatusOK = func() error {
			nextStatus = time.Now().Add(10 * time.Second)
			return pglogrepl.SendStandbyStatusUpdate(ctx, conn, pglogrepl.StandbyStatusUpdate{WALWritePosition: last})
		}
	)
	for h.seen < o.rows {
		if time.Now().After(nextStatus) {
			if err := sendStatusOK(); err != nil {
				return 0, err
			}
		}
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return 0, fmt.Errorf("receive: %w", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			if er, ok := msg.(*pgproto3.ErrorResponse); ok {
				return 0, pgconn.ErrorResponseToPgError(er)
			}
			return 0, fmt.Errorf("unexpected message %T", msg)
		}
		switch cd.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(cd.Data[1:])
			if err != nil {
				return 0, err
			}
			if ka.ReplyRequested {
				if err := sendStatusOK(); err != nil {
					return 0, err
				}
			}
		case pglogrepl.XLogDataByteID:
			if o.countOnly {
				// The WAL data follows the 1-byte tag and three 8-byte
				// fields; its first byte is the pgoutput message type.
				// Only the table's inserts are in the publication.
				if len(cd.Data) > 25 && cd.Data[25] == 'I' {
					h.seen++
				}
				if len(cd.Data) > 25 && cd.Data[25] == 'C' && len(cd.Data) >= 26+1+8+8+8 {
					last = pglogrepl.LSN(binary.BigEndian.Uint64(cd.Data[26+1+8:]))
					if o.lags >= 0 {
						lags.commit(cd.Data)
					}
				}
				continue
			}
			xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
			if err != nil {
				return 0, err
			}
			lm, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return 0, err
			}
			switch m := lm.(type) {
			case *pglogrepl.RelationMessage:
				if m.RelationName == o.table {
					relID = m.RelationID
				}
			case *pglogrepl.CommitMessage:
				last = m.TransactionEndLSN
			case *pglogrepl.InsertMessage:
				if m.RelationID != relID {
					continue
				}
				cols := m.Tuple.Columns
				if len(cols) != 7 {
					return 0, fmt.Errorf("insert has %d columns, want 7", len(cols))
				}
				it = item{}
				if it.ID, err = strconv.ParseInt(string(cols[0].Data), 10, 64); err != nil {
					return 0, err
				}
				a, err := strconv.ParseInt(string(cols[1].Data), 10, 32)
				if err != nil {
					return 0, err
				}
				it.Account = int32(a)
				if cols[2].DataType == pglogrepl.TupleDataTypeText {
					name = string(cols[2].Data)
					it.Name = &name
				}
				if cols[3].DataType == pglogrepl.TupleDataTypeText {
					if err := parseDecimal(&amount, cols[3].Data); err != nil {
						return 0, err
					}
					it.Amount = &amount
				}
				if cols[4].DataType == pglogrepl.TupleDataTypeText {
					note = string(cols[4].Data)
					it.Note = &note
				}
				if cols[5].DataType == pglogrepl.TupleDataTypeText {
					if created, err = time.Parse("2006-01-02 15:04:05.999999-07", string(cols[5].Data)); err != nil {
						return 0, err
					}
					it.Created = &created
				}
				if cols[6].DataType == pglogrepl.TupleDataTypeText {
					flag = cols[6].Data[0] == 't'
					it.Flag = &flag
				}
				if err := h.row(ctx, &it); err != nil {
					return 0, err
				}
			}
		}
	}
	return h.finish(ctx, o.rows)
}

// commitLags times pgoutput Commit messages (see -lags).
type commitLags struct {
	skip       int
	seen       int
	send, recv []float64 // ms
}

// pgEpoch is where PostgreSQL's timestamps count from.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(b []byte) time.Time {
	return pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(b))) * time.Microsecond)
}

// commit takes a CopyData payload holding an XLogData whose WAL data is a
// Commit: 'w', WAL start, WAL end and send time, then 'C', flags, the
// commit LSN, the end LSN and the commit time.
func (c *commitLags) commit(d []byte) {
	now := time.Now()
	c.seen++
	if c.seen <= c.skip {
		return
	}
	at := pgTime(d[26+1+8+8:])
	c.send = append(c.send, float64(pgTime(d[17:]).Sub(at))/1e6)
	c.recv = append(c.recv, float64(now.Sub(at))/1e6)
}

func (c *commitLags) report() {
	if c.skip < 0 || len(c.recv) == 0 {
		return
	}
	q := func(v []float64, q float64) float64 {
		slices.Sort(v)
		return v[int(q*float64(len(v)-1)+0.5)]
	}
	report["send_p50_ms"], report["send_p99_ms"] = q(c.send, 0.5), q(c.send, 0.99)
	report["recv_p50_ms"], report["recv_p99_ms"] = q(c.recv, 0.5), q(c.recv, 0.99)
	report["commits_timed"] = len(c.recv)
}
