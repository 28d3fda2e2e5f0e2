package mysql

import (
	"strings"
	"testing"

	"github.com/liberator-cdc/liberator/connectors"
)

func TestDecideStart(t *testing.T) {
	byFile := &Position{Flavor: FlavorMariaDB, File: "binlog.000002", Offset: 4}
	byGTID := &Position{Flavor: FlavorMariaDB, GTID: "0-1-42"}
	reset := &Position{Flavor: FlavorMariaDB, Reset: true}
	tests := []struct {
		name    string
		from    *Position
		mode    connectors.SnapshotMode
		gtid    bool
		want    startKind
		wantErr string
	}{
		{"nothing stored snapshots first", nil, connectors.SnapshotInitial, true, startSnapshot, ""},
		{"nothing stored in snapshot mode only snapshots", nil, connectors.SnapshotOnly, false, startSnapshot, ""},
		{"nothing stored in mode never streams from the end", nil, connectors.SnapshotNever, true, startAtEnd, ""},
		{"a stored position resumes", byFile, connectors.SnapshotInitial, false, startResume, ""},
		{"a stored GTID state resumes on a GTID server", byGTID, connectors.SnapshotNever, true, startResume, ""},
		{"a GTID state alone needs GTIDs", byGTID, connectors.SnapshotInitial, false, 0, "gtid_mode is not ON"},
		{"a reset re-snapshots while streaming", reset, connectors.SnapshotInitial, true, startReset, ""},
		{"a reset in mode never re-snapshots too", reset, connectors.SnapshotNever, true, startReset, ""},
		{"a reset cannot be served by snapshot mode only", reset, connectors.SnapshotOnly, true, 0, "run the daemon"},
		{"a position of the other flavor is refused", &Position{Flavor: FlavorMySQL, File: "b.1", Offset: 4}, connectors.SnapshotInitial, true, 0, "from a mysql server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decideStart(tt.from, FlavorMariaDB, tt.mode, tt.gtid)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("decideStart = %v, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("decideStart = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
