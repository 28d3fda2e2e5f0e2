package mysql

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/uuid"

	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

// Position is a point in a server's binary log at which a transaction
// starts: a file and offset, and, when the server has GTIDs, the GTID state
// reached there. Streaming resumes from the GTID state when there is one and
// from the file and offset otherwise.
type Position struct {
	// Flavor is "mysql" or "mariadb": it says how GTID is written.
	Flavor string
	// File is the binary log file, such as "binlog.000003". It is empty
	// for a position known only by its GTID state.
	File string
	// Offset is the byte offset of the transaction in File.
	Offset uint32
	// GTID is the GTID state in the server's canonical text: for MariaDB
	// the last GTID of each replication domain ("0-1-42,1-2-7"), for MySQL
	// the executed set ("3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"). It is
	// empty when the server has no GTIDs.
	GTID string
	// State records the captured tables and the progress of a snapshot
	// under way; nil in positions that record neither.
	State *snapshot.PositionState
	// Reset marks the position that liberator reset stores (see
	// Source.Reset): it names no place in the log. Opened from it, the
	// source streams from the end of the binary log as it is then and
	// re-snapshots every table with reconcile. File, Offset, GTID and
	// State are empty.
	Reset bool
}

var _ connectors.Position = Position{}

// Equal reports whether o is the same position, with the same state.
func (p Position) Equal(o connectors.Position) bool {
	q, ok := o.(Position)
	if !ok || p.Flavor != q.Flavor || p.File != q.File || p.Offset != q.Offset || p.GTID != q.GTID {
		return false
	}
	// States are shared between positions, so the pointers are usually
	// the same.
	return p.State == q.State || (p.State != nil && q.State != nil && string(p.State.Encode()) == string(q.State.Encode()))
}

const positionPrefix = "mysql:"

// String is "gtid=STATE", "FILE:OFFSET" or "FILE:OFFSET gtid=STATE",
// followed by a note on a snapshot under way.
func (p Position) String() string {
	if p.Reset {
		return "reset (stream from the end of the binary log and snapshot every table again with reconcile)"
	}
	if p.State != nil && p.State.Snapshot != nil {
		return p.inLog().String() + " (" + p.State.Snapshot.String() + ")"
	}
	switch {
	case p.File == "":
		return "gtid=" + p.GTID
	case p.GTID == "":
		return p.File + ":" + strconv.FormatUint(uint64(p.Offset), 10)
	}
	return p.File + ":" + strconv.FormatUint(uint64(p.Offset), 10) + " gtid=" + p.GTID
}

// inLog is p's place in the binary log alone, without its state.
func (p Position) inLog() Position {
	return Position{Flavor: p.Flavor, File: p.File, Offset: p.Offset, GTID: p.GTID}
}

// Encode returns "mysql:" followed by the fields as a URL query, such as
// "mysql:file=binlog.000003&flavor=mariadb&gtid=0-1-42&offset=1234"; a
// reset position is "mysql:flavor=mariadb&reset=1".
func (p Position) Encode() []byte {
	v := url.Values{"flavor": {p.Flavor}}
	if p.Reset {
		v.Set("reset", "1")
		return []byte(positionPrefix + v.Encode())
	}
	if p.File != "" {
		v.Set("file", p.File)
		v.Set("offset", strconv.FormatUint(uint64(p.Offset), 10))
	}
	if p.GTID != "" {
		v.Set("gtid", p.GTID)
	}
	if p.State != nil {
		v.Set("state", string(p.State.Encode()))
	}
	return []byte(positionPrefix + v.Encode())
}

// ParsePosition reads what Encode wrote. The GTID state is parsed with the
// flavor's parser and kept in canonical form.
func ParsePosition(b []byte) (Position, error) {
	p, err := parsePosition(string(b))
	if err != nil {
		return Position{}, fmt.Errorf("parse position %q: %w", b, err)
	}
	return p, nil
}

