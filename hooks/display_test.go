package hooks

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
)

// TestNeutralise: what a node prints cannot move the cursor, erase or
// reorder what the pusher sees; printable text passes as it is.
func TestNeutralise(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, ünïcödé and 漢字\tand tabs\n", "plain text, ünïcödé and 漢字\tand tabs\n"},
		{"\x1b[2K\rweir: main advanced", `\x1b[2K\x0dweir: main advanced`},
		{"back\b\b\bspace, bell\a, del\x7f", `back\x08\x08\x08space, bell\x07, del\x7f`},
		{"c1 \u009b31m, nel \u0085", `c1 \x9b31m, nel \x85`},
		{"bidi \u202eevil\u202c, zwj \u200d, line sep \u2028", `bidi \u202eevil\u202c, zwj \u200d, line sep \u2028`},
		{"bad \xff\xfe utf8", `bad \xff\xfe utf8`},
		{"nbsp\u00a0ok", "nbsp\u00a0ok"},
	} {
		if got := Neutralise(tc.in); got != tc.want {
			t.Errorf("Neutralise(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := clipLine("a\r\nweir: x\x1b[0m "+strings.Repeat("é", 200), 20); got != `a weir: x\x1b[0m é...` {
		t.Errorf("clipLine = %q", got)
	}
}

// TestFailReason: the reason comes from the sandbox, then the runner's
// result; what the node printed only stands in when there is no result.
func TestFailReason(t *testing.T) {
	exit := &exec.Result{Reason: exec.ReasonExit, ExitCode: 1, Output: []byte("12 failing rows; first 10:\nnote\n0 failing rows\n")}
	expect := &pipeline.Node{Kind: pipeline.KindExpectation, File: "expectations/e.sql"}
	sql := &pipeline.Node{Kind: pipeline.KindSQL, File: "models/m.sql"}
	failing := contract.ExpectationFailed(12)
	failed := contract.Failed("weir node sql: Binder Error: x")
	for _, tc := range []struct {
		name string
		n    *pipeline.Node
		res  *exec.Result
		rep  *contract.Result
		tail []string
		want string
	}{
		{"expectation", expect, exit, &failing, []string{"0 failing rows"}, "12 failing rows"},
		{"runner's reason", sql, exit, &failed, []string{"weir: main advanced"}, "weir node sql: Binder Error: x"},
		{"no result: last line", sql, exit, nil, []string{"a", "segfault"}, "segfault"},
		{"sandbox's reason first", expect, &exec.Result{Reason: exec.ReasonTime, Message: "killed after 1s"}, &failing, nil, "killed after 1s"},
	} {
		if got := failReason(tc.n, tc.res, tc.rep, tc.tail); got != tc.want {
			t.Errorf("%s: failReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzNeutralise: whatever a node prints, what is shown is valid UTF-8
// with no control or format character but newline and tab, and showing
// it again changes nothing.
func FuzzNeutralise(f *testing.F) {
	for _, s := range []string{"plain\n", "\x1b[2K\rweir: main advanced", "\u202eevil\u202c", "\xff\xfe", "\u0085\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Neutralise(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Neutralise(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if r != '\n' && r != '\t' && !visible(r) {
				t.Fatalf("Neutralise(%q) = %q keeps %U", s, out, r)
			}
		}
		if again := Neutralise(out); again != out {
			t.Fatalf("Neutralise is not stable: %q then %q", out, again)
		}
		if line := clipLine(s, 200); strings.ContainsAny(line, "\n\t\r") || len(line) > 203 {
			t.Fatalf("clipLine(%q) = %q", s, line)
		}
	})
}
