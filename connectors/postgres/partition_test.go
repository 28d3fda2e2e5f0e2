package postgres

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCreatePublicationSQL(t *testing.T) {
	tests := []struct {
		name   string
		pub    string
		tables []tableName
		want   string
	}{
		{"one table is published via the partition root",
			"liberator", []tableName{{"public", "orders"}},
			`CREATE PUBLICATION "liberator" FOR TABLE "public"."orders" WITH (publish_via_partition_root = true)`},
		{"tables keep their config order and are quoted",
			"cdc", []tableName{{"shop", "Orders"}, {"public", "measurements"}},
			`CREATE PUBLICATION "cdc" FOR TABLE "shop"."Orders", "public"."measurements" WITH (publish_via_partition_root = true)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, createPublicationSQL(tt.pub, tt.tables)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestViaRootProblem(t *testing.T) {
	parent := partitionInfo{table: tableName{"public", "measurements"}, partitioned: true}
	plain := partitionInfo{table: tableName{"public", "orders"}}
	leaf := partitionInfo{table: tableName{"public", "m_2024"}, ancestors: []tableName{{"public", "measurements"}}}
	tests := []struct {
		name    string
		viaRoot bool
		info    partitionInfo
		want    string
	}{
		{"a partitioned table without the option is refused with the fix", false, parent,
			`publication does not publish via the partition root: publication "liberator" lacks publish_via_partition_root, so the changes of the partitioned table public.measurements would arrive under its partitions' names and be lost: ALTER PUBLICATION liberator SET (publish_via_partition_root = true);`},
		{"a partitioned table with the option is fine", true, parent, ""},
		{"a plain table does not need the option", false, plain, ""},
		{"a leaf partition captured alone does not need the option", false, leaf, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := viaRootProblem("liberator", tt.viaRoot, tt.info)
			if d := cmp.Diff(tt.want, errText(err)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if tt.want != "" && !errors.Is(err, ErrNotPublishedViaRoot) {
				t.Errorf("error does not wrap ErrNotPublishedViaRoot: %v", err)
			}
		})
	}
}

func TestCapturedTwiceProblem(t *testing.T) {
	leaf := partitionInfo{table: tableName{"public", "m_2024_01"}, ancestors: []tableName{{"public", "m_2024"}, {"public", "measurements"}}}
	tests := []struct {
		name     string
		info     partitionInfo
		captured []tableName
		want     string
	}{
		{"a partition captured beside its parent is refused", leaf,
			[]tableName{{"public", "m_2024_01"}, {"public", "m_2024"}},
			"a partition of a captured table is captured too: public.m_2024_01 is a partition of public.m_2024, whose topic carries its rows and changes; remove public.m_2024_01 from source.tables"},
		{"a partition captured beside its grandparent is refused", leaf,
			[]tableName{{"public", "m_2024_01"}, {"public", "measurements"}},
			"a partition of a captured table is captured too: public.m_2024_01 is a partition of public.measurements, whose topic carries its rows and changes; remove public.m_2024_01 from source.tables"},
		{"a partition captured alone is fine", leaf, []tableName{{"public", "m_2024_01"}}, ""},
		{"a table that is no partition is fine", partitionInfo{table: tableName{"public", "measurements"}, partitioned: true},
			[]tableName{{"public", "measurements"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			captured := map[tableName]bool{}
			for _, tn := range tt.captured {
				captured[tn] = true
			}
			err := capturedTwiceProblem(tt.info, captured)
			if d := cmp.Diff(tt.want, errText(err)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if tt.want != "" && !errors.Is(err, ErrPartitionCapturedTwice) {
				t.Errorf("error does not wrap ErrPartitionCapturedTwice: %v", err)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
