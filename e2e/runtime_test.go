package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Runtimes: nodes run in images built by weir runtime build (or any
// folder given by --runtime), chosen per pipeline and per model, under the
// user namespace. test.sh builds the pandas runtime once and passes its
// rootfs in WEIR_TEST_RUNTIME_PANDAS.

// builtPandasRuntime is the rootfs of the pandas runtime test.sh built, and the
// data dir of the store it was built in.
func builtPandasRuntime(t *testing.T) (rootfs, store string) {
	t.Helper()
	needSandboxes(t)
	rootfs = os.Getenv("WEIR_TEST_RUNTIME_PANDAS")
	if rootfs == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set: test.sh builds the pandas runtime with weir runtime build (mmdebstrap) and sets it; it could not here (see test.sh's output)")
	}
	hashDir := filepath.Dir(rootfs)
	if _, err := os.Stat(filepath.Join(hashDir, "manifest.json")); err != nil {
		t.Fatalf("WEIR_TEST_RUNTIME_PANDAS=%s is not the rootfs of a weir runtime build (no manifest.json beside it)", rootfs)
	}
	return rootfs, filepath.Dir(filepath.Dir(hashDir))
}

// dataWithRuntime is a fresh data dir whose runtime store names the
// pandas runtime "pandas" (a link to test.sh's build, which stays as it
// is): weir serve registers it with no flag.
func dataWithRuntime(t *testing.T, rootfs string) string {
	t.Helper()
	data := t.TempDir()
	hashDir := filepath.Dir(rootfs)
	rts := filepath.Join(data, "runtimes")
	if err := os.MkdirAll(rts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hashDir, filepath.Join(rts, filepath.Base(hashDir))); err != nil {
		t.Fatal(err)
	}
	names, _ := json.Marshal(map[string]string{"pandas": filepath.Base(hashDir)})
	if err := os.WriteFile(filepath.Join(rts, "names.json"), names, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRuntimePandasPipeline: a SQL node and a pandas model on runtime
// "pandas" (weir.toml's default; weir serve registered it from its data
// dir with no flag) and a standard-library model on the host runtime (its
// header) run in one pipeline and land; pandas exists in the one and not
// in the other. After weir runtime rm (refused while the server runs) and
// a restart, the same pipeline is refused at plan naming what is left.
func TestRuntimePandasPipeline(t *testing.T) {
	rootfs, _ := builtPandasRuntime(t)
	data := dataWithRuntime(t, rootfs)
	s := startWeir(t, data)
	dir := pipelineRepo(t, map[string]string{
		"weir.toml":        "runtime = \"pandas\"\n",
		"seeds/orders.csv": "customer,amount\nacme,10\nacme,5\nglobex,7\ninitech,-1\n",
		"models/clean.sql": "SELECT customer, amount FROM main.orders WHERE amount > 0",
		"models/by_customer.py": `# weir: inputs = main.clean
# weir: outputs = main.by_customer
import os, sys
import pandas as pd
df = pd.read_csv(os.environ["WEIR_IN_MAIN_CLEAN"])
out = df.groupby("customer", as_index=False)["amount"].sum()
out["pandas"] = pd.__version__
out["prefix"] = sys.prefix
out.to_csv(os.environ["WEIR_OUT_MAIN_BY_CUSTOMER"], index=False)
print("pandas", pd.__version__, "uid_map", open("/proc/self/uid_map").read().split())
`,
		"models/plain.py": `#!/usr/bin/python3
# weir: runtime = host
# weir: inputs = main.by_customer
# weir: outputs = main.plain
import csv, os
try:
    import pandas
    has = "with"
except ImportError:
    has = "without"
rows = list(csv.DictReader(open(os.environ["WEIR_IN_MAIN_BY_CUSTOMER"])))
with open(os.environ["WEIR_OUT_MAIN_PLAIN"], "w") as f:
    f.write("customers,has_pandas\n%d,%s\n" % (len(rows), has))
`,
	})
	out := git(t, dir, "push", s.URL("rt"), "main")
	if !strings.Contains(out, "main advanced") {
		t.Fatalf("push did not land:\n%s", out)
	}
	if got := query(t, s, "rt", "main", "SELECT customer, amount FROM main.by_customer ORDER BY customer"); got != "customer\tamount\nacme\t15\nglobex\t7\n" {
		t.Errorf("by_customer: %q", got)
	}
	if got := query(t, s, "rt", "main", "SELECT DISTINCT prefix, pandas LIKE '1.%' OR pandas LIKE '2.%' AS v FROM main.by_customer"); got != "prefix\tv\n/usr\ttrue\n" {
		t.Errorf("pandas model: %q", got)
	}
	if got := query(t, s, "rt", "main", "SELECT * FROM main.plain"); got != "customers\thas_pandas\n2\twithout\n" {
		t.Errorf("host model: %q", got)
	}

	rm, err := exec.Command(weirBin, "runtime", "rm", "pandas", "--data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(rm), "a weir serve is running on "+data) {
		t.Fatalf("runtime rm while serving: %v\n%s", err, rm)
	}
	s.Stop()
	rm, err = exec.Command(weirBin, "runtime", "rm", "pandas", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(rm), "runtime pandas removed") {
		t.Fatalf("runtime rm: %v\n%s", err, rm)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "usr")); err != nil {
		t.Fatalf("rm of a linked runtime deleted its target: %v", err)
	}
	s.start()
	commitFile(t, dir, "models/more.sql", "SELECT 1 AS x")
	out = gitFails(t, dir, "push", s.URL("rt"), "main")
	if !strings.Contains(out, `unknown runtime "pandas" (available: host)`) {
		t.Fatalf("push naming a removed runtime:\n%s", out)
	}
}

// TestRuntimeUnknownRefused: a model naming a runtime the server lacks is
// refused at plan time, listing the runtimes it has; nothing moves.
func TestRuntimeUnknownRefused(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir(), "--runtime", "pandas="+t.TempDir())
	dir := pipelineRepo(t, map[string]string{
		"models/x.py": "# weir: runtime = polars\n# weir: outputs = main.x\nimport polars\n",
	})
	out := gitFails(t, dir, "push", s.URL("rt"), "main")
	if want := `models/x.py: unknown runtime "polars" (available: host, pandas)`; !strings.Contains(out, want) {
		t.Fatalf("push output lacks %q:\n%s", want, out)
	}
	if refs := lsRemote(t, s.URL("rt")); refs["refs/heads/main"] != "" || refs["refs/data/main"] != "" {
		t.Fatalf("refs moved: %v", refs)
	}
}

// TestRuntimeCustomRootfsUserNamespace: a hand-made rootfs of a few copied
// files (dash and its C library, and a "python3" that is a dash script),
// without /proc, /in, /out or /tmp, under a 0700 folder, runs a model
// under the user namespace: the model reads its own uid map and writes
// it as its table. Nothing is written into the rootfs.
func TestRuntimeCustomRootfsUserNamespace(t *testing.T) {
	needSandboxes(t)
	root := filepath.Join(t.TempDir(), "mini") // t.TempDir is 0700
	for _, f := range []string{"/usr/bin/dash", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("no %s to build a rootfs from", f)
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/usr/bin/dash\nread a b c < /proc/self/uid_map\nprintf 'inside,host,size\\n%s,%s,%s\\n' $a $b $c > \"$WEIR_OUT_MAIN_MAPPED\"\n"
	if err := os.WriteFile(filepath.Join(root, "usr/bin/python3"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := startWeir(t, t.TempDir(), "--runtime", "mini="+root)
	dir := pipelineRepo(t, map[string]string{
		"weir.toml":        "runtime = \"mini\"\n",
		"models/mapped.py": "# weir: outputs = main.mapped\n",
		"models/one.sql":   "SELECT 1 AS one",
	})
	out := git(t, dir, "push", s.URL("mini"), "main")
	if !strings.Contains(out, "main advanced") {
		t.Fatalf("push did not land:\n%s", out)
	}
	want := "inside\thost\tsize\n0\t1048576\t65536\n"
	if b, _ := os.ReadFile("/proc/sys/user/max_user_namespaces"); strings.TrimSpace(string(b)) == "0" {
		want = "inside\thost\tsize\n0\t0\t4294967295\n"
	}
	if got := query(t, s, "mini", "main", "SELECT * FROM main.mapped"); got != want {
		t.Errorf("uid map inside: %q, want %q", got, want)
	}
	for _, d := range []string{"proc", "in", "out", "tmp", "weir"} {
		if _, err := os.Stat(filepath.Join(root, d)); err == nil {
			t.Errorf("/%s was created in the rootfs", d)
		}
	}
}

// TestRuntimeBuildCommand: building the same inputs again (under another
// name, in test.sh's store) builds nothing and says so; ls shows it; rm
// of a name that shares its runtime keeps the files; rm of an unknown
// name is refused.
func TestRuntimeBuildCommand(t *testing.T) {
	rootfs, store := builtPandasRuntime(t)
	weir := func(args ...string) (string, error) {
		out, err := exec.Command(weirBin, append(args, "--data", store)...).CombinedOutput()
		return string(out), err
	}
	hash := filepath.Base(filepath.Dir(rootfs))
	out, err := weir("runtime", "build", "pandas-e2e", "--debian", "python3-numpy,python3-pandas,python3-numpy")
	if err != nil || !strings.Contains(out, "runtime pandas-e2e: already built ("+hash+", same inputs): nothing to do") ||
		!strings.Contains(out, "rootfs   "+rootfs) {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	t.Cleanup(func() { weir("runtime", "rm", "pandas-e2e") })
	out, err = weir("runtime", "ls")
	if err != nil || !strings.Contains(out, "pandas-e2e") || !strings.Contains(out, hash) || !strings.Contains(out, "pandas ") {
		t.Fatalf("ls: %v\n%s", err, out)
	}
	out, err = weir("runtime", "rm", "pandas-e2e")
	if err != nil || !strings.Contains(out, "its files stay: another name shares them") {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	if _, err := os.Stat(rootfs); err != nil {
		t.Fatalf("rm deleted a runtime another name uses: %v", err)
	}
	if out, err := weir("runtime", "ls"); err != nil || strings.Contains(out, "pandas-e2e") {
		t.Fatalf("ls after rm: %v\n%s", err, out)
	}
	if out, err := weir("runtime", "rm", "nope"); err == nil || !strings.Contains(out, `unknown runtime "nope"`) {
		t.Fatalf("rm nope: %v\n%s", err, out)
	}
}
