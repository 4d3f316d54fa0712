package gitserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// pushedRepo is a client repo with main and feature pushed to the server.
func pushedRepo(t *testing.T, ts *sessServer, g *sessGit) string {
	t.Helper()
	src := g.newRepo(ts, "demo", 2)
	g.run(src, "branch", "feature")
	g.run(src, "push", "-q", "origin", "main", "feature")
	return src
}

// TestSessionPushProtectedAndDelete: main refuses force pushes and
// deletion; other branches accept both.
func TestSessionPushProtectedAndDelete(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := pushedRepo(t, ts, g)
	mainBefore := ts.ref("demo", "refs/heads/main")

	g.run(src, "commit", "-q", "--amend", "-m", "rewritten")
	errs := g.fail(src, "push", "-f", "origin", "main")
	if !strings.Contains(errs, "! [remote rejected] main -> main (protected branch: force push refused)") {
		t.Errorf("force push to main: stderr lacks the refusal:\n%s", errs)
	}
	if got := ts.ref("demo", "refs/heads/main"); got != mainBefore {
		t.Errorf("main moved to %s after a refused force push", got)
	}

	// A fast-forward of main is fine.
	g.run(src, "reset", "-q", "--hard", "origin/main")
	g.commits(src, "ff", 1)
	g.run(src, "push", "-q", "origin", "main")
	if got, want := ts.ref("demo", "refs/heads/main").String(), g.revParse(src, "HEAD"); got != want {
		t.Errorf("main = %s after a fast-forward, want %s", got, want)
	}

	// Force push and delete of an unprotected branch.
	g.run(src, "checkout", "-q", "feature")
	g.run(src, "commit", "-q", "--amend", "-m", "feature rewritten")
	g.run(src, "push", "-q", "-f", "origin", "feature")
	if got, want := ts.ref("demo", "refs/heads/feature").String(), g.revParse(src, "HEAD"); got != want {
		t.Errorf("feature = %s after force push, want %s", got, want)
	}
	out := g.run(src, "push", "origin", "--delete", "feature")
	if !strings.Contains(out, "- [deleted]         feature") {
		t.Errorf("delete output:\n%s", out)
	}
	if got := ts.ref("demo", "refs/heads/feature"); !got.IsZero() {
		t.Errorf("feature still %s after delete", got)
	}

	errs = g.fail(src, "push", "origin", "--delete", "main")
	if !strings.Contains(errs, "! [remote rejected] main (protected branch: deletion refused)") {
		t.Errorf("delete main: stderr lacks the refusal:\n%s", errs)
	}
	if ts.ref("demo", "refs/heads/main").IsZero() {
		t.Error("main deleted")
	}
}

// TestSessionPushPermission: Authorize is asked per ref, and its reason
// reaches the client.
func TestSessionPushPermission(t *testing.T) {
	ts := newSessServer(t)
	ts.authorize = func(ref refs.Name) error {
		if ref == "refs/heads/locked" {
			return errors.New("permission denied: branch locked may be written only by alice")
		}
		return nil
	}
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 1)
	g.run(src, "branch", "locked")
	errs := g.fail(src, "push", "origin", "main", "locked")
	if !strings.Contains(errs, "! [remote rejected] locked -> locked (permission denied: branch locked may be written only by alice)") {
		t.Errorf("stderr lacks the refusal:\n%s", errs)
	}
	if ts.ref("demo", "refs/heads/main").IsZero() || !ts.ref("demo", "refs/heads/locked").IsZero() {
		t.Error("want main pushed and locked not")
	}
	// A new branch at a commit the server has: the pack is empty.
	g.run(src, "push", "-q", "origin", "main:refs/heads/copy")
	if got, want := ts.ref("demo", "refs/heads/copy"), ts.ref("demo", "refs/heads/main"); got != want {
		t.Errorf("copy = %s, want %s", got, want)
	}
}

