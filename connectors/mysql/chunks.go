package mysql

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/liberator-cdc/liberator/connectors"
)

// keyset builds the queries that read a table in primary-key order, chunk by
// chunk (keyset pagination): a chunk starts after the last key of the one
// before. A composite key's row-value comparison (a, b) > (x, y) is written
// out as a > x OR (a = x AND b > y), which MariaDB's range optimizer turns
// into an index range (it does not for a row constructor) and MySQL reads
// the same way.
//
// Keys travel as prepared-statement parameters, each cast so that the
// server compares it as the column compares (and sorts) its values:
// integers as integers; every other value as the hex of its bytes, turned
// back by UNHEX on the server (a parameter's bytes would otherwise be taken
// in the connection's character set, and a latin1 'é' would not survive),
// then read as the column's character set and collation, as bytes, as
// DECIMAL or as the temporal type.
type keyset struct {
	from    string
	columns string
	keyCols []string // quoted
	params  []string // the placeholder of each key column, with its cast
}

// errNotChunkable is wrapped when a key column's type has no comparison
// that follows its index order (ENUM and SET sort by ordinal, floating
// point and JSON keys are not worth the risk): such a table is read whole.
var errNotChunkable = errors.New("the primary key cannot be read in chunks")

// newKeyset builds the keyset of a table. charsets and collations give the
// character set and collation of each character key column. For a key that
// cannot be chunked it returns errNotChunkable and a keyset that can only
// name the table and its columns.
func newKeyset(tn tableName, table *connectors.Table, cols []column, charsets, collations map[string]string) (keyset, error) {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.Name)
		if c.conv == convSkip {
			// Not decoded, so not read.
			names[i] = "NULL"
		}
	}
	k := keyset{from: quoteIdent(tn.db) + "." + quoteIdent(tn.name), columns: strings.Join(names, ", ")}
	whole := keyset{from: k.from, columns: k.columns}
	for _, i := range table.Key {
		c := cols[i]
		var p string
		switch c.conv {
		case convInt32, convInt64, convUint64:
			p = "?"
		case convDecimal:
			p = fmt.Sprintf("CAST(CONVERT(UNHEX(?) USING ascii) AS DECIMAL(%d,%d))", c.Type.Precision, c.Type.Scale)
		case convString:
			cs, coll := charsets[c.Name], collations[c.Name]
			if cs == "" || coll == "" {
				return whole, fmt.Errorf("%w: no character set for key column %s of %s", errNotChunkable, c.Name, tn)
			}
			p = "CONVERT(UNHEX(?) USING " + cs + ") COLLATE " + coll
		case convBytes, convBinary:
			p = "UNHEX(?)"
		case convDate:
			p = "CAST(CONVERT(UNHEX(?) USING ascii) AS DATE)"
		case convDatetime, convTimestamp:
			p = "CAST(CONVERT(UNHEX(?) USING ascii) AS DATETIME(6))"
		case convTime:
			p = "CAST(CONVERT(UNHEX(?) USING ascii) AS TIME(6))"
		case convUUID, convInet4, convInet6:
			// The server compares these in their own order (a UUID's
			// swapped storage order), which is the index's.
			p = "CAST(CONVERT(UNHEX(?) USING ascii) AS " + strings.ToUpper(c.conv.String()) + ")"
		default:
			return whole, fmt.Errorf("%w: key column %s of %s is %s", errNotChunkable, c.Name, tn, c.SQLType)
		}
		k.keyCols = append(k.keyCols, quoteIdent(c.Name))
		k.params = append(k.params, p)
	}
	return k, nil
}

