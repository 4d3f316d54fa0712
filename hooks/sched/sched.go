package sched

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// The package's names are its own types, so that it imports nothing but
// the standard library; the hook converts its own (sched.Repo(p.Repo),
// sched.Identity(p.Pusher), sched.Commit(c.New)).

// RunID names a run in the scheduler's listing: the pipeline hook's run
// id ("r-" and hex digits: hooks.RunID).
type RunID string

// Repo names a repo (objects.RepoName).
type Repo string

// Identity is who asked for a run (access.Identity): fair share is per
// identity.
type Identity string

// Commit is a code commit's hash (objects.Hash).
type Commit [20]byte

// String is the commit's hex form.
func (c Commit) String() string { return hex.EncodeToString(c[:]) }

// Target is one branch a run may move, with the code commit pushed to it.
type Target struct {
	Branch string // "main", not "refs/heads/main"
	Code   Commit
}

// Demand is what one node asks of the node pool: the cpus and memory_mb
// its weir.toml declares. A zero field takes Config.NodeDefault; a field
// larger than the pool is clamped to the pool.
type Demand struct {
	CPU    float64 // cores
	Memory int64   // bytes
}

// Need is what a run's nodes are expected to ask: the largest demand of
// one node (each field the largest of any node) and how many nodes.
type Need struct {
	Node  Demand
	Nodes int
}

// Request asks for a run.
type Request struct {
	// ID names the run in the listing (Runs).
	ID   RunID
	Repo Repo
	// Targets are the branches the run may move. At most one admitted run
	// holds a branch of a repo at a time: a request waits until every one
	// of its targets is free, holding none of them while it waits. No
	// targets: the run is not serialised with any other.
	Targets []Target
	// Pusher is who asked; fair share is per pusher, then per repo.
	Pusher Identity
	// Priority is 0 (normal) to MaxPriority, higher first. The caller
	// bounds it by what Pusher may ask for; the scheduler clamps it to
	// [0, MaxPriority].
	Priority int
	// Need is the estimate of the run's nodes, for fair share's cost.
	Need Need
	// Progress, if set, is called while the request waits: once when it
	// starts waiting, whenever its position changes, and every
	// Config.KeepAlive besides, so that a caller can print "weir: queued,
	// 3 runs ahead" and keep its client's connection alive. It is called
	// on Admit's goroutine, never concurrently and never under the
	// scheduler's lock; it must not call back into the scheduler with
	// this request, and should return quickly: while it runs, its
	// request may be admitted and hold a run slot it cannot use yet.
	Progress func(Position)
	// Recheck, if set, is called once the branches the request waited for
	// are handed to it, before it queues for a run slot and before it
	// counts as started: the caller re-reads what another run may have
	// moved (the code ref) and returns an error if the request must not
	// run any more (its update is no longer a fast-forward). An error
	// ends the request (state Refused) and Admit returns it as a
	// *RecheckError. It is called on Admit's goroutine, without the
	// scheduler's lock, only when the request waited for a branch.
	Recheck func(ctx context.Context) error
}

// Position is where a waiting request stands.
type Position struct {
	// Ahead is how many requests will be admitted before this one, as the
	// queue stands now (a later request of higher priority, or of a
	// pusher with less share used, may still come before it).
	Ahead int
	// Branch is set while the request waits for a run of one of its own
	// branches to end; Ahead then counts the runs of that branch ahead of
	// it, the running one included.
	Branch bool
	// Waited is how long the request has waited so far.
	Waited time.Duration
}

// String is what a hook prints after "weir: ": "queued, 3 runs ahead",
// or "queued behind 1 run of this branch".
func (p Position) String() string {
	runs := "runs"
	if p.Ahead == 1 {
		runs = "run"
	}
	switch {
	case p.Branch:
		return fmt.Sprintf("queued behind %d %s of this branch", p.Ahead, runs)
	case p.Ahead == 0:
		return "queued, next to run"
	}
	return fmt.Sprintf("queued, %d %s ahead", p.Ahead, runs)
}

