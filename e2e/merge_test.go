package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Merge queue tests: an agent pushes its work to refs/merge/main and the
// server merges it onto main's head, runs the pipeline once on the merge
// and lands code and data together (hooks/merge.go). The client's push
// says ok only once main advanced; refs/merge/main is never written.

// mergePipeline is a small SQL pipeline: a and b are one row each, total
// sums them, and an expectation refuses a negative a.
var mergePipeline = map[string]string{
	"weir.toml":                 "namespace = \"main\"\n",
	"models/a.sql":              "SELECT 1 AS v\n",
	"models/b.sql":              "SELECT 2 AS v\n",
	"models/total.sql":          "SELECT (SELECT v FROM a) + (SELECT v FROM b) AS t\n",
	"expectations/a_nonneg.sql": "SELECT v FROM a WHERE v < 0\n",
	"README.md":                 "merge queue test\n",
}

// mergeRepo pushes mergePipeline to main of repo at url and returns the
// work repo.
func mergeRepo(t *testing.T, url string) string {
	t.Helper()
	dir := pipelineRepo(t, mergePipeline)
	if out := git(t, dir, "push", url, "main"); !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("first push:\n%s", out)
	}
	return dir
}

// agent clones url into a fresh work repo on a branch w made from main.
func agent(t *testing.T, url string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "agent")
	git(t, "", "clone", "-q", url, dir)
	git(t, dir, "checkout", "-q", "-b", "w", "origin/main")
	return dir
}

var mergeSubject = regexp.MustCompile(`^Merge ([0-9a-f]{40}) into main \(weir merge queue\)$`)

// checkLineage fetches main and its data and checks that the data's tip
// names main's code commit (data beside code).
func checkLineage(t *testing.T, dir, url string) {
	t.Helper()
	git(t, dir, "fetch", "-q", url, "+refs/heads/main:refs/remotes/check/main", "+refs/data/main:refs/remotes/check/data")
	code := revParse(t, dir, "refs/remotes/check/main")
	msg := git(t, dir, "log", "-1", "--format=%B", "refs/remotes/check/data")
	if !strings.Contains(msg, "Code-Commit: "+code) {
		t.Fatalf("refs/data/main does not sit beside refs/heads/main %s:\n%s", code, msg)
	}
}

