// Package redact keeps passwords out of what liberator shows: URLs and
// DSNs in messages, errors, log records and the admin listener's answers.
package redact

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a password wherever it is shown. It is url.URL.Redacted's.
const Mask = "xxxxx"

// MinLen is the length below which a value is not scrubbed from text: a
// one-letter "secret" would blot out that letter everywhere. Such a value
// protects nothing anyway.
const MinLen = 4

// userinfoRE finds the password of a URL that url.Parse refuses:
// scheme://user:password@host, up to the last @.
var userinfoRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^:@/]*:)(.*)@([^@]*)$`)

// kvPasswordRE finds password=... in a key=value DSN (libpq's form).
var kvPasswordRE = regexp.MustCompile(`(?i)\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|[^\s]+)`)

// URL returns raw, a URL or DSN, with its password replaced by Mask:
// https://user:xxxxx@host. It also masks URLs that do not parse, and the
// password= of a key=value DSN.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	} else if err == nil {
		return kvPasswordRE.ReplaceAllString(raw, "password="+Mask)
	}
	if m := userinfoRE.FindStringSubmatch(raw); m != nil {
		return m[1] + Mask + "@" + m[3]
	}
	return kvPasswordRE.ReplaceAllString(raw, "password="+Mask)
}

// Password returns the password in a URL or DSN, or "" when it has none:
// the user information's password, or the password= of a key=value DSN.
func Password(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		p, _ := u.User.Password()
		return p
	}
	if m := userinfoRE.FindStringSubmatch(dsn); m != nil {
		return m[2]
	}
	if m := kvPasswordRE.FindStringSubmatch(dsn); m != nil {
		v := m[1]
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\'`, `'`)
		}
		return v
	}
	return ""
}

// Secrets are values never to be shown: passwords, tokens, salts.
type Secrets []string

// String returns text with every secret, and its URL-escaped forms,
// replaced by Mask. Secrets shorter than MinLen are left alone.
func (s Secrets) String(text string) string {
	for _, v := range s {
		if len(v) < MinLen {
			continue
		}
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v), url.UserPassword("", v).String()[1:]} {
			if len(form) >= MinLen {
				text = strings.ReplaceAll(text, form, Mask)
			}
		}
	}
	return text
}

// Error returns err with its message scrubbed of the secrets. errors.Is
// and errors.As still see err's chain. It returns nil for nil.
func (s Secrets) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := s.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// Writer returns a writer that scrubs the secrets from every Write. A
// secret split over two writes is not seen; fmt.Fprint and the log
// handlers write each message at once.
func (s Secrets) Writer(w io.Writer) io.Writer { return writer{w, s} }

type writer struct {
	w io.Writer
	s Secrets
}

func (w writer) Write(p []byte) (int, error) {
	out := w.s.String(string(p))
	if _, err := io.WriteString(w.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReplaceAttr is a slog.HandlerOptions.ReplaceAttr that scrubs the secrets
// from every record's message and attributes, before the handler quotes or
// escapes them.
func (s Secrets) ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if str := s.String(v.String()); str != v.String() {
			a.Value = slog.StringValue(str)
		}
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
			if str := s.String(text); str != text {
				a.Value = slog.AnyValue(errors.New(str))
			}
			return a
		default:
			text = fmt.Sprint(x)
		}
		if str := s.String(text); str != text {
			a.Value = slog.StringValue(str)
		}
	}
	return a
}
