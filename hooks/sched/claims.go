package sched

import "slices"

// Branch claims: at most one request holds a branch of a repo, from its
// arrival (or the hand-over) until it ends; the others that want the
// branch wait in arrival order.
//
//	claims[{repo, branch}]   owner: the request holding it (queued,
//	                         rechecking or running), or none
//	                         waiting: requests for it, by arrival (Seq)
//
// A request with several targets takes them all at once or none: it
// waits in the list of each, holding nothing, and is handed all of them
// when, in every list, it is first and no one holds the branch. Lists
// are in arrival order and a request joins all of its lists at once, so
// the earliest waiter is first in every list it is in: it gets its
// branches as soon as their holders end, and no two waiters can each
// hold what the other waits for. A claim with no owner and no waiters is
// deleted, so "no claim" means "free, and nobody waiting".

// claimKey names one branch of one repo.
type claimKey struct {
	repo   Repo
	branch string
}

// claim is who holds one branch and who waits for it.
type claim struct {
	owner   *entry
	waiting []*entry
}

// claimable reports whether every target of e is free and waited for by
// nobody.
func (s *Scheduler) claimable(e *entry) bool {
	for _, k := range e.keys {
		if s.claims[k] != nil {
			return false
		}
	}
	return true
}

// claim makes e the owner of its targets, which claimable said are free.
func (s *Scheduler) claim(e *entry) {
	for _, k := range e.keys {
		s.claims[k] = &claim{owner: e}
	}
}

// waitFor puts e last in the list of each of its targets.
func (s *Scheduler) waitFor(e *entry) {
	for _, k := range e.keys {
		c := s.claims[k]
		if c == nil {
			c = &claim{}
			s.claims[k] = c
		}
		c.waiting = append(c.waiting, e)
	}
}

// unclaim takes e, which has ended, out of the claims on its targets,
// as owner or waiter, and hands each branch to whoever may have it now.
func (s *Scheduler) unclaim(e *entry) {
	for _, k := range e.keys {
		c := s.claims[k]
		if c == nil {
			continue
		}
		if c.owner == e {
			c.owner = nil
		} else if i := slices.Index(c.waiting, e); i >= 0 {
			c.waiting = slices.Delete(c.waiting, i, i+1)
		}
	}
	for _, k := range e.keys {
		s.handOff(k)
	}
}

// handOff gives the branch k, if no one holds it, to the first request
// waiting for it, if that request may take every one of its targets now.
// The request then rechecks (Request.Recheck, on its own goroutine) or,
// with no Recheck, queues for a run slot.
func (s *Scheduler) handOff(k claimKey) {
	c := s.claims[k]
	switch {
	case c == nil:
		return
	case c.owner == nil && len(c.waiting) == 0:
		delete(s.claims, k)
		return
	case c.owner != nil:
		return
	}
	h := c.waiting[0]
	for _, kk := range h.keys {
		cc := s.claims[kk]
		if cc.owner != nil || cc.waiting[0] != h {
			return
		}
	}
	for _, kk := range h.keys {
		cc := s.claims[kk]
		cc.waiting = slices.Delete(cc.waiting, 0, 1)
		cc.owner = h
	}
	s.dirty = true
	if h.req.Recheck != nil {
		h.phase = phaseRecheck
		h.notify()
		return
	}
	s.enqueue(h)
}
