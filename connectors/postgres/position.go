package postgres

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
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
	Snapshot *SnapshotState
}

// SnapshotState is the progress of a snapshot under way.
type SnapshotState struct {
	// Initial is true for the initial snapshot, read before streaming from
	// the slot's consistent point; false for an incremental snapshot, read
	// while streaming with watermarks.
	Initial bool `json:"initial,omitempty"`
	// Tables are the tables to read, in order.
	Tables []TableSnapshot `json:"tables"`
}

// TableSnapshot is one table's snapshot progress: every row up to and
// including the key After has been read and is in Kafka.
type TableSnapshot struct {
	Table string `json:"table"`
	// After is the primary key of the last row read, one value per key
	// column in PostgreSQL's text form; nil before the first chunk.
	After []string `json:"after,omitempty"`
	// Done is true once the whole table has been read.
	Done bool `json:"done,omitempty"`
}

var _ connectors.Position = Position{}

const positionPrefix = "pg:"

// String returns the LSN in PostgreSQL's X/X form, followed by a note on a
// snapshot under way.
func (p Position) String() string {
	if p.Snapshot == nil {
		return p.LSN.String()
	}
	done := 0
	for _, t := range p.Snapshot.Tables {
		if t.Done {
			done++
		}
	}
	kind := "incremental"
	if p.Snapshot.Initial {
		kind = "initial"
	}
	note := ""
	for _, t := range p.Snapshot.Tables {
		if !t.Done && t.After != nil {
			note = fmt.Sprintf(", %s read up to key (%s)", t.Table, strings.Join(t.After, ", "))
			break
		}
	}
	return fmt.Sprintf("%s (%s snapshot, %d of %d tables done%s)", p.LSN, kind, done, len(p.Snapshot.Tables), note)
}

// positionState is the JSON part of an encoded position.
type positionState struct {
	Tables   []string       `json:"tables"`
	Snapshot *SnapshotState `json:"snapshot,omitempty"`
}

// Encode returns "pg:X/X" for a position without tables, else
// "pg:X/X;" followed by a JSON object with the tables and the snapshot.
func (p Position) Encode() []byte {
	if p.Tables == nil && p.Snapshot == nil {
		return []byte(positionPrefix + p.LSN.String())
	}
	js, err := json.Marshal(positionState{Tables: p.Tables, Snapshot: p.Snapshot})
	if err != nil {
		// Strings and bools always marshal.
		panic(fmt.Sprintf("encode position: %v", err))
	}
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
	var st positionState
	dec := json.NewDecoder(bytes.NewReader([]byte(state)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Position{}, fmt.Errorf("parse position %q: data after the state", b)
	}
	if err := st.check(); err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	p.Tables, p.Snapshot = st.Tables, st.Snapshot
	return p, nil
}

func (st *positionState) check() error {
	if len(st.Tables) == 0 {
		return errors.New("no tables")
	}
	if err := uniqueNames(st.Tables); err != nil {
		return fmt.Errorf("tables: %w", err)
	}
	if st.Snapshot == nil {
		return nil
	}
	if len(st.Snapshot.Tables) == 0 {
		return errors.New("a snapshot of no tables")
	}
	names := make([]string, len(st.Snapshot.Tables))
	for i := range st.Snapshot.Tables {
		t := &st.Snapshot.Tables[i]
		names[i] = t.Table
		if len(t.After) == 0 {
			// "after": [] means the same as no key yet.
			t.After = nil
		}
	}
	if err := uniqueNames(names); err != nil {
		return fmt.Errorf("snapshot tables: %w", err)
	}
	return nil
}

func uniqueNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if n == "" {
			return errors.New("an empty table name")
		}
		if seen[n] {
			return fmt.Errorf("%q is listed twice", n)
		}
		seen[n] = true
	}
	return nil
}