// racyRefs moves a ref behind the client's back: right after the
// advertisement was read (so the client's old value is out of date), or
// right before the push's Update (so the compare-and-swap fails).
type racyRefs struct {
	refs.Store
	mu           sync.Mutex
	afterList    func()
	beforeUpdate func()
}

func (r *racyRefs) List(ctx context.Context, repo objects.RepoName, prefix string) ([]refs.Ref, error) {
	out, err := r.Store.List(ctx, repo, prefix)
	r.mu.Lock()
	f := r.afterList
	r.afterList = nil
	r.mu.Unlock()
	if f != nil {
		f()
	}
	return out, err
}

func (r *racyRefs) Update(ctx context.Context, repo objects.RepoName, ups []refs.Update, q refs.Quarantine, msg string) error {
	r.mu.Lock()
	f := r.beforeUpdate
	r.beforeUpdate = nil
	r.mu.Unlock()
	if f != nil {
		f()
	}
	return r.Store.Update(ctx, repo, ups, q, msg)
}

// moveRef returns a func that moves ref of demo to to.
func (ts *sessServer) moveRef(ref string, to objects.Hash) func() {
	return func() {
		cur := ts.ref("demo", ref)
		if err := ts.refs.Update(context.Background(), "demo", []refs.Update{{Name: refs.Name(ref), Old: cur, New: to}}, nil, "race"); err != nil {
			ts.t.Errorf("race: %v", err)
		}
	}
}

