package schema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// ErrNoSchema is wrapped by Latest's error when the subject has no schema.
var ErrNoSchema = errors.New("the subject has no schema")

// Latest returns the id and the parsed schema of the latest version
// registered under subject. A subject with none is an error wrapping
// ErrNoSchema. Nothing is cached but the parsed schema of each id: a
// version registered later is seen at the next call.
func (r *Registry) Latest(ctx context.Context, subject string) (int, avro.Schema, error) {
	ss, err := r.cl.SchemaByVersion(ctx, subject, -1)
	switch {
	case notFound(err):
		return 0, nil, fmt.Errorf("read latest schema of subject %q: %w", subject, ErrNoSchema)
	case err != nil:
		return 0, nil, markTransient(ctx, fmt.Errorf("read latest schema of subject %q: %w", subject, err))
	}
	s, err := r.SchemaByID(ctx, ss.ID)
	if err != nil {
		return 0, nil, fmt.Errorf("read latest schema of subject %q: %w", subject, err)
	}
	return ss.ID, s, nil
}

// InferSchema returns a record schema for payload, a JSON object, named
// name (a dotted full name: its last part names the record, the rest is
// its namespace, else namespace is). Each field is a union of null and
// the type of its value, with default null, so that later payloads may
// leave it out: a text is a string, a whole number a long, another number
// a double, true and false a boolean, an object a record of its own, an
// array an array of its first element's type (of strings when empty),
// and null a string. Field names must be Avro names.
func InferSchema(name, namespace string, payload []byte) (avro.Schema, error) {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, &PayloadError{Err: errors.New("is not a JSON object: a schema can be inferred only from an object")}
	}
	full := avroName(name)
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		namespace, full = full[:i], full[i+1:]
	}
	rec, err := inferRecord(d, full, "")
	if err != nil {
		return nil, err
	}
	rec["namespace"] = namespace
	text, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return avro.ParseWithCache(string(text), "", &avro.SchemaCache{})
}

// avroName turns a type such as "com.acme.OrderPlaced" or "order-placed"
// into a valid Avro full name: each part of A-Z, a-z, 0-9 and _, not
// starting with a digit.
func avroName(s string) string {
	if s == "" {
		return "Event"
	}
	parts := strings.Split(s, ".")
	for i, p := range parts {
		b := []byte(p)
		for j, c := range b {
			if !isNameByte(c) {
				b[j] = '_'
			}
		}
		if len(b) == 0 || isDigit(b[0]) {
			b = append([]byte{'_'}, b...)
		}
		parts[i] = string(b)
	}
	return strings.Join(parts, ".")
}

// inferRecord reads an object's members, after its '{', up to its '}'.
func inferRecord(d *json.Decoder, name, path string) (map[string]any, error) {
	var fields []any
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, &PayloadError{Field: path, Err: fmt.Errorf("is not JSON: %w", err)}
		}
		key := tok.(string)
		fp := fieldPath(path, key)
		if !validName(key) {
			return nil, &PayloadError{Field: fp, Err: errors.New("is not an Avro field name (letters, digits and _, not starting with a digit); register the schema yourself")}
		}
		t, err := inferValue(d, name+"_"+key, fp)
		if err != nil {
			return nil, err
		}
		fields = append(fields, map[string]any{"name": key, "type": []any{"null", t}, "default": nil})
	}
	if _, err := d.Token(); err != nil {
		return nil, &PayloadError{Field: path, Err: fmt.Errorf("is not JSON: %w", err)}
	}
	if fields == nil {
		fields = []any{}
	}
	return map[string]any{"type": "record", "name": name, "fields": fields}, nil
}

func inferValue(d *json.Decoder, name, path string) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, &PayloadError{Field: path, Err: fmt.Errorf("is not JSON: %w", err)}
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return inferRecord(d, name, path)
		}
		// An array: its first element's type; the others are skipped.
		var items any = "string"
		for i := 0; d.More(); i++ {
			if i == 0 {
				if items, err = inferValue(d, name, path+"[0]"); err != nil {
					return nil, err
				}
				continue
			}
			var skip json.RawMessage
			if err := d.Decode(&skip); err != nil {
				return nil, &PayloadError{Field: path, Err: fmt.Errorf("is not JSON: %w", err)}
			}
		}
		if _, err := d.Token(); err != nil {
			return nil, &PayloadError{Field: path, Err: fmt.Errorf("is not JSON: %w", err)}
		}
		return map[string]any{"type": "array", "items": items}, nil
	case string, nil:
		return "string", nil
	case bool:
		return "boolean", nil
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "double", nil
		}
		return "long", nil
	}
	return nil, &PayloadError{Field: path, Err: fmt.Errorf("holds %v, which has no Avro type", tok)}
}

func validName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}