// Errors.
var (
	// ErrBusy is the queue at its length (Config.MaxQueue). Admit returns
	// it as a *BusyError, whose text is for the pusher.
	ErrBusy = errors.New("sched: server busy")
	// ErrDone is Ticket.Node on a run that is done.
	ErrDone = errors.New("sched: the run is done")
)

// BusyError is Admit's refusal of a request that would have to wait when
// Queued requests wait already. errors.Is(err, ErrBusy) holds.
type BusyError struct {
	Queued int
}

// Error is the line for the pusher: "server busy: 256 runs queued; try
// again later".
func (e *BusyError) Error() string {
	return fmt.Sprintf("server busy: %d runs queued; try again later", e.Queued)
}

// Is reports whether target is ErrBusy.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// RecheckError is Admit's answer when Request.Recheck refused the
// request: Err is Recheck's error, unchanged (its text is the caller's).
type RecheckError struct {
	Err error
}

func (e *RecheckError) Error() string { return e.Err.Error() }

// Unwrap returns Recheck's error.
func (e *RecheckError) Unwrap() error { return e.Err }

// Config sizes a Scheduler. Zero fields take defaults that suit the
// machine the server runs on.
type Config struct {
	// MaxRuns bounds the runs admitted at once (default: twice the cores,
	// at least 2, and no more than Memory holds of NodeDefault.Memory).
	MaxRuns int
	// MaxQueue bounds the requests waiting (for a branch or a run slot):
	// past it Admit refuses with ErrBusy at once (default 256; negative:
	// no queue, a request that cannot start at once is refused).
	MaxQueue int
	// CPU is the node pool's cores (default runtime.NumCPU()).
	CPU float64
	// Memory is the node pool's bytes (default: the machine's memory
	// (MemTotal in /proc/meminfo) less MemoryReserve, at least half of
	// it; 4 GiB where it cannot be read).
	Memory int64
	// MemoryReserve is what the default Memory leaves to the server and
	// the system (default 1 GiB).
	MemoryReserve int64
	// NodeDefault is the demand of a node that declares none (default 1
	// core and 512 MiB).
	NodeDefault Demand
	// Policy names the policy ordering the run queue: "fair" (default)
	// or "fifo" (NewPolicy).
	Policy string
	// KeepAlive is how often a waiting request's Progress is called when
	// nothing changes (default 10 s).
	KeepAlive time.Duration
	// History is how many ended requests Runs remembers (default 1000).
	History int
	// Observer, if not nil, is told when a request starts and ends (for
	// metrics).
	Observer Observer
}

// Observer is told of each request's start and end. Its methods are
// called with the scheduler's lock held: they must be quick and must not
// call the Scheduler.
type Observer interface {
	// Started: a request was admitted to a run slot after waiting wait.
	Started(wait time.Duration)
	// Ended: a request ended in st (a final state); ran is how long it
	// held a run slot, zero if it never did.
	Ended(st State, ran time.Duration)
}

// Default sizes.
const (
	DefaultMaxQueue      = 256
	DefaultMemoryReserve = 1 << 30
	DefaultNodeCPU       = 1.0
	DefaultNodeMemory    = 512 << 20
	DefaultKeepAlive     = 10 * time.Second
	DefaultHistory       = 1000
)

