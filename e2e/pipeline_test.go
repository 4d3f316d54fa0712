package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Pipeline tests: pushes run the pushed pipeline in sandboxes and move
// refs/heads/<b> and refs/data/<b> together. They need root (sandboxes).

func needSandboxes(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("pipeline runs need sandboxes, which need root")
	}
}

// copyDir copies the example pipeline into dir.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// examplRepo is a work repo holding examples/orders, committed on main.
func exampleRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", "-b", "main", dir)
	copyDir(t, filepath.Join("..", "examples", "orders"), dir)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "orders pipeline")
	return dir
}

// sshWeir runs "weir <args>" on the server over SSH.
func sshWeir(t *testing.T, s *weirServer, args ...string) (string, error) {
	t.Helper()
	sshArgs := append(strings.Fields(sshCommand(sshKey))[1:], "-p", s.SSHPort, "git@127.0.0.1", "weir")
	cmd := exec.Command("ssh", append(sshArgs, args...)...)
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func query(t *testing.T, s *weirServer, repo, ref, sql string) string {
	t.Helper()
	// The remote side shell-splits the command line: quote the SQL once.
	out, err := sshWeir(t, s, "query", repo, ref, "'"+strings.ReplaceAll(sql, "'", `'\''`)+"'")
	if err != nil {
		t.Fatalf("weir query %s %s %q: %v\n%s", repo, ref, sql, err, out)
	}
	return out
}

var runRE = regexp.MustCompile(`run (r-[0-9a-f]{16}) kept`)

func TestPipelineExample(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := exampleRepo(t)
	out := git(t, dir, "push", s.URL("orders"), "main")
	for _, want := range []string{
		"remote: weir: run r-", "on main at", "(3 models, 1 expectation)",
		"main.raw_orders", "seed", "50 rows", "main.clean_orders", "sql", "34 rows",
		"main.revenue", "python", "8 rows", "expect revenue_positive ok", "remote: weir: main advanced: code ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	refs := lsRemote(t, s.URL("orders"))
	code := revParse(t, dir, "HEAD")
	if refs["refs/heads/main"] != code || refs["refs/data/main"] == "" {
		t.Fatalf("refs after push: %v", refs)
	}
	git(t, dir, "fetch", "-q", s.URL("orders"), "refs/data/*:refs/data/*", "refs/runs/*:refs/runs/*")
	log := git(t, dir, "log", "--format=%H%n%B%n--", "refs/data/main")
	if n := strings.Count(log, "\n--\n"); n != 1 {
		t.Fatalf("refs/data/main has %d commits, want 1:\n%s", n, log)
	}
	if !regexp.MustCompile(`(?m)^Run: r-[0-9a-f]{16}$`).MatchString(log) || !strings.Contains(log, "Code-Commit: "+code) {
		t.Fatalf("data commit lacks lineage trailers:\n%s", log)
	}
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n, sum(orders) AS o FROM main.revenue"); got != "n\to\n8\t34\n" {
		t.Fatalf("query: %q", got)
	}
	runs := git(t, dir, "for-each-ref", "--format=%(refname)", "refs/runs/")
	if !strings.Contains(runs, "/log") {
		t.Fatalf("no run log fetched: %q", runs)
	}
	if l := git(t, dir, "show", strings.TrimSpace(runs)+":log"); !strings.Contains(l, "== main.revenue (models/revenue.py) ok") {
		t.Fatalf("run log:\n%s", l)
	}

	// The local form reads a stopped server's data directory.
	s.Stop()
	local, err := exec.Command(weirBin, "query", "--data", s.Data, "--repo", "orders", "--ref", "main", "SELECT customer FROM main.revenue ORDER BY total DESC LIMIT 1").CombinedOutput()
	if err != nil || string(local) != "customer\nglobex\n" {
		t.Fatalf("weir query: %v %q", err, local)
	}
	if out, err := exec.Command(weirBin, "query", "--data", s.Data, "--repo", "orders", "COPY main.revenue TO '/tmp/x.csv'").CombinedOutput(); err == nil {
		t.Fatalf("weir query ran a COPY: %s", out)
	}
}

// TestPipelineRefusals pushes broken pipelines on top of a good main: each
// is refused with its own reason, main and its data stay as they were, and
// the run's code (and log) is kept under refs/runs/<id>/.
func TestPipelineRefusals(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	before := lsRemote(t, s.URL("orders"))
	base := revParse(t, dir, "HEAD")

	for _, tc := range []struct {
		name   string
		files  map[string]string // the whole pipeline of the pushed commit
		reason string            // in "! [remote rejected] main (<reason>)"
		output string            // in the push's remote: lines
		kept   bool
	}{
		{"failing model", map[string]string{
			"models/bad.sql": "SELECT customer, no_such_column FROM main.clean_orders",
		}, "weir: main.bad failed: weir node sql: Binder Error: Referenced column \"no_such_column\" not found", "", true},
		{"failing expectation", map[string]string{
			"expectations/big_spenders.sql": "SELECT customer, total FROM main.revenue WHERE total > 1000",
		}, "weir: expect big_spenders failed: 5 failing rows; run r-", "globex | 1670.96", true},
		{"cycle", map[string]string{
			"models/a.sql": "SELECT * FROM b",
			"models/b.sql": "SELECT * FROM a",
		}, "weir: plan refused: cycle: models/a.sql -> models/b.sql -> models/a.sql", "", true},
		{"unknown table", map[string]string{
			"models/x.sql": "SELECT *\nFROM main.no_such_table",
		}, "weir: plan refused: models/x.sql:2: reads main.no_such_table, which is neither on branch main nor made by the pipeline", "", true},
		{"network", map[string]string{
			"models/net.py": "# weir: outputs = main.net\nimport urllib.request\nurllib.request.urlopen('http://1.1.1.1/', timeout=3)\n",
		}, "weir: main.net failed: urllib.error.URLError: <urlopen error [Errno 101] Network is unreachable> at models/net.py:3", "", true},
		{"time limit", map[string]string{
			"weir.toml":      "timeout = \"2s\"\n",
			"models/slow.py": "# weir: outputs = main.slow\nimport time\ntime.sleep(30)\n",
		}, "weir: main.slow failed: killed after the 2s wall time limit", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			git(t, dir, "checkout", "-q", "-B", "main", base)
			git(t, dir, "rm", "-r", "-q", "models", "seeds", "expectations", "weir.toml")
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			git(t, dir, "add", "-A")
			git(t, dir, "commit", "-q", "-m", tc.name)
			began := time.Now()
			out := gitFails(t, dir, "push", s.URL("orders"), "main")
			if !strings.Contains(out, "! [remote rejected] main -> main ("+tc.reason) {
				t.Fatalf("push output lacks reason %q:\n%s", tc.reason, out)
			}
			if tc.output != "" && !strings.Contains(out, tc.output) {
				t.Fatalf("push output lacks %q:\n%s", tc.output, out)
			}
			if tc.name == "time limit" && time.Since(began) > 20*time.Second {
				t.Fatalf("the 2s limit did not stop the node (push took %s)", time.Since(began))
			}
			after := lsRemote(t, s.URL("orders"))
			if after["refs/heads/main"] != before["refs/heads/main"] || after["refs/data/main"] != before["refs/data/main"] {
				t.Fatalf("main moved: before %v after %v", before, after)
			}
			m := runRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no kept run in:\n%s", out)
			}
			if after["refs/runs/"+m[1]+"/code"] != revParse(t, dir, "HEAD") || after["refs/runs/"+m[1]+"/log"] == "" {
				t.Fatalf("run %s not kept: %v", m[1], after)
			}
		})
	}
}

