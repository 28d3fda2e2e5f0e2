package connectors

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// TablePattern is an entry of source.tables that names tables by a
// pattern rather than one table by name (see IsTablePattern):
//
//   - a glob, schema.table where a part holds *, ? or [...] as in
//     path.Match: shop.* takes every table of schema (database) shop,
//     *.audit_log every audit_log, shop.order_? order_1 to order_9. The
//     parts are read as ParseTableName reads them, so a bare glob is in
//     the default schema (PostgreSQL: public), and * never crosses the dot
//     between schema and table. A quoted part is still a glob.
//   - a regular expression between slashes, /shop\.order_\d+/, matched
//     against the whole of schema.table, the parts as they are, unquoted,
//     joined by a dot (Go's RE2 syntax, anchored at both ends as Debezium's
//     table.include.list is).
type TablePattern struct {
	// Text is the pattern as written.
	Text string

	schema, table string         // globs
	re            *regexp.Regexp // or a regular expression
}

// IsTablePattern reports whether an entry of source.tables is a pattern:
// written between slashes, or holding *, ? or [. A table whose name holds
// one of those is named by a glob that escapes it with a backslash, as
// path.Match reads it: shop.odd\*name.
func IsTablePattern(s string) bool {
	return isRegexPattern(s) || strings.ContainsAny(s, "*?[")
}

func isRegexPattern(s string) bool {
	return len(s) >= 2 && s[0] == '/' && s[len(s)-1] == '/'
}

// ParseTablePattern reads a pattern (see TablePattern). defaultSchema and
// backticks are those of ParseTableName.
func ParseTablePattern(s, defaultSchema string, backticks bool) (TablePattern, error) {
	if isRegexPattern(s) {
		re, err := regexp.Compile(`^(?:` + s[1:len(s)-1] + `)$`)
		if err != nil {
			return TablePattern{}, fmt.Errorf("%q is not a regular expression: %w (write /regex/ in Go's RE2 syntax, matched against schema.table)", s, err)
		}
		return TablePattern{Text: s, re: re}, nil
	}
	schema, table, err := ParseTableName(s, defaultSchema, backticks)
	if err != nil {
		return TablePattern{}, err
	}
	for _, g := range []string{schema, table} {
		if _, err := path.Match(g, ""); err != nil {
			return TablePattern{}, fmt.Errorf("%q is not a glob: %w (use *, ? and [a-z] as in shop.*)", s, err)
		}
	}
	return TablePattern{Text: s, schema: schema, table: table}, nil
}

// Match reports whether the table name in schema matches the pattern.
func (p TablePattern) Match(schema, name string) bool {
	if p.re != nil {
		return p.re.MatchString(schema + "." + name)
	}
	ok, _ := path.Match(p.schema, schema)
	if !ok {
		return false
	}
	ok, _ = path.Match(p.table, name)
	return ok
}

// TableFilter says which tables patterns capture: those that an include
// pattern matches and no exclude pattern does. Tables named one by one are
// not its business: they are captured whatever it says.
type TableFilter struct {
	Include []TablePattern
	Exclude []TablePattern
}

// Empty reports whether the filter has no include pattern: it captures
// nothing.
func (f TableFilter) Empty() bool { return len(f.Include) == 0 }

// ErrNoMatch is the error for a source whose patterns match no table and
// that names none.
func (f TableFilter) ErrNoMatch() error {
	texts := make([]string, len(f.Include))
	for i, p := range f.Include {
		texts[i] = p.Text
	}
	return fmt.Errorf("source.tables: no table matches the patterns %v (create one, or name the tables)", texts)
}

// Match reports whether the filter captures the table name in schema.
func (f TableFilter) Match(schema, name string) bool {
	in := false
	for _, p := range f.Include {
		if p.Match(schema, name) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range f.Exclude {
		if p.Match(schema, name) {
			return false
		}
	}
	return true
}