// TestMergeQueue: two agents change different files and push to
// refs/merge/main at once: both land, one merge commit each, main has both
// changes and data beside code. Then a conflict (refused naming the file,
// main unchanged), a merge whose expectation fails (refused with the
// node's reason, main unchanged) and a commit already on main (ok, nothing
// written).
func TestMergeQueue(t *testing.T) {
	needSandboxes(t)
	// One merge and one run per request: no trains (TestMergeTrain).
	s := startWeir(t, t.TempDir(), "--merge-train", "1")
	url := s.URL("mq")
	mergeRepo(t, url)
	start := lsRemote(t, url)

	// Two agents, different files, at once.
	a1, a2 := agent(t, url), agent(t, url)
	c1 := commitFile(t, a1, "models/a.sql", "SELECT 10 AS v\n")
	c2 := commitFile(t, a2, "models/b.sql", "SELECT 20 AS v\n")
	p1 := pushAsync(t, a1, nil, url, "HEAD:refs/merge/main")
	p2 := pushAsync(t, a2, nil, url, "HEAD:refs/merge/main")
	for i, p := range []*asyncPush{p1, p2} {
		out, ok := p.wait()
		if !ok || !strings.Contains(out, "weir: main advanced") || !strings.Contains(out, "weir: merge queue: ") ||
			!regexp.MustCompile(`\* \[new reference\] +HEAD -> refs/merge/main`).MatchString(out) {
			t.Fatalf("agent %d's merge request:\n%s", i+1, out)
		}
	}
	now := lsRemote(t, url)
	if _, ok := now["refs/merge/main"]; ok {
		t.Fatalf("refs/merge/main was written: %v", now)
	}
	git(t, a1, "fetch", "-q", "origin")
	merges := strings.Split(strings.TrimSpace(git(t, a1, "log", "--first-parent", "--format=%H %P|%an|%s", start["refs/heads/main"]+"..origin/main")), "\n")
	if len(merges) != 2 {
		t.Fatalf("main gained %d commits, want 2 merges:\n%s", len(merges), strings.Join(merges, "\n"))
	}
	landed := map[string]bool{}
	for _, m := range merges {
		f := strings.SplitN(m, "|", 3)
		hashes := strings.Fields(f[0])
		sub := mergeSubject.FindStringSubmatch(f[2])
		if len(hashes) != 3 || sub == nil || hashes[2] != sub[1] || f[1] != "anonymous" {
			t.Fatalf("not a merge queue merge commit (parents: head, pushed; author the pusher): %q", m)
		}
		landed[hashes[2]] = true
	}
	if !landed[c1] || !landed[c2] {
		t.Fatalf("merged %v, want %s and %s", landed, c1, c2)
	}
	if a := git(t, a1, "show", "origin/main:models/a.sql"); a != "SELECT 10 AS v\n" {
		t.Fatalf("main's a.sql: %q", a)
	}
	if b := git(t, a1, "show", "origin/main:models/b.sql"); b != "SELECT 20 AS v\n" {
		t.Fatalf("main's b.sql: %q", b)
	}
	if got := query(t, s, "mq", "main", "SELECT t FROM main.total"); got != "t\n30\n" {
		t.Fatalf("main.total after both merges: %q", got)
	}
	checkLineage(t, a1, url)

	// Conflict: both change a.sql; the first lands, the second is refused
	// naming the file and moves nothing.
	a1, a2 = agent(t, url), agent(t, url)
	commitFile(t, a1, "models/a.sql", "SELECT 5 AS v\n")
	commitFile(t, a2, "models/a.sql", "SELECT 6 AS v\n")
	if out := git(t, a1, "push", "origin", "HEAD:refs/merge/main"); !strings.Contains(out, "weir: main advanced") {
		t.Fatalf("first of two conflicting merges:\n%s", out)
	}
	after1 := lsRemote(t, url)
	out := gitFails(t, a2, "push", "origin", "HEAD:refs/merge/main")
	if !strings.Contains(out, "! [remote rejected] HEAD -> refs/merge/main (weir: ") || !strings.Contains(out, "conflicts with main at "+after1["refs/heads/main"][:7]+": models/a.sql changed on both sides") {
		t.Fatalf("conflicting merge:\n%s", out)
	}
	if now := lsRemote(t, url); now["refs/heads/main"] != after1["refs/heads/main"] || now["refs/data/main"] != after1["refs/data/main"] {
		t.Fatalf("a refused merge moved main: %v, before %v", now, after1)
	}
	if got := query(t, s, "mq", "main", "SELECT t FROM main.total"); got != "t\n25\n" {
		t.Fatalf("main.total after the first of two conflicting merges: %q", got)
	}

	// The merged pipeline fails its expectation: refused with the node's
	// reason, nothing moves.
	a3 := agent(t, url)
	commitFile(t, a3, "models/a.sql", "SELECT -1 AS v\n")
	out = gitFails(t, a3, "push", "origin", "HEAD:refs/merge/main")
	if !strings.Contains(out, "! [remote rejected] HEAD -> refs/merge/main (weir: expect a_nonneg failed: ") {
		t.Fatalf("merge whose expectation fails:\n%s", out)
	}
	if now := lsRemote(t, url); now["refs/heads/main"] != after1["refs/heads/main"] || now["refs/data/main"] != after1["refs/data/main"] {
		t.Fatalf("a failed merge moved main: %v, before %v", now, after1)
	}

	// A commit already on main: ok, nothing written.
	a4 := agent(t, url)
	out = git(t, a4, "push", "origin", "origin/main:refs/merge/main")
	if !strings.Contains(out, "is already on main; nothing to merge") {
		t.Fatalf("merge of a commit already on main:\n%s", out)
	}
	if now := lsRemote(t, url); now["refs/heads/main"] != after1["refs/heads/main"] || now["refs/merge/main"] != "" {
		t.Fatalf("a merge of main's own commit wrote refs: %v", now)
	}
	checkLineage(t, a4, url)
}

