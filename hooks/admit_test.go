package hooks_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/refs"
)

// TestSchedulerAdmitsPushes drives the hook with a real scheduler: a run
// is listed under its own run id, each of its nodes took a node slot, and
// its ticket ends with the push's outcome; a priority above the pusher's
// cap, a full queue and a branch that moved during the wait refuse the
// push before anything runs.
func TestSchedulerAdmitsPushes(t *testing.T) {
	s, err := sched.New(sched.Config{MaxRuns: 1, MaxQueue: 1, KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorldWith(t, hooks.PipelineConfig{Scheduler: s, MaxPriority: func(id access.Identity) int {
		if id == "test" {
			return 1
		}
		return 0
	}})
	runs := func() []sched.RunInfo { return s.Runs(sched.Repo(repo)) }

	code := w.commit(t, example)
	res, prog := w.push(t, "main", "priority=1")
	if len(res.Refused) > 0 {
		t.Fatalf("refused: %v\n%s", res.Refused, prog)
	}
	id := regexp.MustCompile(`weir: run (r-[0-9a-f]{16}) on main`).FindStringSubmatch(prog)
	rs := runs()
	if id == nil || len(rs) != 1 {
		t.Fatalf("runs %+v\n%s", rs, prog)
	}
	r := rs[0]
	if string(r.ID) != id[1] || r.State != sched.Succeeded || r.Pusher != "test" || r.Priority != 1 || r.Nodes != 4 ||
		len(r.Targets) != 1 || r.Targets[0] != (sched.Target{Branch: "main", Code: sched.Commit(code)}) {
		t.Fatalf("run %+v, want %s succeeded on main@%s by test at priority 1 with 4 node slots", r, id[1], code)
	}

	// A failing run: Failed, its note the refusal.
	w.commit(t, map[string]string{"expectations/few.sql": "SELECT * FROM clean.revenue WHERE total < 10"})
	res, _ = w.push(t, "main")
	failed := runs()[0]
	if failed.State != sched.Failed || !strings.HasPrefix(failed.Note, "expect few failed") {
		t.Fatalf("failed run listed as %+v (refusal %q)", failed, res.Refused["refs/heads/main"])
	}
	w.commit(t, map[string]string{"expectations/few.sql": ""})
	head, data := w.ref(t, "refs/heads/main"), w.ref(t, "refs/data/main")

	// Above the cap: refused, nothing queued.
	res, prog = w.push(t, "main", "priority=2")
	if why := res.Refused["refs/heads/main"]; !strings.Contains(why, "weir: priority 2 is above what test may ask for (at most 1)") || strings.Contains(prog, "weir: run ") {
		t.Fatalf("priority above the cap: %q\n%s", why, prog)
	}
	if n := len(runs()); n != 2 {
		t.Fatalf("%d runs listed after a refused priority, want 2", n)
	}

	// Queue full: one run holds the only slot, one waits; the push is
	// refused at once.
	ctx := context.Background()
	holder, err := s.Admit(ctx, sched.Request{ID: "hold", Repo: "other"})
	if err != nil {
		t.Fatal(err)
	}
	waiterCtx, cancelWaiter := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { _, err := s.Admit(waiterCtx, sched.Request{ID: "wait", Repo: "other"}); waited <- err }()
	waitFor(t, func() bool { return s.Stats().Waiting == 1 })
	res, prog = w.push(t, "main")
	if why := res.Refused["refs/heads/main"]; why != "weir: server busy: 1 runs queued; try again later" || strings.Contains(prog, "weir: run ") {
		t.Fatalf("full queue: %q\n%s", why, prog)
	}
	cancelWaiter()
	if err := <-waited; err == nil {
		t.Fatal("the waiter was admitted")
	}

	// A run of main holds the branch: the push waits behind it; main
	// moves meanwhile; the push is refused without running.
	holder.Done(sched.Succeeded, "")
	branchRun, err := s.Admit(ctx, sched.Request{ID: "main-run", Repo: sched.Repo(repo), Targets: []sched.Target{{Branch: "main"}}})
	if err != nil {
		t.Fatal(err)
	}
	type pushed struct {
		why, prog string
	}
	done := make(chan pushed, 1)
	local := parseHash(t, w.run(t, "git", "rev-parse", "HEAD"))
	go func() {
		res, prog, _ := w.pushCommit(t, "main", head, local)
		if res == nil {
			done <- pushed{"no result", prog}
			return
		}
		done <- pushed{res.Refused["refs/heads/main"], prog}
	}()
	waitFor(t, func() bool { rs := runs(); return len(rs) > 0 && rs[0].State == sched.Queued && rs[0].BranchWait })
	moved := w.ref(t, "refs/runs/"+string(failed.ID)+"/code") // main moved by another writer
	if err := w.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", Old: head, New: moved}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
	branchRun.Done(sched.Succeeded, "")
	got := <-done
	want := "weir: refs/heads/main moved to " + moved.String()[:7] + " while this push waited for the run ahead of it; fetch first"
	if got.why != want || !strings.Contains(got.prog, "weir: queued behind 1 run of this branch") || strings.Contains(got.prog, "weir: run ") {
		t.Fatalf("push behind a run of main: refusal %q, want %q\n%s", got.why, want, got.prog)
	}
	if r := runs()[0]; r.State != sched.Refused {
		t.Fatalf("rechecked push listed as %+v", r)
	}
	if w.ref(t, "refs/data/main") != data {
		t.Fatal("the refused push moved refs/data/main")
	}
}

// waitFor polls cond (the scheduler's state, not a time) with a bound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
