package sched

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAdmitOrder queues requests behind one that holds the only run
// slot, then ends the running one each time and checks who is admitted
// next: the policy's order, through the scheduler.
func TestAdmitOrder(t *testing.T) {
	tests := []struct {
		name, policy string
		reqs         []Request
		want         string
	}{
		{"fifo", "fifo", []Request{req("a1", "a", "x"), req("a2", "a", "x"), req("b1", "b", "x"), req("a3", "a", "y")}, "a1 a2 b1 a3"},
		{"fifo priority", "fifo", []Request{req("a1", "a", "x"), prio(req("b1", "b", "x"), 5), req("a2", "a", "x"), prio(req("c1", "c", "x"), 9)}, "c1 b1 a1 a2"},
		{"fair", "fair", []Request{req("a1", "a", "x"), req("a2", "a", "x"), req("a3", "a", "x"), req("b1", "b", "x"), req("b2", "b", "x")}, "a1 b1 a2 b2 a3"},
		{"fair repos", "fair", []Request{req("x1", "a", "x"), req("x2", "a", "x"), req("y1", "a", "y")}, "x1 y1 x2"},
		// Priorities out of range are clamped: 100 is 9, -3 is 0.
		{"fifo clamped", "fifo", []Request{prio(req("a1", "a", "x"), -3), prio(req("b1", "b", "x"), 100), prio(req("c1", "c", "x"), 9)}, "b1 c1 a1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 1, Policy: tc.policy})
			running := mustAdmit(t, s, req("blocker", "z", "z"))
			ws := map[RunID]*waiter{}
			for i, r := range tc.reqs {
				ws[r.ID] = start(s, r, nil)
				waiting(t, s, i+1)
			}
			var got []string
			for range tc.reqs {
				running.Done(Succeeded, "")
				var a admission
				select {
				case a = <-ws[RunID(firstWaiting(t, s, ws))].done:
				case <-time.After(20 * time.Second):
					t.Fatal("nobody admitted")
				}
				if a.err != nil {
					t.Fatal(a.err)
				}
				got = append(got, string(a.id))
				running = a.t
			}
			running.Done(Succeeded, "")
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("admitted %s, want %s", g, tc.want)
			}
		})
	}
}

// firstWaiting returns the request running now among ws (the one just
// admitted).
func firstWaiting(t *testing.T, s *Scheduler, ws map[RunID]*waiter) RunID {
	t.Helper()
	var id RunID
	eventually(t, "a run admitted", func() bool {
		for _, ri := range s.Runs("") {
			if ri.State == Running && ws[ri.ID] != nil {
				id = ri.ID
				return true
			}
		}
		return false
	})
	return id
}

func prio(r Request, p int) Request { r.Priority = p; return r }

// TestFloodingIdentity: one identity queues 100 runs, another 10, behind
// a single run slot. Under fair share both make progress: while both
// wait, their counts of admissions differ by at most one. Under fifo the
// flood goes first, all of it (the test's contrast: it can fail).
func TestFloodingIdentity(t *testing.T) {
	for _, policy := range []string{"fair", "fifo"} {
		t.Run(policy, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 1, Policy: policy, MaxQueue: 200})
			running := mustAdmit(t, s, req("blocker", "z", "z"))
			byID := map[RunID]*waiter{}
			n := 0
			for i := range 100 {
				r := req(fmt.Sprint("flood-", i), "flood", "x")
				byID[r.ID] = start(s, r, nil)
				n++
				waiting(t, s, n)
			}
			for i := range 10 {
				r := req(fmt.Sprint("one-", i), "one", "y")
				byID[r.ID] = start(s, r, nil)
				n++
				waiting(t, s, n)
			}
			count := map[Identity]int{}
			var firstOne int
			for k := 1; k <= 110; k++ {
				running.Done(Succeeded, "")
				id := firstWaiting(t, s, byID)
				running = byID[id].admitted(t)
				delete(byID, id)
				who := Identity(strings.Split(string(id), "-")[0])
				count[who]++
				if who == "one" && firstOne == 0 {
					firstOne = k
				}
				if policy == "fair" && count["one"] < 10 {
					if d := count["flood"] - count["one"]; d > 1 || d < -1 {
						t.Fatalf("after %d admissions: %v: not fair while both wait", k, count)
					}
				}
			}
			running.Done(Succeeded, "")
			switch policy {
			case "fair":
				if firstOne > 2 {
					t.Errorf("fair: the single identity's first run was admitted %dth", firstOne)
				}
			case "fifo":
				if firstOne != 101 {
					t.Errorf("fifo: the single identity's first run was admitted %dth, want 101st", firstOne)
				}
			}
		})
	}
}