func TestPipelineBranchesDryRunParams(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	mainRefs := lsRemote(t, s.URL("orders"))

	// A feature branch starts from main's data and diverges from it alone.
	git(t, dir, "checkout", "-q", "-b", "feature")
	p := filepath.Join(dir, "models", "clean_orders.sql")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "AND amount > 0", "AND amount > 100", 1)), 0o644)
	git(t, dir, "commit", "-q", "-am", "only big orders")
	out := git(t, dir, "push", s.URL("orders"), "feature")
	if !strings.Contains(out, "weir: feature advanced") {
		t.Fatalf("feature push:\n%s", out)
	}
	after := lsRemote(t, s.URL("orders"))
	if after["refs/data/main"] != mainRefs["refs/data/main"] || after["refs/data/feature"] == "" || after["refs/data/feature"] == mainRefs["refs/data/main"] {
		t.Fatalf("branch isolation: before %v after %v", mainRefs, after)
	}
	if m, f := query(t, s, "orders", "main", "SELECT count(*) AS n FROM main.clean_orders"), query(t, s, "orders", "feature", "SELECT count(*) AS n FROM main.clean_orders"); m != "n\n34\n" || f == m {
		t.Fatalf("main %q feature %q", m, f)
	}

	// Dry run: the plan is printed, nothing moves.
	commitFile(t, dir, "models/tag.sql", "SELECT getvariable('note') AS note, 1 AS one\n")
	out = gitFails(t, dir, "push", "-o", "dry-run", s.URL("orders"), "feature")
	if !strings.Contains(out, "(weir: dry run, nothing changed)") || !strings.Contains(out, "models/tag.sql") {
		t.Fatalf("dry run:\n%s", out)
	}
	if now := lsRemote(t, s.URL("orders")); now["refs/heads/feature"] != after["refs/heads/feature"] || now["refs/data/feature"] != after["refs/data/feature"] {
		t.Fatalf("dry run moved refs: %v -> %v", after, now)
	}

	// Parameters are opaque: quotes, delimiters and SQL stay as sent.
	note := `it's "x", a=b; DROP TABLE t; -- $(id) \n`
	git(t, dir, "push", "-q", "-o", "param.note="+note, s.URL("orders"), "feature")
	if got := query(t, s, "orders", "feature", "SELECT note FROM main.tag"); got != "note\n"+strings.ReplaceAll(note, `\`, `\\`)+"\n" {
		t.Fatalf("param came back as %q", got)
	}
}

// TestPipelineKilledDuringRun kills the server while a node runs: after a
// restart the branch is the old pair, and the next push succeeds.
func TestPipelineKilledDuringRun(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	before := lsRemote(t, s.URL("orders"))

	commitFile(t, dir, "models/slow.py", "# weir: inputs = main.revenue\n# weir: outputs = main.slow\nimport time\ntime.sleep(20)\n")
	cmd := exec.Command("git", "push", s.URL("orders"), "main")
	cmd.Dir = dir
	cmd.Env = gitEnv()
	var pushOut syncBuffer
	cmd.Stdout, cmd.Stderr = &pushOut, &pushOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(pushOut.String(), "main.revenue") {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not reach the slow node:\n%s", pushOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	s.Kill()
	cmd.Wait()
	s.Restart()
	after := lsRemote(t, s.URL("orders"))
	if after["refs/heads/main"] != before["refs/heads/main"] || after["refs/data/main"] != before["refs/data/main"] {
		t.Fatalf("after kill -9: before %v after %v", before, after)
	}
	git(t, dir, "rm", "-q", "models/slow.py")
	git(t, dir, "commit", "-q", "-m", "no slow node")
	out := git(t, dir, "push", s.URL("orders"), "main")
	if !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("push after restart:\n%s", out)
	}
}

// TestPipelineDataRevertAndForgery pushes data commits directly: a git
// revert of a run's data commit is accepted (table rollback, invariant 6),
// an edited table pointer is refused, and deleting a branch deletes its
// data ref.
func TestPipelineDataRevertAndForgery(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := exampleRepo(t)
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	p := filepath.Join(dir, "models", "clean_orders.sql")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "AND amount > 0", "AND amount > 100", 1)), 0o644)
	git(t, dir, "commit", "-q", "-am", "only big orders")
	git(t, dir, "push", "-q", s.URL("orders"), "main")
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n FROM main.clean_orders"); got == "n\n34\n" {
		t.Fatalf("second run changed nothing: %q", got)
	}

	// Roll the tables back with a git revert of the data commit, made to
	// name the code it sits beside (the revert restores the older run's
	// code entry and carries no Code-Commit: trailer).
	code := revParse(t, dir, "main")
	git(t, dir, "fetch", "-q", s.URL("orders"), "refs/data/main:refs/data/main")
	git(t, dir, "checkout", "-q", "--detach", "refs/data/main")
	git(t, dir, "revert", "--no-edit", "HEAD")
	git(t, dir, "update-index", "--cacheinfo", "160000,"+code+",code")
	git(t, dir, "commit", "-q", "--amend", "--no-edit", "--trailer", "Code-Commit: "+code)
	git(t, dir, "push", "-q", s.URL("orders"), "HEAD:refs/data/main")
	if got := query(t, s, "orders", "main", "SELECT count(*) AS n FROM main.clean_orders"); got != "n\n34\n" {
		t.Fatalf("after revert: %q", got)
	}

	// A hand-edited pointer is refused and changes nothing.
	before := lsRemote(t, s.URL("orders"))
	git(t, dir, "fetch", "-q", s.URL("orders"), "+refs/data/main:refs/data/main")
	git(t, dir, "checkout", "-q", "--detach", "refs/data/main")
	ptr := filepath.Join(dir, "tables", "main", "revenue")
	pb, err := os.ReadFile(ptr)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(ptr, append(pb, []byte("forged: yes\n")...), 0o644)
	git(t, dir, "commit", "-q", "-am", "forge")
	out := gitFails(t, dir, "push", s.URL("orders"), "HEAD:refs/data/main")
	if !strings.Contains(out, "weir: data commit refused") || !strings.Contains(out, "main.revenue") {
		t.Fatalf("forged push:\n%s", out)
	}
	if now := lsRemote(t, s.URL("orders")); now["refs/data/main"] != before["refs/data/main"] {
		t.Fatal("forged data commit moved refs/data/main")
	}

	// Deleting a branch deletes its data.
	git(t, dir, "checkout", "-q", "main")
	git(t, dir, "push", "-q", s.URL("orders"), "main:refs/heads/tmp")
	if lsRemote(t, s.URL("orders"))["refs/data/tmp"] == "" {
		t.Fatal("new branch tmp got no data ref")
	}
	git(t, dir, "push", "-q", s.URL("orders"), ":refs/heads/tmp")
	if now := lsRemote(t, s.URL("orders")); now["refs/data/tmp"] != "" || now["refs/heads/tmp"] != "" {
		t.Fatalf("after deleting tmp: %v", now)
	}
}

// TestPipelineServerLimitsCap: the server's --node-timeout caps every node,
// whatever weir.toml asks for (the example asks for 2m), and a bad
// --runtime is refused at start with the reason.
func TestPipelineServerLimitsCap(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir(), "--node-timeout", "30ms")
	dir := exampleRepo(t)
	out := gitFails(t, dir, "push", s.URL("orders"), "main")
	if !strings.Contains(out, "killed after the 30ms wall time limit") {
		t.Fatalf("push not refused at the server's time limit:\n%s", out)
	}
	if refs := lsRemote(t, s.URL("orders")); refs["refs/heads/main"] != "" || refs["refs/data/main"] != "" {
		t.Fatalf("main exists after a refused first push: %v", refs)
	}
	bad, err := exec.Command(weirBin, "serve", "--data", t.TempDir(), "--runtime", "py=/no/such/rootfs").CombinedOutput()
	if err == nil || !strings.Contains(string(bad), "runtime py: /no/such/rootfs is not a directory") {
		t.Fatalf("weir serve --runtime with a missing rootfs: err %v\n%s", err, bad)
	}
}
