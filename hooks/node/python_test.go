package node

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/hooks/contract"
)

// typedSource is a SQL model whose table has one column of each type the
// weir module maps, NULLs and empty strings included.
const typedSource = `SELECT * FROM (VALUES
  (1, DATE '2024-01-02', 12.30::DECIMAL(12,2), TIMESTAMP '2024-01-02 03:04:05.5', 7::BIGINT, true, 'a,"b"', 0.1::DOUBLE),
  (2, DATE '2024-02-29', -0.05::DECIMAL(12,2), TIMESTAMP '2024-03-01 00:00:00', NULL, false, '', 1e300::DOUBLE),
  (3, DATE '1999-12-31', 100.00::DECIMAL(12,2), TIMESTAMP '1999-12-31 23:59:59', 9::BIGINT, NULL, NULL, NULL)
) t(id, day, amount, "at", n, ok, s, f)`

// typedModel reads main.src, checks in Python that each value has its
// type, adds a Decimal column and writes main.dst (body: the script's
// read-and-write lines, pandas or not).
const typedCheck = `
import datetime, decimal
def check(rows):
    for r in rows:
        assert isinstance(r["day"], datetime.date), r
        assert isinstance(r["amount"], decimal.Decimal), r
        assert r["id"] != 3 or str(r["amount"]) == "100.00", r["amount"]
    print("types ok")
`

// typedWant is main.dst as DuckDB sees it: types and values.
const typedWant = `id INTEGER|day DATE|amount DECIMAL(12,2)|at TIMESTAMP|n BIGINT|ok BOOLEAN|s VARCHAR|f DOUBLE|twice DECIMAL(5,2)
1|2024-01-02|12.30|2024-01-02 03:04:05.5|7|true|a,"b"|0.1|24.60
2|2024-02-29|-0.05|2024-03-01 00:00:00|NULL|false||1e+300|-0.10
3|1999-12-31|100.00|1999-12-31 23:59:59|9|NULL|NULL|NULL|200.00
`

// describe returns the Parquet file's columns and rows, '|'-separated.
func describe(t *testing.T, file string) string {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	rows, err := db.Query("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '" + file + "')")
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for rows.Next() {
		var n, ty string
		rows.Scan(&n, &ty)
		cols = append(cols, n+" "+ty)
	}
	rows.Close()
	b.WriteString(strings.Join(cols, "|") + "\n")
	sel := "SELECT COLUMNS(*)::VARCHAR FROM '" + file + "' ORDER BY 1"
	rows, err = db.Query(sel)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = "NULL"
			if v.Valid {
				cells[i] = v.String
			}
		}
		b.WriteString(strings.Join(cells, "|") + "\n")
	}
	return b.String()
}

// typedInput runs typedSource and returns its output file.
func typedInput(t *testing.T) string {
	t.Helper()
	d, f := stage(t, "src.sql", typedSource)
	if _, err := SQL(context.Background(), &Job{Dirs: d, Source: f, Namespace: "main", Outputs: []string{"main.src"}}); err != nil {
		t.Fatal(err)
	}
	// DuckDB renders TIMESTAMP as text with .5 and DOUBLE 1e300 as 1e+300.
	return d.OutputFile("main.src")
}