// TestClosedLoopShare: an agent that pushes again as soon as its run is
// admitted (one run waiting at a time) gets every other slot against an
// identity with 60 runs queued.
func TestClosedLoopShare(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 1})
	running := mustAdmit(t, s, req("blocker", "z", "z"))
	byID := map[RunID]*waiter{}
	for i := range 60 {
		r := req(fmt.Sprint("flood-", i), "flood", "x")
		byID[r.ID] = start(s, r, nil)
		waiting(t, s, i+1)
	}
	loop := 0
	next := func() {
		r := req(fmt.Sprint("agent-", loop), "agent", "y")
		loop++
		byID[r.ID] = start(s, r, nil)
	}
	next()
	waiting(t, s, 61)
	count := map[string]int{}
	for range 40 {
		running.Done(Succeeded, "")
		id := firstWaiting(t, s, byID)
		running = byID[id].admitted(t)
		delete(byID, id)
		who := strings.Split(string(id), "-")[0]
		count[who]++
		if who == "agent" {
			next()
		}
		waiting(t, s, len(byID))
	}
	running.Done(Succeeded, "")
	if count["agent"] < 19 {
		t.Errorf("agent in a loop got %d of 40 admissions against a flood (%v), want at least 19", count["agent"], count)
	}
	for _, w := range byID {
		w.cancel()
	}
}

func TestQueueFull(t *testing.T) {
	tests := []struct {
		name     string
		maxQueue int
		queued   int // requests that wait before the refused one
	}{
		{"queue of 2", 2, 2},
		{"queue of 1", 1, 1},
		{"no queue", -1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 1, MaxQueue: tc.maxQueue})
			running := mustAdmit(t, s, req("r0", "a", "x", "main"))
			var ws []*waiter
			for i := range tc.queued {
				ws = append(ws, start(s, req(fmt.Sprint("q", i), "a", "x", "dev"), nil))
				waiting(t, s, i+1)
			}
			progress := 0
			r := req("busy", "b", "x", "other")
			r.Progress = func(Position) { progress++ }
			tk, err := s.Admit(context.Background(), r)
			if !errors.Is(err, ErrBusy) || tk != nil {
				t.Fatalf("Admit = %v, %v; want ErrBusy", tk, err)
			}
			want := fmt.Sprintf("server busy: %d runs queued; try again later", tc.queued)
			if err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			var be *BusyError
			if !errors.As(err, &be) || be.Queued != tc.queued {
				t.Errorf("BusyError %+v, want Queued %d", be, tc.queued)
			}
			if progress != 0 {
				t.Error("a refused request got progress")
			}
			// Nothing was queued or recorded for it.
			if st := s.Stats(); st.Waiting != tc.queued || st.Running != 1 {
				t.Errorf("stats %+v after the refusal", st)
			}
			for _, ri := range s.Runs("") {
				if ri.ID == "busy" {
					t.Errorf("refused request listed: %+v", ri)
				}
			}
			// A branch waiter counts against the queue too.
			if tc.queued == 0 {
				_, err := s.Admit(context.Background(), req("same", "a", "x", "main"))
				if !errors.Is(err, ErrBusy) {
					t.Errorf("a request for a held branch with no queue: %v, want ErrBusy", err)
				}
			}
			running.Done(Succeeded, "")
			for _, w := range ws {
				w.admitted(t).Done(Succeeded, "")
			}
		})
	}
}

