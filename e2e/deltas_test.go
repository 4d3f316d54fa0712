package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// deltaClientsScript clones and fetches with dulwich (pure Python: ofs-
// and ref-deltas, thin packs) or pygit2 (libgit2), and prints "key value"
// lines: the tip, and the content of big.txt at the tip.
const deltaClientsScript = `
import sys
lib, step, url, path = sys.argv[1:5]
if lib == "dulwich":
    from dulwich import porcelain
    from dulwich.repo import Repo
    if step == "clone":
        r = porcelain.clone(url, path, bare=True, errstream=sys.stderr.buffer)
    else:
        r = Repo(path)
        res = porcelain.fetch(r, url, errstream=sys.stderr.buffer)
        refs = getattr(res, "refs", res)
        r.refs[b"refs/heads/main"] = refs[b"refs/heads/main"]
    tip = r.refs[b"refs/heads/main"]
    tree = r[r[tip].tree]
    blob = r[tree[b"big.txt"][1]]
    print("tip", tip.decode())
    print("big", len(blob.data), blob.data.count(b"\n"))
else:
    import pygit2
    if step == "clone":
        r = pygit2.clone_repository(url, path, bare=True)
    else:
        r = pygit2.Repository(path)
        r.remotes["origin"].fetch(["+refs/heads/main:refs/heads/main"])
    c = r.revparse_single("refs/heads/main")
    blob = r[c.tree["big.txt"].id]
    print("tip", str(c.id))
    print("big", len(blob.data), blob.data.count(b"\n"))
`

// TestDeltaClients: a history of edits to one file, pushed by C git (its
// pack has deltas, which Weir keeps and sends back), is cloned and then
// fetched (thin) by C git, dulwich and pygit2; each gets the right tip
// and content, and C git's fsck is clean after the clone and the fetch.
func TestDeltaClients(t *testing.T) {
	py := "/usr/bin/python3"
	s := startWeir(t, t.TempDir())
	url := s.URL("deltas")
	work := newWorkRepo(t, 1)
	git(t, work, "remote", "add", "origin", url)
	lines := make([]string, 400)
	for i := range lines {
		lines[i] = fmt.Sprintf("select %d as n, 'a line of a model that grows by edits' as s", i)
	}
	edit := func(from, to int) {
		for c := from; c < to; c++ {
			lines[(c*37)%len(lines)] = fmt.Sprintf("select %d as n -- edited in commit %d", c, c)
			if err := os.WriteFile(filepath.Join(work, "big.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			git(t, work, "add", "big.txt")
			git(t, work, "commit", "-q", "-m", fmt.Sprintf("edit %d", c))
		}
	}
	edit(0, 30)
	git(t, work, "push", "-q", "origin", "main")
	wantBig := func() string {
		b, _ := os.ReadFile(filepath.Join(work, "big.txt"))
		return fmt.Sprintf("%d %d", len(b), strings.Count(string(b), "\n"))
	}

	script := filepath.Join(t.TempDir(), "drive.py")
	if err := os.WriteFile(script, []byte(deltaClientsScript), 0o644); err != nil {
		t.Fatal(err)
	}
	type client struct{ name, path string }
	var clients []client
	for _, lib := range []string{"dulwich", "pygit2"} {
		if err := exec.Command(py, "-c", "import "+lib).Run(); err != nil {
			t.Logf("%s not installed for %s: skipped", lib, py)
			continue
		}
		clients = append(clients, client{lib, filepath.Join(t.TempDir(), lib)})
	}
	run := func(c client, step string) map[string]string {
		t.Helper()
		cmd := exec.Command(py, script, c.name, step, url, c.path)
		cmd.Env = gitEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s\n%s", c.name, step, err, out, stderr.String())
		}
		kv := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok {
				kv[k] = v
			}
		}
		return kv
	}
	check := func(c client, step string) {
		t.Helper()
		got := run(c, step)
		if got["tip"] != revParse(t, work, "HEAD") || got["big"] != wantBig() {
			t.Errorf("%s %s: tip %s, big.txt %q; want %s, %q", c.name, step, got["tip"], got["big"], revParse(t, work, "HEAD"), wantBig())
		}
	}

	cgit := filepath.Join(t.TempDir(), "cgit")
	git(t, "", "clone", "-q", url, cgit)
	git(t, cgit, "fsck", "--strict")
	for _, c := range clients {
		check(c, "clone")
	}

	edit(30, 40)
	git(t, work, "push", "-q", "origin", "main")
	git(t, cgit, "pull", "-q", "--ff-only")
	git(t, cgit, "fsck", "--strict")
	if got, want := revParse(t, cgit, "HEAD"), revParse(t, work, "HEAD"); got != want {
		t.Errorf("C git fetched %s, want %s", got, want)
	}
	for _, c := range clients {
		check(c, "fetch")
	}
}

// TestDeltaBackgroundSearch: weir serve searches deltas in the background
// after a push lands (the push here carries none: pack.window=0), logs it,
// and the clone after it gets a pack with deltas that C git's fsck finds
// complete; the server then stops on SIGTERM with the worker in it.
func TestDeltaBackgroundSearch(t *testing.T) {
	s := startWeir(t, t.TempDir())
	work := newWorkRepo(t, 1)
	git(t, work, "remote", "add", "origin", s.URL("bg"))
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf("select %d as n, 'a model edited a line at a time' as s", i)
	}
	for c := range 20 {
		lines[(c*37)%len(lines)] = fmt.Sprintf("select %d as n -- edited in commit %d", c, c)
		if err := os.WriteFile(filepath.Join(work, "big.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, work, "add", "big.txt")
		git(t, work, "commit", "-q", "-m", fmt.Sprintf("edit %d", c))
	}
	git(t, work, "-c", "pack.window=0", "push", "-q", "origin", "main")
	searched := regexp.MustCompile(`msg="background delta search" repo=bg searched=([1-9][0-9]*)`)
	var m []string
	for range 600 {
		if m = searched.FindStringSubmatch(s.Log.String()); m != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("no background delta search logged after the push:\n%s", s.Log.String())
	}
	t.Logf("background search: %s objects", m[1])

	dst := filepath.Join(t.TempDir(), "clone.git")
	git(t, "", "clone", "-q", "--bare", s.URL("bg"), dst)
	git(t, dst, "fsck", "--strict")
	idx, _ := filepath.Glob(filepath.Join(dst, "objects", "pack", "*.idx"))
	if len(idx) != 1 {
		t.Fatalf("clone has %d packs, want 1", len(idx))
	}
	deltas := 0
	for _, l := range strings.Split(git(t, dst, "verify-pack", "-v", idx[0]), "\n") {
		if f := strings.Fields(l); len(f) == 7 && len(f[0]) == 40 {
			deltas++ // sha type size size-in-pack offset depth base
		}
	}
	if deltas < 10 {
		t.Errorf("the clone's pack has %d deltas, want >= 10 (20 versions of one file)", deltas)
	}
	s.Stop()
}
