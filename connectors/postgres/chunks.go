package postgres

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/liberator-cdc/liberator/connectors"
)

// keyset builds the queries that read a table in primary-key order, chunk by
// chunk (keyset pagination): a chunk starts after the last key of the one
// before, so no chunk depends on OFFSET over the rows, and a composite key
// compares as a row value, (a, b) > ($1, $2), which a B-tree index on the
// key serves.
//
// Key values travel as parameters in PostgreSQL's text form, cast to the
// column's type, so that any key type with a B-tree ordering works.
type keyset struct {
	from    string   // the quoted table
	columns string   // the quoted select list
	keyCols []string // quoted key columns, in key order
	casts   []string // "::type" per key column
}

func newKeyset(tn tableName, rel *relation) keyset {
	t := rel.table
	k := keyset{from: pgx.Identifier{tn.schema, tn.name}.Sanitize(), columns: rel.selectList()}
	for _, i := range t.Key {
		c := t.Columns[i]
		k.keyCols = append(k.keyCols, pgx.Identifier{c.Name}.Sanitize())
		k.casts = append(k.casts, "::"+c.SQLType)
	}
	return k
}

// compare is "key op (params from $first)": "(a, b) > ($1::text, $2::integer)",
// or "a > $1::bigint" for a one-column key.
func (k keyset) compare(op string, first int) string {
	params := make([]string, len(k.keyCols))
	for i := range k.keyCols {
		params[i] = "$" + strconv.Itoa(first+i) + k.casts[i]
	}
	if len(k.keyCols) == 1 {
		return k.keyCols[0] + " " + op + " " + params[0]
	}
	return "(" + strings.Join(k.keyCols, ", ") + ") " + op + " (" + strings.Join(params, ", ") + ")"
}

func (k keyset) orderBy() string { return " ORDER BY " + strings.Join(k.keyCols, ", ") }

// where is the WHERE clause of a range (after, upTo]; a side that is absent
// is open.
func (k keyset) where(after, upTo bool) string {
	var conds []string
	n := 1
	if after {
		conds = append(conds, k.compare(">", n))
		n += len(k.keyCols)
	}
	if upTo {
		conds = append(conds, k.compare("<=", n))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// pageQuery reads the next chunk of at most n rows after a key (or from the
// start): WHERE key > $last ORDER BY key LIMIT n. Incremental snapshots read
// chunks with it.
func (k keyset) pageQuery(after bool, n int) string {
	return "SELECT " + k.columns + " FROM " + k.from + k.where(after, false) + k.orderBy() + " LIMIT " + strconv.Itoa(n)
}

// boundaryQuery finds where a chunk of n rows after a key ends: the key of
// its n-th row, or no row when fewer than n are left. It reads only the key
// (an index-only scan when the visibility map allows), so the chunks of the
// initial snapshot can be handed to parallel readers ahead of time.
func (k keyset) boundaryQuery(after bool, n int) string {
	return "SELECT " + strings.Join(k.keyCols, ", ") + " FROM " + k.from + k.where(after, false) + k.orderBy() +
		" LIMIT 1 OFFSET " + strconv.Itoa(n-1)
}

// rangeQuery reads the rows of the key range (after, upTo]. Ranges end at a
// key rather than after a number of rows, so that ranges read at different
// times (a resumed snapshot) still cover every key exactly once.
func (k keyset) rangeQuery(after, upTo bool) string {
	return "SELECT " + k.columns + " FROM " + k.from + k.where(after, upTo) + k.orderBy()
}

// keyParams returns the parameters of a range: the after key, then the upTo
// key, each present only if not nil.
func keyParams(after, upTo []string) [][]byte {
	out := make([][]byte, 0, len(after)+len(upTo))
	for _, v := range after {
		out = append(out, []byte(v))
	}
	for _, v := range upTo {
		out = append(out, []byte(v))
	}
	return out
}

// keyText copies the key columns of a text-format row.
func keyText(t *connectors.Table, vals [][]byte) []string {
	out := make([]string, len(t.Key))
	for n, i := range t.Key {
		out[n] = string(vals[i])
	}
	return out
}
