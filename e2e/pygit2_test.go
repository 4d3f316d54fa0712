package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pygit2Script drives libgit2 (through pygit2) against Weir: "clone-push"
// clones URL into DIR, commits pygit2.txt on main and pushes; "fetch"
// fetches origin into DIR. It prints "key value" lines.
const pygit2Script = `
import sys, pygit2
step, url, path = sys.argv[1:4]
sig = pygit2.Signature("pygit2", "pygit2@example.com", 1700000000, 0)
if step == "clone-push":
    repo = pygit2.clone_repository(url, path)
    print("cloned", repo.head.target)
    blob = repo.create_blob(b"written by libgit2\n")
    tb = repo.TreeBuilder(repo.head.peel().tree)
    tb.insert("pygit2.txt", blob, pygit2.GIT_FILEMODE_BLOB)
    c = repo.create_commit("refs/heads/main", sig, sig, "pygit2 commit", tb.write(), [repo.head.target])
    repo.remotes["origin"].push(["refs/heads/main:refs/heads/main"])
    print("pushed", c)
else:
    repo = pygit2.Repository(path)
    repo.remotes["origin"].fetch()
    tip = repo.references["refs/remotes/origin/main"].target
    print("fetched", tip)
    print("have", "yes" if tip in repo else "no")
`

// TestPygit2: libgit2 (a third Git implementation, after C git and
// dulwich) clones, pushes and fetches over smart HTTP, and C git builds on
// what it pushed.
func TestPygit2(t *testing.T) {
	run := pyDriver(t, "pygit2", pygit2Script)
	s := startWeir(t, t.TempDir())
	url := s.URL("pygit2")
	work := newWorkRepo(t, 2)
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")
	dir := filepath.Join(t.TempDir(), "lg2")

	got := run("clone-push", url, dir)
	if got["cloned"] != revParse(t, work, "HEAD") {
		t.Fatalf("pygit2 cloned %s, want %s", got["cloned"], revParse(t, work, "HEAD"))
	}
	if lsRemote(t, url)["refs/heads/main"] != got["pushed"] {
		t.Fatalf("pygit2 pushed %s, server has %v", got["pushed"], lsRemote(t, url))
	}
	git(t, work, "pull", "-q", "--ff-only", "origin", "main")
	if b, err := os.ReadFile(filepath.Join(work, "pygit2.txt")); err != nil || string(b) != "written by libgit2\n" {
		t.Fatalf("pygit2's file in C git's checkout: %q, %v", b, err)
	}
	tip := commitFile(t, work, "after-pygit2.txt", "c git again\n")
	git(t, work, "push", "-q", "origin", "main")
	if out := git(t, work, "fsck", "--full", "--strict"); strings.TrimSpace(out) != "" {
		t.Fatalf("fsck:\n%s", out)
	}
	got = run("fetch", url, dir)
	if got["fetched"] != tip || got["have"] != "yes" {
		t.Fatalf("pygit2 fetch: %v, want %s present", got, tip)
	}
}