// TestSessionPushStale: a ref that moved after the advertisement is
// refused ("fetch first"); with --atomic nothing moves and every ref is
// reported; without, the other refs land, also when the move happens just
// before the compare-and-swap ("stale info").
func TestSessionPushStale(t *testing.T) {
	ts := newSessServer(t)
	racy := &racyRefs{Store: ts.refs}
	ts.srv.Refs = racy
	g := newSessGit(t, ts)
	src := pushedRepo(t, ts, g)
	first := mustHash(t, g.revParse(src, "HEAD~1"))

	g.commits(src, "m", 1)
	g.run(src, "checkout", "-q", "feature")
	g.commits(src, "f", 1)
	mainBefore := ts.ref("demo", "refs/heads/main")

	t.Run("atomic", func(t *testing.T) {
		racy.mu.Lock()
		racy.afterList = ts.moveRef("refs/heads/feature", first)
		racy.mu.Unlock()
		errs := g.fail(src, "push", "--atomic", "origin", "main", "feature")
		for _, want := range []string{
			"! [remote rejected] feature -> feature (fetch first)",
			"! [remote rejected] main -> main (atomic push failed)",
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
		if got := ts.ref("demo", "refs/heads/main"); got != mainBefore {
			t.Errorf("main moved to %s in a failed atomic push", got)
		}
		if got := ts.ref("demo", "refs/heads/feature"); got != first {
			t.Errorf("feature = %s, want the racing value %s", got, first)
		}
	})

	t.Run("non-atomic", func(t *testing.T) {
		g.run(src, "fetch", "-q", "origin")
		featureNow := ts.ref("demo", "refs/heads/feature")
		racy.mu.Lock()
		racy.beforeUpdate = ts.moveRef("refs/heads/feature", mainBefore)
		racy.mu.Unlock()
		errs := g.fail(src, "push", "-f", "origin", "main", "feature")
		if !strings.Contains(errs, "! [remote rejected] feature -> feature (stale info)") {
			t.Errorf("stderr lacks the stale refusal:\n%s", errs)
		}
		if got, want := ts.ref("demo", "refs/heads/main").String(), g.revParse(src, "main"); got != want {
			t.Errorf("main = %s, want %s: the other ref should land", got, want)
		}
		if got := ts.ref("demo", "refs/heads/feature"); got != mainBefore || got == featureNow {
			t.Errorf("feature = %s, want the racing value %s", got, mainBefore)
		}
	})
}

func mustHash(t *testing.T, s string) objects.Hash {
	t.Helper()
	h, ok := parseHashString(s)
	if !ok {
		t.Fatalf("not a hash: %q", s)
	}
	return h
}

// TestSessionPushHook: push options reach the hook, its progress lines
// reach the client as "remote: ", its refusals as "[remote rejected]",
// and its own updates are committed even when every command fails.
func TestSessionPushHook(t *testing.T) {
	ts := newSessServer(t)
	hook := &testHook{}
	ts.srv.Hook = hook
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 1)
	g.run(src, "branch", "feature")

	errs := g.fail(src, "push", "-o", "refuse=refs/heads/feature", "origin", "main", "feature")
	for _, want := range []string{
		"remote: test hook: checking refs/heads/main",
		"remote: test hook: checking refs/heads/feature",
		"! [remote rejected] feature -> feature (refused by test hook)",
		" * [new branch]      main -> main",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	p := hook.lastPush()
	if p == nil || fmt.Sprint(p.Options) != "[refuse=refs/heads/feature]" || p.Pusher != "tester" || len(p.Commands) != 2 || p.Atomic {
		t.Fatalf("hook saw %+v", p)
	}
	if ts.ref("demo", "refs/heads/main").IsZero() || !ts.ref("demo", "refs/heads/feature").IsZero() {
		t.Error("want main pushed and feature not")
	}

	// Atomic: the hook refuses one ref, so nothing moves but the hook's
	// own run ref, and the pushed objects stay fetchable through it.
	g.commits(src, "x", 1)
	newMain := g.revParse(src, "HEAD")
	errs = g.fail(src, "push", "--atomic", "-o", "refuse=refs/heads/feature", "-o", "runref", "origin", "main", "feature")
	for _, want := range []string{
		"! [remote rejected] feature -> feature (refused by test hook)",
		"! [remote rejected] main -> main (atomic push failed)",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if got := ts.ref("demo", "refs/heads/main").String(); got == newMain {
		t.Error("main moved in a failed atomic push")
	}
	if got := ts.ref("demo", "refs/runs/test/code").String(); got != newMain {
		t.Fatalf("run ref = %s, want %s", got, newMain)
	}
	other := filepath.Join(g.home, "other")
	g.run(g.home, "clone", "-q", ts.url("demo"), other)
	g.run(other, "fetch", "-q", "origin", "refs/runs/test/code:refs/remotes/run")
	if got := g.revParse(other, "refs/remotes/run"); got != newMain {
		t.Errorf("fetched run ref = %s, want %s", got, newMain)
	}

	// A hook error refuses every command with its text.
	errs = g.fail(src, "push", "-o", "fail", "origin", "main")
	if !strings.Contains(errs, "! [remote rejected] main -> main (test hook failed on purpose)") {
		t.Errorf("stderr lacks the hook error:\n%s", errs)
	}
}

// TestSessionPushBadObjects: a pack that fails the object checks is
// reported as "unpack <error>" and refuses every ref, naming the object and
// the check; nothing of it is stored.
func TestSessionPushBadObjects(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 1)
	g.run(src, "push", "-q", "origin", "main")

	blob := g.revParse(src, "HEAD:file")
	tree := strings.TrimSpace(g.runIn(src, fmt.Sprintf("100644 blob %s\t.GIT\n", blob), "mktree"))
	commit := strings.TrimSpace(g.run(src, "commit-tree", tree, "-p", "HEAD", "-m", "sneaky"))
	errs := g.fail(src, "push", "origin", commit+":refs/heads/bad")
	for _, want := range []string{
		"remote unpack failed",
		"! [remote rejected] " + commit + " -> bad (hasDotgit " + tree,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if !ts.ref("demo", "refs/heads/bad").IsZero() {
		t.Error("bad ref created")
	}
	if ok, _ := ts.store.Has(context.Background(), "demo", mustHash(t, commit)); ok {
		t.Error("the refused commit is stored")
	}
}
