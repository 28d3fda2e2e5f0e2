package snapshot

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/liberator-cdc/liberator/connectors"
)

// PositionState is what a source's position records beside its place in
// the log: which tables are captured, and how far a snapshot under way has
// got. Positions share it: it is replaced, never modified.
type PositionState struct {
	// Tables are the captured tables ("schema.table" or
	// "database.table") whose rows are in Kafka or are being snapshotted.
	// A configured table missing from it was added to the config since,
	// and is snapshotted while streaming.
	Tables []string `json:"tables"`
	// Snapshot is the snapshot under way, or nil.
	Snapshot *State `json:"snapshot,omitempty"`
}

// State is the progress of a snapshot under way. Its methods
// return copies: a state is replaced, never modified, so positions may
// share it.
type State struct {
	// Initial is true for the initial snapshot, read before streaming from
	// the position; false for an incremental snapshot, read while
	// streaming with watermarks.
	Initial bool `json:"initial,omitempty"`
	// Tables are the tables to read, in order.
	Tables []TableState `json:"tables"`
}

// TableState is one table's progress: every row up to and including the
// key After has been read and is in Kafka.
type TableState struct {
	Table string `json:"table"`
	// After is the primary key of the last row read, one value per key
	// column in the source's own text form; nil before the first chunk.
	After []string `json:"after,omitempty"`
	// Done is true once the whole table has been read.
	Done bool `json:"done,omitempty"`
	// Reconcile is true for a re-snapshot whose end tombstones the keys
	// that are in the table's topic but no longer in the table (see
	// connectors.ReconcileMark).
	Reconcile bool `json:"reconcile,omitempty"`
}

// Encode returns the state's JSON.
func (st PositionState) Encode() []byte {
	b, err := json.Marshal(st)
	if err != nil {
		// Strings and bools always marshal.
		panic(fmt.Sprintf("encode position state: %v", err))
	}
	return b
}

// ParsePositionState reads what Encode wrote. checkKey, if not nil, checks
// each value of a snapshot's last key.
func ParsePositionState(b []byte, checkKey func(string) error) (*PositionState, error) {
	var st PositionState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the state")
	}
	// An empty list is a source whose every table is never snapshotted
	// (outbox tables); a missing one is no state this package wrote.
	if st.Tables == nil {
		return nil, errors.New("no tables")
	}
	if err := uniqueNames(st.Tables); err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	if st.Snapshot == nil {
		return &st, nil
	}
	if len(st.Snapshot.Tables) == 0 {
		return nil, errors.New("a snapshot of no tables")
	}
	names := make([]string, len(st.Snapshot.Tables))
	for i := range st.Snapshot.Tables {
		t := &st.Snapshot.Tables[i]
		names[i] = t.Table
		if len(t.After) == 0 {
			// "after": [] means the same as no key yet.
			t.After = nil
		}
		if checkKey == nil {
			continue
		}
		for _, v := range t.After {
			if err := checkKey(v); err != nil {
				return nil, fmt.Errorf("key of %s: %w", t.Table, err)
			}
		}
	}
	if err := uniqueNames(names); err != nil {
		return nil, fmt.Errorf("snapshot tables: %w", err)
	}
	return &st, nil
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

// With returns a copy of an incremental snapshot state (nil for none) with
// tables queued to be read from the start; a table already queued and not
// done keeps its progress.
func (st *State) With(tables ...string) *State {
	out := &State{}
	if st != nil {
		out.Initial = st.Initial
		out.Tables = slices.Clone(st.Tables)
	}
	for _, t := range tables {
		i := slices.IndexFunc(out.Tables, func(ts TableState) bool { return ts.Table == t })
		switch {
		case i < 0:
			out.Tables = append(out.Tables, TableState{Table: t})
		case out.Tables[i].Done:
			out.Tables[i] = TableState{Table: t}
		}
	}
	return out
}

// WithReconcile returns a copy of an incremental snapshot state (nil for
// none) with tables queued to be read again from the start with reconcile.
// A table under way starts over: the rows it read so far came before the
// gap that calls for the reconcile.
func (st *State) WithReconcile(tables ...string) *State {
	out := &State{}
	if st != nil {
		out.Initial = st.Initial
		out.Tables = slices.Clone(st.Tables)
	}
	for _, t := range tables {
		ts := TableState{Table: t, Reconcile: true}
		if i := slices.IndexFunc(out.Tables, func(ts TableState) bool { return ts.Table == t }); i >= 0 {
			out.Tables[i] = ts
		} else {
			out.Tables = append(out.Tables, ts)
		}
	}
	return out
}

// Advanced returns a copy of the state with table i's progress replaced;
// a nil after keeps the last key.
func (st *State) Advanced(i int, after []string, done bool) *State {
	out := &State{Initial: st.Initial, Tables: slices.Clone(st.Tables)}
	if after != nil {
		out.Tables[i].After = after
	}
	out.Tables[i].Done = done
	return out
}

// Done reports whether every table has been read.
func (st *State) Done() bool {
	return !slices.ContainsFunc(st.Tables, func(ts TableState) bool { return !ts.Done })
}

// Reconcile keeps the progress of the configured tables of a stored
// snapshot (st, nil for none), in its order, and drops tables no longer
// configured. An initial snapshot also gets the configured tables it
// lacks, to be read in full. It returns nil when nothing is left to read.
func (st *State) Reconcile(configured []string, initial bool) *State {
	out := &State{Initial: initial}
	if st != nil {
		for _, t := range st.Tables {
			if slices.Contains(configured, t.Table) {
				out.Tables = append(out.Tables, t)
			}
		}
	}
	if initial {
		for _, t := range configured {
			if !slices.ContainsFunc(out.Tables, func(ts TableState) bool { return ts.Table == t }) {
				out.Tables = append(out.Tables, TableState{Table: t})
			}
		}
	}
	if out.Done() {
		return nil
	}
	return out
}

// String is "initial snapshot, 1 of 3 tables done, s.t read up to key (7)".
func (st *State) String() string {
	done := 0
	for _, t := range st.Tables {
		if t.Done {
			done++
		}
	}
	kind := "incremental"
	if st.Initial {
		kind = "initial"
	}
	note := ""
	for _, t := range st.Tables {
		if !t.Done && t.After != nil {
			note = fmt.Sprintf(", %s read up to key (%s)", t.Table, strings.Join(t.After, ", "))
			break
		}
	}
	return fmt.Sprintf("%s snapshot, %d of %d tables done%s", kind, done, len(st.Tables), note)
}

// RowKey renders the key of a row as a map key, so that a snapshot's row
// and a streamed change of the same row compare equal when both went
// through the same conversions.
func RowKey(t *connectors.Table, row []any) string {
	var b strings.Builder
	for n, i := range t.Key {
		if n > 0 {
			b.WriteByte(0)
		}
		switch v := row[i].(type) {
		case nil:
			b.WriteString("N")
		case []byte:
			b.WriteString("x" + hex.EncodeToString(v))
		case string:
			b.WriteString(strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "%T:%v", v, v)
		}
	}
	return b.String()
}
