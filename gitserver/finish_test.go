package gitserver

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// movingHook stands in for a pipeline whose branch data moves during the
// commit: its Finish moves refs/data/<b> of each landing refs/heads/<b>
// to the pushed commit, from the value it reads then. Before answering, it
// moves that ref itself the first stale times it is asked (a concurrent
// catalog write between its read and gitserver's compare-and-swap), and it
// refuses the command with refuse when refuse is set. Its calls are
// recorded.
type movingHook struct {
	refs   refs.Store
	stale  int
	refuse string

	mu    sync.Mutex
	calls []map[refs.Name]string
}

func (h *movingHook) PreReceive(ctx context.Context, p *hooks.Push) (*hooks.Result, error) {
	res := &hooks.Result{Refused: map[refs.Name]string{}}
	res.Finish = func(ctx context.Context, refused map[refs.Name]string) ([]refs.Update, map[refs.Name]string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls = append(h.calls, refused)
		var ups []refs.Update
		refuse := map[refs.Name]string{}
		for _, c := range p.Commands {
			b, ok := strings.CutPrefix(string(c.Name), refs.HeadsPrefix)
			if !ok {
				continue
			}
			if _, no := refused[c.Name]; no {
				ups = append(ups, refs.Update{Name: refs.Name("refs/runs/t-" + c.New.String()[:8] + "-" + b + "/log"), New: c.New})
				continue
			}
			if h.refuse != "" {
				refuse[c.Name] = h.refuse
				continue
			}
			data := refs.Name(refs.DataPrefix + b)
			cur, _ := h.refs.Resolve(ctx, p.Repo, data)
			if h.stale > 0 {
				h.stale--
				// A catalog write lands after Finish read the ref.
				moved := objects.Hash{1}
				if cur == moved {
					moved = objects.Hash{2}
				}
				if err := h.refs.Update(ctx, p.Repo, []refs.Update{{Name: data, Old: cur, New: moved}}, nil, "catalog write"); err != nil {
					panic(err)
				}
			}
			ups = append(ups, refs.Update{Name: data, Old: cur, New: c.New})
		}
		return ups, refuse
	}
	return res, nil
}

func (h *movingHook) ncalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// TestCommitPushAsksFinishAgain: when the hook's own data ref update is
// stale, commitPush asks Finish again (it re-reads the ref) and the push
// lands; past maxHookRetries it gives up with the moved-during-run reason
// and moves no command; a refusal from Finish refuses the command (and,
// atomic, all of them) with the hook's words, and Finish is asked again for
// that outcome so the run is kept.
func TestCommitPushAsksFinishAgain(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.newRepo(ts, "demo", 1)
	g.run(src, "push", "-q", "origin", "main")
	first := g.revParse(src, "HEAD")
	// refs/data/main exists, at the first commit.
	if err := ts.refs.Update(context.Background(), "demo", []refs.Update{{Name: "refs/data/main", New: mustHash(t, first)}}, nil, "t"); err != nil {
		t.Fatal(err)
	}

	t.Run("moved twice, lands", func(t *testing.T) {
		hook := &movingHook{refs: ts.refs, stale: 2}
		ts.srv.Hook = hook
		g.commits(src, "a", 1)
		g.run(src, "push", "-q", "origin", "main")
		head := g.revParse(src, "HEAD")
		if got := ts.ref("demo", "refs/heads/main").String(); got != head {
			t.Fatalf("refs/heads/main = %s, want %s", got, head)
		}
		if got := ts.ref("demo", "refs/data/main").String(); got != head {
			t.Fatalf("refs/data/main = %s, want %s", got, head)
		}
		if n := hook.ncalls(); n != 3 {
			t.Errorf("Finish called %d times, want 3 (two stale answers, one that lands)", n)
		}
	})

	t.Run("keeps moving, refused", func(t *testing.T) {
		hook := &movingHook{refs: ts.refs, stale: 1000}
		ts.srv.Hook = hook
		before := ts.ref("demo", "refs/heads/main")
		g.commits(src, "b", 1)
		errs := g.fail(src, "push", "origin", "main")
		if !strings.Contains(errs, "! [remote rejected] main -> main ("+reasonMovedDuringRun+")") {
			t.Errorf("stderr:\n%s", errs)
		}
		if got := ts.ref("demo", "refs/heads/main"); got != before {
			t.Errorf("refs/heads/main moved to %s", got)
		}
		// maxHookRetries+1 answers that went stale, then the refused outcome.
		if n := hook.ncalls(); n != maxHookRetries+2 {
			t.Errorf("Finish called %d times, want %d", n, maxHookRetries+2)
		}
		if ts.ref("demo", "refs/runs/t-"+g.revParse(src, "HEAD")[:8]+"-main/log").IsZero() {
			t.Error("the refused outcome's updates were not committed")
		}
	})

	t.Run("refused by Finish, atomic", func(t *testing.T) {
		hook := &movingHook{refs: ts.refs, refuse: "weir: refs/data/main moved during the run: table a.b changed under it"}
		ts.srv.Hook = hook
		before := ts.ref("demo", "refs/heads/main")
		g.commits(src, "c", 1)
		errs := g.fail(src, "push", "--atomic", "origin", "main", "main:refs/heads/side")
		for _, want := range []string{
			"! [remote rejected] main -> main (weir: refs/data/main moved during the run: table a.b changed under it)",
			"! [remote rejected] main -> side (", // refused by Finish too, or atomic push failed
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
		if got := ts.ref("demo", "refs/heads/main"); got != before {
			t.Errorf("refs/heads/main moved to %s", got)
		}
		if !ts.ref("demo", "refs/heads/side").IsZero() {
			t.Error("refs/heads/side created in a refused atomic push")
		}
		hook.mu.Lock()
		last := hook.calls[len(hook.calls)-1]
		hook.mu.Unlock()
		if last["refs/heads/main"] == "" || last["refs/heads/side"] == "" {
			t.Errorf("Finish was not asked for the refused outcome: last call saw %v", last)
		}
	})
}
