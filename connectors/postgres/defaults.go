package postgres

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/liberator-cdc/liberator/connectors"
)

// A column's default, as pg_get_expr prints it, is a constant when it is a
// literal: a number, a boolean, or a quoted string with a cast:
//
//	42   1.5   true   '-42'::integer   'it''s'::text   '{}'::text[]
//	'2020-01-02 01:04:05+00'::timestamp with time zone
//
// The cast names a type, possibly with spaces, quotes, a schema, a type
// modifier or array brackets; anything more (an operator, a function call,
// a second literal) is not a constant.
var (
	numberDefault = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$`)
	quotedDefault = regexp.MustCompile(`(?s)^'((?:[^']|'')*)'::[A-Za-z_"][A-Za-z0-9_ ."]*(\([0-9]+(,[0-9]+)?\))?(\[\])*$`)
)

// parseDefault returns the neutral value of a column default as
// pg_get_expr prints it, or nil when there is none, it is not a constant
// (now(), nextval(...), (1 + 2)), or its text does not decode as the
// column's type. Strings are decoded with the column's own decoder, since
// the literal of a constant is the type's text form (the catalog
// connection prints it with TimeZone=UTC and ISO dates, like the values).
// Escape-string literals (E'...', printed when standard_conforming_strings
// is off) are not taken. typmod pads a char(n) default to n characters as PostgreSQL
// stores it.
func parseDefault(expr string, typ connectors.Type, typeOID uint32, typmod int32, dec decoder) any {
	var text string
	switch {
	case expr == "" || strings.HasPrefix(expr, "NULL"):
		return nil
	case expr == "true" || expr == "false":
		if typ.Kind != connectors.KindBool {
			return nil
		}
		return expr == "true"
	case numberDefault.MatchString(expr):
		text = expr
	default:
		m := quotedDefault.FindStringSubmatch(expr)
		if m == nil {
			return nil
		}
		text = strings.ReplaceAll(m[1], "''", "'")
	}
	if typ.Kind == connectors.KindBool {
		// The text of a boolean literal is true or false, not t or f.
		switch strings.ToLower(text) {
		case "true", "t":
			return true
		case "false", "f":
			return false
		}
		return nil
	}
	v, err := dec([]byte(text))
	if err != nil {
		return nil
	}
	if _, bad := v.(connectors.BadValue); bad {
		// A default its Avro type cannot hold is no default a reader
		// could use.
		return nil
	}
	switch typ.Kind {
	case connectors.KindDecimal:
		// PostgreSQL rounds the default to the column's scale when it
		// stores a row; a default that does not fit as written has no
		// exact Avro form.
		if !connectors.FitsDecimal(v.(string), typ.Precision, typ.Scale) {
			return nil
		}
	case connectors.KindString:
		if typeOID == pgtype.BPCharOID && typmod > 4 {
			if n := int(typmod-4) - utf8.RuneCountInString(v.(string)); n > 0 {
				v = v.(string) + strings.Repeat(" ", n)
			}
		}
	}
	return v
}
