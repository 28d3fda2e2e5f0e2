package mysql

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func goodVariables() map[string]string {
	return map[string]string{
		"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL",
		"server_id": "1",
	}
}

func TestCheckVariablesAcceptsAServerThatLogsFullRows(t *testing.T) {
	for _, tt := range []struct {
		name   string
		flavor string
		change func(map[string]string)
		gtid   bool
	}{
		{"MariaDB always has GTIDs", FlavorMariaDB, func(map[string]string) {}, true},
		{"MySQL without gtid_mode", FlavorMySQL, func(map[string]string) {}, false},
		{"MySQL with gtid_mode ON", FlavorMySQL, func(v map[string]string) { v["gtid_mode"] = "ON" }, true},
		{"MySQL with gtid_mode ON_PERMISSIVE uses files", FlavorMySQL, func(v map[string]string) { v["gtid_mode"] = "ON_PERMISSIVE" }, false},
		{"lower-case values", FlavorMySQL, func(v map[string]string) { v["binlog_format"] = "row" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVariables()
			tt.change(v)
			setup, err := checkVariables(tt.flavor, DefaultServerID, v)
			if err != nil {
				t.Fatal(err)
			}
			if setup.gtid != tt.gtid {
				t.Errorf("gtid = %t, want %t", setup.gtid, tt.gtid)
			}
		})
	}
}