func runTyped(t *testing.T, python, src string) (string, string) {
	t.Helper()
	in := typedInput(t)
	d, f := stage(t, "typed.py", src)
	link(t, d, "main.src", in)
	var out bytes.Buffer
	if _, err := Python(context.Background(), &Job{Dirs: d, Source: f, File: "models/typed.py", Python: python,
		Inputs: []string{"main.src"}, Outputs: []string{"main.dst"}, Stdout: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return describe(t, d.OutputFile("main.dst")), out.String()
}

// TestPythonTypesStdlib: without pandas (the host's python3), weir.read
// gives dates, Decimals with their scale, ints, bools, NULL apart from ”
// in a VARCHAR column; weir.write keeps every type, and a Decimal column
// computed in Python becomes DECIMAL(p,s) from its values.
func TestPythonTypesStdlib(t *testing.T) {
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s", DefaultPython)
	}
	got, out := runTyped(t, "", typedCheck+`
import weir
rows = weir.read("src")
assert type(rows).__name__ == "Table", type(rows)
check(rows)
assert rows[1]["s"] == "" and rows[2]["s"] is None and rows[1]["n"] is None, rows
for r in rows:
    r["twice"] = None if r["amount"] is None else r["amount"] * 2
weir.write("main.dst", rows)
`)
	if got != typedWant || !strings.Contains(out, "types ok") {
		t.Fatalf("main.dst:\n%s\nwant:\n%s\nout: %s", got, typedWant, out)
	}
}

// pandasPython returns an interpreter command for the pandas rootfs of
// WEIR_TEST_RUNTIME_PANDAS (run by chroot in a private mount namespace,
// with the host's /tmp bound at its /tmp, where the test's files are), or
// skips.
func pandasPython(t *testing.T) string {
	t.Helper()
	root := os.Getenv("WEIR_TEST_RUNTIME_PANDAS")
	if root == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set (a rootfs with python3 and pandas): the pandas path is not tested")
	}
	if os.Geteuid() != 0 {
		t.Skip("the pandas rootfs is entered with chroot, which needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	if !strings.HasPrefix(t.TempDir(), "/tmp/") {
		t.Skip("the test's files are not under /tmp, which is what the rootfs sees")
	}
	w := filepath.Join(t.TempDir(), "python3")
	script := "#!/bin/sh\nexec /usr/bin/unshare -m /bin/sh -c 'mount --make-rprivate / && mount --bind /tmp \"$0/tmp\" && exec /usr/sbin/chroot \"$0\" /usr/bin/python3 \"$@\"' " +
		"'" + root + "' \"$@\"\n"
	if err := os.WriteFile(w, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestPythonTypesPandas: the same round trip with pandas: DataFrame
// columns of date and Decimal objects, Int64 for an int column with NULLs,
// datetime64 for TIMESTAMP.
func TestPythonTypesPandas(t *testing.T) {
	py := pandasPython(t)
	got, out := runTyped(t, py, typedCheck+`
import weir
import pandas as pd
df = weir.read("main.src")
check(df.to_dict("records"))
assert str(df["n"].dtype) == "Int64", df.dtypes
assert str(df["id"].dtype) == "int32", df.dtypes
assert str(df["at"].dtype) == "datetime64[ns]", df.dtypes
assert df["s"][1] == "" and df["s"].isna()[2], df["s"]
df["twice"] = df["amount"] * 2
weir.write("main.dst", df)
print(df.dtypes.to_dict())
`)
	if got != typedWant || !strings.Contains(out, "types ok") {
		t.Fatalf("main.dst:\n%s\nwant:\n%s\nout: %s", got, typedWant, out)
	}
}

// runPy runs a Python model over main.src (typedSource) with the host's
// python3, lib holding lib/ files, and returns the error and the output.
func runPy(t *testing.T, src string, lib map[string]string, outputs ...string) (Dirs, string, error) {
	t.Helper()
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s", DefaultPython)
	}
	in := typedInput(t)
	d, f := stage(t, "m.py", src)
	link(t, d, "main.src", in)
	for name, body := range lib {
		p := filepath.Join(d.In, contract.LibInput, "lib", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	_, err := Python(context.Background(), &Job{Dirs: d, Source: f, File: "models/m.py", Runtime: "host",
		Inputs: []string{"main.src"}, Outputs: outputs, Stdout: &out})
	return d, out.String(), err
}

// TestPythonFunctionForm: a file that only defines model() gets its
// inputs by table name and its return value written, one output or a
// dict of several; helpers under lib/ import as lib.<module>.
func TestPythonFunctionForm(t *testing.T) {
	d, out, err := runPy(t, `
from lib.fx import double
def model(src):
    return [{"id": r["id"], "x": double(r["amount"])} for r in src]
`, map[string]string{"fx.py": "def double(x):\n    return x * 2\n"}, "main.dst")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got, want := describe(t, d.OutputFile("main.dst")), "id BIGINT|x DECIMAL(5,2)\n1|24.60\n2|-0.10\n3|200.00\n"; got != want {
		t.Fatalf("main.dst:\n%s\nwant:\n%s", got, want)
	}
	d, out, err = runPy(t, `
def model(main_src):
    return {"main.a": [{"n": len(main_src)}], "b": [{"s": "x"}]}
`, nil, "main.a", "main.b")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if a, b := describe(t, d.OutputFile("main.a")), describe(t, d.OutputFile("main.b")); a != "n BIGINT\n3\n" || b != "s VARCHAR\nx\n" {
		t.Fatalf("main.a %q main.b %q", a, b)
	}
}

// TestPythonErrors: what a user reads when the model fails.
func TestPythonErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		lib       map[string]string
		want      string
	}{
		{"in the function", "x = 1\n\ndef model(src):\n    return 1 / 0\n", nil,
			"models/m.py:4: ZeroDivisionError: division by zero"},
		{"in a lib helper", "from lib.bad import f\ndef model(src):\n    return f()\n", map[string]string{"bad.py": "def f():\n    raise ValueError('no rates for EUR')\n"},
			"lib/bad.py:2: ValueError: no rates for EUR"},
		{"missing module", "import polars\n", nil,
			"models/m.py: No module named 'polars'; runtime host has"},
		{"unknown parameter", "def model(orders):\n    return []\n", nil,
			"models/m.py:1: TypeError: model() parameter 'orders' names no input table (inputs: main.src"},
		{"returns None", "def model(src):\n    pass\n", nil,
			"models/m.py: ValueError: model() returned None"},
		{"unsupported value", "import weir\nweir.write('main.dst', [{'a': object()}])\n", nil,
			"models/m.py:2: TypeError: weir: column 'a' holds a object"},
		{"undeclared table", "import weir\nweir.read('main.nope')\n", nil,
			"models/m.py:2: KeyError: weir: 'main.nope' is not an input of this model (declared: main.src)"},
		{"syntax", "def model(:\n", nil, "models/m.py:1: SyntaxError"},
		{"lib is read-only", "import os, lib.fx\nopen(os.path.join(os.path.dirname(lib.fx.__file__), 'fx.py'), 'w').write('x')\n",
			map[string]string{"fx.py": "y = 1\n"}, "PermissionError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "lib is read-only" && os.Geteuid() == 0 {
				t.Skip("root writes anything on the host; the sandbox's read-only bind is tested end to end (TestPythonModels)")
			}
			_, out, err := runPy(t, tc.src, tc.lib, "main.dst")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q\n%s", err, tc.want, out)
			}
			if strings.Contains(err.Error(), "_launch.py") {
				t.Fatalf("the error names the launcher: %v", err)
			}
		})
	}
}

