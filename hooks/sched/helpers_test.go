package sched

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// newSched returns a scheduler whose invariants are checked after every
// change it makes.
func newSched(t testing.TB, cfg Config) *Scheduler {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.check = func() {
		if err := s.invariants(); err != nil {
			t.Errorf("invariant broken: %v", err)
		}
	}
	return s
}

// invariants checks what must hold between any two changes; under mu.
func (s *Scheduler) invariants() error {
	var running, waiting, queued int
	for e := range s.active {
		switch e.phase {
		case phaseRunning:
			running++
		case phaseQueued:
			queued++
			waiting++
		case phaseBranch, phaseRecheck:
			waiting++
		case phaseEnded:
			return fmt.Errorf("%s ended but active", e.req.ID)
		}
		owns := e.phase == phaseRecheck || e.phase == phaseQueued || e.phase == phaseRunning
		for _, k := range e.keys {
			c := s.claims[k]
			switch {
			case owns && (c == nil || c.owner != e):
				return fmt.Errorf("%s (%d) does not own %v", e.req.ID, e.phase, k)
			case e.phase == phaseBranch && (c == nil || !slices.Contains(c.waiting, e)):
				return fmt.Errorf("%s waits for %v but is not in its list", e.req.ID, k)
			}
		}
		if e.phase != phaseRunning && (len(e.grants) > 0 || len(e.waits) > 0) {
			return fmt.Errorf("%s (%d) holds node slots", e.req.ID, e.phase)
		}
	}
	if running != s.running || waiting != s.waiting {
		return fmt.Errorf("counts: running %d (counted %d), waiting %d (counted %d)", s.running, running, s.waiting, waiting)
	}
	if running > s.cfg.MaxRuns {
		return fmt.Errorf("%d runs, max %d", running, s.cfg.MaxRuns)
	}
	if waiting > s.cfg.MaxQueue {
		return fmt.Errorf("%d waiting, max %d", waiting, s.cfg.MaxQueue)
	}
	if queued != s.policy.Len() || queued != len(s.queued) || queued != len(s.policy.Order()) {
		return fmt.Errorf("queued %d, policy %d, index %d", queued, s.policy.Len(), len(s.queued))
	}
	if running < s.cfg.MaxRuns && queued > 0 {
		return fmt.Errorf("%d queued with a free slot (%d of %d)", queued, running, s.cfg.MaxRuns)
	}
	for k, c := range s.claims {
		if c.owner == nil && len(c.waiting) == 0 {
			return fmt.Errorf("empty claim %v kept", k)
		}
		if c.owner != nil && (c.owner.phase == phaseBranch || c.owner.phase == phaseEnded) {
			return fmt.Errorf("claim %v owned by %s in phase %d", k, c.owner.req.ID, c.owner.phase)
		}
		for i, w := range c.waiting {
			if w.phase != phaseBranch {
				return fmt.Errorf("claim %v: waiter %s in phase %d", k, w.req.ID, w.phase)
			}
			if i > 0 && c.waiting[i-1].item.Seq >= w.item.Seq {
				return fmt.Errorf("claim %v: waiters out of order", k)
			}
		}
	}
	var cpu, mem int64
	for e := range s.active {
		for g := range e.grants {
			cpu += g.cpu
			mem += g.mem
		}
		for w := range e.waits {
			if !slices.Contains(s.pool.waiters, w) {
				return fmt.Errorf("%s waits for a node slot not in the pool's list", e.req.ID)
			}
		}
	}
	if cpu != s.pool.usedCPU || mem != s.pool.usedMem {
		return fmt.Errorf("pool used %d/%d, grants %d/%d", s.pool.usedCPU, s.pool.usedMem, cpu, mem)
	}
	if cpu > s.pool.cpu || mem > s.pool.mem {
		return fmt.Errorf("pool over capacity: %d/%d of %d/%d", cpu, mem, s.pool.cpu, s.pool.mem)
	}
	if len(s.hist.buf) > s.hist.max {
		return fmt.Errorf("history %d > %d", len(s.hist.buf), s.hist.max)
	}
	return nil
}

// eventually waits until cond holds. It synchronises with goroutines; it
// measures nothing.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// admission is what an Admit called in the background returned.
type admission struct {
	id  RunID
	t   *Ticket
	err error
}

// waiter is one request admitted in the background, with its progress.
type waiter struct {
	id     RunID
	cancel context.CancelFunc
	done   chan admission

	mu       sync.Mutex
	pos      []Position
	rechecks int
}

func (w *waiter) positions() []Position {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.pos)
}

func (w *waiter) last() (Position, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pos) == 0 {
		return Position{}, false
	}
	return w.pos[len(w.pos)-1], true
}

func (w *waiter) rechecked() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rechecks
}

// req is a request of pusher to repo for branches (none: no target).
func req(id string, pusher string, repo string, branches ...string) Request {
	r := Request{ID: RunID(id), Repo: Repo(repo), Pusher: Identity(pusher)}
	for _, b := range branches {
		r.Targets = append(r.Targets, Target{Branch: b})
	}
	return r
}

// start calls Admit in the background, recording progress; recheck, if
// not nil, is the request's Recheck (counted either way when set).
func start(s *Scheduler, r Request, recheck func() error) *waiter {
	ctx, cancel := context.WithCancel(context.Background())
	w := &waiter{id: r.ID, cancel: cancel, done: make(chan admission, 1)}
	r.Progress = func(p Position) {
		w.mu.Lock()
		w.pos = append(w.pos, p)
		w.mu.Unlock()
	}
	if recheck != nil {
		r.Recheck = func(context.Context) error {
			w.mu.Lock()
			w.rechecks++
			w.mu.Unlock()
			return recheck()
		}
	}
	go func() {
		t, err := s.Admit(ctx, r)
		w.done <- admission{id: r.ID, t: t, err: err}
	}()
	return w
}

// admitted waits for w's Admit to return a ticket.
func (w *waiter) admitted(t testing.TB) *Ticket {
	t.Helper()
	select {
	case a := <-w.done:
		if a.err != nil {
			t.Fatalf("%s: Admit: %v", w.id, a.err)
		}
		return a.t
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never admitted", w.id)
	}
	return nil
}

// result waits for w's Admit to return.
func (w *waiter) result(t testing.TB) admission {
	t.Helper()
	select {
	case a := <-w.done:
		return a
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: Admit never returned", w.id)
	}
	return admission{}
}

// notYet fails if w's Admit has returned.
func (w *waiter) notYet(t testing.TB) {
	t.Helper()
	select {
	case a := <-w.done:
		t.Fatalf("%s: Admit returned (%v) while it should wait", w.id, a.err)
	default:
	}
}

// waiting waits until n requests wait.
func waiting(t testing.TB, s *Scheduler, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d waiting", n), func() bool { return s.Stats().Waiting == n })
}

// mustAdmit admits r at once.
func mustAdmit(t testing.TB, s *Scheduler, r Request) *Ticket {
	t.Helper()
	tk, err := s.Admit(context.Background(), r)
	if err != nil {
		t.Fatalf("%s: %v", r.ID, err)
	}
	return tk
}

// info returns the listing's line for id.
func info(t testing.TB, s *Scheduler, id RunID) RunInfo {
	t.Helper()
	for _, ri := range s.Runs("") {
		if ri.ID == id {
			return ri
		}
	}
	t.Fatalf("%s not listed", id)
	return RunInfo{}
}
