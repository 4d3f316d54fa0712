package gitserver

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestSessionStatelessHTTP runs the stateless-RPC half of the API the way
// the HTTP transport uses it (AdvertiseRefs for GET info/refs, Serve per
// POST) under real git over smart HTTP: push, clone, multi-round fetch,
// shallow clone, hook progress, in protocol v0 and v2.
func TestSessionStatelessHTTP(t *testing.T) {
	for _, proto := range []string{"0", "2"} {
		t.Run("protocol.version="+proto, func(t *testing.T) {
			ts := newSessServer(t)
			ts.srv.Hook = &testHook{}
			hs := ts.httpServer()
			g := newSessGit(t, ts)
			g.env = append(g.env, "GIT_CONFIG_PARAMETERS='protocol.version="+proto+"'")
			url := hs.URL + "/team/demo.git"

			src := g.newRepo(ts, "team/demo", 3)
			g.run(src, "remote", "set-url", "origin", url)
			out := g.run(src, "push", "origin", "main")
			if !strings.Contains(out, "remote: test hook: checking refs/heads/main") {
				t.Errorf("push output lacks the hook's progress line:\n%s", out)
			}
			if got, want := ts.ref("team/demo", "refs/heads/main").String(), g.revParse(src, "HEAD"); got != want {
				t.Fatalf("server main = %s, want %s", got, want)
			}

			dst := filepath.Join(g.home, "clone")
			g.run(g.home, "clone", "-q", url, dst)
			if sess := ts.lastSession(); sess.Protocol != map[string]int{"0": 0, "2": 2}[proto] {
				t.Errorf("clone spoke protocol %d", sess.Protocol)
			}
			if got, want := g.revParse(dst, "HEAD"), g.revParse(src, "HEAD"); got != want {
				t.Fatalf("clone HEAD = %s, want %s", got, want)
			}

			// Many local commits the server never saw: several stateless
			// negotiation rounds.
			g.run(dst, "checkout", "-q", "-b", "local")
			for i := 0; i < 60; i++ {
				g.run(dst, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("local %d", i))
			}
			g.commits(src, "new", 2)
			g.run(src, "push", "-q", "origin", "main")
			g.run(dst, "fetch", "-q", "origin")
			if got, want := g.revParse(dst, "origin/main"), g.revParse(src, "HEAD"); got != want {
				t.Fatalf("fetched origin/main = %s, want %s", got, want)
			}
			g.run(dst, "fsck", "--strict")

			sh := filepath.Join(g.home, "shallow")
			g.run(g.home, "clone", "-q", "--depth", "2", url, sh)
			if n := strings.TrimSpace(g.run(sh, "rev-list", "--count", "HEAD")); n != "2" {
				t.Errorf("depth 2 clone has %s commits", n)
			}
			g.run(sh, "fetch", "-q", "--unshallow")
			if n := strings.TrimSpace(g.run(sh, "rev-list", "--count", "HEAD")); n != "5" {
				t.Errorf("unshallowed clone has %s commits, want 5", n)
			}

			errs := g.fail(src, "push", "origin", "--delete", "main")
			if !strings.Contains(errs, "(protected branch: deletion refused)") {
				t.Errorf("delete main over HTTP:\n%s", errs)
			}
			ts.mu.Lock()
			defer ts.mu.Unlock()
			for _, err := range ts.errs {
				t.Errorf("session error: %v", err)
			}
		})
	}
}
