package e2e

import (
	"os"
	"os/exec"
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
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import dulwich").Run(); err != nil {
		t.Skip("dulwich not installed for /usr/bin/python3 (apt-get install python3-dulwich)")
	}
	s := startWeir(t, t.TempDir())
	url := s.URL("dulwich")
	work := newWorkRepo(t, 2)
	git(t, work, "remote", "add", "origin", url)
	git(t, work, "push", "-q", "origin", "main")

	script := filepath.Join(t.TempDir(), "drive.py")
	if err := os.WriteFile(script, []byte(dulwichScript), 0o644); err != nil {
		t.Fatal(err)
	}
	dpath := filepath.Join(t.TempDir(), "dul")
	run := func(step string) map[string]string {
		t.Helper()
		cmd := exec.Command(py, script, step, url, dpath)
		cmd.Env = gitEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("dulwich %s: %v\n%s\n%s", step, err, out, stderr.String())
		}
		kv := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok {
				kv[k] = v
			}
		}
		return kv
	}

	got := run("clone-push")
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

	got = run("fetch")
	if got["fetched"] != tip || got["have"] != "yes" {
		t.Fatalf("dulwich fetch: %v, want %s present", got, tip)
	}
}
