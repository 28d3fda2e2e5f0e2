package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pglogrepl"

	"github.com/liberator-cdc/liberator/connectors"
)

// Position is a point in a slot's stream: the end LSN of a transaction
// whose changes are all in Kafka, or a WAL position at which no captured
// transaction was open. Streaming resumes there.
type Position struct {
	LSN pglogrepl.LSN
}

var _ connectors.Position = Position{}

const positionPrefix = "pg:"

// String returns the LSN in PostgreSQL's X/X form.
func (p Position) String() string { return p.LSN.String() }

// Encode returns "pg:X/X".
func (p Position) Encode() []byte { return []byte(positionPrefix + p.LSN.String()) }

// ParsePosition reads what Encode wrote.
func ParsePosition(b []byte) (Position, error) {
	s, ok := strings.CutPrefix(string(b), positionPrefix)
	if !ok {
		return Position{}, fmt.Errorf("parse position %q: not a PostgreSQL position", b)
	}
	lsn, err := pglogrepl.ParseLSN(s)
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	return Position{LSN: lsn}, nil
}
