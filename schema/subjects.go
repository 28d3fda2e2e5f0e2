package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// RegisterKey registers s, a key schema, under subject and returns the id
// its keys carry. It is Register with one more rule for keys: a key
// identifies its row in a compacted topic, and the Confluent wire format
// puts the schema id in every key's bytes.
//
//   - When s encodes exactly like the subject's latest version (the same
//     canonical form; only docs or defaults differ, as when a key column's
//     SQL type is respelled), that version's id is returned and nothing is
//     registered, so the keys keep their bytes.
//   - Any other change of the key is an *IncompatibleError, under every
//     level but NONE, even one that schema resolution allows (an int
//     widened to a long): the events already in the topic would never be
//     replaced or deleted by events under the new key.
//
// A schema registered under the subject already is always accepted.
func (r *Registry) RegisterKey(ctx context.Context, subject string, s avro.Schema) (int, error) {
	return r.registerAs(ctx, subject, s, true)
}

// Check reports, without registering anything, whether Register would
// accept s under subject: nil when s is registered there already, when the
// subject has no version yet, or when s is compatible with the subject's
// versions under the subject's compatibility level; otherwise an
// *IncompatibleError. The level is the subject's own, else the registry's
// global one, else BACKWARD. BACKWARD, BACKWARD_TRANSITIVE, FORWARD,
// FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE and NONE are supported.
func (r *Registry) Check(ctx context.Context, subject string, s avro.Schema) error {
	return r.check(ctx, subject, s, false)
}

// CheckKey is Check with the key rule of RegisterKey.
func (r *Registry) CheckKey(ctx context.Context, subject string, s avro.Schema) error {
	return r.check(ctx, subject, s, true)
}

func (r *Registry) check(ctx context.Context, subject string, s avro.Schema, isKey bool) error {
	text, err := marshalSchema(s)
	if err != nil {
		return fmt.Errorf("check schema for subject %q: marshal schema: %w", subject, err)
	}
	_, err = r.decide(ctx, subject, s, string(text), isKey)
	return wrapDecision("check schema for subject", subject, err)
}

// wrapDecision names the subject in an error of decide, except in an
// *IncompatibleError, which names it itself.
func wrapDecision(verb, subject string, err error) error {
	var ie *IncompatibleError
	if err == nil || errors.As(err, &ie) {
		return err
	}
	return fmt.Errorf("%s %q: %w", verb, subject, err)
}

// decide returns the id that s (whose JSON is text) has under subject
// without registering it: that of the same schema registered already, or,
// for a key, of a latest version that encodes alike. It returns 0 when s
// must be registered and may be, and an *IncompatibleError when it may not.
func (r *Registry) decide(ctx context.Context, subject string, s avro.Schema, text string, isKey bool) (int, error) {
	ss, err := r.cl.LookupSchema(ctx, subject, sr.Schema{Schema: text, Type: sr.TypeAvro})
	switch {
	case err == nil:
		return ss.ID, nil
	case !notFound(err):
		return 0, markTransient(ctx, fmt.Errorf("look up schema: %w", err))
	}
	level, err := r.level(ctx, subject)
	if err != nil {
		return 0, err
	}
	if level == sr.CompatNone && !isKey {
		return 0, nil
	}
	transitive := level == sr.CompatBackwardTransitive || level == sr.CompatForwardTransitive || level == sr.CompatFullTransitive
	versions, err := r.versions(ctx, subject, transitive)
	if err != nil || len(versions) == 0 {
		return 0, err
	}
	if isKey {
		latest := versions[len(versions)-1]
		if s.String() == latest.schema.String() {
			return latest.id, nil
		}
		if err := keyChange(subject, level, s, latest); err != nil {
			return 0, err
		}
	}
	return 0, checkCompatible(subject, level, s, versions)
}

// Level returns the compatibility level that applies to subject: its own,
// else the registry's global level, else BACKWARD (a registry without a
// config endpoint).
func (r *Registry) Level(ctx context.Context, subject string) (sr.CompatibilityLevel, error) {
	l, err := r.level(ctx, subject)
	return l, wrapDecision("read compatibility level of subject", subject, err)
}

func (r *Registry) level(ctx context.Context, subject string) (sr.CompatibilityLevel, error) {
	res := r.cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), subject)
	if err := res[0].Err; err != nil {
		if !notFound(err) {
			return 0, markTransient(ctx, err)
		}
		res = r.cl.Compatibility(ctx) // the global level
		if err := res[0].Err; err != nil {
			if !notFound(err) {
				return 0, markTransient(ctx, fmt.Errorf("read global level: %w", err))
			}
			return defaultLevel, nil
		}
	}
	if res[0].Level == 0 {
		// A registry that answers without a level.
		return defaultLevel, nil
	}
	return res[0].Level, nil
}

// versions returns the latest version of subject, or all of them, oldest
// first, parsed. A subject that does not exist has none.
func (r *Registry) versions(ctx context.Context, subject string, all bool) ([]version, error) {
	var list []sr.SubjectSchema
	if all {
		ss, err := r.cl.Schemas(ctx, subject)
		if err != nil && !notFound(err) {
			return nil, markTransient(ctx, fmt.Errorf("read versions: %w", err))
		}
		list = ss
	} else {
		ss, err := r.cl.SchemaByVersion(ctx, subject, -1)
		if err != nil && !notFound(err) {
			return nil, markTransient(ctx, fmt.Errorf("read latest version: %w", err))
		}
		if err == nil {
			list = []sr.SubjectSchema{ss}
		}
	}
	out := make([]version, 0, len(list))
	for _, ss := range list {
		if ss.Type != sr.TypeAvro {
			return nil, fmt.Errorf("read version %d: schema type is %s, not Avro", ss.Version, ss.Type)
		}
		s, err := avro.ParseWithCache(ss.Schema.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("read version %d: parse schema: %w", ss.Version, err)
		}
		out = append(out, version{number: ss.Version, id: ss.ID, schema: s})
	}
	return out, nil
}

// Subjects returns the registry's subjects that start with prefix, sorted.
func (r *Registry) Subjects(ctx context.Context, prefix string) ([]string, error) {
	all, err := r.cl.Subjects(sr.WithParams(ctx, sr.SubjectPrefix(prefix)))
	if err != nil {
		return nil, markTransient(ctx, fmt.Errorf("list subjects: %w", err))
	}
	// Not every registry knows subjectPrefix.
	out := all[:0]
	for _, s := range all {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out, nil
}

// notFound reports whether err is the registry's 404: no such subject,
// version, schema or subject-level config.
func notFound(err error) bool {
	var re *sr.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// Registered reports whether s is registered under subject already, as
// it is (its full JSON, docs and defaults included).
func (r *Registry) Registered(ctx context.Context, subject string, s avro.Schema) (bool, error) {
	text, err := marshalSchema(s)
	if err != nil {
		return false, fmt.Errorf("look up schema in subject %q: marshal schema: %w", subject, err)
	}
	_, err = r.cl.LookupSchema(ctx, subject, sr.Schema{Schema: string(text), Type: sr.TypeAvro})
	switch {
	case err == nil:
		return true, nil
	case notFound(err):
		return false, nil
	}
	return false, markTransient(ctx, fmt.Errorf("look up schema in subject %q: %w", subject, err))
}