func TestCheckVariablesNamesVariableValueAndFix(t *testing.T) {
	tests := []struct {
		name   string
		flavor string
		change func(map[string]string)
		want   []string
	}{
		{
			name: "statement logging", flavor: FlavorMariaDB,
			change: func(v map[string]string) { v["binlog_format"] = "MIXED" },
			want:   []string{"binlog_format is MIXED; liberator needs ROW", "set binlog_format=ROW"},
		},
		{
			name: "minimal rows and metadata together", flavor: FlavorMySQL,
			change: func(v map[string]string) { v["binlog_row_image"] = "MINIMAL"; v["binlog_row_metadata"] = "MINIMAL" },
			want: []string{
				"binlog_row_image is MINIMAL; liberator needs FULL", "set binlog_row_image=FULL",
				"binlog_row_metadata is MINIMAL; liberator needs FULL", "set binlog_row_metadata=FULL",
			},
		},
		{
			name: "a server too old for row metadata", flavor: FlavorMariaDB,
			change: func(v map[string]string) { delete(v, "binlog_row_metadata") },
			want:   []string{"binlog_row_metadata is not a variable of this server", "MariaDB 10.5 or later"},
		},
		{
			name: "no binary log", flavor: FlavorMariaDB,
			change: func(v map[string]string) { v["log_bin"] = "OFF" },
			want:   []string{"log_bin is OFF", "--log-bin"},
		},
		{
			name: "partial JSON updates", flavor: FlavorMySQL,
			change: func(v map[string]string) { v["binlog_row_value_options"] = "PARTIAL_JSON" },
			want:   []string{"binlog_row_value_options is PARTIAL_JSON", "binlog_row_value_options=''"},
		},
		{
			name: "our server id is the server's", flavor: FlavorMySQL,
			change: func(v map[string]string) { v["server_id"] = "4242" },
			want:   []string{"source.mysql.server_id: 4242 is the server's own server_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVariables()
			tt.change(v)
			_, err := checkVariables(tt.flavor, DefaultServerID, v)
			if !errors.Is(err, ErrServerConfig) {
				t.Fatalf("error %v is not ErrServerConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseBinlogPositions(t *testing.T) {
	tests := []struct {
		name  string
		parse func() (Position, error)
		want  Position
	}{
		{
			name: "SHOW MASTER STATUS on MariaDB",
			parse: func() (Position, error) {
				return parseMasterStatus(FlavorMariaDB, true, [][]string{{"binlog.000002", "1234", "", ""}})
			},
			want: Position{Flavor: FlavorMariaDB, File: "binlog.000002", Offset: 1234},
		},
		{
			name: "SHOW MASTER STATUS on MySQL with GTIDs",
			parse: func() (Position, error) {
				return parseMasterStatus(FlavorMySQL, true, [][]string{{"mysql-bin.000003", "157", "", "", "3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5,\n3E11FA47-71CA-11E1-9E33-C80AA9429562:7"}})
			},
			want: Position{Flavor: FlavorMySQL, File: "mysql-bin.000003", Offset: 157, GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"},
		},
		{
			name: "SHOW MASTER STATUS on MySQL without GTIDs",
			parse: func() (Position, error) {
				return parseMasterStatus(FlavorMySQL, false, [][]string{{"mysql-bin.000003", "157", "", "", ""}})
			},
			want: Position{Flavor: FlavorMySQL, File: "mysql-bin.000003", Offset: 157},
		},
		{
			name: "MariaDB's snapshot status",
			parse: func() (Position, error) {
				return parseSnapshotStatus([][]string{{"Binlog_snapshot_file", "binlog.000001"}, {"Binlog_snapshot_position", "325"}})
			},
			want: Position{Flavor: FlavorMariaDB, File: "binlog.000001", Offset: 325},
		},
		{
			name: "MySQL's log_status",
			parse: func() (Position, error) {
				return parseLogStatus(`{"gtid_executed": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-12", "binary_log_file": "binlog.000004", "binary_log_position": 2375}`, true)
			},
			want: Position{Flavor: FlavorMySQL, File: "binlog.000004", Offset: 2375, GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-12"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBinlogPositionsRefuses(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"an empty SHOW MASTER STATUS", func() error { _, err := parseMasterStatus(FlavorMySQL, false, nil); return err }(), "is log_bin on"},
		{"a snapshot status without a position", func() error {
			_, err := parseSnapshotStatus([][]string{{"Binlog_snapshot_file", "binlog.000001"}})
			return err
		}(), "binlog_snapshot_position is missing"},
		{"log_status without a binary log", func() error { _, err := parseLogStatus(`{"gtid_executed": ""}`, false); return err }(), "no binary log position"},
		{"log_status with a bad GTID set", func() error {
			_, err := parseLogStatus(`{"gtid_executed": "nope", "binary_log_file": "b.1", "binary_log_position": 4}`, true)
			return err
		}(), "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
				t.Errorf("error %v does not mention %q", tt.err, tt.want)
			}
		})
	}
}

func TestParseTable(t *testing.T) {
	cols := [][]string{
		{"id", "int", "int(11)", "NO", "", "10", "0", "0", "orders"},
		{"doc", "longtext", "longtext", "YES", "utf8mb4", "0", "0", "4294967295", "orders"},
		{"note", "longtext", "longtext", "YES", "utf8mb4", "0", "0", "4294967295", "orders"},
		{"amount", "decimal", "decimal(12,2)", "YES", "", "12", "2", "0", "orders"},
	}
	checks := [][]string{{"doc", "json_valid(`doc`)"}, {"positive", "`amount` > 0"}, {"note", "json_valid(`doc`)"}}
	ts, err := parseTable(tableName{"shop", "orders"}, cols, [][]string{{"id"}}, checks)
	if err != nil {
		t.Fatal(err)
	}
	want := []infoColumn{
		{Name: "id", DataType: "int", ColumnType: "int(11)", Precision: 10},
		{Name: "doc", DataType: "longtext", ColumnType: "longtext", Nullable: true, Charset: "utf8mb4", OctetLen: 4294967295, JSON: true},
		{Name: "note", DataType: "longtext", ColumnType: "longtext", Nullable: true, Charset: "utf8mb4", OctetLen: 4294967295},
		{Name: "amount", DataType: "decimal", ColumnType: "decimal(12,2)", Nullable: true, Precision: 12, Scale: 2},
	}
	if diff := cmp.Diff(want, ts.columns); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"id"}, ts.key); diff != "" {
		t.Errorf("key (-want +got):\n%s", diff)
	}

	if _, err := parseTable(tableName{"shop", "gone"}, nil, nil, nil); !errors.Is(err, ErrTableNotFound) {
		t.Errorf("a table without columns: %v", err)
	}
	if _, err := parseTable(tableName{"shop", "Orders"}, cols, [][]string{{"id"}}, nil); !errors.Is(err, ErrTableNotFound) ||
		!strings.Contains(err.Error(), "the server spells it shop.orders") {
		t.Errorf("a table name in the wrong case: %v", err)
	}
	if _, err := parseTable(tableName{"shop", "orders"}, cols, nil, nil); !errors.Is(err, ErrNoPrimaryKey) {
		t.Errorf("a table without a key: %v", err)
	}
}

func TestParseCollationsKnowsBinary(t *testing.T) {
	m, err := parseCollations([][]string{{"8", "latin1"}, {"2048", "utf8mb4"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[uint64]string{8: "latin1", 2048: "utf8mb4", 63: "binary"}, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
