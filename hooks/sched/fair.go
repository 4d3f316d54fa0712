package sched

// The "fair" policy: surplus round robin (deficit round robin that lets
// a flow's deficit go below zero, so no item's cost need be known before
// its flow's turn) on two levels:
//
//	identities   one flow per pushing identity, served in turn
//	  repos      within an identity, one flow per repo, served in turn
//	    queue    within a repo, higher priority first, then arrival
//
// On its turn a flow is credited one quantum; while its credit is above
// zero it is served (each served item costs its Work divided by its
// priority's weight) and when the credit is spent the turn passes to the
// next flow. A flow that empties leaves the round and forgets its credit;
// a new flow joins at the end of the round. So an identity with 100 runs
// queued gets one turn per round like one with a single run: neither
// starves, and over a round each gets about a quantum of work. Priority p
// divides a run's cost by p+1 (at most MaxPriority+1), so an identity
// pushing at priority 9 gets up to ten times the work of one at 0 while
// both have runs waiting, never all of it.
//
// A round in which no flow has credit (every one paid for a run costlier
// than a quantum) is skipped arithmetically, not looped through.

// fairQuantum is the credit of one turn: one node-core of work at
// priority 0 (Item.Work is in thousandths of a node-core; costs are
// scaled by MaxPriority+1 so that priority weights stay integers).
const fairQuantum = 1000 * (MaxPriority + 1)

// cost is what serving it takes from its flows' credit.
func cost(it *Item) int64 {
	w := max(it.Work, 1)
	p := min(max(it.Priority, 0), MaxPriority)
	return max(w*(MaxPriority+1)/int64(p+1), 1)
}

// level is one level of the fair policy: a round of flows, or at the
// bottom one flow's queue.
type level interface {
	push(it *Item)
	pop() *Item
	remove(it *Item) bool
	len() int
	clone() level
}

// round serves flows (keyed by key) by surplus round robin; each flow's
// items are held by a level made by child.
type round struct {
	key   func(*Item) string
	child func() level
	flows map[string]*flow
	ring  []*flow // the flows with items, in turn order
	cur   int     // index in ring of the flow whose turn it is
	n     int     // items in all flows
}

// flow is one identity's (or repo's) share.
type flow struct {
	key    string
	q      level
	credit int64
	turn   bool // credited for the current turn
}

func newRound(key func(*Item) string, child func() level) *round {
	return &round{key: key, child: child, flows: map[string]*flow{}}
}

func (r *round) push(it *Item) {
	k := r.key(it)
	f := r.flows[k]
	if f == nil {
		f = &flow{key: k, q: r.child()}
		r.flows[k] = f
		r.ring = append(r.ring, f)
	}
	f.q.push(it)
	r.n++
}

func (r *round) pop() *Item {
	if r.n == 0 {
		return nil
	}
	for visited := 0; ; visited++ {
		if r.cur >= len(r.ring) {
			r.cur = 0
		}
		if visited == len(r.ring) {
			r.skipRounds()
			visited = 0
		}
		f := r.ring[r.cur]
		if !f.turn {
			f.credit += fairQuantum
			f.turn = true
		}
		if f.credit > 0 {
			it := f.q.pop()
			f.credit -= cost(it)
			r.n--
			switch {
			case f.q.len() == 0:
				r.drop(r.cur) // the next flow's turn is next
			case f.credit <= 0:
				f.turn = false
				r.cur++
			}
			return it
		}
		f.turn = false
		r.cur++
	}
}

// skipRounds is called after a whole round in which every flow was
// credited and none could be served: it credits every flow with the
// rounds that would pass before the first of them can be, so the next
// round serves one.
func (r *round) skipRounds() {
	need := int64(-1)
	for _, f := range r.ring {
		// turns until credit > 0: credit + t*q >= 1
		t := (1 - f.credit + fairQuantum - 1) / fairQuantum
		if need < 0 || t < need {
			need = t
		}
	}
	if skip := need - 1; skip > 0 {
		for _, f := range r.ring {
			f.credit += skip * fairQuantum
		}
	}
}

// drop takes the flow at ring index i out of the round.
func (r *round) drop(i int) {
	delete(r.flows, r.ring[i].key)
	r.ring = append(r.ring[:i], r.ring[i+1:]...)
	if r.cur > i {
		r.cur--
	}
	if r.cur >= len(r.ring) {
		r.cur = 0
	}
}

func (r *round) remove(it *Item) bool {
	f := r.flows[r.key(it)]
	if f == nil || !f.q.remove(it) {
		return false
	}
	r.n--
	if f.q.len() == 0 {
		for i, g := range r.ring {
			if g == f {
				r.drop(i)
				break
			}
		}
	}
	return true
}

func (r *round) len() int { return r.n }

func (r *round) clone() level {
	c := &round{key: r.key, child: r.child, flows: make(map[string]*flow, len(r.flows)), ring: make([]*flow, len(r.ring)), cur: r.cur, n: r.n}
	for i, f := range r.ring {
		g := &flow{key: f.key, q: f.q.clone(), credit: f.credit, turn: f.turn}
		c.ring[i] = g
		c.flows[g.key] = g
	}
	return c
}

// fair is the "fair" policy (see the comment at the top of this file).
type fair struct{ top level }

func newFair() *fair {
	repos := func() level {
		return newRound(func(it *Item) string { return string(it.Repo) }, func() level { return &prioQueue{} })
	}
	return &fair{top: newRound(func(it *Item) string { return string(it.Pusher) }, repos)}
}

func (f *fair) Push(it *Item)        { f.top.push(it) }
func (f *fair) Pop() *Item           { return f.top.pop() }
func (f *fair) Remove(it *Item) bool { return f.top.remove(it) }
func (f *fair) Len() int             { return f.top.len() }

// Order pops a copy of the policy dry.
func (f *fair) Order() []*Item {
	c := f.top.clone()
	out := make([]*Item, 0, c.len())
	for c.len() > 0 {
		out = append(out, c.pop())
	}
	return out
}

var _ Policy = (*fair)(nil)
