package gitserver

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// landingHook stands in for the merge queue (hooks/merge.go): it lands
// each refs/merge/<b> on refs/heads/<b>, from the value it reads, at the
// pushed commit itself (no merge commit: gitserver does not care what it
// lands), and with the push option "moved" moves refs/heads/<b> itself
// before gitserver commits (a push that ran no pipeline won the race).
// Until on is set it is hooks.None (set between pushes: the server's
// session goroutines read the hook with no lock).
type landingHook struct {
	refs refs.Store
	on   atomic.Bool
}

func (h *landingHook) PreReceive(ctx context.Context, p *hooks.Push) (*hooks.Result, error) {
	if !h.on.Load() {
		return hooks.None{}.PreReceive(ctx, p)
	}
	res := &hooks.Result{Refused: map[refs.Name]string{}, Lands: map[refs.Name]refs.Update{}}
	for _, c := range p.Commands {
		b, ok := strings.CutPrefix(string(c.Name), refs.MergePrefix)
		if !ok {
			continue
		}
		target := refs.Name(refs.HeadsPrefix + b)
		cur, _ := h.refs.Resolve(ctx, p.Repo, target)
		if cur == c.New {
			res.Lands[c.Name] = refs.Update{} // already there
			continue
		}
		res.Lands[c.Name] = refs.Update{Name: target, Old: cur, New: c.New}
		for _, o := range p.Options {
			if o == "moved" {
				if err := h.refs.Update(ctx, p.Repo, []refs.Update{{Name: target, Old: cur, New: objects.Hash{9}}}, nil, "race"); err != nil {
					return nil, err
				}
			}
		}
	}
	return res, nil
}

// TestSessionMergeRequest: a push to refs/merge/<b> lands where the hook
// says and never writes refs/merge/<b>; without a hook that lands it, it is
// refused; a branch that moved before the landing refuses it naming the
// branch.
func TestSessionMergeRequest(t *testing.T) {
	ts := newSessServer(t)
	lh := &landingHook{refs: ts.refs}
	ts.srv.Hook = lh // before any session starts
	g := newSessGit(t, ts)
	src := pushedRepo(t, ts, g)

	// hooks.None takes no merge request.
	g.commits(src, "m", 1)
	errs := g.fail(src, "push", "origin", "HEAD:refs/merge/main")
	if !strings.Contains(errs, "! [remote rejected] HEAD -> refs/merge/main ("+reasonNoMergeQueue+")") {
		t.Fatalf("merge request without a merge queue:\n%s", errs)
	}
	if !ts.ref("demo", "refs/merge/main").IsZero() || ts.ref("demo", "refs/heads/main").String() == g.revParse(src, "HEAD") {
		t.Fatal("a refused merge request moved a ref")
	}

	lh.on.Store(true)
	out := g.run(src, "push", "origin", "HEAD:refs/merge/main")
	if !strings.Contains(out, "HEAD -> refs/merge/main") {
		t.Fatalf("merge request output:\n%s", out)
	}
	if got, want := ts.ref("demo", "refs/heads/main").String(), g.revParse(src, "HEAD"); got != want {
		t.Fatalf("main = %s after the merge request, want %s", got, want)
	}
	if h := ts.ref("demo", "refs/merge/main"); !h.IsZero() {
		t.Fatalf("refs/merge/main was written (%s)", h)
	}
	// Already there: accepted, nothing written.
	g.run(src, "push", "origin", "HEAD:refs/merge/main")
	if h := ts.ref("demo", "refs/merge/main"); !h.IsZero() {
		t.Fatalf("refs/merge/main was written (%s)", h)
	}

	// The branch moved between the hook and the commit.
	g.commits(src, "n", 1)
	before := ts.ref("demo", "refs/heads/main")
	errs = g.fail(src, "push", "-o", "moved", "origin", "HEAD:refs/merge/main")
	if !strings.Contains(errs, "stale info: refs/heads/main moved while this merge was checked; push to refs/merge/main again") {
		t.Fatalf("merge request onto a moved branch:\n%s", errs)
	}
	if got := ts.ref("demo", "refs/heads/main"); got == before || got.String() == g.revParse(src, "HEAD") {
		t.Fatalf("main = %s: the racing update should stand and the merge not land", got)
	}
}

// TestMergeRequestCommandChecks: refs/merge/<b> goes through the ref-name
// checks like any ref (hostile names refused), is authorized as a push to
// refs/heads/<b>, and cannot be deleted.
func TestMergeRequestCommandChecks(t *testing.T) {
	s := goldenRepo(t)
	ctx := context.Background()
	main, _ := s.Refs.Resolve(ctx, "golden", "refs/heads/main")
	var asked []refs.Name
	sess := &Session{Repo: "golden", Authorize: func(ref refs.Name) error {
		asked = append(asked, ref)
		if ref == "refs/heads/locked" {
			return errors.New("permission denied: branch locked of golden may be written only by alice")
		}
		return nil
	}}
	q := s.Objects.NewQuarantine("golden")
	defer q.Close()
	w := newQuarantineWalker(ctx, q)
	tests := []struct {
		name string
		new  objects.Hash
		want string
	}{
		{"refs/merge/main", main, ""},
		{"refs/merge/../heads/main", main, reasonFunnyName},
		{"refs/merge/..", main, reasonFunnyName},
		{"refs/merge/", main, reasonFunnyName},
		{"refs/merge/a..b", main, reasonFunnyName},
		{"refs/merge/x.lock", main, reasonFunnyName},
		{"refs/merge/@", main, reasonFunnyName},
		{"refs/merge/main~1", main, reasonFunnyName},
		{"refs/merge//main", main, reasonFunnyName},
		{"refs/merge/main", objects.ZeroHash, reasonMergeDelete},
		{"refs/merge/locked", main, "permission denied: branch locked of golden may be written only by alice"},
	}
	for _, tc := range tests {
		asked = nil
		got := s.checkCommand(ctx, sess, q, w, pushCommand{New: tc.new, Name: refs.Name(tc.name)}, map[refs.Name]bool{})
		if got != tc.want {
			t.Errorf("%s -> %s: %q, want %q", tc.name, tc.new, got, tc.want)
		}
		if tc.want == "" && (len(asked) == 0 || asked[0] != "refs/heads/main") {
			t.Errorf("%s: authorized %v, want refs/heads/main first", tc.name, asked)
		}
	}
	// A merge request names a commit, not a tree or a blob.
	tree, err := q.Put(plumbing.TreeObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.checkCommand(ctx, sess, q, w, pushCommand{New: tree, Name: "refs/merge/main"}, map[refs.Name]bool{}); got != reasonNotCommit {
		t.Errorf("merge request of a tree: %q, want %q", got, reasonNotCommit)
	}
}
