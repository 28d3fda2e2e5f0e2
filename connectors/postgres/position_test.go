package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/liberator-cdc/liberator/connectors"
	"github.com/liberator-cdc/liberator/connectors/snapshot"
)

func TestPositionRoundTrips(t *testing.T) {
	tests := []struct {
		name string
		pos  Position
		enc  string
	}{
		{"a bare LSN encodes as before", Position{LSN: 0x16B3748}, "pg:0/16B3748"},
		{"captured tables follow the LSN as JSON", Position{LSN: 0x16B3748, Tables: []string{"public.items", "public.accounts"}},
			`pg:0/16B3748;{"tables":["public.items","public.accounts"]}`},
		{"an initial snapshot records each table's last key", Position{LSN: 1, Tables: []string{"public.items", "public.accounts"}, Snapshot: &snapshot.State{
			Initial: true,
			Tables:  []snapshot.TableState{{Table: "public.items", After: []string{"42"}, Done: true}, {Table: "public.accounts", After: []string{"eu", "7"}}},
		}}, `pg:0/1;{"tables":["public.items","public.accounts"],"snapshot":{"initial":true,"tables":[{"table":"public.items","after":["42"],"done":true},{"table":"public.accounts","after":["eu","7"]}]}}`},
		{"keys keep any text", Position{LSN: 2, Tables: []string{"s.t"}, Snapshot: &snapshot.State{
			Tables: []snapshot.TableState{{Table: "s.t", After: []string{`a;b"c\`, "", "漢字"}}},
		}}, `pg:0/2;{"tables":["s.t"],"snapshot":{"tables":[{"table":"s.t","after":["a;b\"c\\","","漢字"]}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.pos.Encode()); got != tt.enc {
				t.Errorf("Encode() = %s, want %s", got, tt.enc)
			}
			got, err := ParsePosition([]byte(tt.enc))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.pos, got); d != "" {
				t.Errorf("ParsePosition (-want +got):\n%s", d)
			}
		})
	}
}

func TestParsePositionRefusesWhatItCannotResume(t *testing.T) {
	tests := []struct{ name, in, says string }{
		{"another source's position", "mysql:bin.000001:4", "not a PostgreSQL position"},
		{"a bad LSN", "pg:zz", "parse position"},
		{"state that is not JSON", "pg:0/1;tables", "invalid character"},
		{"state without tables", `pg:0/1;{"tables":null}`, "no tables"},
		{"a table listed twice", `pg:0/1;{"tables":["a.b","a.b"]}`, "listed twice"},
		{"an unknown field, from a newer version", `pg:0/1;{"tables":["a.b"],"future":1}`, "unknown field"},
		{"a snapshot of no tables", `pg:0/1;{"tables":["a.b"],"snapshot":{"tables":[]}}`, "a snapshot of no tables"},
		{"an empty table name", `pg:0/1;{"tables":["a.b"],"snapshot":{"tables":[{"table":""}]}}`, "empty table name"},
		{"data after the state", `pg:0/1;{"tables":["a.b"]}}`, "data after the state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePosition([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("ParsePosition(%q) = %v, want an error saying %q", tt.in, err, tt.says)
			}
		})
	}
}

func TestPositionStringNotesASnapshot(t *testing.T) {
	p := Position{LSN: 0x10, Tables: []string{"a.b", "a.c"}, Snapshot: &snapshot.State{Initial: true, Tables: []snapshot.TableState{{Table: "a.b", Done: true}, {Table: "a.c"}}}}
	if got, want := p.String(), "0/10 (initial snapshot, 1 of 2 tables done)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p.Snapshot.Tables[1].After = []string{"eu", "7"}
	if got, want := p.String(), "0/10 (initial snapshot, 1 of 2 tables done, a.c read up to key (eu, 7))"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Position{LSN: 0x10, Tables: []string{"a.b"}}).String(); got != "0/10" {
		t.Errorf("String() = %q, want 0/10", got)
	}
}

func TestPositionEqual(t *testing.T) {
	snap := &snapshot.State{Tables: []snapshot.TableState{{Table: "a.b", After: []string{"1"}}}}
	p := Position{LSN: 0x10, Tables: []string{"a.b"}, Snapshot: snap}
	for _, tt := range []struct {
		name string
		o    connectors.Position
		want bool
	}{
		{"itself", p, true},
		{"a copy of its state", Position{LSN: 0x10, Tables: []string{"a.b"}, Snapshot: &snapshot.State{Tables: slices.Clone(snap.Tables)}}, true},
		{"another LSN", Position{LSN: 0x11, Tables: p.Tables, Snapshot: snap}, false},
		{"other tables", Position{LSN: 0x10, Tables: []string{"a.c"}, Snapshot: snap}, false},
		{"no snapshot", Position{LSN: 0x10, Tables: p.Tables}, false},
		{"another source's position", nil, false},
	} {
		if got := p.Equal(tt.o); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzParsePosition(f *testing.F) {
	f.Add([]byte("pg:0/16B3748"))
	f.Add([]byte(`pg:0/16B3748;{"tables":["public.items"]}`))
	f.Add([]byte(`pg:0/1;{"tables":["a.b"],"snapshot":{"initial":true,"tables":[{"table":"a.b","after":["1","x"],"done":true}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePosition(b)
		if err != nil {
			return
		}
		enc := p.Encode()
		q, err := ParsePosition(enc)
		if err != nil {
			t.Fatalf("%q parsed to %v, whose encoding %q does not parse: %v", b, p, enc, err)
		}
		if d := cmp.Diff(p, q); d != "" || !p.Equal(q) {
			t.Fatalf("%q does not round-trip (-first +second):\n%s", b, d)
		}
		if !bytesEqual(enc, q.Encode()) {
			t.Fatalf("encoding of %q is not stable: %q then %q", b, enc, q.Encode())
		}
	})
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