// withDefaults fills the zero fields of c.
func (c Config) withDefaults() Config {
	if c.CPU <= 0 {
		c.CPU = float64(runtime.NumCPU())
	}
	if c.MemoryReserve <= 0 {
		c.MemoryReserve = DefaultMemoryReserve
	}
	if c.Memory <= 0 {
		c.Memory = defaultMemory(c.MemoryReserve)
	}
	if c.NodeDefault.CPU <= 0 {
		c.NodeDefault.CPU = DefaultNodeCPU
	}
	if c.NodeDefault.Memory <= 0 {
		c.NodeDefault.Memory = DefaultNodeMemory
	}
	if c.MaxRuns <= 0 {
		c.MaxRuns = max(2, 2*runtime.NumCPU())
		if byMem := int(c.Memory / min(c.NodeDefault.Memory, c.Memory)); byMem < c.MaxRuns {
			c.MaxRuns = max(1, byMem)
		}
	}
	switch {
	case c.MaxQueue == 0:
		c.MaxQueue = DefaultMaxQueue
	case c.MaxQueue < 0:
		c.MaxQueue = 0
	}
	if c.Policy == "" {
		c.Policy = policies[0].name
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	return c
}

// phase is where a request stands in the scheduler.
//
//	          Admit
//	            │ a target held or waited for
//	            ├──────────────► branch ──(targets handed over)──► recheck
//	            │ targets free                                        │ Recheck ok
//	            ▼                                                     ▼
//	         queued ◄────────────────────────────────────────────────┘
//	            │ a run slot (policy's turn)
//	            ▼
//	         running ──Ticket.Done──► ended
//
//	branch, recheck, queued ──(ctx ends, Recheck fails)──► ended
type phase uint8

const (
	phaseBranch  phase = iota // waiting for its targets; holds none
	phaseRecheck              // holds its targets; its Recheck runs
	phaseQueued               // holds its targets; in the policy
	phaseRunning              // holds its targets and a run slot
	phaseEnded                // holds nothing
)

// entry is one request in the scheduler, from Admit to its end. Every
// field but the immutable ones (item, req, keys, wake) is guarded by
// Scheduler.mu.
type entry struct {
	item Item
	req  Request // Targets deduplicated
	keys []claimKey
	wake chan struct{} // capacity 1: something changed for Admit's goroutine

	phase   phase
	pos     Position
	posSet  bool // pos was ever set
	posNew  bool // pos changed since Admit's goroutine last read it
	state   State
	note    string
	arrived time.Time
	started time.Time
	ended   time.Time
	nodes   int                      // node slots granted so far
	grants  map[*grant]struct{}      // node slots held
	waits   map[*nodeWaiter]struct{} // node slots waited for
}

// notify wakes e's Admit goroutine (coalescing).
func (e *entry) notify() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Scheduler admits runs and hands out node slots. It is safe for
// concurrent use. See the package comment.
type Scheduler struct {
	cfg Config

	mu      sync.Mutex
	policy  Policy
	seq     uint64
	running int                 // entries in phaseRunning
	waiting int                 // entries in phaseBranch, phaseRecheck, phaseQueued
	claims  map[claimKey]*claim // targets held or waited for
	queued  map[*Item]*entry    // entries in the policy
	active  map[*entry]struct{}
	hist    history
	pool    pool
	dirty   bool // positions may have changed

	// check, when set (tests), is called under mu after every change.
	check func()
}

// New returns a scheduler sized by cfg.
func New(cfg Config) (*Scheduler, error) {
	cfg = cfg.withDefaults()
	p, err := NewPolicy(cfg.Policy)
	if err != nil {
		return nil, err
	}
	if cfg.CPU > math.MaxInt64/2000 || math.IsNaN(cfg.CPU) {
		return nil, fmt.Errorf("sched: CPU %v out of range", cfg.CPU)
	}
	s := &Scheduler{
		cfg:    cfg,
		policy: p,
		claims: map[claimKey]*claim{},
		queued: map[*Item]*entry{},
		active: map[*entry]struct{}{},
		hist:   history{buf: make([]*entry, 0, min(cfg.History, 1024)), max: cfg.History},
		pool:   pool{cpu: milli(cfg.CPU), mem: cfg.Memory},
	}
	return s, nil
}

// Config returns the scheduler's configuration, defaults filled in.
func (s *Scheduler) Config() Config { return s.cfg }

// Admit blocks until the run req asks for may start and returns its
// ticket; the caller must call Ticket.Done when the run ends. It returns
// at once with a *BusyError (errors.Is ErrBusy) when the request would
// have to wait and Config.MaxQueue requests wait already; nothing is
// queued or recorded then. It returns ctx's error when ctx ends first (the
// request leaves the queue at once, recorded as Cancelled), and a
// *RecheckError when req.Recheck refused it.
func (s *Scheduler) Admit(ctx context.Context, req Request) (*Ticket, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e := s.newEntry(req)
	s.mu.Lock()
	err := s.arrive(e)
	runs := e.phase == phaseRunning
	s.settle()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if runs {
		return &Ticket{s: s, e: e}, nil
	}
	return s.wait(ctx, e)
}

func (s *Scheduler) newEntry(req Request) *entry {
	var ts []Target
	seen := map[string]bool{}
	for _, t := range req.Targets {
		if !seen[t.Branch] {
			seen[t.Branch] = true
			ts = append(ts, t)
		}
	}
	req.Targets = ts
	req.Priority = min(max(req.Priority, 0), MaxPriority)
	e := &entry{
		req:    req,
		wake:   make(chan struct{}, 1),
		grants: map[*grant]struct{}{},
		waits:  map[*nodeWaiter]struct{}{},
	}
	for _, t := range ts {
		e.keys = append(e.keys, claimKey{repo: req.Repo, branch: t.Branch})
	}
	cpu, _ := s.demand(req.Need.Node)
	e.item = Item{
		Repo:     req.Repo,
		Pusher:   req.Pusher,
		Priority: req.Priority,
		Work:     int64(max(req.Need.Nodes, 1)) * max(cpu, 1000),
	}
	return e
}

// arrive places e: running at once, waiting for its targets, queued for
// a run slot, or refused (BusyError).
func (s *Scheduler) arrive(e *entry) error {
	free := s.claimable(e)
	if free && s.running < s.cfg.MaxRuns && s.policy.Len() == 0 {
		s.begin(e)
		s.claim(e)
		s.start(e)
		return nil
	}
	if s.waiting >= s.cfg.MaxQueue {
		return &BusyError{Queued: s.waiting}
	}
	s.begin(e)
	s.waiting++
	if !free {
		e.phase = phaseBranch
		s.waitFor(e)
		return nil
	}
	s.claim(e)
	s.enqueue(e)
	return nil
}

// begin records e as arrived.
func (s *Scheduler) begin(e *entry) {
	s.seq++
	e.item.Seq = s.seq
	e.arrived = time.Now()
	e.state = Queued
	s.active[e] = struct{}{}
	s.dirty = true
}

// enqueue puts e, which holds its targets, in the run queue; it starts
// at once if a slot is free and nobody is ahead.
func (s *Scheduler) enqueue(e *entry) {
	s.dirty = true
	if s.running < s.cfg.MaxRuns && s.policy.Len() == 0 {
		s.waiting--
		s.start(e)
		e.notify()
		return
	}
	e.phase = phaseQueued
	s.queued[&e.item] = e
	s.policy.Push(&e.item)
}

// start makes e running.
func (s *Scheduler) start(e *entry) {
	e.phase = phaseRunning
	e.state = Running
	e.started = time.Now()
	s.running++
	s.dirty = true
	if s.cfg.Observer != nil {
		s.cfg.Observer.Started(e.started.Sub(e.arrived))
	}
}

// dispatch starts queued requests while run slots are free.
func (s *Scheduler) dispatch() {
	for s.running < s.cfg.MaxRuns && s.policy.Len() > 0 {
		it := s.next()
		e := s.queued[it]
		delete(s.queued, it)
		s.waiting--
		s.start(e)
		e.notify()
	}
}

// A queued run that another identity's push waits behind goes first.
//
// Such a run holds a branch that others want (a shared branch such as
// main, into which many agents merge): until it has run, every push
// waiting for the branch waits too, holding no run slot, whatever the
// policy would give them. Starting it first is priority inheritance: the
// waiters lend it their turn. It is bounded (at most one per branch is
// queued, since a branch has one holder) and it cannot be used to jump
// the queue: waiters of the holder's own identity do not count, so an
// identity flooding one branch is served by the policy like any other.
// Among such runs the earliest goes first.

// blocking reports whether e, queued, holds a branch that a request of
// another identity waits for.
func (s *Scheduler) blocking(e *entry) bool {
	for _, k := range e.keys {
		c := s.claims[k]
		if c == nil || c.owner != e {
			continue
		}
		for _, w := range c.waiting {
			if w.req.Pusher != e.req.Pusher {
				return true
			}
		}
	}
	return false
}

// firstBlocking returns the earliest queued entry that blocking says
// others wait behind; nil if none.
func (s *Scheduler) firstBlocking() *entry {
	var best *entry
	for _, e := range s.queued {
		if (best == nil || e.item.Seq < best.item.Seq) && s.blocking(e) {
			best = e
		}
	}
	return best
}

// next takes the queued request to start next out of the queue: a run
// others wait behind, else the policy's choice.
func (s *Scheduler) next() *Item {
	if e := s.firstBlocking(); e != nil {
		s.policy.Remove(&e.item)
		return &e.item
	}
	return s.policy.Pop()
}

// order is the queue in the order next takes it: the runs others wait
// behind, earliest first, then the policy's order.
func (s *Scheduler) order() []*Item {
	items := s.policy.Order()
	var first, rest []*Item
	for _, it := range items {
		if s.blocking(s.queued[it]) {
			first = append(first, it)
		} else {
			rest = append(rest, it)
		}
	}
	if len(first) == 0 {
		return items
	}
	slices.SortFunc(first, func(a, b *Item) int { return cmp.Compare(a.Seq, b.Seq) })
	return append(first, rest...)
}

// end takes e out: it releases whatever e holds or waits for, records
// how it ended and lets others in.
func (s *Scheduler) end(e *entry, st State, note string) {
	switch e.phase {
	case phaseEnded:
		return
	case phaseRunning:
		s.running--
		s.dropNodes(e)
	case phaseQueued:
		s.policy.Remove(&e.item)
		delete(s.queued, &e.item)
		s.waiting--
	default:
		s.waiting--
	}
	e.phase = phaseEnded
	e.state = st
	e.note = clip(note, maxNote)
	e.ended = time.Now()
	if s.cfg.Observer != nil {
		var ran time.Duration
		if !e.started.IsZero() {
			ran = e.ended.Sub(e.started)
		}
		s.cfg.Observer.Ended(st, ran)
	}
	// The history keeps e: not what its callbacks hold (a push's output).
	e.req.Progress, e.req.Recheck = nil, nil
	delete(s.active, e)
	s.hist.add(e)
	s.unclaim(e)
	s.dispatch()
	s.dirty = true
}

// settle brings waiters' positions up to date and, in tests, checks the
// invariants. Called under mu at the end of every change.
func (s *Scheduler) settle() {
	s.reposition()
	if s.check != nil {
		s.check()
	}
}

// reposition recomputes every waiter's position and wakes those whose
// position changed.
func (s *Scheduler) reposition() {
	if !s.dirty {
		return
	}
	s.dirty = false
	if s.waiting == 0 {
		return
	}
	for i, it := range s.order() {
		s.queued[it].setPos(i, false)
	}
	ahead := map[*entry]int{}
	for _, c := range s.claims {
		base := 0
		if c.owner != nil {
			base = 1
		}
		for i, w := range c.waiting {
			ahead[w] = max(ahead[w], base+i)
		}
	}
	for w, n := range ahead {
		w.setPos(n, true)
	}
}

// setPos records e's position, waking its goroutine if it changed.
func (e *entry) setPos(ahead int, branch bool) {
	if e.posSet && e.pos.Ahead == ahead && e.pos.Branch == branch {
		return
	}
	e.pos.Ahead, e.pos.Branch = ahead, branch
	e.posSet, e.posNew = true, true
	e.notify()
}

// wait is Admit's wait: it reports progress, runs the recheck when the
// targets are handed over, and returns once e runs, or ends.
func (s *Scheduler) wait(ctx context.Context, e *entry) (*Ticket, error) {
	var tick <-chan time.Time
	if e.req.Progress != nil {
		t := time.NewTicker(s.cfg.KeepAlive)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			if e.phase == phaseRunning {
				s.end(e, Cancelled, "client gone as the run was admitted")
			} else {
				s.end(e, Cancelled, "client gone while queued")
			}
			s.settle()
			s.mu.Unlock()
			return nil, ctx.Err()
		case <-tick:
			s.mu.Lock()
			pos := e.pos
			pos.Waited = time.Since(e.arrived)
			running := e.phase == phaseRunning
			s.mu.Unlock()
			if !running {
				e.req.Progress(pos)
			}
			continue
		case <-e.wake:
		}
		s.mu.Lock()
		ph := e.phase
		pos, report := e.pos, e.posNew
		e.posNew = false
		pos.Waited = time.Since(e.arrived)
		s.mu.Unlock()
		switch ph {
		case phaseRunning:
			return &Ticket{s: s, e: e}, nil
		case phaseRecheck:
			if err := s.recheck(ctx, e); err != nil {
				return nil, err
			}
		case phaseEnded: // cannot happen: only this goroutine ends a waiter
			return nil, ErrDone
		default:
			if report && e.req.Progress != nil {
				e.req.Progress(pos)
			}
		}
	}
}

