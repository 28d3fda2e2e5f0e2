package schema

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// ErrIncompatible is what every *IncompatibleError is (errors.Is): a schema
// that may not be registered under its subject.
var ErrIncompatible = errors.New("schema is incompatible")

// IncompatibleError is the error of a schema that may not follow the
// versions registered under its subject, under the subject's compatibility
// level. errors.Is(err, ErrIncompatible) reports it.
type IncompatibleError struct {
	// Subject is the registry subject, as "shop.public.orders-value".
	Subject string
	// Level is the subject's compatibility level, as "BACKWARD".
	Level string
	// Version is the registered version that the schema conflicts with.
	Version int
	// Fields are the Avro field names involved, in field order; empty when
	// the problem is not a field's (a record renamed, a key changed as a
	// whole).
	Fields []string
	// Reason says what cannot be read, in words.
	Reason string
	// Err is hamba/avro's verdict, when it found the problem; nil when only
	// liberator's own rules did (logical types, keys).
	Err error
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("schema for subject %q is incompatible with version %d under %s: %s", e.Subject, e.Version, e.Level, e.Reason)
}

// Unwrap returns e.Err.
func (e *IncompatibleError) Unwrap() error { return e.Err }

// Is reports whether target is ErrIncompatible.
func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }

// version is one registered version of a subject.
type version struct {
	number int
	id     int
	schema avro.Schema
}

// defaultLevel is the level of a subject when the registry has none, as in
// the Confluent registry.
const defaultLevel = sr.CompatBackward

// checkCompatible checks s against the registered versions of subject
// (oldest first) under level, the way a Confluent registry would, and with
// two rules of liberator's own (see logicalProblem). It uses hamba/avro's
// SchemaCompatibility, which implements the Avro specification's schema
// resolution:
//
//   - BACKWARD: s can read data written with the latest version;
//   - FORWARD: the latest version can read data written with s;
//   - FULL: both;
//   - the *_TRANSITIVE levels: the same, against every version;
//   - NONE: anything goes.
//
// It returns nil or an *IncompatibleError naming the newest version that
// conflicts.
func checkCompatible(subject string, level sr.CompatibilityLevel, s avro.Schema, versions []version) error {
	var backward, forward, transitive bool
	switch level {
	case sr.CompatNone:
		return nil
	case sr.CompatBackward:
		backward = true
	case sr.CompatBackwardTransitive:
		backward, transitive = true, true
	case sr.CompatForward:
		forward = true
	case sr.CompatForwardTransitive:
		forward, transitive = true, true
	case sr.CompatFull:
		backward, forward = true, true
	case sr.CompatFullTransitive:
		backward, forward, transitive = true, true, true
	default:
		return fmt.Errorf("check compatibility of subject %q: level %s is not supported", subject, level)
	}
	against := versions
	if !transitive && len(versions) > 0 {
		against = versions[len(versions)-1:]
	}
	for i := len(against) - 1; i >= 0; i-- {
		v := against[i]
		old := "version " + strconv.Itoa(v.number)
		if backward {
			if err := incompatible(s, v.schema, "the new schema", old); err != nil {
				err.Subject, err.Level, err.Version = subject, level.String(), v.number
				return err
			}
		}
		if forward {
			if err := incompatible(v.schema, s, old, "the new schema"); err != nil {
				err.Subject, err.Level, err.Version = subject, level.String(), v.number
				return err
			}
		}
	}
	return nil
}

// incompatible reports why data written with writer cannot be read with
// reader, or nil. readerName and writerName say which schema is which in
// the reason.
func incompatible(reader, writer avro.Schema, readerName, writerName string) *IncompatibleError {
	// A fresh SchemaCompatibility each time: hamba caches verdicts by the
	// schemas' fingerprints, which leave defaults out, so a cached verdict
	// could belong to another schema with other defaults.
	verdict := avro.NewSchemaCompatibility().Compatible(reader, writer)
	var fields, reasons []string
	rr, rok := reader.(*avro.RecordSchema)
	wr, wok := writer.(*avro.RecordSchema)
	if rok && wok {
		if rr.FullName() != wr.FullName() {
			reasons = append(reasons, fmt.Sprintf("the record is %s in %s but %s in %s", rr.FullName(), readerName, wr.FullName(), writerName))
		}
		for _, rf := range rr.Fields() {
			wf := fieldByName(wr, rf.Name())
			var why string
			switch {
			case wf == nil && !rf.HasDefault():
				why = fmt.Sprintf("field %q of %s has no default and %s lacks it", rf.Name(), readerName, writerName)
			case wf == nil:
				continue
			default:
				if err := avro.NewSchemaCompatibility().Compatible(rf.Type(), wf.Type()); err != nil {
					why = fmt.Sprintf("field %q is %s in %s, which cannot read %s of %s (%v)", rf.Name(), typeName(rf.Type()), readerName, typeName(wf.Type()), writerName, err)
				} else if p := logicalProblem(rf.Type(), wf.Type(), readerName, writerName); p != "" {
					why = fmt.Sprintf("field %q: %s", rf.Name(), p)
				}
			}
			if why != "" {
				fields = append(fields, rf.Name())
				reasons = append(reasons, why)
			}
		}
	}
	if verdict == nil && len(reasons) == 0 {
		return nil
	}
	if len(reasons) == 0 {
		reasons = []string{fmt.Sprintf("%s cannot read data written with %s: %v", readerName, writerName, verdict)}
	}
	return &IncompatibleError{Fields: fields, Reason: strings.Join(reasons, "; "), Err: verdict}
}

