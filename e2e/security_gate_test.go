package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The gate (issue 9, holes 2, 3 and 8): every path into a branch keeps the
// promise. Data refs are protected like code refs, a data ref only sits
// beside its code ref, pushed data commits recombine published pointers
// only, name the code they sit beside and pass the branch's expectations,
// require-run branches take data only from runs and merges, branch rules
// say who may push which branch, and the client is told the truth.

// writeFiles replaces the pipeline files of the work tree dir with files
// and commits them.
func writePipeline(t *testing.T, dir string, files map[string]string, msg string) string {
	t.Helper()
	for _, d := range []string{"models", "seeds", "expectations"} {
		os.RemoveAll(filepath.Join(dir, d))
	}
	os.Remove(filepath.Join(dir, "weir.toml"))
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return revParse(t, dir, "HEAD")
}

// numsPipeline is a small SQL pipeline: a seed of 1, 2, 3 and a model
// computing big from it with expr; with expect, an expectation that every
// n is positive.
func numsPipeline(expr string, expect bool) map[string]string {
	files := map[string]string{
		"seeds/nums.csv": "n\n1\n2\n3\n",
		"models/big.sql": "SELECT " + expr + " AS n FROM nums\n",
	}
	if expect {
		files["expectations/positive.sql"] = "SELECT n FROM big WHERE n <= 0\n"
	}
	return files
}

// checkoutData fetches refs/data/<b> into dir and checks it out, detached.
func checkoutData(t *testing.T, dir, url, b string) {
	t.Helper()
	git(t, dir, "fetch", "-q", url, "+refs/data/"+b+":refs/data/"+b)
	git(t, dir, "checkout", "-q", "--detach", "refs/data/"+b)
}

// unmoved fails if refs/heads/<b> or refs/data/<b> differ from before.
func unmoved(t *testing.T, url string, before map[string]string, b string) {
	t.Helper()
	now := lsRemote(t, url)
	for _, r := range []string{"refs/heads/" + b, "refs/data/" + b} {
		if now[r] != before[r] {
			t.Fatalf("%s moved: %s -> %s", r, before[r], now[r])
		}
	}
}

