package hooks

import "testing"

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