func parsePosition(s string) (Position, error) {
	q, ok := strings.CutPrefix(s, positionPrefix)
	if !ok {
		return Position{}, errors.New("not a MySQL position")
	}
	v, err := url.ParseQuery(q)
	if err != nil {
		return Position{}, err
	}
	for k, vs := range v {
		switch k {
		case "flavor", "file", "offset", "gtid", "state", "reset":
		default:
			return Position{}, fmt.Errorf("unknown field %q", k)
		}
		if len(vs) != 1 {
			return Position{}, fmt.Errorf("field %q appears %d times", k, len(vs))
		}
	}
	p := Position{Flavor: v.Get("flavor"), File: v.Get("file")}
	if p.Flavor != FlavorMySQL && p.Flavor != FlavorMariaDB {
		return Position{}, fmt.Errorf("flavor %q is not mysql or mariadb", p.Flavor)
	}
	if r, ok := v["reset"]; ok {
		if r[0] != "1" {
			return Position{}, fmt.Errorf("reset %q is not 1", r[0])
		}
		if len(v) != 2 {
			return Position{}, errors.New("a reset position has only a flavor")
		}
		p.Reset = true
		return p, nil
	}
	_, hasOffset := v["offset"]
	if hasOffset != (p.File != "") {
		return Position{}, errors.New("file and offset go together")
	}
	if p.File != "" {
		off, err := strconv.ParseUint(v.Get("offset"), 10, 32)
		if err != nil {
			return Position{}, fmt.Errorf("offset: %w", err)
		}
		p.Offset = uint32(off)
	}
	if g := v.Get("gtid"); g != "" {
		if p.GTID, err = canonicalGTID(p.Flavor, g); err != nil {
			return Position{}, err
		}
	}
	if p.File == "" && p.GTID == "" {
		return Position{}, errors.New("neither file nor gtid")
	}
	if st, ok := v["state"]; ok {
		if p.State, err = snapshot.ParsePositionState([]byte(st[0]), checkKeyValue); err != nil {
			return Position{}, fmt.Errorf("state: %w", err)
		}
	}
	return p, nil
}

// canonicalGTID parses a GTID state of the flavor and prints it back in
// canonical form.
func canonicalGTID(flavor, s string) (string, error) {
	if flavor == FlavorMariaDB {
		st, err := parseMariaDBState(s)
		if err != nil {
			return "", err
		}
		return st.String(), nil
	}
	set, err := parseMySQLSet(s)
	if err != nil {
		return "", err
	}
	return set.String(), nil
}

// mariadbState is MariaDB's GTID position: the last GTID of each
// replication domain.
type mariadbState map[uint32]gomysql.MariadbGTID

// parseMariaDBState reads "D-S-N[,D-S-N...]" with at most one GTID per
// domain, as @@gtid_binlog_pos and BINLOG_GTID_POS() print it. The empty
// string is the empty state.
func parseMariaDBState(s string) (mariadbState, error) {
	st := mariadbState{}
	if strings.TrimSpace(s) == "" {
		return st, nil
	}
	parts := strings.Split(s, ",")
	for _, part := range parts {
		// go-mysql's parser reads an empty element as 0-0-0.
		if strings.TrimSpace(part) == "" {
			return nil, fmt.Errorf("gtid %q has an empty element", s)
		}
	}
	set, err := gomysql.ParseMariadbGTIDSet(s)
	if err != nil {
		return nil, fmt.Errorf("gtid %q: %w", s, err)
	}
	m := set.(*gomysql.MariadbGTIDSet)
	if len(m.Sets) != len(parts) {
		return nil, fmt.Errorf("gtid %q names a domain twice", s)
	}
	for d, g := range m.Sets {
		st[d] = *g
	}
	return st, nil
}

// String prints the state ordered by domain.
func (st mariadbState) String() string {
	var b strings.Builder
	for i, d := range slices.Sorted(maps.Keys(st)) {
		if i > 0 {
			b.WriteByte(',')
		}
		g := st[d]
		b.WriteString(strconv.FormatUint(uint64(g.DomainID), 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(uint64(g.ServerID), 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(g.SequenceNumber, 10))
	}
	return b.String()
}

// parseMySQLSet reads a MySQL GTID set such as "uuid:1-5:7,uuid2:1-3".
func parseMySQLSet(s string) (*gomysql.MysqlGTIDSet, error) {
	set, err := gomysql.ParseMysqlGTIDSet(strings.ReplaceAll(s, "\n", ""))
	if err != nil {
		return nil, fmt.Errorf("gtid %q: %w", s, err)
	}
	m := set.(*gomysql.MysqlGTIDSet)
	for u, tags := range *m {
		for tag, intervals := range tags {
			for _, in := range intervals {
				if in.Start < 1 || in.Stop <= in.Start {
					return nil, fmt.Errorf("gtid %q: interval %s of %s is empty or starts below 1", s, in, u)
				}
			}
			if len(intervals) == 0 {
				return nil, fmt.Errorf("gtid %q: %s:%s has no interval", s, u, tag)
			}
		}
	}
	return m, nil
}

// mysqlGTID formats one MySQL GTID as uuid[:tag]:gno.
func mysqlGTID(sid []byte, tag gomysql.Tag, gno int64) string {
	u, err := uuid.FromBytes(sid)
	if err != nil {
		return fmt.Sprintf("%x:%d", sid, gno)
	}
	if t := tag.String(); t != "" {
		return u.String() + ":" + t + ":" + strconv.FormatInt(gno, 10)
	}
	return u.String() + ":" + strconv.FormatInt(gno, 10)
}
