package mysql

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPositionEncodesAndParsesBack(t *testing.T) {
	tests := []struct {
		name string
		pos  Position
		enc  string
		str  string
	}{
		{
			name: "a file position without GTIDs",
			pos:  Position{Flavor: "mysql", File: "binlog.000003", Offset: 1234},
			enc:  "mysql:file=binlog.000003&flavor=mysql&offset=1234",
			str:  "binlog.000003:1234",
		},
		{
			name: "a MariaDB position with one domain",
			pos:  Position{Flavor: "mariadb", File: "binlog.000001", Offset: 4, GTID: "0-1-42"},
			enc:  "mysql:file=binlog.000001&flavor=mariadb&gtid=0-1-42&offset=4",
			str:  "binlog.000001:4 gtid=0-1-42",
		},
		{
			name: "a MariaDB GTID state with several domains and no file",
			pos:  Position{Flavor: "mariadb", GTID: "0-1-42,1-2-7,10-3-1"},
			enc:  "mysql:flavor=mariadb&gtid=0-1-42%2C1-2-7%2C10-3-1",
			str:  "gtid=0-1-42,1-2-7,10-3-1",
		},
		{
			name: "a MySQL GTID set",
			pos:  Position{Flavor: "mysql", File: "mysql-bin.000002", Offset: 157, GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7"},
			enc:  "mysql:file=mysql-bin.000002&flavor=mysql&gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562%3A1-5%3A7&offset=157",
			str:  "mysql-bin.000002:157 gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7",
		},
		{
			name: "a file name with characters a URL escapes",
			pos:  Position{Flavor: "mariadb", File: "my bin&log.000001", Offset: 99},
			enc:  "mysql:file=my+bin%26log.000001&flavor=mariadb&offset=99",
			str:  "my bin&log.000001:99",
		},
		{
			name: "a reset position of MariaDB",
			pos:  Position{Flavor: "mariadb", Reset: true},
			enc:  "mysql:flavor=mariadb&reset=1",
			str:  "reset (stream from the end of the binary log and snapshot every table again with reconcile)",
		},
		{
			name: "a reset position of MySQL",
			pos:  Position{Flavor: "mysql", Reset: true},
			enc:  "mysql:flavor=mysql&reset=1",
			str:  "reset (stream from the end of the binary log and snapshot every table again with reconcile)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.pos.Encode()); got != tt.enc {
				t.Errorf("Encode() = %q, want %q", got, tt.enc)
			}
			if got := tt.pos.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			back, err := ParsePosition([]byte(tt.enc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.pos, back); diff != "" {
				t.Errorf("ParsePosition(Encode()) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePositionCanonicalizesGTIDs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"MariaDB domains are sorted by number", "mysql:flavor=mariadb&gtid=10-1-5,2-1-3", "2-1-3,10-1-5"},
		{"MySQL intervals are merged and UUIDs lower-cased", "mysql:flavor=mysql&gtid=3E11FA47-71CA-11E1-9E33-C80AA9429562:1-3:4-5", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"},
		{"MySQL sets are sorted by UUID", "mysql:flavor=mysql&gtid=ffffffff-71ca-11e1-9e33-c80aa9429562:1,00000000-71ca-11e1-9e33-c80aa9429562:2", "00000000-71ca-11e1-9e33-c80aa9429562:2,ffffffff-71ca-11e1-9e33-c80aa9429562:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePosition([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if p.GTID != tt.want {
				t.Errorf("GTID = %q, want %q", p.GTID, tt.want)
			}
		})
	}
}

func TestParsePositionRejectsMalformedInput(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"a PostgreSQL position", "pg:0/16B3748", "not a MySQL position"},
		{"an unknown flavor", "mysql:flavor=oracle&file=a&offset=1", `flavor "oracle"`},
		{"a file without an offset", "mysql:flavor=mysql&file=a", "file and offset go together"},
		{"an offset without a file", "mysql:flavor=mysql&offset=1", "file and offset go together"},
		{"an offset past 32 bits", "mysql:flavor=mysql&file=a&offset=4294967296", "offset"},
		{"nothing to resume from", "mysql:flavor=mysql", "neither file nor gtid"},
		{"an unknown field", "mysql:flavor=mysql&file=a&offset=1&lsn=2", `unknown field "lsn"`},
		{"a repeated field", "mysql:flavor=mysql&file=a&file=b&offset=1", `"file" appears 2 times`},
		{"a MariaDB GTID with two parts", "mysql:flavor=mariadb&gtid=0-1", "0-1"},
		{"a MariaDB state naming a domain twice", "mysql:flavor=mariadb&gtid=0-1-1,0-1-2", "domain twice"},
		{"a MariaDB state with an empty element", "mysql:flavor=mariadb&gtid=0-1-1,", "empty element"},
		{"a MySQL set without intervals", "mysql:flavor=mysql&gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562", "invalid GTID format"},
		{"a MySQL set with a bad UUID", "mysql:flavor=mysql&gtid=nope:1-2", "nope"},
		{"a reset that is not 1", "mysql:flavor=mysql&reset=true", `reset "true" is not 1`},
		{"a reset with a file", "mysql:flavor=mysql&reset=1&file=a&offset=4", "only a flavor"},
		{"a reset with a GTID", "mysql:flavor=mariadb&reset=1&gtid=0-1-1", "only a flavor"},
		{"a reset with a state", `mysql:flavor=mariadb&reset=1&state={"tables":["s.t"]}`, "only a flavor"},
		{"a reset without a flavor", "mysql:reset=1", `flavor ""`},
		{"a MySQL GTID set in a MariaDB position", "mysql:flavor=mariadb&gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5", "gtid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePosition([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParsePosition(%q) succeeded", tt.in)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{
		"mysql:file=binlog.000003&flavor=mysql&offset=1234",
		"mysql:file=binlog.000001&flavor=mariadb&gtid=0-1-42&offset=4",
		"mysql:flavor=mariadb&gtid=0-1-42%2C1-2-7",
		"mysql:flavor=mysql&gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562%3A1-5%3A7",
		"mysql:flavor=mysql&gtid=3e11fa47-71ca-11e1-9e33-c80aa9429562%3Atag%3A1-5",
		"mysql:flavor=mariadb&gtid=0-0-0",
		"mysql:flavor=mariadb&reset=1",
		"mysql:flavor=mysql&reset=1&file=a&offset=1",
		`mysql:file=b.1&flavor=mariadb&offset=4&state={"tables":["s.t"],"snapshot":{"initial":true,"tables":[{"table":"s.t","after":["i:-4","x:6575"]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePosition(b)
		if err != nil {
			return
		}
		back, err := ParsePosition(p.Encode())
		if err != nil {
			t.Fatalf("ParsePosition(%q) = %+v, whose encoding %q does not parse: %v", b, p, p.Encode(), err)
		}
		if diff := cmp.Diff(p, back); diff != "" {
			t.Fatalf("ParsePosition(%q) does not round-trip (-first +second):\n%s", b, diff)
		}
		_ = p.String()
	})
}