// TestCancelWhileWaiting: a waiter whose ctx ends leaves at once, as
// cancelled; those behind it move up and are told.
func TestCancelWhileWaiting(t *testing.T) {
	tests := []struct {
		name    string
		branch  string // the waiters' branch; the running request holds "main"
		wantPos func(ahead int) Position
	}{
		{"run queue", "", func(a int) Position { return Position{Ahead: a} }},
		{"branch wait", "main", func(a int) Position { return Position{Ahead: a + 1, Branch: true} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 1})
			running := mustAdmit(t, s, req("r0", "a", "x", "main"))
			var branches []string
			if tc.branch != "" {
				branches = []string{tc.branch}
			}
			var ws []*waiter
			for i := range 3 {
				ws = append(ws, start(s, req(fmt.Sprint("w", i), "a", "x", branches...), nil))
				waiting(t, s, i+1)
			}
			for i, w := range ws {
				want := tc.wantPos(i)
				eventually(t, fmt.Sprintf("%s told %v", w.id, want), func() bool { p, ok := w.last(); return ok && p.Ahead == want.Ahead && p.Branch == want.Branch })
			}
			ws[0].cancel()
			a := ws[0].result(t)
			if !errors.Is(a.err, context.Canceled) || a.t != nil {
				t.Fatalf("cancelled Admit = %v, %v", a.t, a.err)
			}
			waiting(t, s, 2)
			if ri := info(t, s, "w0"); ri.State != Cancelled || !strings.Contains(ri.Note, "client gone") {
				t.Errorf("cancelled request listed as %v %q", ri.State, ri.Note)
			}
			for i, w := range ws[1:] {
				want := tc.wantPos(i)
				eventually(t, fmt.Sprintf("%s moved up to %v", w.id, want), func() bool { p, ok := w.last(); return ok && p.Ahead == want.Ahead && p.Branch == want.Branch })
			}
			running.Done(Succeeded, "")
			tk := ws[1].admitted(t)
			ws[2].notYet(t)
			tk.Done(Succeeded, "")
			ws[2].admitted(t).Done(Succeeded, "")
		})
	}
}

func TestAdmitDoneContext(t *testing.T) {
	s := newSched(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Admit(ctx, req("r", "a", "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Admit with an ended ctx: %v", err)
	}
	if n := len(s.Runs("")); n != 0 {
		t.Errorf("%d runs listed", n)
	}
}

// TestKeepAlive: a waiter whose position does not change still hears
// from the scheduler every KeepAlive.
func TestKeepAlive(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 1, KeepAlive: time.Millisecond})
	running := mustAdmit(t, s, req("r0", "a", "x"))
	w := start(s, req("w", "a", "x"), nil)
	eventually(t, "five progress calls", func() bool { return len(w.positions()) >= 5 })
	for _, p := range w.positions() {
		if p.Ahead != 0 || p.Branch {
			t.Errorf("position %+v, want 0 ahead", p)
		}
	}
	running.Done(Succeeded, "")
	w.admitted(t).Done(Succeeded, "")
}