// TestPythonHostileSchema: a schema file the script wrote by hand is
// checked before any of it reaches DuckDB; a bad one is refused, saying
// what is wrong, and no output is written.
func TestPythonHostileSchema(t *testing.T) {
	for _, tc := range []struct{ name, schema, want string }{
		{"injected type", `{"columns":[{"name":"a","type":"VARCHAR'}); COPY x TO '/etc/passwd"}]}`, "gives column \"a\" the type"},
		{"no columns", `{"columns":[]}`, "has 0 columns"},
		{"duplicate", `{"columns":[{"name":"a","type":"BIGINT"},{"name":"A","type":"BIGINT"}]}`, "twice"},
		{"control character", `{"columns":[{"name":"a\u001b[2K","type":"BIGINT"}]}`, "without control characters"},
		{"wide decimal", `{"columns":[{"name":"a","type":"DECIMAL(39,2)"}]}`, "DECIMAL(p,s)"},
		{"unknown field", `{"columns":[{"name":"a","type":"BIGINT","path":"/etc"}]}`, "does not parse"},
		{"flag on a number", `{"columns":[{"name":"a","type":"BIGINT","null_flag":true}]}`, "not VARCHAR"},
		{"huge", `{"columns":[{"name":"` + strings.Repeat("x", 2<<20) + `","type":"BIGINT"}]}`, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "import os, json\nio = json.load(open(os.environ['WEIR_IO']))['outputs']['main.dst']\n" +
				"open(io['csv'], 'w').write('a\\n1\\n')\nopen(io['schema'], 'w').write(" + pyString(tc.schema) + ")\n"
			d, out, err := runPy(t, src, nil, "main.dst")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q\n%s", err, tc.want, out)
			}
			if _, err := os.Stat(d.OutputFile("main.dst")); err == nil {
				t.Fatal("an output was written")
			}
		})
	}
}

