package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dulwichScript drives dulwich (a pure-Python Git implementation) against
// the server: clone, commit, push, then fetch what C git pushed meanwhile.
// It prints "key value" lines the test checks.
const dulwichScript = `
import os, sys
from dulwich import porcelain
from dulwich.repo import Repo

step, url, path = sys.argv[1], sys.argv[2], sys.argv[3]
if step == "clone-push":
    r = porcelain.clone(url, path, checkout=True, errstream=sys.stderr.buffer)
    print("cloned", r.head().decode())
    with open(os.path.join(path, "dulwich.txt"), "w") as f:
        f.write("written by dulwich\n")
    porcelain.add(r, [os.path.join(path, "dulwich.txt")])
    c = porcelain.commit(r, message=b"commit from dulwich",
                         author=b"Dul Wich <dul@wich.test>", committer=b"Dul Wich <dul@wich.test>")
    porcelain.push(r, url, b"refs/heads/main", errstream=sys.stderr.buffer)
    print("pushed", c.decode())
elif step == "fetch":
    r = Repo(path)
    res = porcelain.fetch(r, url, errstream=sys.stderr.buffer)
    refs = getattr(res, "refs", res)
    print("fetched", refs[b"refs/heads/main"].decode())
    print("have", "yes" if refs[b"refs/heads/main"] in r.object_store else "no")
`

// TestDulwich: a second Git implementation clones, pushes and fetches over
// smart HTTP.
func TestDulwich(t *testing.T) {
	run := pyDriver(t, "dulwich", dulwichScript)
	s := startWeir(t, t.TempDir())
	url := s.URL("dulwich")
	work := newWorkRepo(t, 2)
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")
	dpath := filepath.Join(t.TempDir(), "dul")

	got := run("clone-push", url, dpath)
	if got["cloned"] != revParse(t, work, "HEAD") {
		t.Fatalf("dulwich cloned %s, want %s", got["cloned"], revParse(t, work, "HEAD"))
	}
	if lsRemote(t, url)["refs/heads/main"] != got["pushed"] {
		t.Fatalf("dulwich pushed %s, server has %v", got["pushed"], lsRemote(t, url))
	}
	// C git sees dulwich's commit, builds on it, pushes.
	git(t, work, "pull", "-q", "--ff-only", "origin", "main")
	if _, err := os.Stat(filepath.Join(work, "dulwich.txt")); err != nil {
		t.Fatalf("dulwich's file not in C git's checkout: %v", err)
	}
	tip := commitFile(t, work, "after-dulwich.txt", "c git again\n")
	git(t, work, "push", "-q", "origin", "main")
	if out := git(t, work, "fsck", "--full", "--strict"); strings.TrimSpace(out) != "" {
		t.Fatalf("fsck:\n%s", out)
	}

	got = run("fetch", url, dpath)
	if got["fetched"] != tip || got["have"] != "yes" {
		t.Fatalf("dulwich fetch: %v, want %s present", got, tip)
	}
}
