package gitserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// TestSessionPushCloneFetch: a first push creates the repo and its HEAD, a
// clone gets the same history, and a fetch after new commits gets them.
func TestSessionPushCloneFetch(t *testing.T) {
	for _, proto := range []string{"0", "2"} {
		t.Run("protocol.version="+proto, func(t *testing.T) {
			ts := newSessServer(t)
			g := newSessGit(t, ts)
			if proto == "2" {
				g.protocol(2)
			}
			src := g.newRepo(ts, "team/demo", 3)
			out := g.run(src, "-c", "protocol.version="+proto, "push", "origin", "main")
			if !strings.Contains(out, "* [new branch]      main -> main") {
				t.Errorf("push output lacks the new branch line:\n%s", out)
			}
			head := g.revParse(src, "HEAD")
			if got := ts.ref("team/demo", "refs/heads/main").String(); got != head {
				t.Fatalf("server main = %s, want %s", got, head)
			}
			if got := ts.ref("team/demo", "HEAD").String(); got != head {
				t.Fatalf("server HEAD resolves to %s, want %s", got, head)
			}

			dst := filepath.Join(g.home, "clone")
			g.run(g.home, "-c", "protocol.version="+proto, "clone", "-q", ts.url("team/demo"), dst)
			if sess := ts.lastSession(); proto == "2" && sess.Protocol != 2 {
				t.Errorf("clone used protocol %d, want 2", sess.Protocol)
			}
			if got := g.revParse(dst, "HEAD"); got != head {
				t.Fatalf("clone HEAD = %s, want %s", got, head)
			}
			if got := strings.TrimSpace(g.run(dst, "symbolic-ref", "HEAD")); got != "refs/heads/main" {
				t.Errorf("clone HEAD -> %s, want refs/heads/main", got)
			}
			g.run(dst, "fsck", "--strict")
			if n := strings.TrimSpace(g.run(dst, "rev-list", "--count", "HEAD")); n != "3" {
				t.Errorf("clone has %s commits, want 3", n)
			}

			g.commits(src, "more", 2)
			g.run(src, "push", "-q", "origin", "main")
			out = g.run(dst, "-c", "protocol.version="+proto, "fetch", "origin")
			if got, want := g.revParse(dst, "origin/main"), g.revParse(src, "HEAD"); got != want {
				t.Fatalf("fetched origin/main = %s, want %s\n%s", got, want, out)
			}
			g.run(dst, "fsck", "--strict")
			// The fetch negotiated: the server saw the client's commits
			// and sent only the two new ones and what they added: 2
			// commits, 2 root trees, 2 sub trees, 2 versions of "more" and
			// 2 new files under sub/ (their contents "content 0\n" and
			// "content 1\n" already exist).
			if !strings.Contains(ts.logBuf.String(), "objects=8 commits=2") {
				t.Errorf("fetch did not send exactly the new objects; log:\n%s", ts.logBuf.String())
			}
		})
	}
}

// TestSessionShallow: clone --depth 1, deepen with --depth, fetch new
// commits into the shallow clone, then --unshallow.
func TestSessionShallow(t *testing.T) {
	for _, proto := range []int{0, 2} {
		t.Run(fmt.Sprintf("protocol=%d", proto), func(t *testing.T) {
			ts := newSessServer(t)
			g := newSessGit(t, ts)
			g.protocol(proto)
			src := g.newRepo(ts, "demo", 5)
			g.run(src, "push", "-q", "origin", "main")
			dst := filepath.Join(g.home, "shallow")
			g.run(g.home, "clone", "-q", "--depth", "1", ts.url("demo"), dst)
			count := func() string { return strings.TrimSpace(g.run(dst, "rev-list", "--count", "HEAD")) }
			if n := count(); n != "1" {
				t.Fatalf("depth 1 clone has %s commits", n)
			}
			shallow, err := os.ReadFile(filepath.Join(dst, ".git", "shallow"))
			if err != nil || strings.TrimSpace(string(shallow)) != g.revParse(src, "HEAD") {
				t.Fatalf(".git/shallow = %q (%v), want the tip", shallow, err)
			}
			g.run(dst, "fsck")

			g.run(dst, "fetch", "-q", "--depth", "3", "origin")
			g.run(dst, "reset", "-q", "--hard", "origin/main")
			if n := count(); n != "3" {
				t.Fatalf("after --depth 3: %s commits", n)
			}

			g.commits(src, "new", 2)
			g.run(src, "push", "-q", "origin", "main")
			g.run(dst, "pull", "-q", "--ff-only")
			if got, want := g.revParse(dst, "HEAD"), g.revParse(src, "HEAD"); got != want {
				t.Fatalf("shallow pull: HEAD %s, want %s", got, want)
			}
			if n := count(); n != "5" {
				t.Fatalf("after pull: %s commits, want 5", n)
			}

			g.run(dst, "fetch", "-q", "--unshallow", "origin")
			if n := count(); n != "7" {
				t.Fatalf("after --unshallow: %s commits, want 7", n)
			}
			if _, err := os.Stat(filepath.Join(dst, ".git", "shallow")); !os.IsNotExist(err) {
				t.Errorf(".git/shallow still there after --unshallow (%v)", err)
			}
			g.run(dst, "fsck", "--strict")
		})
	}
}