// TestMergeQueueAccess: refs/merge/main is a push to main: an identity
// that may not write main cannot use it (its own branch it can), and one
// that may, can; a repo with no pipeline merges code alone. A hostile
// name never reaches a ref (gitserver's tests cover names git itself will
// not send).
func TestMergeQueueAccess(t *testing.T) {
	data := t.TempDir()
	for _, u := range []string{"alice", "bob"} {
		weirCLI(t, "user", "add", u, "--data", data)
		weirCLI(t, "user", "grant", u, "demo", "write", "--data", data)
	}
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	weirCLI(t, "rule", "set", "demo", "main", "--protect", "--writers", "alice", "--data", data)
	s := startWeir(t, data, "--assume-remote")
	alice, bob := withCreds(s.URL("demo"), "alice", aliceTok), withCreds(s.URL("demo"), "bob", bobTok)
	work := newWorkRepo(t, 1)
	git(t, work, "push", "-q", alice, "main")
	base := revParse(t, work, "HEAD")

	git(t, work, "checkout", "-q", "-b", "feature")
	feature := commitFile(t, work, "b.txt", "bob\n")
	out := gitFails(t, work, "push", bob, "feature", "HEAD:refs/merge/main")
	if !strings.Contains(out, "! [remote rejected] HEAD -> refs/merge/main (permission denied: branch main of demo may be written only by alice)") {
		t.Fatalf("bob's merge request into main:\n%s", out)
	}
	refs := lsRemote(t, bob)
	if refs["refs/heads/feature"] != feature || refs["refs/heads/main"] != base || refs["refs/merge/main"] != "" {
		t.Fatalf("after bob's refused merge request: %v", refs)
	}
	// A name git sends but the server refuses.
	out = gitFails(t, work, "push", alice, "HEAD:refs/merge/@")
	if !strings.Contains(out, "refs/merge/@ (funny refname)") {
		t.Fatalf("merge request to refs/merge/@:\n%s", out)
	}

	// Alice may: main meanwhile moved, so the merge is a real one.
	git(t, work, "checkout", "-q", "main")
	moved := commitFile(t, work, "a.txt", "alice\n")
	git(t, work, "push", "-q", alice, "main")
	out = git(t, work, "push", alice, "feature:refs/merge/main")
	if !strings.Contains(out, "weir: merge queue: "+feature[:7]+" merged into main at "+moved[:7]) {
		t.Fatalf("alice's merge request:\n%s", out)
	}
	git(t, work, "fetch", "-q", alice, "main")
	if p := strings.Fields(git(t, work, "log", "-1", "--format=%P %an", "FETCH_HEAD")); len(p) != 3 || p[0] != moved || p[1] != feature || p[2] != "alice" {
		t.Fatalf("merge commit parents and author: %v", p)
	}
	if ls := git(t, work, "ls-tree", "--name-only", "FETCH_HEAD"); ls != "a.txt\nb.txt\nfile0.txt\n" {
		t.Fatalf("merged tree: %q", ls)
	}
	if out := git(t, work, "fsck", "--strict", "--no-dangling"); strings.TrimSpace(out) != "" {
		t.Fatalf("git fsck of the merge commit:\n%s", out)
	}
}

// dulwichMergeScript drives dulwich, a second Git implementation: step
// "commit" clones and commits, step "push" pushes HEAD to refs/merge/main
// and prints what the server answered for it.
const dulwichMergeScript = `
import os, sys
from dulwich import porcelain
from dulwich.repo import Repo

step, url, path = sys.argv[1], sys.argv[2], sys.argv[3]
if step == "commit":
    r = porcelain.clone(url, path, checkout=True, errstream=sys.stderr.buffer)
    with open(os.path.join(path, "dulwich.txt"), "w") as f:
        f.write("written by dulwich\n")
    porcelain.add(r, [os.path.join(path, "dulwich.txt")])
    c = porcelain.commit(r, message=b"commit from dulwich",
                         author=b"Dul Wich <dul@wich.test>", committer=b"Dul Wich <dul@wich.test>")
    print("committed", c.decode())
else:
    r = Repo(path)
    res = porcelain.push(r, url, b"HEAD:refs/merge/main", errstream=sys.stderr.buffer)
    status = getattr(res, "ref_status", None) or {}
    print("status", status.get(b"refs/merge/main") or "ok")
`

// TestMergeQueueDulwich: dulwich commits on main, C git moves main on, and
// dulwich pushes its commit to refs/merge/main: main gets a merge of it.
func TestMergeQueueDulwich(t *testing.T) {
	run := pyDriver(t, "dulwich", dulwichMergeScript)
	s := startWeir(t, t.TempDir())
	url := s.URL("dulmerge")
	work := newWorkRepo(t, 1)
	git(t, work, "push", "-q", url, "main")
	dpath := filepath.Join(t.TempDir(), "dul")
	committed := run("commit", url, dpath)["committed"]
	moved := commitFile(t, work, "c.txt", "c git\n")
	git(t, work, "push", "-q", url, "main")
	if got := run("push", url, dpath); got["status"] != "ok" {
		t.Fatalf("dulwich's merge request: %v", got)
	}
	git(t, work, "fetch", "-q", url, "main")
	parents := strings.Fields(git(t, work, "log", "-1", "--format=%P", "FETCH_HEAD"))
	if len(parents) != 2 || parents[0] != moved || parents[1] != committed {
		t.Fatalf("main after dulwich's merge request: parents %v, want %s (main) and %s (dulwich's)", parents, moved, committed)
	}
	if ls := git(t, work, "ls-tree", "--name-only", "FETCH_HEAD"); ls != "c.txt\ndulwich.txt\nfile0.txt\n" {
		t.Fatalf("merged tree: %q", ls)
	}
	if refs := lsRemote(t, url); refs["refs/merge/main"] != "" {
		t.Fatalf("refs/merge/main written: %v", refs)
	}
}

