package gitserver

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// objectSet lists the objects of the repo at dir, sorted.
func (g *sessGit) objectSet(dir string) []string {
	g.t.Helper()
	out := g.run(dir, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return lines
}

// lastUploadCached reports whether the last upload-pack the server logged
// planned without a whole walk.
func lastUploadCached(t *testing.T, ts *sessServer) bool {
	t.Helper()
	log := ts.logBuf.String()
	i := strings.LastIndex(log, "msg=upload-pack ")
	if i < 0 {
		t.Fatalf("no upload-pack logged:\n%s", log)
	}
	line := log[i:]
	line, _, _ = strings.Cut(line, "\n")
	return strings.Contains(line, " cached=true ")
}

// TestPlanCacheClones: clones and blobless clones whose plans come from the
// plan cache (a repeated clone, the extension of the last plan after a
// push, a filtered plan from an unfiltered one) hold exactly the objects
// C git's own upload-pack sends for the same refs and filter, after a push
// that moves main, one that adds a branch, a force push that moves a branch
// back, the deletion of a branch and a tag, a push the server refuses
// (its objects stay in quarantine), and a restart of the server (the
// cache is empty: plans are walked again).
func TestPlanCacheClones(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 4)
	g.run(src, "config", "uploadpack.allowFilter", "true")
	g.run(src, "tag", "-a", "-m", "first", "v1")
	g.run(src, "checkout", "-q", "-b", "side")
	g.commits(src, "side", 3)
	g.run(src, "tag", "-a", "-m", "on side", "s1")
	g.run(src, "checkout", "-q", "-b", "dev", "main")
	g.commits(src, "dev", 3)
	g.run(src, "checkout", "-q", "main")
	g.run(src, "push", "-q", "origin", "main", "side", "dev", "v1", "s1")

	n := 0
	// same clones src from weir and from C git with args and compares
	// the objects; it returns whether weir's plan came from the cache.
	same := func(label string, args ...string) bool {
		t.Helper()
		n++
		w := filepath.Join(g.home, "w"+strings.Repeat("x", n))
		c := filepath.Join(g.home, "c"+strings.Repeat("x", n))
		g.run(g.home, append(append([]string{"clone", "-q", "--bare"}, args...), ts.url("demo"), w)...)
		cached := lastUploadCached(t, ts)
		g.run(g.home, append(append([]string{"clone", "-q", "--bare"}, args...), "file://"+src, c)...)
		ws, cs := g.objectSet(w), g.objectSet(c)
		if strings.Join(ws, "\n") != strings.Join(cs, "\n") {
			t.Errorf("%s: weir sent %d objects, C git %d:\n%s", label, len(ws), len(cs), setDiff(ws, cs))
		}
		return cached
	}
	blobless := "--filter=blob:none"

	if same("first clone") {
		t.Errorf("first clone: planned from the cache, want a walk")
	}
	if !same("second clone") {
		t.Errorf("second clone: walked, want the cached plan")
	}
	if !same("first blobless clone", blobless) {
		t.Errorf("first blobless clone: walked, want the full clone's plan filtered")
	}
	same("first tree:0 clone", "--filter=tree:0")

	// main moves on: the plan extends the last one by the new commits.
	g.commits(src, "more", 3)
	g.run(src, "push", "-q", "origin", "main")
	same("blob:limit clone after a push", "--filter=blob:limit=40")
	if !same("blobless clone after a push", blobless) {
		t.Errorf("blobless clone after a push: walked, want the last plan extended")
	}
	if !same("clone after a push") {
		t.Errorf("clone after a push: walked, want the last plan extended")
	}

	// A new branch: its commits join.
	g.run(src, "checkout", "-q", "-b", "topic")
	g.commits(src, "topic", 2)
	g.run(src, "checkout", "-q", "main")
	g.run(src, "push", "-q", "origin", "topic")
	same("clone after a new branch")

	// dev forced back: its last commits are no longer reachable.
	g.run(src, "branch", "-f", "dev", "dev~2")
	g.run(src, "push", "-q", "-f", "origin", "dev")
	if same("clone after a force push back", blobless) {
		t.Errorf("clone after dev moved back: planned from a plan holding dev's old commits")
	}

	// A lazy fetch of a blob only side reaches is served while side is
	// there (and primes the reachable set of these refs) ...
	sideBlob := g.revParse(src, "side:side") // "side line 2", only on side
	lazy := filepath.Join(g.home, "lazy")
	g.run(g.home, "clone", "-q", "--bare", blobless, ts.url("demo"), lazy)
	g.run(lazy, "cat-file", "-p", sideBlob)

	// side and s1 deleted: what only they reached goes.
	g.run(src, "branch", "-q", "-D", "side")
	g.run(src, "tag", "-d", "s1")
	g.run(src, "push", "-q", "origin", ":side", ":s1")
	same("clone after a deletion")
	same("blobless clone after a deletion", blobless)
	// ... and refused once no ref reaches it.
	lazy2 := filepath.Join(g.home, "lazy2")
	g.run(g.home, "clone", "-q", "--bare", blobless, ts.url("demo"), lazy2)
	if errs := g.fail(lazy2, "cat-file", "-p", sideBlob); !strings.Contains(errs, "not our ref") {
		t.Errorf("lazy fetch of a blob of the deleted branch: %s, want not our ref", errs)
	}

	// A push the server refuses (main is protected from force pushes):
	// its objects never leave quarantine.
	g.run(src, "checkout", "-q", "--detach", "main~1")
	g.commits(src, "refused", 2)
	g.fail(src, "push", "-q", "-f", "origin", "HEAD:refs/heads/main")
	g.run(src, "checkout", "-q", "main")
	same("blobless clone after a refused push", blobless)

	// A restart: the cache is empty, plans are walked again.
	ts.srv.plans.reset()
	if same("clone after a restart", blobless) {
		t.Errorf("clone after a restart: planned from the cache of the old server")
	}
}

// reset empties the cache, as a restart does.
func (c *planCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries, c.bases, c.kept, c.hashes = nil, nil, nil, 0
	c.order.Init()
}

// setDiff describes the lines only in a and only in b (both sorted).
func setDiff(a, b []string) string {
	in := func(s []string, x string) bool {
		i := sort.SearchStrings(s, x)
		return i < len(s) && s[i] == x
	}
	var d []string
	for _, x := range a {
		if !in(b, x) {
			d = append(d, "weir only: "+x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			d = append(d, "C git only: "+x)
		}
	}
	if len(d) > 20 {
		d = append(d[:20], "...")
	}
	return strings.Join(d, "\n")
}