// TestSessionWantNotOurRef: a want of an object no ref reaches is refused
// with git's wording; a reachable commit that is no tip may be fetched.
func TestSessionWantNotOurRef(t *testing.T) {
	for _, proto := range []int{0, 2} {
		t.Run(fmt.Sprintf("protocol=%d", proto), func(t *testing.T) {
			ts := newSessServer(t)
			g := newSessGit(t, ts)
			g.protocol(proto)
			src := g.newRepo(ts, "demo", 3)
			g.run(src, "push", "-q", "origin", "main")

			// An object in the store that no ref reaches, as a refused
			// push would leave if its objects were kept.
			tree := mustHash(t, g.revParse(src, "HEAD^{tree}"))
			data := fmt.Sprintf("tree %s\nauthor A <a@b> 1700000000 +0000\ncommitter A <a@b> 1700000000 +0000\n\norphan\n", tree)
			orphan, err := ts.store.Put(context.Background(), "demo", plumbing.CommitObject, []byte(data))
			if err != nil {
				t.Fatal(err)
			}
			errs := g.fail(src, "fetch", "origin", orphan.String())
			if !strings.Contains(errs, "upload-pack: not our ref "+orphan.String()) {
				t.Errorf("stderr lacks the refusal:\n%s", errs)
			}

			parent := g.revParse(src, "HEAD~2")
			dst := filepath.Join(g.home, "dst")
			g.run(g.home, "init", "-q", dst)
			g.run(dst, "fetch", "-q", ts.url("demo"), parent)
			if got := g.revParse(dst, "FETCH_HEAD"); got != parent {
				t.Errorf("FETCH_HEAD = %s, want %s", got, parent)
			}
		})
	}
}

// TestSessionTags: annotated tags are advertised peeled, cloned, and
// followed (include-tag) when a fetch brings the commit they tag.
func TestSessionTags(t *testing.T) {
	for _, proto := range []int{0, 2} {
		t.Run(fmt.Sprintf("protocol=%d", proto), func(t *testing.T) {
			ts := newSessServer(t)
			g := newSessGit(t, ts)
			g.protocol(proto)
			src := g.newRepo(ts, "demo", 2)
			g.run(src, "tag", "-a", "-m", "first release", "v1")
			g.run(src, "push", "-q", "origin", "main", "v1")
			dst := filepath.Join(g.home, "dst")
			g.run(g.home, "clone", "-q", ts.url("demo"), dst)
			if got, want := g.revParse(dst, "v1"), g.revParse(src, "v1"); got != want {
				t.Fatalf("cloned v1 = %s, want %s", got, want)
			}
			ls := g.run(dst, "ls-remote", "origin")
			if !strings.Contains(ls, g.revParse(src, "v1^{}")+"\trefs/tags/v1^{}") {
				t.Errorf("ls-remote lacks the peeled tag:\n%s", ls)
			}

			g.commits(src, "two", 1)
			g.run(src, "tag", "-a", "-m", "second release", "v2")
			g.run(src, "push", "-q", "origin", "main", "v2")
			g.run(dst, "fetch", "-q", "origin")
			// One upload-pack sent the commit and, by include-tag, its tag:
			// 1 commit, 2 trees, 1 blob, 1 tag.
			if log := ts.logBuf.String(); !strings.Contains(log, "objects=5 commits=1") {
				t.Errorf("the fetch did not include the tag in its pack:\n%s", log)
			}
			if got, want := g.revParse(dst, "v2"), g.revParse(src, "v2"); got != want {
				t.Errorf("followed tag v2 = %q, want %s", got, want)
			}
			g.run(dst, "fsck", "--strict")
		})
	}
}

// TestSessionNegotiation: a client with many commits the server never saw
// negotiates over several rounds and gets only what it lacks.
func TestSessionNegotiation(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 2)
	g.run(src, "push", "-q", "origin", "main")
	dst := filepath.Join(g.home, "dst")
	g.run(g.home, "clone", "-q", ts.url("demo"), dst)
	g.run(dst, "checkout", "-q", "-b", "local")
	for i := 0; i < 100; i++ {
		g.run(dst, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("local %d", i))
	}
	g.commits(src, "new", 1)
	g.run(src, "push", "-q", "origin", "main")
	g.run(dst, "fetch", "-q", "origin")
	if got, want := g.revParse(dst, "origin/main"), g.revParse(src, "main"); got != want {
		t.Fatalf("origin/main = %s, want %s", got, want)
	}
	// 1 commit, its root and sub trees, the new version of "new"; the
	// file it adds under sub/ has a content the server already sent.
	if log := ts.logBuf.String(); !strings.Contains(log, "objects=4 commits=1") {
		t.Errorf("fetch sent more than the new commit's objects:\n%s", log)
	}
}
