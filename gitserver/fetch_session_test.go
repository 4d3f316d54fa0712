package gitserver

import (
	"path/filepath"
	"strings"
	"testing"
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
