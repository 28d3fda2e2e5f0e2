package main

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/shopspring/decimal"
)

// mysqlSnapshot reads the table with a streamed SELECT (text protocol).
func mysqlSnapshot(ctx context.Context, o options) (int64, error) {
	conn, err := client.ConnectWithContext(ctx, o.addr, "root", "", o.db, 30*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if _, err := conn.Execute("SET time_zone = '+00:00'"); err != nil {
		return 0, err
	}
	if o.raw {
		return rawSelect(conn, "SELECT "+pgColumns+" FROM "+o.table)
	}
	h, err := newHandler(ctx, o)
	if err != nil {
		return 0, err
	}
	var (
		it         item
		name, note string
		amount     big.Rat
		created    time.Time
		flag       bool
		result     gomysql.Result
	)
	err = conn.ExecuteSelectStreaming("SELECT "+pgColumns+" FROM "+o.table, &result, func(row []gomysql.FieldValue) error {
		it = item{}
		var err error
		if it.ID, err = fvInt(&row[0]); err != nil {
			return err
		}
		a, err := fvInt(&row[1])
		if err != nil {
			return err
		}
		it.Account = int32(a)
		if row[2].Type != gomysql.FieldValueTypeNull {
			name = string(row[2].AsString())
			it.Name = &name
		}
		if row[3].Type != gomysql.FieldValueTypeNull {
			if err := parseDecimal(&amount, row[3].AsString()); err != nil {
				return err
			}
			it.Amount = &amount
		}
		if row[4].Type != gomysql.FieldValueTypeNull {
			note = string(row[4].AsString())
			it.Note = &note
		}
		if row[5].Type != gomysql.FieldValueTypeNull {
			if created, err = time.Parse("2006-01-02 15:04:05.999999", string(row[5].AsString())); err != nil {
				return err
			}
			it.Created = &created
		}
		if row[6].Type != gomysql.FieldValueTypeNull {
			f, err := fvInt(&row[6])
			if err != nil {
				return err
			}
			flag = f != 0
			it.Flag = &flag
		}
		return h.row(ctx, &it)
	}, nil)
	if err != nil {
		return 0, err
	}
	return h.finish(ctx, o.rows)
}

func fvInt(v *gomysql.FieldValue) (int64, error) {
	switch v.Type {
	case gomysql.FieldValueTypeSigned:
		return v.AsInt64(), nil
	case gomysql.FieldValueTypeUnsigned:
		return int64(v.AsUint64()), nil
	case gomysql.FieldValueTypeString:
		return strconv.ParseInt(string(v.AsString()), 10, 64)
	}
	return 0, fmt.Errorf("field of type %d is not an integer", v.Type)
}

// mysqlDrain reads the binlog from -file/-pos and handles every row written
// to the table until it has seen -rows of them.
func mysqlDrain(ctx context.Context, o options) (int64, error) {
	host, portS, err := net.SplitHostPort(o.addr)
	if err != nil {
		return 0, err
	}
	port, _ := strconv.Atoi(portS)
	syncer := replication.NewBinlogSyncer(replication.BinlogSyncerConfig{
		ServerID:   uint32(o.serverID),
		Flavor:     gomysql.MariaDBFlavor,
		Host:       host,
		Port:       uint16(port),
		User:       "root",
		ParseTime:  true,
		UseDecimal: true,
		// The default cache of 10,240 events lets memory grow to hundreds
		// of megabytes when produce is slower than the binlog read.
		EventCacheCount: 256,
	})
	defer syncer.Close()
	st, err := syncer.StartSync(gomysql.Position{Name: o.file, Pos: uint32(o.pos)})
	if err != nil {
		return 0, fmt.Errorf("start binlog sync: %w", err)
	}
	h, err := newHandler(ctx, o)
	if err != nil {
		return 0, err
	}
	var (
		it         item
		name, note string
		amount     big.Rat
		created    time.Time
		flag       bool
	)
	for h.seen < o.rows {
		ev, err := st.GetEvent(ctx)
		if err != nil {
			return 0, fmt.Errorf("read binlog event: %w", err)
		}
		re, ok := ev.Event.(*replication.RowsEvent)
		if !ok || string(re.Table.Table) != o.table || string(re.Table.Schema) != o.db {
			continue
		}
		switch ev.Header.EventType {
		case replication.WRITE_ROWS_EVENTv0, replication.WRITE_ROWS_EVENTv1, replication.WRITE_ROWS_EVENTv2:
		default:
			continue
		}
		if o.countOnly {
			h.seen += int64(len(re.Rows))
			continue
		}
		for _, row := range re.Rows {
			if len(row) != 7 {
				return 0, fmt.Errorf("row has %d columns, want 7", len(row))
			}
			it = item{ID: row[0].(int64), Account: row[1].(int32)}
			if b, ok := row[2].([]byte); ok {
				name = string(b)
				it.Name = &name
			} else if s, ok := row[2].(string); ok {
				name = s
				it.Name = &name
			}
			if d, ok := row[3].(decimal.Decimal); ok {
				if d.Exponent() > 0 {
					amount.SetInt(d.BigInt())
				} else {
					amount.SetFrac(d.Coefficient(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-d.Exponent())), nil))
				}
				it.Amount = &amount
			}
			if b, ok := row[4].([]byte); ok {
				note = string(b)
				it.Note = &note
			} else if s, ok := row[4].(string); ok {
				note = s
				it.Note = &note
			}
			if t, ok := row[5].(time.Time); ok {
				created = t.UTC()
				it.Created = &created
			}
			if f, ok := row[6].(int8); ok {
				flag = f != 0
				it.Flag = &flag
			}
			if err := h.row(ctx, &it); err != nil {
				return 0, err
			}
		}
	}
	return h.finish(ctx, o.rows)
}

// rawSelect sends query and counts the row packets of its result set
// without parsing them: what the server sends, read off the wire.
func rawSelect(conn *client.Conn, query string) (int64, error) {
	conn.ResetSequence()
	pkt := make([]byte, 5, 5+len(query))
	pkt[4] = gomysql.COM_QUERY
	if err := conn.WritePacket(append(pkt, query...)); err != nil {
		return 0, err
	}
	data, err := conn.ReadPacket()
	if err != nil {
		return 0, err
	}
	if data[0] == gomysql.ERR_HEADER || data[0] == gomysql.OK_HEADER {
		return 0, fmt.Errorf("%s: no result set (packet 0x%02x)", query, data[0])
	}
	cols, _, _ := gomysql.LengthEncodedInt(data)
	for range cols { // column definitions
		if data, err = conn.ReadPacketReuseMem(data[:0]); err != nil {
			return 0, err
		}
	}
	var n int64
	for i := 0; ; i++ {
		if data, err = conn.ReadPacketReuseMem(data[:0]); err != nil {
			return n, err
		}
		switch {
		case data[0] == gomysql.ERR_HEADER:
			return n, fmt.Errorf("%s: error after %d rows: %s", query, n, data[3:])
		case data[0] == gomysql.EOF_HEADER && len(data) < 0xffffff:
			// A row whose first value is 0xfe-prefixed would be longer
			// than 16 MB. This is the EOF after the column definitions
			// (unless the session deprecated it) or the end of the rows.
			// (A result set of no rows that ends without the first EOF
			// would hang here; the benchmark's table is never empty.)
			if i == 0 {
				continue
			}
			return n, nil
		}
		n++
	}
}
