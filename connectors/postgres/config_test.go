package postgres

import (
	"strings"
	"testing"
)

func TestValidateOnGap(t *testing.T) {
	cases := []struct {
		name, onGap, says string
	}{
		{name: "the default fails on a gap", onGap: ""},
		{name: "fail is an action", onGap: "fail"},
		{name: "resnapshot is an action", onGap: "resnapshot"},
		{name: "anything else is refused with the key and the choices", onGap: "ignore",
			says: `source.postgres.on_gap: "ignore" is not an action (use fail or resnapshot)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{DSN: "postgres://u@h/db", Tables: []string{"public.t"}, Options: Options{OnGap: GapAction(c.onGap)}}
			err := cfg.Validate()
			switch {
			case c.says == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.says)):
				t.Fatalf("Validate: %v, want it to say %q", err, c.says)
			}
		})
	}
}
