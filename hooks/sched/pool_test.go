package sched

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// slot is one Ticket.Node call made in the background.
type slot struct {
	cancel context.CancelFunc
	done   chan slotResult
}

type slotResult struct {
	release func()
	err     error
}

func askNode(tk *Ticket, d Demand) *slot {
	ctx, cancel := context.WithCancel(context.Background())
	sl := &slot{cancel: cancel, done: make(chan slotResult, 1)}
	go func() {
		rel, err := tk.Node(ctx, d)
		sl.done <- slotResult{rel, err}
	}()
	return sl
}

func (sl *slot) granted(t *testing.T, what string) func() {
	t.Helper()
	select {
	case r := <-sl.done:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r.release
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never granted", what)
	}
	return nil
}

func (sl *slot) waits(t *testing.T, what string) {
	t.Helper()
	select {
	case r := <-sl.done:
		t.Fatalf("%s returned (%v) while the pool is full", what, r.err)
	default:
	}
}

// nodesWaiting waits until n Node calls wait.
func nodesWaiting(t *testing.T, s *Scheduler, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d nodes waiting", n), func() bool { return s.Stats().NodesWaiting == n })
}

func used(s *Scheduler) (float64, int64) {
	st := s.Stats()
	return st.UsedCPU, st.UsedMemory
}

const mib = 1 << 20

func TestNodeSlots(t *testing.T) {
	cfg := Config{MaxRuns: 4, CPU: 2, Memory: 1024 * mib, NodeDefault: Demand{CPU: 1, Memory: 256 * mib}}
	t.Run("defaults fill the pool", func(t *testing.T) {
		s := newSched(t, cfg)
		tk := mustAdmit(t, s, req("r", "a", "x"))
		r1 := askNode(tk, Demand{}).granted(t, "first")
		r2 := askNode(tk, Demand{}).granted(t, "second")
		if c, m := used(s); c != 2 || m != 512*mib {
			t.Errorf("used %v cores %d bytes, want 2 and 512 MiB", c, m)
		}
		third := askNode(tk, Demand{})
		nodesWaiting(t, s, 1)
		third.waits(t, "third")
		r1()
		r1() // a second release does nothing
		r3 := third.granted(t, "third")
		if c, _ := used(s); c != 2 {
			t.Errorf("used %v cores after a double release, want 2", c)
		}
		r2()
		r3()
		if c, m := used(s); c != 0 || m != 0 {
			t.Errorf("used %v/%d after all released", c, m)
		}
		tk.Done(Succeeded, "")
	})
	t.Run("larger than the pool is clamped", func(t *testing.T) {
		for _, d := range []Demand{{CPU: 64}, {Memory: 1 << 40}, {CPU: 3, Memory: 4096 * mib}} {
			s := newSched(t, cfg)
			tk := mustAdmit(t, s, req("r", "a", "x"))
			rel := askNode(tk, d).granted(t, fmt.Sprintf("%+v", d))
			c, m := used(s)
			if (d.CPU > 2 && c != 2) || (d.Memory > 1024*mib && m != 1024*mib) {
				t.Errorf("%+v took %v cores %d bytes; want clamped to the pool", d, c, m)
			}
			small := askNode(tk, Demand{CPU: 0.5, Memory: mib})
			nodesWaiting(t, s, 1)
			small.waits(t, "a node behind a whole-pool one")
			rel()
			small.granted(t, "small")()
			tk.Done(Succeeded, "")
		}
	})
	t.Run("first come first served", func(t *testing.T) {
		s := newSched(t, cfg)
		a := mustAdmit(t, s, req("a", "a", "x"))
		b := mustAdmit(t, s, req("b", "b", "x"))
		r1 := askNode(a, Demand{CPU: 1}).granted(t, "one core")
		big := askNode(b, Demand{CPU: 2})
		nodesWaiting(t, s, 1)
		// One core is free, but the two-core node asked first.
		small := askNode(a, Demand{CPU: 1})
		nodesWaiting(t, s, 2)
		big.waits(t, "big")
		small.waits(t, "small behind big")
		r1()
		rb := big.granted(t, "big")
		small.waits(t, "small behind big")
		rb()
		small.granted(t, "small")()
		a.Done(Succeeded, "")
		b.Done(Succeeded, "")
	})
	t.Run("fractions", func(t *testing.T) {
		s := newSched(t, cfg)
		tk := mustAdmit(t, s, req("r", "a", "x"))
		var rels []func()
		for i := range 4 {
			rels = append(rels, askNode(tk, Demand{CPU: 0.5, Memory: 10 * mib}).granted(t, fmt.Sprint("half ", i)))
		}
		fifth := askNode(tk, Demand{CPU: 0.5, Memory: 10 * mib})
		nodesWaiting(t, s, 1)
		fifth.waits(t, "fifth half core")
		rels[0]()
		fifth.granted(t, "fifth")()
		tk.Done(Succeeded, "")
	})
	t.Run("memory bounds too", func(t *testing.T) {
		s := newSched(t, cfg)
		tk := mustAdmit(t, s, req("r", "a", "x"))
		rel := askNode(tk, Demand{CPU: 0.1, Memory: 800 * mib}).granted(t, "800 MiB")
		next := askNode(tk, Demand{CPU: 0.1, Memory: 300 * mib})
		nodesWaiting(t, s, 1)
		next.waits(t, "300 MiB more")
		rel()
		next.granted(t, "300 MiB")()
		tk.Done(Succeeded, "")
	})
	t.Run("a waiter that gives up lets the next in", func(t *testing.T) {
		s := newSched(t, cfg)
		tk := mustAdmit(t, s, req("r", "a", "x"))
		rel := askNode(tk, Demand{CPU: 1}).granted(t, "one core")
		big := askNode(tk, Demand{CPU: 2})
		nodesWaiting(t, s, 1)
		small := askNode(tk, Demand{CPU: 1})
		nodesWaiting(t, s, 2)
		big.cancel()
		if r := <-big.done; !errors.Is(r.err, context.Canceled) || r.release != nil {
			t.Fatalf("cancelled Node = %v", r.err)
		}
		small.granted(t, "small once big gave up")()
		rel()
		if c, _ := used(s); c != 0 {
			t.Errorf("used %v", c)
		}
		tk.Done(Succeeded, "")
	})
	t.Run("done releases everything", func(t *testing.T) {
		s := newSched(t, cfg)
		tk := mustAdmit(t, s, req("r", "a", "x"))
		other := mustAdmit(t, s, req("o", "b", "x"))
		rel := askNode(tk, Demand{CPU: 2}).granted(t, "whole pool")
		mine := askNode(tk, Demand{CPU: 1})
		theirs := askNode(other, Demand{CPU: 1})
		nodesWaiting(t, s, 2)
		tk.Done(Cancelled, "client gone")
		if r := <-mine.done; !errors.Is(r.err, ErrDone) {
			t.Errorf("a node of a run that ended: %v, want ErrDone", r.err)
		}
		theirs.granted(t, "the other run's node")()
		rel() // after Done: a no-op
		if c, _ := used(s); c != 0 {
			t.Errorf("used %v after Done and a late release", c)
		}
		if _, err := tk.Node(context.Background(), Demand{}); !errors.Is(err, ErrDone) {
			t.Errorf("Node after Done: %v", err)
		}
		if ri := info(t, s, "r"); ri.Nodes != 1 || ri.State != Cancelled {
			t.Errorf("listed %+v", ri)
		}
		other.Done(Succeeded, "")
	})
}