func TestGateDataPushes(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	url := s.URL("nums")
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", "-b", "main", dir)

	// v1 has negative numbers and no expectation; v2 fixes the model and
	// expects positive numbers.
	v1 := writePipeline(t, dir, numsPipeline("n - 2", false), "v1")
	git(t, dir, "push", "-q", url, "main")
	d1 := lsRemote(t, url)["refs/data/main"]
	v2 := writePipeline(t, dir, numsPipeline("n", true), "v2")
	git(t, dir, "push", "-q", url, "main")
	before := lsRemote(t, url)
	d2 := before["refs/data/main"]
	if d1 == "" || d2 == "" || d1 == d2 {
		t.Fatalf("data refs: %s %s", d1, d2)
	}

	t.Run("rewind and delete of a protected data ref", func(t *testing.T) {
		git(t, dir, "fetch", "-q", url, "refs/data/main:refs/data/main")
		out := gitFails(t, dir, "push", "-f", url, d1+":refs/data/main")
		if !strings.Contains(out, "protected branch: force push refused") {
			t.Fatalf("rewind of refs/data/main:\n%s", out)
		}
		out = gitFails(t, dir, "push", url, ":refs/data/main")
		if !strings.Contains(out, "protected branch: deletion refused") {
			t.Fatalf("delete of refs/data/main:\n%s", out)
		}
		unmoved(t, url, before, "main")
	})

	t.Run("data ref without a code ref", func(t *testing.T) {
		out := gitFails(t, dir, "push", url, d2+":refs/data/ghost")
		if !strings.Contains(out, "refs/data/ghost has no code branch") {
			t.Fatalf("push to refs/data/ghost:\n%s", out)
		}
		if lsRemote(t, url)["refs/data/ghost"] != "" {
			t.Fatal("refs/data/ghost exists")
		}
	})

	t.Run("failed run's data", func(t *testing.T) {
		// v3's second model fails after big has made a new snapshot.
		files := numsPipeline("n * 10", true)
		files["models/bad.sql"] = "SELECT error('boom') AS x FROM big\n"
		writePipeline(t, dir, files, "v3")
		out := gitFails(t, dir, "push", url, "main")
		m := runRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no kept run:\n%s", out)
		}
		partial := lsRemote(t, url)["refs/runs/"+m[1]+"/data"]
		if partial == "" {
			t.Fatalf("run %s kept no partial data:\n%s", m[1], out)
		}
		git(t, dir, "fetch", "-q", url, "refs/runs/"+m[1]+"/data")
		// Whole, and one table of it recombined with main's data.
		out = gitFails(t, dir, "push", url, partial+":refs/data/main")
		if !strings.Contains(out, "never stood on a data branch") || !strings.Contains(out, "main.big") {
			t.Fatalf("push of a failed run's data:\n%s", out)
		}
		checkoutData(t, dir, url, "main")
		git(t, dir, "checkout", "-q", partial, "--", "tables/main/big")
		git(t, dir, "commit", "-q", "-m", "take big from the failed run\n\nCode-Commit: "+v2)
		out = gitFails(t, dir, "push", url, "HEAD:refs/data/main")
		if !strings.Contains(out, "never stood on a data branch") || !strings.Contains(out, "main.big") {
			t.Fatalf("push of one table of a failed run:\n%s", out)
		}
		unmoved(t, url, before, "main")
		git(t, dir, "checkout", "-q", "-B", "main", v2)
	})

	t.Run("lineage and expectations", func(t *testing.T) {
		// Revert v2's data: the tables go back to v1's negative numbers.
		checkoutData(t, dir, url, "main")
		git(t, dir, "revert", "--no-edit", "HEAD")
		out := gitFails(t, dir, "push", url, "HEAD:refs/data/main")
		if !strings.Contains(out, "must name the code it sits beside") || !strings.Contains(out, "Code-Commit: trailer and code entry") ||
			!strings.Contains(out, "git update-index --cacheinfo 160000,"+v2+",code") {
			t.Fatalf("revert without lineage:\n%s", out)
		}
		// Fixed as the message says, the data now fails v2's expectation.
		git(t, dir, "update-index", "--cacheinfo", "160000,"+v2+",code")
		git(t, dir, "commit", "-q", "--amend", "--no-edit", "--trailer", "Code-Commit: "+v2)
		out = gitFails(t, dir, "push", url, "HEAD:refs/data/main")
		if !strings.Contains(out, "weir: data push refused: expect positive failed: 2 failing rows") || !strings.Contains(out, "weir: check r-") {
			t.Fatalf("revert to data failing the expectations:\n%s", out)
		}
		unmoved(t, url, before, "main")
		if m := runRE.FindStringSubmatch(out); m == nil || lsRemote(t, url)["refs/runs/"+m[1]+"/log"] == "" {
			t.Fatalf("failed check not kept:\n%s", out)
		}
	})

	t.Run("good revert", func(t *testing.T) {
		// v4 doubles the numbers; reverting its data restores v2's, which
		// v4's expectation accepts.
		git(t, dir, "checkout", "-q", "-B", "main", v2)
		v4 := writePipeline(t, dir, numsPipeline("n * 2", true), "v4")
		git(t, dir, "push", "-q", url, "main")
		checkoutData(t, dir, url, "main")
		git(t, dir, "revert", "--no-edit", "HEAD")
		git(t, dir, "update-index", "--cacheinfo", "160000,"+v4+",code")
		git(t, dir, "commit", "-q", "--amend", "--no-edit", "--trailer", "Code-Commit: "+v4)
		out := git(t, dir, "push", url, "HEAD:refs/data/main")
		if !strings.Contains(out, "passed the expectation") {
			t.Fatalf("good revert:\n%s", out)
		}
		if got := lsRemote(t, url)["refs/data/main"]; got != revParse(t, dir, "HEAD") {
			t.Fatalf("refs/data/main = %s, want the revert", got)
		}
		if got := query(t, s, "nums", "main", "SELECT sum(n) AS s FROM main.big"); got != "s\n6\n" {
			t.Fatalf("after revert: %q", got)
		}
	})
	_ = v1
}

