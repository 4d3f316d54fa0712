package sched

import (
	"bufio"
	"context"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The node pool: the server's cores and memory, handed out one node slot
// at a time. A slot is the demand of one node (its declared cpus and
// memory_mb, Config.NodeDefault where it declares none), clamped to the
// pool, so that any one node fits in an empty pool. Slots are granted in
// the order they were asked for: the first waiter is served as soon as
// it fits, and nobody behind it goes first, so a large node is never
// starved by small ones (at the price of a core left idle while it waits
// for the second).
//
//	capacity   cpu (thousandths of a core), mem (bytes)
//	used       the sum of the grants held
//	waiters    FIFO; the first is granted when used + its demand fits
//
// Nothing that holds a slot waits for anything of the scheduler: a slot
// is held by a node that runs, and released when it ends (see the
// package comment for why that rules out deadlock).
type pool struct {
	cpu, mem         int64
	usedCPU, usedMem int64
	waiters          []*nodeWaiter
}

// grant is one node slot held.
type grant struct {
	e        *entry
	cpu, mem int64
}

// nodeWaiter is one Ticket.Node call waiting for a slot. done, g and err
// are written under Scheduler.mu before ready is closed.
type nodeWaiter struct {
	e        *entry
	cpu, mem int64
	ready    chan struct{}
	done     bool
	g        *grant // granted
	err      error  // ErrDone: the run ended first
}

// milli is c cores in thousandths, rounded up.
func milli(c float64) int64 { return int64(math.Ceil(c * 1000)) }

// demand is d in pool units, defaults filled in and clamped to the pool.
// It reads only what New fixed.
func (s *Scheduler) demand(d Demand) (cpu, mem int64) {
	if !(d.CPU > 0) { // NaN too
		d.CPU = s.cfg.NodeDefault.CPU
	}
	if d.Memory <= 0 {
		d.Memory = s.cfg.NodeDefault.Memory
	}
	cpu = s.pool.cpu
	if d.CPU*1000 < float64(s.pool.cpu) {
		cpu = max(milli(d.CPU), 1)
	}
	return cpu, min(d.Memory, s.pool.mem)
}

// Node waits for a node slot of d (Demand's defaults and clamping) and
// returns the func that releases it; call it when the node has ended.
// Call Node right before the node runs, and hold nothing else of the
// scheduler's while waiting: a run's nodes may wait for slots in
// parallel, each for its own. It returns ctx's error when ctx ends first
// (nothing is held then), and ErrDone when the run is done (Done) before
// or while it waits.
func (t *Ticket) Node(ctx context.Context, d Demand) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := t.s
	cpu, mem := s.demand(d)
	w := &nodeWaiter{e: t.e, cpu: cpu, mem: mem, ready: make(chan struct{})}
	s.mu.Lock()
	if t.e.phase != phaseRunning {
		s.mu.Unlock()
		return nil, ErrDone
	}
	s.pool.waiters = append(s.pool.waiters, w)
	t.e.waits[w] = struct{}{}
	s.grantNodes()
	s.settle()
	s.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		s.mu.Lock()
		if !w.done {
			s.pool.waiters = slices.DeleteFunc(s.pool.waiters, func(x *nodeWaiter) bool { return x == w })
			delete(t.e.waits, w)
			s.grantNodes()
			s.settle()
			s.mu.Unlock()
			return nil, ctx.Err()
		}
		s.mu.Unlock()
		if w.g != nil {
			s.release(w.g)
		}
		return nil, ctx.Err()
	}
	if w.err != nil {
		return nil, w.err
	}
	var once sync.Once
	return func() { once.Do(func() { s.release(w.g) }) }, nil
}

// grantNodes grants slots to the first waiters while they fit.
func (s *Scheduler) grantNodes() {
	p := &s.pool
	for len(p.waiters) > 0 {
		w := p.waiters[0]
		if p.usedCPU+w.cpu > p.cpu || p.usedMem+w.mem > p.mem {
			return
		}
		p.waiters = slices.Delete(p.waiters, 0, 1)
		p.usedCPU += w.cpu
		p.usedMem += w.mem
		g := &grant{e: w.e, cpu: w.cpu, mem: w.mem}
		w.e.grants[g] = struct{}{}
		w.e.nodes++
		delete(w.e.waits, w)
		w.g, w.done = g, true
		close(w.ready)
	}
}

// release gives g back, unless its run's Done already did.
func (s *Scheduler) release(g *grant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := g.e.grants[g]; !ok {
		return
	}
	delete(g.e.grants, g)
	s.pool.usedCPU -= g.cpu
	s.pool.usedMem -= g.mem
	s.grantNodes()
	s.settle()
}

// dropNodes gives back every slot e holds and fails its waiting Node
// calls with ErrDone; e's run has ended.
func (s *Scheduler) dropNodes(e *entry) {
	for g := range e.grants {
		s.pool.usedCPU -= g.cpu
		s.pool.usedMem -= g.mem
		delete(e.grants, g)
	}
	for w := range e.waits {
		s.pool.waiters = slices.DeleteFunc(s.pool.waiters, func(x *nodeWaiter) bool { return x == w })
		w.err, w.done = ErrDone, true
		close(w.ready)
		delete(e.waits, w)
	}
	s.grantNodes()
}

// defaultMemory is the machine's memory less reserve, at least half of
// it; 4 GiB if /proc/meminfo cannot be read.
func defaultMemory(reserve int64) int64 {
	total := memTotal()
	if total <= 0 {
		return 4 << 30
	}
	return max(total-reserve, total/2)
}

// memTotal is MemTotal of /proc/meminfo in bytes, 0 if unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       24684096 kB
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 || kb > math.MaxInt64>>10 {
			return 0
		}
		return kb << 10
	}
	return 0
}
