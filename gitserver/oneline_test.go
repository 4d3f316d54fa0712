package gitserver

import (
	"strings"
	"testing"
)

// TestOneLine: a refusal reason reaches git's report-status as one line
// with its control characters escaped, cut at a character boundary.
func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"weir: main.x failed: boom", "weir: main.x failed: boom"},
		{"two\nlines\r\nthree", "two lines three"},
		{"\x1b[2K\rok main", `\x1b[2K\x0dok main`},
		{"bidi \u202eevil", `bidi \u202eevil`},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := oneLine(strings.Repeat("x", 999) + "é"); got != strings.Repeat("x", 999) {
		t.Errorf("oneLine cut inside a character: %q", got[990:])
	}
}
