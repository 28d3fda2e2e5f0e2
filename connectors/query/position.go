package query

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/liberator-cdc/liberator/connectors"
)

// Position is where query capture stands: each table's watermark. It is
// stored in the offsets topic only once Kafka acknowledged every row up to
// it, so a restart reads on from there and loses nothing; rows read after
// it are read again.
type Position struct {
	Tables map[string]Watermark `json:"tables"`
}

// Watermark is one table's progress.
type Watermark struct {
	// After holds the order columns of the last row read (timestamp then
	// key or incrementing column, or the incrementing column alone), in
	// the DB's text form; empty before the first row.
	After []string `json:"after,omitempty"`
	// Full is when the table's last full read (bulk, or reconcile) began,
	// zero before the first. A full read under way at a restart is read
	// again from its start.
	Full time.Time `json:"full,omitzero"`
	// Done is true for a table whose full read of snapshot.mode only is
	// finished.
	Done bool `json:"done,omitempty"`
}

var _ connectors.Position = Position{}

// String lists each table's watermark, as "public.orders>(42)".
func (p Position) String() string {
	var b strings.Builder
	for i, t := range slices.Sorted(maps.Keys(p.Tables)) {
		if i > 0 {
			b.WriteString(" ")
		}
		w := p.Tables[t]
		b.WriteString(t)
		if len(w.After) > 0 {
			b.WriteString(">(" + strings.Join(w.After, ",") + ")")
		}
	}
	return b.String()
}

// Equal reports whether o is the same position.
func (p Position) Equal(o connectors.Position) bool {
	q, ok := o.(Position)
	return ok && bytes.Equal(p.Encode(), q.Encode())
}

// Encode returns the JSON that ParsePosition reads.
func (p Position) Encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

// ParsePosition reads what Encode wrote.
func ParsePosition(b []byte) (Position, error) {
	var p Position
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Position{}, fmt.Errorf("parse query position %q: %w (was it stored by log capture? A pipeline that changes source.capture needs a new name)", b, err)
	}
	if p.Tables == nil {
		p.Tables = map[string]Watermark{}
	}
	return p, nil
}

func (p Position) clone() Position {
	out := Position{Tables: make(map[string]Watermark, len(p.Tables))}
	for t, w := range p.Tables {
		w.After = slices.Clone(w.After)
		out.Tables[t] = w
	}
	return out
}

// RowPosition is the position of one row, its "pos" header: the table and
// the row's order columns, the watermark it moves its table to.
type RowPosition struct {
	Table string
	After []string
}

// String is "table@v1,v2".
func (r RowPosition) String() string { return r.Table + "@" + strings.Join(r.After, ",") }

// Equal reports whether o is the same row position.
func (r RowPosition) Equal(o connectors.Position) bool {
	q, ok := o.(RowPosition)
	return ok && q.Table == r.Table && slices.Equal(q.After, r.After)
}

// Encode returns String's bytes; a row position is never resumed from.
func (r RowPosition) Encode() []byte { return []byte(r.String()) }
