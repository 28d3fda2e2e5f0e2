package connectors

import (
	"errors"
	"fmt"
	"strings"
)

// TableID is the ID of the table name in schema ("schema.name", see
// Table.ID): each part as it is, unless it holds a dot, a double quote or
// a backtick, or is empty. Such a part is quoted as an SQL identifier, in
// double quotes with each quote doubled, so that every ID reads back as
// its two parts (ParseTableName) and no two tables share one:
//
//	shop, orders          shop.orders
//	My.Schema, Odd"Table  "My.Schema"."Odd""Table"
//
// An empty schema gives the name alone.
func TableID(schema, name string) string {
	if schema == "" {
		return quotePart(name)
	}
	return quotePart(schema) + "." + quotePart(name)
}

// quotePart quotes one part of an ID when it needs it (see TableID).
func quotePart(s string) string {
	if s != "" && !strings.ContainsAny(s, ".\"`") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// nameForms says how a table may be written, for messages.
func nameForms(backticks bool) string {
	if backticks {
		return "use database.table; quote a part that holds a dot, a quote or a backtick: `odd.db`.`odd``table` or \"odd.db\".\"odd\"\"table\"; or write {schema: ..., table: ...}"
	}
	return `use schema.table; quote a part that holds a dot or a quote as in SQL: "My.Schema"."Odd""Table"; or write {schema: ..., table: ...}`
}

// ParseTableName reads a table name as the config, a snapshot request or
// a Table.ID writes it: "schema.table", or "table" alone when
// defaultSchema is not empty. Either part may be quoted as an SQL
// identifier: in double quotes, with a quote inside doubled
// ("My.Schema"."Odd""Table"), or, when backticks is true (MySQL), in
// backticks, with a backtick inside doubled (`db`.`odd“table`). A part
// without quotes is taken exactly as written, up to the dot; it may not
// hold a quote (or, with backticks, a backtick). Names are never folded
// to lower case. An empty part, a NUL character or more than two parts
// is an error.
func ParseTableName(s, defaultSchema string, backticks bool) (schema, name string, err error) {
	var parts []string
	rest := s
	for {
		part, after, err := readPart(rest, backticks)
		if err != nil {
			return "", "", fmt.Errorf("%q is not a table name: %w (%s)", s, err, nameForms(backticks))
		}
		parts = append(parts, part)
		if after == "" {
			break
		}
		if after[0] != '.' {
			return "", "", fmt.Errorf("%q is not a table name: %q follows a quoted part (%s)", s, after, nameForms(backticks))
		}
		rest = after[1:]
		if len(parts) == 2 {
			return "", "", fmt.Errorf("%q is not a table name: it has more than two parts (%s)", s, nameForms(backticks))
		}
	}
	if len(parts) == 1 {
		if defaultSchema == "" {
			return "", "", fmt.Errorf("%q is not a table name: the database is missing (%s)", s, nameForms(backticks))
		}
		return defaultSchema, parts[0], nil
	}
	return parts[0], parts[1], nil
}

// readPart reads one part of a table name from the front of s and returns
// it and what follows it.
func readPart(s string, backticks bool) (part, rest string, err error) {
	if s == "" {
		return "", "", errors.New("a part is empty")
	}
	if q := s[0]; q == '"' || (q == '`' && backticks) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			if c != q {
				if c == 0 {
					return "", "", errors.New("it holds a NUL character")
				}
				b.WriteByte(c)
				continue
			}
			if i+1 < len(s) && s[i+1] == q {
				b.WriteByte(q)
				i++
				continue
			}
			if b.Len() == 0 {
				return "", "", errors.New("a quoted part is empty")
			}
			return b.String(), s[i+1:], nil
		}
		return "", "", fmt.Errorf("the quote %c that opens %q is not closed", q, s)
	}
	end := strings.IndexByte(s, '.')
	if end < 0 {
		end = len(s)
	}
	part = s[:end]
	switch {
	case part == "":
		return "", "", errors.New("a part is empty")
	case strings.ContainsRune(part, 0):
		return "", "", errors.New("it holds a NUL character")
	case strings.Contains(part, `"`):
		return "", "", fmt.Errorf("%q holds a quote without being quoted", part)
	case backticks && strings.Contains(part, "`"):
		return "", "", fmt.Errorf("%q holds a backtick without being quoted", part)
	}
	return part, s[end:], nil
}