// TestGateRequireRun: on a require-run branch, REST writes and raw data
// pushes are refused with the way round; a merge of another branch's data
// is accepted.
func TestGateRequireRun(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	url := s.URL("nums")
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", "-b", "main", dir)
	writePipeline(t, dir, numsPipeline("n", true), "v1")
	git(t, dir, "push", "-q", url, "main")
	code := writePipeline(t, dir, numsPipeline("n * 2", true), "v2")
	git(t, dir, "push", "-q", url, "main")
	weirCLI(t, "rule", "set", "nums", "main", "--require-run", "--data", s.Data)
	before := lsRemote(t, url)

	resp, err := http.Post(s.HTTP+"/iceberg/v1/nums/main/namespaces", "application/json", strings.NewReader(`{"namespace":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(body.String(), "requires a run") || !strings.Contains(body.String(), "merge it into main") {
		t.Fatalf("REST write to a require-run branch: %d %s", resp.StatusCode, body.String())
	}

	// A revert pushed straight to main is refused, even with its lineage.
	checkoutData(t, dir, url, "main")
	git(t, dir, "revert", "--no-edit", "HEAD")
	git(t, dir, "update-index", "--cacheinfo", "160000,"+code+",code")
	git(t, dir, "commit", "-q", "--amend", "--no-edit", "--trailer", "Code-Commit: "+code)
	revert := revParse(t, dir, "HEAD")
	out := gitFails(t, dir, "push", url, "HEAD:refs/data/main")
	if !strings.Contains(out, "branch main requires a run") {
		t.Fatalf("raw data push to a require-run branch:\n%s", out)
	}
	unmoved(t, url, before, "main")

	// Through a branch: the revert lands on fix, then main merges fix.
	git(t, dir, "push", "-q", url, code+":refs/heads/fix")
	git(t, dir, "push", "-q", url, "HEAD:refs/data/fix")
	out = git(t, dir, "push", url, "HEAD:refs/data/main")
	if !strings.Contains(out, "passed the expectation") {
		t.Fatalf("merge of fix into main:\n%s", out)
	}
	if got := lsRemote(t, url)["refs/data/main"]; got != revert {
		t.Fatalf("refs/data/main = %s, want %s", got, revert)
	}
}

// TestGateBranchWriters: branch rules say who may push which branch, and
// each ref of a push is decided on its own.
func TestGateBranchWriters(t *testing.T) {
	data := t.TempDir()
	for _, u := range []string{"alice", "bob"} {
		weirCLI(t, "user", "add", u, "--data", data)
		weirCLI(t, "user", "grant", u, "demo", "write", "--data", data)
	}
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	weirCLI(t, "rule", "set", "demo", "main", "--protect", "--writers", "alice", "--data", data)
	if got := weirCLI(t, "rule", "list", "--data", data); got != "demo main protect writers=alice\n" {
		t.Fatalf("rule list: %q", got)
	}
	s := startWeir(t, data, "--assume-remote")
	work := newWorkRepo(t, 1)
	git(t, work, "push", "-q", withCreds(s.URL("demo"), "alice", aliceTok), "main")

	commitFile(t, work, "b.txt", "bob\n")
	git(t, work, "branch", "-f", "feature")
	out := gitFails(t, work, "push", withCreds(s.URL("demo"), "bob", bobTok), "main", "feature")
	if !strings.Contains(out, "! [remote rejected] main -> main (permission denied: branch main of demo may be written only by alice)") {
		t.Fatalf("bob's push to main:\n%s", out)
	}
	refs := lsRemote(t, withCreds(s.URL("demo"), "bob", bobTok))
	if refs["refs/heads/feature"] != revParse(t, work, "HEAD") || refs["refs/heads/main"] == revParse(t, work, "HEAD") {
		t.Fatalf("each ref decided on its own: %v", refs)
	}
	git(t, work, "push", "-q", withCreds(s.URL("demo"), "alice", aliceTok), "main")
}

// TestTokensListAndRevoke: a token is listed by id and revoked while the
// server runs; the next request with it is refused.
func TestTokensListAndRevoke(t *testing.T) {
	data := t.TempDir()
	weirCLI(t, "user", "add", "alice", "--data", data)
	weirCLI(t, "user", "grant", "alice", "*", "write", "--data", data)
	tok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--name", "ci", "--data", data))
	list := weirCLI(t, "user", "tokens", "alice", "--data", data)
	m := regexp.MustCompile(`^([0-9a-f]{12})\t\S+\tci\n$`).FindStringSubmatch(list)
	if m == nil || strings.Contains(list, tok) {
		t.Fatalf("weir user tokens: %q", list)
	}
	s := startWeir(t, data, "--assume-remote")
	work := newWorkRepo(t, 1)
	git(t, work, "push", "-q", withCreds(s.URL("demo"), "x", tok), "main")
	weirCLI(t, "user", "revoke", "alice", m[1], "--data", data)
	if r := httpGet(t, s.URL("demo")+"/info/refs?service=git-upload-pack", "x", tok); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	if got := weirCLI(t, "user", "tokens", "alice", "--data", data); got != "" {
		t.Fatalf("tokens after revoke: %q", got)
	}
}

// TestGateMessages: what the client is told is what happened.
func TestGateMessages(t *testing.T) {
	s := startWeir(t, t.TempDir())

	t.Run("fast-forward with an old committer date", func(t *testing.T) {
		work := newWorkRepo(t, 1)
		git(t, work, "push", "-q", s.URL("dates"), "main")
		os.WriteFile(filepath.Join(work, "x"), []byte("x\n"), 0o644)
		git(t, work, "add", "x")
		gitWith(t, work, []string{"GIT_COMMITTER_DATE=2001-01-01T00:00:00Z", "GIT_AUTHOR_DATE=2001-01-01T00:00:00Z"}, "commit", "-q", "-m", "dated long ago")
		git(t, work, "push", "-q", s.URL("dates"), "main")
		if lsRemote(t, s.URL("dates"))["refs/heads/main"] != revParse(t, work, "HEAD") {
			t.Fatal("fast-forward not taken")
		}
	})

	t.Run("unknown push option", func(t *testing.T) {
		work := newWorkRepo(t, 1)
		git(t, work, "push", "-q", s.URL("opts"), "main")
		commitFile(t, work, "y", "y\n")
		out := gitFails(t, work, "push", "-o", "dryrun", s.URL("opts"), "main")
		if !strings.Contains(out, `unknown push option "dryrun"; known: dry-run, timing, rerun, priority=N, param.NAME=VALUE`) {
			t.Fatalf("push -o dryrun:\n%s", out)
		}
		if lsRemote(t, s.URL("opts"))["refs/heads/main"] == revParse(t, work, "HEAD") {
			t.Fatal("main moved")
		}
	})

	t.Run("atomic push refused after a good run", func(t *testing.T) {
		needSandboxes(t)
		url := s.URL("nums")
		dir := filepath.Join(t.TempDir(), "work")
		git(t, "", "init", "-q", "-b", "main", dir)
		writePipeline(t, dir, numsPipeline("n", true), "v1")
		git(t, dir, "push", "-q", url, "main")
		before := lsRemote(t, url)
		// main's run succeeds, feature's fails: the atomic push moves
		// neither, and main must not be reported as advanced.
		writePipeline(t, dir, numsPipeline("n * 2", true), "v2")
		git(t, dir, "checkout", "-q", "-b", "feature")
		writePipeline(t, dir, numsPipeline("n - 5", true), "broken")
		git(t, dir, "checkout", "-q", "main")
		out := gitFails(t, dir, "push", "--atomic", url, "main", "feature")
		if strings.Contains(out, "main advanced") || !strings.Contains(out, "weir: main did not advance: atomic push failed") {
			t.Fatalf("atomic push with a failing branch:\n%s", out)
		}
		unmoved(t, url, before, "main")
		var kept string
		for _, m := range regexp.MustCompile(`weir: main did not advance.*\n.*run (r-[0-9a-f]{16}) kept`).FindAllStringSubmatch(out, -1) {
			kept = m[1]
		}
		if kept == "" {
			t.Fatalf("main's run not kept:\n%s", out)
		}
		git(t, dir, "fetch", "-q", url, "refs/runs/"+kept+"/log:refs/runs/"+kept+"/log")
		if subject := git(t, dir, "log", "-1", "--format=%s", "refs/runs/"+kept+"/log"); !strings.Contains(subject, "not published: atomic push failed") {
			t.Fatalf("run log subject: %q", subject)
		}
	})

	t.Run("client disconnects", func(t *testing.T) {
		needSandboxes(t)
		url := s.URL("slow")
		dir := filepath.Join(t.TempDir(), "work")
		git(t, "", "init", "-q", "-b", "main", dir)
		writePipeline(t, dir, map[string]string{"models/slow.py": "# weir: outputs = main.slow\nimport time\ntime.sleep(120)\n"}, "slow")
		cmd := exec.Command("git", "push", url, "main")
		cmd.Dir = dir
		cmd.Env = gitEnv()
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(out.String(), "weir: run r-") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(3 * time.Second) // the node is running
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		var log string
		for log == "" && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			ls, err := gitRun("", nil, "ls-remote", url, "refs/runs/*")
			if err != nil { // the repo exists once the run is kept
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(ls), "\n") {
				if f := strings.Fields(line); len(f) == 2 && strings.HasSuffix(f[1], "/log") {
					git(t, dir, "fetch", "-q", url, "+"+f[1]+":"+f[1])
					log = git(t, dir, "show", f[1]+":log")
				}
			}
		}
		if !strings.Contains(log, "main.slow failed: stopped: the client disconnected") {
			t.Fatalf("run log after the client went away:\n%s\n(push output:\n%s)", log, out.String())
		}
	})
}