// holdMain pushes to main a commit whose slow Python model fails after a
// few seconds, from a clone of url, and returns once its run holds main:
// merge requests pushed meanwhile queue behind it. main does not move.
func holdMain(t *testing.T, url string) *asyncPush {
	t.Helper()
	dir := agent(t, url)
	commitFile(t, dir, "models/hold.py", sleepModel("hold", 4, true))
	p := pushAsync(t, dir, nil, url, "HEAD:main")
	p.waitOut(t, "weir: run r-")
	return p
}

// TestMergeTrain: merge requests that wait together behind a run of main
// are merged together and run once; when the train's run fails, each goes
// alone: of three, the middle one breaks a model, the first and the third
// land and the second is refused with the node's reason.
func TestMergeTrain(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	url := s.URL("train")
	mergeRepo(t, url)

	// Three good merges: one train, one merge commit, one run.
	hold := holdMain(t, url)
	var pushes []*asyncPush
	var commits []string
	for i, f := range []string{"models/a.sql", "models/b.sql", "README.md"} {
		a := agent(t, url)
		content := "SELECT 3 AS v\n"
		if i == 2 {
			content = "train\n"
		}
		commits = append(commits, commitFile(t, a, f, content))
		p := pushAsync(t, a, nil, url, "HEAD:refs/merge/main")
		if i == 0 {
			p.waitOut(t, "weir: queued")
		} else {
			p.waitOut(t, "waits in a train into main")
		}
		pushes = append(pushes, p)
	}
	if out, ok := hold.wait(); ok {
		t.Fatalf("the holding push landed:\n%s", out)
	}
	for i, p := range pushes {
		out, ok := p.wait()
		if !ok || !strings.Contains(out, "a train of 3") {
			t.Fatalf("merge %d of the train:\n%s", i+1, out)
		}
	}
	check := agent(t, url)
	parents := strings.Fields(git(t, check, "log", "-1", "--format=%P", "origin/main"))
	if len(parents) != 4 || parents[1] != commits[0] || parents[2] != commits[1] || parents[3] != commits[2] {
		t.Fatalf("main's tip has parents %v, want main's old head and %v", parents, commits)
	}
	if got := query(t, s, "train", "main", "SELECT t FROM main.total"); got != "t\n6\n" {
		t.Fatalf("main.total after the train: %q", got)
	}
	checkLineage(t, check, url)

	// The middle one breaks a model: the train's run fails, and alone
	// the first and third land, the second is refused.
	hold = holdMain(t, url)
	pushes = nil
	for i := 0; i < 3; i++ {
		a := agent(t, url)
		switch i {
		case 0:
			commitFile(t, a, "models/a.sql", "SELECT 100 AS v\n")
		case 1:
			commitFile(t, a, "models/broken.py", sleepModel("broken", 0, true))
		case 2:
			commitFile(t, a, "models/b.sql", "SELECT 200 AS v\n")
		}
		p := pushAsync(t, a, nil, url, "HEAD:refs/merge/main")
		if i == 0 {
			p.waitOut(t, "weir: queued")
		} else {
			p.waitOut(t, "waits in a train into main")
		}
		pushes = append(pushes, p)
	}
	hold.wait()
	for i, p := range pushes {
		out, ok := p.wait()
		switch {
		case i == 1 && (ok || !strings.Contains(out, "! [remote rejected] HEAD -> refs/merge/main (weir: main.broken failed: ")):
			t.Fatalf("the breaking merge:\n%s", out)
		case i != 1 && (!ok || !strings.Contains(out, "weir: main advanced")):
			t.Fatalf("good merge %d after the train failed:\n%s", i+1, out)
		case i == 0 && !strings.Contains(out, "the train's run failed"):
			t.Fatalf("the train's leader does not say the train failed:\n%s", out)
		}
	}
	git(t, check, "fetch", "-q", "origin")
	if ls := git(t, check, "ls-tree", "--name-only", "origin/main", "models/"); ls != "models/a.sql\nmodels/b.sql\nmodels/total.sql\n" {
		t.Fatalf("main's models after the failed train: %q", ls)
	}
	if got := query(t, s, "train", "main", "SELECT t FROM main.total"); got != "t\n300\n" {
		t.Fatalf("main.total after the failed train: %q", got)
	}
	checkLineage(t, check, url)
}