// TestSameBranch: a request for a held branch waits without a run slot;
// when the branch frees it is rechecked before it counts as started.
func TestSameBranch(t *testing.T) {
	tests := []struct {
		name       string
		recheckErr error
	}{
		{"recheck passes", nil},
		{"recheck refuses", errors.New("weir: refs/heads/main moved while this push waited; fetch first")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 2})
			r1 := mustAdmit(t, s, req("r1", "a", "x", "main"))
			w2 := start(s, req("r2", "b", "x", "main"), func() error { return tc.recheckErr })
			waiting(t, s, 1)
			// r2 holds no run slot: a push to another branch starts.
			r3 := mustAdmit(t, s, req("r3", "c", "x", "dev"))
			w4 := start(s, req("r4", "d", "x", "main"), func() error { return nil })
			waiting(t, s, 2)
			eventually(t, "r2 told 1 run of its branch ahead", func() bool { p, ok := w2.last(); return ok && p == Position{Ahead: 1, Branch: true, Waited: p.Waited} })
			eventually(t, "r4 told 2 runs of its branch ahead", func() bool { p, ok := w4.last(); return ok && p.Ahead == 2 && p.Branch })
			if ri := info(t, s, "r2"); ri.State != Queued || !ri.BranchWait || ri.Ahead != 1 {
				t.Errorf("r2 listed as %+v", ri)
			}
			w2.notYet(t)
			if n := w2.rechecked(); n != 0 {
				t.Fatalf("r2 rechecked %d times while the branch was held", n)
			}
			r3.Done(Succeeded, "") // a free slot does not let r2 past r1
			w2.notYet(t)
			w4.notYet(t)

			r1.Done(Succeeded, "")
			a2 := w2.result(t)
			if w2.rechecked() != 1 {
				t.Errorf("r2 rechecked %d times, want 1", w2.rechecked())
			}
			if tc.recheckErr == nil {
				if a2.err != nil {
					t.Fatalf("r2: %v", a2.err)
				}
				w4.notYet(t)
				if w4.rechecked() != 0 {
					t.Error("r4 rechecked while r2 holds the branch")
				}
				a2.t.Done(Succeeded, "")
			} else {
				var re *RecheckError
				if !errors.As(a2.err, &re) || !errors.Is(a2.err, tc.recheckErr) || a2.err.Error() != tc.recheckErr.Error() {
					t.Fatalf("r2: %v, want the recheck's error", a2.err)
				}
				if ri := info(t, s, "r2"); ri.State != Refused || ri.Note != tc.recheckErr.Error() || ri.Duration != 0 {
					t.Errorf("r2 listed as %+v", ri)
				}
			}
			w4.admitted(t).Done(Succeeded, "")
			if w4.rechecked() != 1 {
				t.Errorf("r4 rechecked %d times, want 1", w4.rechecked())
			}
		})
	}
}

// TestSeveralBranches: a push to two branches takes both at once, waits
// holding neither, and keeps its place: a later request for one of them
// does not overtake it.
func TestSeveralBranches(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 4})
	ra := mustAdmit(t, s, req("ra", "a", "x", "a"))
	rb := mustAdmit(t, s, req("rb", "a", "x", "b"))
	wab := start(s, req("rab", "b", "x", "a", "b", "a"), nil) // a twice: one target
	waiting(t, s, 1)
	wb := start(s, req("rb2", "c", "x", "b"), nil)
	waiting(t, s, 2)
	rb.Done(Succeeded, "") // b is free, but rab is first for it
	wab.notYet(t)
	wb.notYet(t)
	if _, err := s.Admit(context.Background(), req("rc", "c", "x", "c")); err != nil {
		t.Fatalf("an unrelated branch: %v", err)
	}
	ra.Done(Succeeded, "")
	tab := wab.admitted(t)
	if ri := info(t, s, "rab"); len(ri.Targets) != 2 {
		t.Errorf("rab targets %v", ri.Targets)
	}
	wb.notYet(t)
	tab.Done(Failed, "x failed")
	wb.admitted(t).Done(Succeeded, "")
}

// TestIndependent: requests with no branch are never serialised, nor
// are branches of one name in two repos.
func TestIndependent(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 4})
	for i := range 2 {
		mustAdmit(t, s, req(fmt.Sprint("r", i), "a", "x"))
	}
	mustAdmit(t, s, req("x-main", "a", "x", "main"))
	mustAdmit(t, s, req("y-main", "a", "y", "main"))
	if st := s.Stats(); st.Running != 4 || st.Waiting != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestDoneTwice: Done is final; a second call changes nothing.
func TestDoneTwice(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 1})
	tk := mustAdmit(t, s, req("r", "a", "x", "main"))
	tk.Done(Running, "not final") // counts as failed
	tk.Done(Succeeded, "again")
	ri := info(t, s, "r")
	if ri.State != Failed || ri.Note != "not final" {
		t.Errorf("listed %v %q, want failed", ri.State, ri.Note)
	}
	if st := s.Stats(); st.Running != 0 {
		t.Errorf("running %d", st.Running)
	}
	mustAdmit(t, s, req("r2", "a", "x", "main")).Done(Succeeded, "")
}