// recheck runs e's Recheck now that it holds its targets, and queues it
// for a run slot if it passes.
func (s *Scheduler) recheck(ctx context.Context, e *entry) error {
	err := e.req.Recheck(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.settle()
	switch {
	case ctx.Err() != nil:
		s.end(e, Cancelled, "client gone while queued")
		return ctx.Err()
	case err != nil:
		s.end(e, Refused, err.Error())
		return &RecheckError{Err: err}
	}
	s.enqueue(e)
	return nil
}

// Ticket is an admitted run. Its methods are safe for concurrent use.
type Ticket struct {
	s *Scheduler
	e *entry
}

// ID is the run's id (Request.ID).
func (t *Ticket) ID() RunID { return t.e.req.ID }

// Waited is how long the request waited before it was admitted.
func (t *Ticket) Waited() time.Duration {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.e.started.Sub(t.e.arrived)
}

// Done ends the run: it frees its run slot, its targets and any node
// slot it still holds (their release funcs become no-ops; Node calls
// still waiting return ErrDone), and records st (Succeeded, Failed,
// Cancelled or Refused; anything else counts as Failed) with a one-line
// note for the listing. Calls after the first do nothing.
//
// Call it only once the run's outcome is written: for a push, after
// gitserver has committed the ref update (hooks.Result.Report), so that
// a request waiting for the branch rechecks against the branch as the
// run left it.
func (t *Ticket) Done(st State, note string) {
	if !st.Final() {
		st = Failed
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.e.phase != phaseRunning {
		return
	}
	s.end(t.e, st, note)
	s.settle()
}

// Stats is what a Scheduler holds now.
type Stats struct {
	Running, Waiting  int
	MaxRuns, MaxQueue int
	// CPU and Memory are the node pool's capacity; UsedCPU and
	// UsedMemory what node slots hold of it.
	CPU, UsedCPU       float64
	Memory, UsedMemory int64
	NodesWaiting       int
}

// Stats returns the scheduler's counts now.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Running: s.running, Waiting: s.waiting,
		MaxRuns: s.cfg.MaxRuns, MaxQueue: s.cfg.MaxQueue,
		CPU: float64(s.pool.cpu) / 1000, UsedCPU: float64(s.pool.usedCPU) / 1000,
		Memory: s.pool.mem, UsedMemory: s.pool.usedMem,
		NodesWaiting: len(s.pool.waiters),
	}
}

// targets returns a copy of e's targets, for a listing.
func (e *entry) targets() []Target { return slices.Clone(e.req.Targets) }

// maxNote bounds a note kept in the listing, in bytes.
const maxNote = 300

// clip cuts s to at most n bytes, on a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
