package postgres

import "testing"

func TestVersionError(t *testing.T) {
	cases := []struct {
		name    string
		num     int
		version string
		bad     bool
	}{
		{name: "PostgreSQL 13 is refused", num: 130014, version: "13.14", bad: true},
		{name: "PostgreSQL 14 is accepted", num: 140000, version: "14.0"},
		{name: "PostgreSQL 15 is accepted", num: 150007, version: "15.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := versionError(c.num, c.version); (err != nil) != c.bad {
				t.Fatalf("versionError(%d) = %v", c.num, err)
			}
		})
	}
}
