package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkKeys reports every key of the document that t, a struct type, does
// not declare, each with its full key path, its line, and the keys allowed
// where it stands. It never names a Go type.
func checkKeys(doc *yaml.Node, t reflect.Type) error {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	var errs []error
	walkKeys(doc, t, "", &errs)
	return errors.Join(errs...)
}

func walkKeys(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.AliasNode:
		return
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && !isScalarStruct(t):
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				where := "at the top level"
				if path != "" {
					where = "in " + path
				}
				*errs = append(*errs, fmt.Errorf("line %d: %s: unknown key (allowed %s: %s)",
					k.Line, join(path, k.Value), where, strings.Join(slices.Sorted(maps.Keys(fields)), ", ")))
				continue
			}
			walkKeys(v, ft, join(path, k.Value), errs)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		elem := t.Elem()
		section, _ := reflect.Zero(t).Interface().(sectioned)
		for i, c := range n.Content {
			et := elem
			if section != nil && c.Kind == yaml.MappingNode {
				et = section.itemSection()
			}
			walkKeys(c, et, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

// sectioned is implemented by lists whose entries are each a value or a
// section of the keys of a struct (source.tables: schema.table or
// {schema, table}).
type sectioned interface{ itemSection() reflect.Type }

// isScalarStruct reports whether t is a struct that YAML gives as a single
// value, such as a time.
func isScalarStruct(t reflect.Type) bool {
	return t.PkgPath() == "time"
}

// yamlFields returns the YAML keys of a struct's fields, following inline
// structs.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
