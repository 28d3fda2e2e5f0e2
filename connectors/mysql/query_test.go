package mysql

import "testing"

func TestShownKeyValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"i:-42", "-42"},
		{"u:18446744073709551615", "18446744073709551615"},
		{"x:323032362d31312d33302031333a34363a32302e383332313630", "2026-11-30 13:46:20.832160"},
		{"x:00ff", "x:00ff"},
	} {
		if got := shownKeyValue(tc.in); got != tc.want {
			t.Errorf("shownKeyValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