func fieldByName(r *avro.RecordSchema, name string) *avro.Field {
	for _, f := range r.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// logicalProblem is liberator's stricter rule on logical types, which
// schema resolution ignores: the bytes of a decimal(12,2) read as a
// decimal(12,3) are a tenth of the number, and a date read as a plain int,
// or a local timestamp read as an instant, is a different value. It
// returns "" when reader reads writer's values as the same values: equal
// logical types, decimals of equal scale (the precision may change), or a
// plain string reading a uuid.
func logicalProblem(reader, writer avro.Schema, readerName, writerName string) string {
	reader, writer = nonNull(reader), nonNull(writer)
	if ra, ok := reader.(*avro.ArraySchema); ok {
		if wa, ok := writer.(*avro.ArraySchema); ok {
			if p := logicalProblem(ra.Items(), wa.Items(), readerName, writerName); p != "" {
				return "array elements: " + p
			}
		}
		return ""
	}
	rl, wl := logicalOf(reader), logicalOf(writer)
	rd, rdec := rl.(*avro.DecimalLogicalSchema)
	wd, wdec := wl.(*avro.DecimalLogicalSchema)
	switch {
	case rdec && wdec:
		if rd.Scale() != wd.Scale() {
			return fmt.Sprintf("the decimal scale is %d in %s but %d in %s, so the same bytes would be another number", wd.Scale(), writerName, rd.Scale(), readerName)
		}
		return ""
	case logicalName(rl) == logicalName(wl):
		return ""
	case rl == nil && logicalName(wl) == string(avro.UUID):
		return ""
	}
	return fmt.Sprintf("the logical type is %s in %s but %s in %s, so the same number would mean another value", logicalName(wl), writerName, logicalName(rl), readerName)
}

// nonNull returns the one non-null branch of a nullable union, or s.
func nonNull(s avro.Schema) avro.Schema {
	u, ok := s.(*avro.UnionSchema)
	if !ok {
		return s
	}
	var branch avro.Schema
	for _, b := range u.Types() {
		if b.Type() == avro.Null {
			continue
		}
		if branch != nil {
			return s
		}
		branch = b
	}
	if branch == nil {
		return s
	}
	return branch
}

func logicalOf(s avro.Schema) avro.LogicalSchema {
	if l, ok := s.(avro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

func logicalName(l avro.LogicalSchema) string {
	if l == nil {
		return "none"
	}
	if d, ok := l.(*avro.DecimalLogicalSchema); ok {
		return fmt.Sprintf("decimal(%d,%d)", d.Precision(), d.Scale())
	}
	return string(l.Type())
}

// typeName is a short spelling of a field type for messages.
func typeName(s avro.Schema) string {
	n := nonNull(s)
	if r, ok := n.(*avro.RefSchema); ok {
		n = r.Schema()
	}
	name := string(n.Type())
	if r, ok := n.(*avro.RecordSchema); ok {
		name += " " + r.FullName()
	}
	if l := logicalOf(n); l != nil {
		name += " (" + logicalName(l) + ")"
	}
	if a, ok := n.(*avro.ArraySchema); ok {
		name = "array of " + typeName(a.Items())
	}
	if n != s {
		name = "nullable " + name
	}
	return name
}

// keyChange is liberator's rule for key subjects. A key identifies its row
// in a compacted topic, and the Confluent wire format puts the schema id in
// the key's bytes, so only a key schema that encodes exactly like the
// latest one (the same canonical form: names, types and logical types, docs
// and defaults aside) keeps the keys of older events. Any other change
// would leave those events in the topic for good, never replaced or
// deleted by newer ones, whatever schema resolution allows; under any level
// but NONE it is incompatible.
func keyChange(subject string, level sr.CompatibilityLevel, s avro.Schema, latest version) error {
	if level == sr.CompatNone || s.String() == latest.schema.String() {
		return nil
	}
	var fields []string
	if rr, ok := s.(*avro.RecordSchema); ok {
		if wr, ok := latest.schema.(*avro.RecordSchema); ok {
			for _, f := range rr.Fields() {
				if old := fieldByName(wr, f.Name()); old == nil || old.Type().String() != f.Type().String() {
					fields = append(fields, f.Name())
				}
			}
			for _, f := range wr.Fields() {
				if fieldByName(rr, f.Name()) == nil {
					fields = append(fields, f.Name())
				}
			}
		}
	}
	return &IncompatibleError{
		Subject: subject, Level: level.String(), Version: latest.number, Fields: fields,
		Reason: fmt.Sprintf("the key changes from (%s) in version %d to (%s); keys are compared as bytes in a compacted topic, so events under the old key would never be replaced or deleted", fieldList(latest.schema), latest.number, fieldList(s)),
	}
}

// fieldList spells a record's fields with their types, for messages.
func fieldList(s avro.Schema) string {
	r, ok := s.(*avro.RecordSchema)
	if !ok {
		return typeName(s)
	}
	parts := make([]string, len(r.Fields()))
	for i, f := range r.Fields() {
		parts[i] = f.Name() + " " + typeName(f.Type())
	}
	return strings.Join(parts, ", ")
}
