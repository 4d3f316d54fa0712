package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pandasRuntime is the rootfs of a runtime with pandas (test.sh builds it),
// or the test is skipped.
func pandasRuntime(t *testing.T) string {
	t.Helper()
	needSandboxes(t)
	root := os.Getenv("WEIR_TEST_RUNTIME_PANDAS")
	if root == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set (the rootfs of a runtime with python3 and pandas; test.sh builds one)")
	}
	return root
}

// writeFiles writes files (path -> content) in dir and commits them.
func writeFiles(t *testing.T, dir string, files map[string]string, msg string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", msg)
}

// TestPythonModels: a SQL model makes DATE and DECIMAL(12,2) columns; a
// pandas model on runtime pandas reads them, uses a helper from lib/ and
// writes a typed table, whose DATE and DECIMAL columns weir query shows; a
// function-form model on the host runtime returns its table; changing only
// lib/ reruns the Python node; a missing module is refused naming what the
// runtime has; lib/ is read-only in the sandbox.
func TestPythonModels(t *testing.T) {
	root := pandasRuntime(t)
	s := startWeir(t, t.TempDir(), "--runtime", "pandas="+root)
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", "-b", "main", dir)
	writeFiles(t, dir, map[string]string{
		"weir.toml": "namespace = \"main\"\n\n[node.\"models/revenue.py\"]\nruntime = \"pandas\"\n",
		"models/orders.sql": `SELECT * FROM (VALUES
  (1, 'ann', DATE '2024-01-02', 10.25::DECIMAL(12,2)),
  (2, 'bob', DATE '2024-01-02', 3.10::DECIMAL(12,2)),
  (3, 'ann', DATE '2024-01-03', 7.00::DECIMAL(12,2))
) t(id, customer, day, amount)`,
		"lib/fx.py": "from decimal import Decimal\nRATE = Decimal('2')\n\ndef convert(x):\n    return x * RATE\n",
		"models/revenue.py": `# weir: inputs = main.orders
# weir: outputs = main.revenue
import weir
from lib.fx import convert
df = weir.read("orders")
assert str(df["amount"].dtype) == "object"
df["converted"] = df["amount"].map(convert)
out = df.groupby(["customer", "day"], as_index=False).agg(total=("converted", "sum"))
weir.write("main.revenue", out, types={"total": "DECIMAL(12,2)"})
`,
		"models/counts.py": `# weir: inputs = main.orders
# weir: outputs = main.counts
def model(orders):
    return [{"customer": c, "n": sum(1 for r in orders if r["customer"] == c)} for c in sorted({r["customer"] for r in orders})]
`,
	}, "typed pipeline")
	out := git(t, dir, "push", s.URL("py"), "main")
	if !strings.Contains(out, "main advanced") {
		t.Fatalf("push:\n%s", out)
	}
	if got := query(t, s, "py", "main", "SELECT typeof(day) AS d, typeof(total) AS t, sum(total)::VARCHAR AS s FROM main.revenue GROUP BY ALL"); got != "d\tt\ts\nDATE\tDECIMAL(12,2)\t40.70\n" {
		t.Fatalf("main.revenue: %q", got)
	}
	if got := query(t, s, "py", "main", "SELECT customer, n FROM main.counts ORDER BY 1"); got != "customer\tn\nann\t2\nbob\t1\n" {
		t.Fatalf("main.counts: %q", got)
	}

	// Only lib/ changes: the Python node runs again and its table shows it.
	writeFiles(t, dir, map[string]string{"lib/fx.py": "from decimal import Decimal\nRATE = Decimal('3')\n\ndef convert(x):\n    return x * RATE\n"}, "rate 3")
	if out := git(t, dir, "push", s.URL("py"), "main"); !strings.Contains(out, "main advanced") {
		t.Fatalf("push of lib/ only:\n%s", out)
	}
	if got := query(t, s, "py", "main", "SELECT sum(total)::VARCHAR AS s FROM main.revenue"); got != "s\n61.05\n" {
		t.Fatalf("main.revenue after lib/ changed: %q", got)
	}

	before := lsRemote(t, s.URL("py"))
	for _, tc := range []struct{ name, src, want string }{
		{"missing module", "# weir: inputs = main.orders\n# weir: outputs = main.revenue\nimport polars\n",
			"models/revenue.py: No module named 'polars'; runtime pandas has: "},
		{"lib read-only", "# weir: inputs = main.orders\n# weir: outputs = main.revenue\nimport lib.fx\nopen(lib.fx.__file__, 'a').write('x = 1')\n",
			"/in/_lib/lib/fx.py"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeFiles(t, dir, map[string]string{"models/revenue.py": tc.src}, tc.name)
			out := gitFails(t, dir, "push", s.URL("py"), "main")
			if !strings.Contains(out, tc.want) {
				t.Fatalf("push output lacks %q:\n%s", tc.want, out)
			}
			if tc.name == "lib read-only" && !strings.Contains(out, "Read-only file system") && !strings.Contains(out, "Permission denied") {
				t.Fatalf("writing lib/ did not fail for want of permission:\n%s", out)
			}
			if tc.name == "missing module" && !strings.Contains(out, "pandas 1.5.3") {
				t.Fatalf("the message does not list pandas:\n%s", out)
			}
			if after := lsRemote(t, s.URL("py")); after["refs/heads/main"] != before["refs/heads/main"] || after["refs/data/main"] != before["refs/data/main"] {
				t.Fatalf("refs moved: %v -> %v", before, after)
			}
			git(t, dir, "reset", "-q", "--hard", "HEAD~1")
		})
	}
}
