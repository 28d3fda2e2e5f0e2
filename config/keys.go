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
		for k, ft := range grafted[path] {
			fields[k] = ft
		}
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

// grafted are the sections declared in this package but written inside a
// section whose struct another package owns, by the path of that section:
// kafka.embedded (Config.Embedded) stands in kafka (kafka.Config). The
// walker allows their keys where they stand, and decodeGrafted decodes
// them into their fields.
var grafted = map[string]map[string]reflect.Type{
	"kafka": {"embedded": reflect.TypeFor[EmbeddedConfig]()},
}

// decodeGrafted decodes the grafted sections of the document into cfg.
func decodeGrafted(doc *yaml.Node, cfg *Config) error {
	into := map[string]any{"kafka.embedded": &cfg.Embedded}
	var errs []error
	for section, keys := range grafted {
		for key := range keys {
			n := lookupKey(doc, section, key)
			if n == nil {
				continue
			}
			if err := n.Decode(into[section+"."+key]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// lookupKey returns the value node of the key path in the document, or nil.
func lookupKey(doc *yaml.Node, section, key string) *yaml.Node {
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil
		}
		doc = doc.Content[0]
	}
	n := doc
	for _, k := range append(strings.Split(section, "."), key) {
		if n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
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