func pyString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
}

// TestLauncherGate: under WEIR_GATE=1 the launcher runs the model only
// after the runner's "go" (the inputs are written by then); without it
// (the runner failed and closed the pipe) the model never runs; the
// model's stdin is empty either way.
func TestLauncherGate(t *testing.T) {
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s", DefaultPython)
	}
	for _, tc := range []struct {
		name, stdin string
		code        int
		ran         bool
	}{
		{"go", "go\n", 0, true},
		{"closed", "", 3, false},
		{"other", "stop\n", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			py, err := writeModule(tmp)
			if err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(tmp, "ran")
			model := filepath.Join(tmp, "m.py")
			src := "import sys\nopen(" + pyQuote(marker) + ", 'w').write(repr(sys.stdin.read()))\n"
			if err := os.WriteFile(model, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(DefaultPython, filepath.Join(py, "weir", "_launch.py"), model)
			cmd.Env = []string{"PYTHONPATH=" + py, "WEIR_GATE=1", "PYTHONDONTWRITEBYTECODE=1"}
			cmd.Stdin = strings.NewReader(tc.stdin + "more input the model must not see\n")
			out, err := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Fatalf("exit %d (%v), want %d:\n%s", code, err, tc.code, out)
			}
			got, err := os.ReadFile(marker)
			if ran := err == nil; ran != tc.ran {
				t.Fatalf("model ran: %v, want %v", ran, tc.ran)
			}
			if tc.ran && string(got) != "''" {
				t.Fatalf("the model read %s from stdin, want nothing", got)
			}
		})
	}
}

func pyQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

// TestLauncherImports: a plain script (no weir in its source) runs
// without the launcher having imported inspect, json, traceback or the
// weir module, which cost as much CPU as the interpreter's own start on
// every push; a model whose source names weir finds it already imported
// (warmed while the runner wrote the inputs), and the function form still
// works (TestPythonFunctionForm).
func TestLauncherImports(t *testing.T) {
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s", DefaultPython)
	}
	for _, tc := range []struct {
		name, head string
		want       string
	}{
		{"plain script", "", "inspect=False json=False traceback=False weir=False"},
		{"imports weir", "# uses: import weir (later)\n", "inspect=False json=True traceback=False weir=True"}, // json: the weir module imports it
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			py, err := writeModule(tmp)
			if err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(tmp, "loaded")
			model := filepath.Join(tmp, "m.py")
			src := tc.head + "import sys\nopen(" + pyQuote(marker) + ", 'w').write(' '.join('%s=%s' % (m, m in sys.modules) for m in ('inspect', 'json', 'traceback', 'weir')))\n"
			if err := os.WriteFile(model, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(DefaultPython, filepath.Join(py, "weir", "_launch.py"), model)
			cmd.Env = []string{"PYTHONPATH=" + py, "WEIR_GATE=1", "PYTHONDONTWRITEBYTECODE=1"}
			cmd.Stdin = strings.NewReader("go\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("launcher: %v\n%s", err, out)
			}
			got, err := os.ReadFile(marker)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("modules loaded when the model ran: %s, want %s", got, tc.want)
			}
		})
	}
}
