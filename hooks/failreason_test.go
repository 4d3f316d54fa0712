package hooks

import (
	"strings"
	"testing"
)

// TestPythonFailure: a traceback becomes "<exception>: <message> at <file>:<line>",
// the line being the model's own deepest frame, not the library's.
func TestPythonFailure(t *testing.T) {
	const staged = "/in/_code/revenue.py"
	for _, tc := range []struct{ name, out, want string }{
		{"zero division", `Traceback (most recent call last):
  File "/in/_code/revenue.py", line 14, in <module>
    x = 1 / 0
        ~~^~~
ZeroDivisionError: division by zero
`, "ZeroDivisionError: division by zero at models/revenue.py:14"},
		{"deepest own frame, library below", `Traceback (most recent call last):
  File "/in/_code/revenue.py", line 30, in <module>
    main()
  File "/in/_code/revenue.py", line 21, in main
    Decimal(row["amount"]) / 0
  File "/usr/lib/python3.11/decimal.py", line 99, in div
    raise
decimal.DivisionByZero: [<class 'decimal.DivisionByZero'>]
weir node python: revenue.py: decimal.DivisionByZero (exit status 1)
`, "decimal.DivisionByZero: [<class 'decimal.DivisionByZero'>] at models/revenue.py:21"},
		{"no frame of the script", `Traceback (most recent call last):
  File "<string>", line 1, in <module>
KeyError: 'amount'
`, "KeyError: 'amount' in models/revenue.py"},
		{"no traceback", "just some output\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := pythonFailure([]byte(tc.out), staged, "models/revenue.py"); got != tc.want {
				t.Fatalf("pythonFailure = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestRedactServerPaths: what the client sees names no server folder (the
// staging folders, HidePaths), whether in a progress line or a refusal.
func TestRedactServerPaths(t *testing.T) {
	h := &Pipeline{cfg: PipelineConfig{WorkDir: "/srv/weir/runs", HidePaths: []string{"/srv/weir", "/run/weir/exec-1a2b/"}}}
	var client strings.Builder
	out := &progress{w: &client, redact: h.redact}
	out.linef("weir: main.x failed: stage input main.y: link /srv/weir/runs/r-1/0/in/main.y/part-0.parquet: no space left")
	out.linef("weir: sandbox: mkdir /run/weir/exec-1a2b/c3/rootfs: permission denied")
	got := client.String() + h.redact("weir: read /srv/weir/pebble: corrupt")
	for _, bad := range []string{"/srv/weir", "/run/weir/exec-1a2b"} {
		if strings.Contains(got, bad) {
			t.Fatalf("the client sees %q:\n%s", bad, got)
		}
	}
	if !strings.Contains(got, "r-1/0/in/main.y/part-0.parquet: no space left") || !strings.Contains(got, "c3/rootfs: permission denied") {
		t.Fatalf("redaction cut more than the server's folders:\n%s", got)
	}
}
