package sched

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MaxPriority is the highest priority a request may carry; the scheduler
// clamps Request.Priority to [0, MaxPriority]. What one identity may ask
// for is decided by its caller (access), within this.
const MaxPriority = 9

// Item is one request waiting for a run slot, as a Policy sees it. Its
// fields are set by the scheduler before Push and never change while the
// item is in a policy; a Policy must not write them.
type Item struct {
	// Seq is the request's arrival order: a smaller Seq came first. Seqs
	// are unique within a Scheduler.
	Seq      uint64
	Repo     Repo
	Pusher   Identity
	Priority int // 0 (normal) to MaxPriority, higher first
	// Work is the run's estimated work in thousandths of a node-core:
	// its nodes times the cores its largest node asks for (at least one
	// node and one core: 1000). Fair share charges it.
	Work int64
}

// Policy orders the requests that hold their branches and wait for a run
// slot. The scheduler calls it under its own lock, one call at a time, so
// an implementation needs no locking of its own and must not block.
//
// Pop must return every item pushed and not removed, exactly once, and
// Order must return the items in the order successive Pops would, had
// nothing else been pushed or removed: the scheduler derives each
// waiter's "runs ahead" from it.
type Policy interface {
	// Push adds it.
	Push(it *Item)
	// Pop removes and returns the item to admit next; nil when empty.
	Pop() *Item
	// Remove takes it out (its waiter gave up); false if it is not in.
	Remove(it *Item) bool
	// Len is how many items are in.
	Len() int
	// Order returns the items in the order Pop would return them, without
	// changing what Pop will do.
	Order() []*Item
}

// policies are the policies a flag may name, by name. The first is the
// default.
var policies = []struct {
	name string
	help string
	make func() Policy
}{
	{"fair", "fair share: surplus round robin across pushing identities, then their repos; priority lowers a run's cost", func() Policy { return newFair() }},
	{"fifo", "first in, first out within a priority level (higher first)", func() Policy { return newFIFO() }},
}

// PolicyNames lists the names NewPolicy accepts, the default first, for
// a flag's help.
func PolicyNames() []string {
	var names []string
	for _, p := range policies {
		names = append(names, p.name)
	}
	return names
}

// PolicyHelp says in one line per policy what each does, for a flag's
// help: "fair: ...; fifo: ...".
func PolicyHelp() string {
	var parts []string
	for _, p := range policies {
		parts = append(parts, p.name+": "+p.help)
	}
	return strings.Join(parts, "; ")
}

// NewPolicy returns a new, empty policy by name ("fair", "fifo"; "" is
// the default, fair).
func NewPolicy(name string) (Policy, error) {
	if name == "" {
		name = policies[0].name
	}
	for _, p := range policies {
		if p.name == name {
			return p.make(), nil
		}
	}
	return nil, fmt.Errorf("sched: unknown policy %q (known: %s)", name, strings.Join(PolicyNames(), ", "))
}

// before orders two items of one queue: higher priority first, then
// arrival.
func before(a, b *Item) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Seq < b.Seq
}

// prioQueue is a queue ordered by before: a sorted slice. Queues are short
// (bounded by Config.MaxQueue), so an insertion's copy costs less than a
// heap's bookkeeping, and Order is the slice itself.
type prioQueue struct {
	items []*Item
}

func (q *prioQueue) push(it *Item) {
	i := sort.Search(len(q.items), func(i int) bool { return before(it, q.items[i]) })
	q.items = slices.Insert(q.items, i, it)
}

func (q *prioQueue) pop() *Item {
	if len(q.items) == 0 {
		return nil
	}
	it := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return it
}

func (q *prioQueue) remove(it *Item) bool {
	i := sort.Search(len(q.items), func(i int) bool { return !before(q.items[i], it) })
	if i < len(q.items) && q.items[i] == it {
		q.items = slices.Delete(q.items, i, i+1)
		return true
	}
	return false
}

func (q *prioQueue) len() int { return len(q.items) }

func (q *prioQueue) clone() level { return &prioQueue{items: slices.Clone(q.items)} }

// fifo is the "fifo" policy: one queue, higher priority first, then
// arrival. A flood from one identity delays everyone behind it.
type fifo struct{ q prioQueue }

func newFIFO() *fifo { return &fifo{} }

func (f *fifo) Push(it *Item)        { f.q.push(it) }
func (f *fifo) Pop() *Item           { return f.q.pop() }
func (f *fifo) Remove(it *Item) bool { return f.q.remove(it) }
func (f *fifo) Len() int             { return f.q.len() }
func (f *fifo) Order() []*Item       { return slices.Clone(f.q.items) }

var _ Policy = (*fifo)(nil)