func TestHistoryBounded(t *testing.T) {
	s := newSched(t, Config{History: 5})
	for i := range 20 {
		repo := "x"
		if i%2 == 1 {
			repo = "y"
		}
		r := req(fmt.Sprint("r", i), "a", repo)
		r.Progress = func(Position) {}
		r.Recheck = func(context.Context) error { return nil }
		mustAdmit(t, s, r).Done(Succeeded, strings.Repeat("long note ", 100))
	}
	s.mu.Lock()
	for _, e := range s.hist.buf {
		// What the callbacks hold (a push's output) is not kept.
		if e.req.Progress != nil || e.req.Recheck != nil {
			t.Errorf("%s: history keeps its callbacks", e.req.ID)
		}
	}
	s.mu.Unlock()
	running := mustAdmit(t, s, req("live", "a", "x"))
	all := s.Runs("")
	if n := len(all[1].Note); n > maxNote+3 {
		t.Errorf("a note of %d bytes kept", n)
	}
	var ids []string
	for _, ri := range all {
		ids = append(ids, string(ri.ID))
	}
	if got, want := strings.Join(ids, " "), "live r19 r18 r17 r16 r15"; got != want {
		t.Errorf("Runs = %s, want %s", got, want)
	}
	ids = nil
	for _, ri := range s.Runs("x") {
		ids = append(ids, string(ri.ID))
	}
	if got, want := strings.Join(ids, " "), "live r18 r16"; got != want {
		t.Errorf("Runs(x) = %s, want %s", got, want)
	}
	running.Done(Succeeded, "")
}

func TestRunsListing(t *testing.T) {
	s := newSched(t, Config{MaxRuns: 1})
	code := Commit{0xab, 0xcd, 0xef, 0x01}
	r := req("r-00000001", "alice", "x", "main")
	r.Targets[0].Code = code
	r.Priority = 4
	tk := mustAdmit(t, s, r)
	w := start(s, req("r-00000002", "bob\x1b[31m", "x", "dev\tx"), nil)
	waiting(t, s, 1)
	rel, err := tk.Node(context.Background(), Demand{})
	if err != nil {
		t.Fatal(err)
	}
	rel()
	ri := info(t, s, "r-00000001")
	if ri.State != Running || ri.Pusher != "alice" || ri.Priority != 4 || ri.Nodes != 1 || ri.Targets[0] != (Target{Branch: "main", Code: code}) || ri.Duration < 0 {
		t.Errorf("running: %+v", ri)
	}
	tk.Done(Failed, "clean.revenue failed: exit 1")
	tk2 := w.admitted(t)
	tk2.Done(Cancelled, "client gone: run stopped")
	var buf bytes.Buffer
	if err := WriteRuns(&buf, s.Runs("x")); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"RUN", "STATE", "BRANCH", "PUSHER", "WAIT", "TIME", "NOTE",
		"r-00000001", "failed", "main@abcdef0", "alice", "clean.revenue failed: exit 1",
		"r-00000002", "cancelled", "dev?x@0000000", "bob?[31m", "client gone: run stopped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b") {
		t.Errorf("listing carries a control character:\n%q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "r-00000002") {
		t.Errorf("want the header and two runs, newest first:\n%s", out)
	}
	// A queued run says where it stands.
	tk3 := mustAdmit(t, s, req("r3", "a", "x"))
	start(s, req("r4", "a", "x"), nil)
	waiting(t, s, 1)
	buf.Reset()
	_ = WriteRuns(&buf, s.Runs("x"))
	if !strings.Contains(buf.String(), "queued, next to run") {
		t.Errorf("queued run's note:\n%s", buf.String())
	}
	tk3.Done(Succeeded, "")
}

