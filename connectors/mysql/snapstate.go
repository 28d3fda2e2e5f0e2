package mysql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// PositionState is what a Position records beside the binlog coordinates:
// which tables are captured, and how far a snapshot under way has got.
// Positions share it: it is replaced, never modified.
type PositionState struct {
	// Tables are the captured tables ("database.table") whose rows are in
	// Kafka or are being snapshotted. A configured table missing from it
	// was added to the config since, and is snapshotted while streaming.
	Tables []string `json:"tables"`
	// Snapshot is the snapshot under way, or nil.
	Snapshot *SnapshotState `json:"snapshot,omitempty"`
}

// SnapshotState is the progress of a snapshot under way.
type SnapshotState struct {
	// Initial is true for the initial snapshot, read before streaming from
	// the position; false for an incremental snapshot, read while
	// streaming with watermarks.
	Initial bool `json:"initial,omitempty"`
	// Tables are the tables to read, in order.
	Tables []TableSnapshot `json:"tables"`
}

// TableSnapshot is one table's progress: every row up to and including the
// key After has been read and is in Kafka.
type TableSnapshot struct {
	Table string `json:"table"`
	// After is the primary key of the last row read, one encoded value per
	// key column (see keyValue); nil before the first chunk.
	After []string `json:"after,omitempty"`
	// Done is true once the whole table has been read.
	Done bool `json:"done,omitempty"`
}

// encode returns the state's JSON.
func (st *PositionState) encode() string {
	b, err := json.Marshal(st)
	if err != nil {
		// Strings and bools always marshal.
		panic(fmt.Sprintf("encode position state: %v", err))
	}
	return string(b)
}

// parseState reads what encode wrote.
func parseState(s string) (*PositionState, error) {
	var st PositionState
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("state: data after the state")
	}
	if len(st.Tables) == 0 {
		return nil, errors.New("state: no tables")
	}
	if err := uniqueNames(st.Tables); err != nil {
		return nil, fmt.Errorf("state: tables: %w", err)
	}
	if st.Snapshot == nil {
		return &st, nil
	}
	if len(st.Snapshot.Tables) == 0 {
		return nil, errors.New("state: a snapshot of no tables")
	}
	names := make([]string, len(st.Snapshot.Tables))
	for i := range st.Snapshot.Tables {
		t := &st.Snapshot.Tables[i]
		names[i] = t.Table
		if len(t.After) == 0 {
			t.After = nil
		}
		for _, v := range t.After {
			if _, err := parseKeyValue(v); err != nil {
				return nil, fmt.Errorf("state: key of %s: %w", t.Table, err)
			}
		}
	}
	if err := uniqueNames(names); err != nil {
		return nil, fmt.Errorf("state: snapshot tables: %w", err)
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

// with returns a copy of an incremental snapshot state (nil for none) with
// tables queued to be read from the start; a table already queued and not
// done keeps its progress.
func (st *SnapshotState) with(tables ...string) *SnapshotState {
	out := &SnapshotState{}
	if st != nil {
		out.Initial = st.Initial
		out.Tables = slices.Clone(st.Tables)
	}
	for _, t := range tables {
		i := slices.IndexFunc(out.Tables, func(ts TableSnapshot) bool { return ts.Table == t })
		switch {
		case i < 0:
			out.Tables = append(out.Tables, TableSnapshot{Table: t})
		case out.Tables[i].Done:
			out.Tables[i] = TableSnapshot{Table: t}
		}
	}
	return out
}

// advanced returns a copy of the state with table i's progress replaced.
func (st *SnapshotState) advanced(i int, after []string, done bool) *SnapshotState {
	out := &SnapshotState{Initial: st.Initial, Tables: slices.Clone(st.Tables)}
	if after != nil {
		out.Tables[i].After = after
	}
	out.Tables[i].Done = done
	return out
}

// done reports whether every table has been read.
func (st *SnapshotState) done() bool {
	return !slices.ContainsFunc(st.Tables, func(ts TableSnapshot) bool { return !ts.Done })
}

// reconcile keeps the progress of the configured tables of a stored
// snapshot, in its order, and drops tables no longer configured. An
// initial snapshot also gets the configured tables it lacks. It returns
// nil when nothing is left to read.
func reconcile(st *SnapshotState, configured []string, initial bool) *SnapshotState {
	out := &SnapshotState{Initial: initial}
	if st != nil {
		for _, t := range st.Tables {
			if slices.Contains(configured, t.Table) {
				out.Tables = append(out.Tables, t)
			}
		}
	}
	if initial {
		for _, t := range configured {
			if !slices.ContainsFunc(out.Tables, func(ts TableSnapshot) bool { return ts.Table == t }) {
				out.Tables = append(out.Tables, TableSnapshot{Table: t})
			}
		}
	}
	if out.done() {
		return nil
	}
	return out
}

// snapshotNote is " (initial snapshot, 1 of 3 tables done)".
func snapshotNote(st *SnapshotState) string {
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
	return fmt.Sprintf(" (%s snapshot, %d of %d tables done%s)", kind, done, len(st.Tables), note)
}