// compare writes "key op (params)" out as ORs of ANDs, and returns how many
// times each key value is used, in parameter order. For op > and keys a, b:
// (a > ? OR (a = ? AND b > ?)); for <=: (a < ? OR (a = ? AND b <= ?)).
func (k keyset) compare(op string) (string, []int) {
	strict := op
	if op == "<=" {
		strict = "<"
	}
	var ors []string
	var uses []int
	for i := range k.keyCols {
		var ands []string
		for j := 0; j < i; j++ {
			ands = append(ands, k.keyCols[j]+" = "+k.params[j])
			uses = append(uses, j)
		}
		last := strict
		if i == len(k.keyCols)-1 {
			last = op
		}
		ands = append(ands, k.keyCols[i]+" "+last+" "+k.params[i])
		uses = append(uses, i)
		if len(ands) == 1 {
			ors = append(ors, ands[0])
		} else {
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
	}
	if len(ors) == 1 {
		return ors[0], uses
	}
	return "(" + strings.Join(ors, " OR ") + ")", uses
}

func (k keyset) orderBy() string { return " ORDER BY " + strings.Join(k.keyCols, ", ") }

// where is the WHERE clause of the range (after, upTo]; absent sides are
// open. It returns the key value order of the parameters: indexes into
// after, or into upTo offset by the key length.
func (k keyset) where(after, upTo bool) (string, []int) {
	var conds []string
	var order []int
	if after {
		c, uses := k.compare(">")
		conds = append(conds, c)
		order = append(order, uses...)
	}
	if upTo {
		c, uses := k.compare("<=")
		conds = append(conds, c)
		for _, u := range uses {
			order = append(order, len(k.keyCols)+u)
		}
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), order
}

// query is a statement and the order of its key parameters: index i <
// nkeys is the i-th value of the after key, nkeys+i that of the upTo key.
type query struct {
	sql   string
	order []int
	nkeys int
}

// args returns a query's parameters from the after and upTo keys.
func (q query) args(after, upTo []string) ([]any, error) {
	out := make([]any, len(q.order))
	for i, j := range q.order {
		var enc string
		switch {
		case j < q.nkeys && j < len(after):
			enc = after[j]
		case j >= q.nkeys && j-q.nkeys < len(upTo):
			enc = upTo[j-q.nkeys]
		default:
			return nil, fmt.Errorf("parameter %d of %q has no key value", i+1, q.sql)
		}
		v, err := parseKeyValue(enc)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// pageQuery reads the next chunk of at most n rows after a key (or from the
// start): WHERE key > last ORDER BY key LIMIT n. Incremental snapshots read
// chunks with it.
func (k keyset) pageQuery(after bool, n int) query {
	w, order := k.where(after, false)
	return query{"SELECT " + k.columns + " FROM " + k.from + w + k.orderBy() + " LIMIT " + strconv.Itoa(n), order, len(k.keyCols)}
}

// boundaryQuery finds where a chunk of n rows after a key ends: the key of
// its n-th row, or no row when fewer than n are left. It reads only the
// key, from the primary key's index.
func (k keyset) boundaryQuery(after bool, n int) query {
	w, order := k.where(after, false)
	return query{"SELECT " + strings.Join(k.keyCols, ", ") + " FROM " + k.from + w + k.orderBy() +
		" LIMIT " + strconv.Itoa(n-1) + ", 1", order, len(k.keyCols)}
}

// rangeQuery reads the rows of the key range (after, upTo]. Ranges end at a
// key rather than after a number of rows, so that ranges read at different
// times still cover every key exactly once.
func (k keyset) rangeQuery(after, upTo bool) query {
	w, order := k.where(after, upTo)
	return query{"SELECT " + k.columns + " FROM " + k.from + w + k.orderBy(), order, len(k.keyCols)}
}

// keyValue encodes a key value of a binary-protocol row for the position:
// "i:" and a signed integer, "u:" and an unsigned one, "x:" and the hex of
// the value's bytes (strings raw in the column's character set, DECIMAL
// and temporal values as the server prints them).
func keyValue(fv *gomysql.FieldValue) (string, error) {
	switch fv.Type {
	case gomysql.FieldValueTypeSigned:
		return "i:" + strconv.FormatInt(fv.AsInt64(), 10), nil
	case gomysql.FieldValueTypeUnsigned:
		return "u:" + strconv.FormatUint(fv.AsUint64(), 10), nil
	case gomysql.FieldValueTypeString:
		return "x:" + hex.EncodeToString(fv.AsString()), nil
	}
	return "", fmt.Errorf("a key value of type %d", fv.Type)
}

// parseKeyValue reads what keyValue wrote, as a statement parameter: an
// integer, or the hex text that the placeholder's UNHEX turns back.
func parseKeyValue(s string) (any, error) {
	tag, v, ok := strings.Cut(s, ":")
	if ok {
		switch tag {
		case "i":
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n, nil
			}
		case "u":
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				return n, nil
			}
		case "x":
			if _, err := hex.DecodeString(v); err == nil {
				return v, nil
			}
		}
	}
	return nil, fmt.Errorf("%q is not a key value", s)
}

// keyValues encodes the key columns of a row.
func keyValues(t *connectors.Table, row []gomysql.FieldValue) ([]string, error) {
	out := make([]string, len(t.Key))
	for n, i := range t.Key {
		v, err := keyValue(&row[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", t.Columns[i].Name, err)
		}
		out[n] = v
	}
	return out, nil
}

// checkKeyValue checks a stored key value: it must be one keyValue wrote.
func checkKeyValue(s string) error {
	_, err := parseKeyValue(s)
	return err
}