func TestPositionString(t *testing.T) {
	for _, tc := range []struct {
		p    Position
		want string
	}{
		{Position{Ahead: 3}, "queued, 3 runs ahead"},
		{Position{Ahead: 1}, "queued, 1 run ahead"},
		{Position{}, "queued, next to run"},
		{Position{Ahead: 1, Branch: true}, "queued behind 1 run of this branch"},
		{Position{Ahead: 2, Branch: true}, "queued behind 2 runs of this branch"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config()
	if c.MaxRuns < 1 || c.MaxQueue != DefaultMaxQueue || c.CPU < 1 || c.Memory <= 0 || c.Policy != "fair" ||
		c.NodeDefault != (Demand{CPU: DefaultNodeCPU, Memory: DefaultNodeMemory}) || c.KeepAlive != DefaultKeepAlive || c.History != DefaultHistory {
		t.Errorf("defaults: %+v", c)
	}
	if total := memTotal(); total > 0 && (c.Memory > total || c.Memory < total/2) {
		t.Errorf("memory %d of %d", c.Memory, total)
	}
	if _, err := New(Config{Policy: "lifo"}); err == nil {
		t.Error("an unknown policy was accepted")
	}
	// Memory bounds the default run slots: 1 GiB of 512 MiB nodes is 2.
	s, _ = New(Config{Memory: 1 << 30})
	if got := s.Config().MaxRuns; got > 2 {
		t.Errorf("MaxRuns %d with 1 GiB", got)
	}
}

// TestStandardLibraryOnly: the package imports nothing but the standard
// library (its doc comment promises it builds and is tested on its own).
func TestStandardLibraryOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s, not in the standard library", f, path)
			}
		}
	}
}

// TestWaitedBehindGoesFirst: a queued run that a push of another identity
// waits behind (a shared branch) starts before the policy's choice, and
// the queue's positions say so; waiters of its own identity do not lift
// it (a flood of one identity on one branch gets no precedence).
func TestWaitedBehindGoesFirst(t *testing.T) {
	for _, tc := range []struct {
		name, waiter, want string
	}{
		{"another identity waits", "c", "q2"},
		{"only its own identity waits", "b", "q1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSched(t, Config{MaxRuns: 1, Policy: "fifo"})
			blocker := mustAdmit(t, s, req("blocker", "z", "x", "z"))
			w1 := start(s, req("q1", "a", "x", "dev"), nil)
			waiting(t, s, 1)
			w2 := start(s, req("q2", "b", "x", "main"), nil)
			waiting(t, s, 2)
			w3 := start(s, req("q3", tc.waiter, "x", "main"), nil)
			waiting(t, s, 3)
			if tc.want == "q2" {
				eventually(t, "q1 told 1 run ahead", func() bool { p, ok := w1.last(); return ok && p.Ahead == 1 && !p.Branch })
				eventually(t, "q2 told 0 runs ahead", func() bool { p, ok := w2.last(); return ok && p.Ahead == 0 && !p.Branch })
			}
			blocker.Done(Succeeded, "")
			var first, second *waiter
			if tc.want == "q2" {
				first, second = w2, w1
			} else {
				first, second = w1, w2
			}
			t1 := first.admitted(t)
			second.notYet(t)
			t1.Done(Succeeded, "")
			t2 := second.admitted(t)
			t2.Done(Succeeded, "")
			w3.admitted(t).Done(Succeeded, "")
		})
	}
}

// countObserver counts what an Observer is told.
type countObserver struct {
	started int
	ended   map[State]int
	ran     []time.Duration
}

func (o *countObserver) Started(time.Duration) { o.started++ }
func (o *countObserver) Ended(st State, ran time.Duration) {
	o.ended[st]++
	o.ran = append(o.ran, ran)
}

// TestObserver: the observer hears of every start and every end, with
// the end's state; a request that never ran ended with no run time.
func TestObserver(t *testing.T) {
	o := &countObserver{ended: map[State]int{}}
	s := newSched(t, Config{MaxRuns: 1, Observer: o})
	a := mustAdmit(t, s, req("r-1", "alice", "x", "main"))
	ctx, cancel := context.WithCancel(context.Background())
	w := make(chan error, 1)
	go func() {
		_, err := s.Admit(ctx, req("r-2", "bob", "x", "dev"))
		w <- err
	}()
	waiting(t, s, 1)
	cancel()
	if err := <-w; err == nil {
		t.Fatal("cancelled request admitted")
	}
	a.Done(Failed, "boom")
	mustAdmit(t, s, req("r-3", "alice", "x", "main")).Done(Succeeded, "")
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.started != 2 || o.ended[Failed] != 1 || o.ended[Succeeded] != 1 || o.ended[Cancelled] != 1 {
		t.Fatalf("observer: started %d, ended %v", o.started, o.ended)
	}
	if o.ran[0] != 0 {
		t.Errorf("the cancelled request that never ran: ran %v", o.ran[0])
	}
}
