package postgres

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// Position is a point in a slot's stream: the end LSN of a transaction
// whose changes are all in Kafka, or a WAL position at which no captured
// transaction was open. Streaming resumes there.
//
// A position also says which tables are captured and how far a snapshot
// under way has got: during the initial snapshot, LSN is the slot's
// consistent point (where streaming will begin) and Snapshot holds each
// table's progress; during an incremental snapshot, LSN moves with the
// stream and Snapshot holds the progress of the tables being read.
//
// A position at LSN 0/0 is the one Reset returns: no slot streams from
// there, and Open starts over from a new slot.
type Position struct {
	LSN pglogrepl.LSN
	// Tables are the captured tables ("schema.name") whose rows are in
	// Kafka or are being snapshotted. A configured table missing from it
	// was added to the config since, and is snapshotted while streaming.
	// Nil in a position stored before liberator recorded it: then every
	// configured table counts as captured.
	Tables []string
	// Snapshot is the snapshot under way at LSN, or nil. Positions share
	// it: it is replaced, never modified.
	Snapshot *snapshot.State
}

var _ connectors.Position = Position{}

const positionPrefix = "pg:"

// String returns the LSN in PostgreSQL's X/X form, followed by a note on a
// snapshot under way.
func (p Position) String() string {
	if p.Snapshot == nil {
		return p.LSN.String()
	}
	return fmt.Sprintf("%s (%s)", p.LSN, p.Snapshot)
}

// Equal reports whether o is the same position as p.
func (p Position) Equal(o connectors.Position) bool {
	q, ok := o.(Position)
	if !ok || p.LSN != q.LSN || !slices.Equal(p.Tables, q.Tables) {
		return false
	}
	return p.Snapshot == q.Snapshot || reflect.DeepEqual(p.Snapshot, q.Snapshot)
}

// Encode returns "pg:X/X" for a position without tables, else
// "pg:X/X;" followed by a JSON object with the tables and the snapshot.
func (p Position) Encode() []byte {
	if p.Tables == nil && p.Snapshot == nil {
		return []byte(positionPrefix + p.LSN.String())
	}
	js := snapshot.PositionState{Tables: p.Tables, Snapshot: p.Snapshot}.Encode()
	return append([]byte(positionPrefix+p.LSN.String()+";"), js...)
}

// ParsePosition reads what Encode wrote.
func ParsePosition(b []byte) (Position, error) {
	s, ok := strings.CutPrefix(string(b), positionPrefix)
	if !ok {
		return Position{}, fmt.Errorf("parse position %q: not a PostgreSQL position", b)
	}
	s, state, hasState := strings.Cut(s, ";")
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	p := Position{LSN: lsn}
	if !hasState {
		return p, nil
	}
	st, err := snapshot.ParsePositionState([]byte(state), nil)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	p.Tables, p.Snapshot = st.Tables, st.Snapshot
	return p, nil
}
