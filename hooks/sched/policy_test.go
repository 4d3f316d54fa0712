package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// items parses "pusher/repo[:prio][*nodes]" words into items, Seq in
// order; the item's name is the word.
func items(words string) ([]*Item, map[*Item]string) {
	var out []*Item
	names := map[*Item]string{}
	for i, w := range strings.Fields(words) {
		it := &Item{Seq: uint64(i + 1), Work: 1000}
		name := w
		if rest, nodes, ok := strings.Cut(w, "*"); ok {
			w = rest
			var n int64
			fmt.Sscan(nodes, &n)
			it.Work = n * 1000
		}
		if rest, prio, ok := strings.Cut(w, ":"); ok {
			w = rest
			fmt.Sscan(prio, &it.Priority)
		}
		pusher, repo, _ := strings.Cut(w, "/")
		it.Pusher, it.Repo = Identity(pusher), Repo(repo)
		out = append(out, it)
		names[it] = name
	}
	return out, names
}

func TestPolicyOrder(t *testing.T) {
	tests := []struct {
		policy string
		push   string // items, in arrival order
		want   string // the order Pop gives
	}{
		{"fifo", "a/x a/x b/x a/y", "a/x a/x b/x a/y"},
		{"fifo", "a/x b/x:5 a/y c/x:9", "c/x:9 b/x:5 a/x a/y"},
		// Fair: identities take turns, whatever arrived first.
		{"fair", "a/x a/x a/x b/x b/x", "a/x b/x a/x b/x a/x"},
		{"fair", "a/1 a/2 a/3 a/4 a/5 b/1 c/1", "a/1 b/1 c/1 a/2 a/3 a/4 a/5"},
		// Within an identity, its repos take turns.
		{"fair", "a/x a/x a/y", "a/x a/y a/x"},
		// Within a repo, priority then arrival.
		{"fair", "a/x a/x:3 a/x", "a/x:3 a/x a/x"},
		// Priority 9 costs a tenth: ten of a's runs per one of b's while
		// both wait, and b is never starved.
		{"fair", "a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 b/x b/x",
			"a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 a/x:9 b/x a/x:9 a/x:9 b/x"},
		// Twice the work: half the runs.
		{"fair", "a/x*2 a/x*2 a/x*2 b/x b/x b/x b/x b/x", "a/x*2 b/x b/x a/x*2 b/x b/x a/x*2 b/x"},
		// Work far above a quantum: rounds in which nobody can go are
		// skipped, and the cheaper flow goes meanwhile.
		{"fair", "a/x*1000 a/x*1000 b/x b/x b/x", "a/x*1000 b/x b/x b/x a/x*1000"},
	}
	for _, tc := range tests {
		t.Run(tc.policy+": "+tc.push, func(t *testing.T) {
			p, err := NewPolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			its, names := items(tc.push)
			for _, it := range its {
				p.Push(it)
			}
			var order []string
			for _, it := range p.Order() {
				order = append(order, names[it])
			}
			var popped []string
			for p.Len() > 0 {
				popped = append(popped, names[p.Pop()])
			}
			if got := strings.Join(popped, " "); got != tc.want {
				t.Errorf("popped %s\nwant         %s", got, tc.want)
			}
			if got := strings.Join(order, " "); got != tc.want {
				t.Errorf("Order %s\nwant      %s", got, tc.want)
			}
			if p.Pop() != nil {
				t.Error("Pop of an empty policy returned an item")
			}
		})
	}
}

// TestPolicyOrderIsPop drives each policy at random and checks, before
// every Pop, that Order said what Pop returns, and that every item
// pushed and not removed comes out exactly once.
func TestPolicyOrderIsPop(t *testing.T) {
	for _, name := range PolicyNames() {
		t.Run(name, func(t *testing.T) {
			for seed := uint64(0); seed < 50; seed++ {
				rng := rand.New(rand.NewPCG(seed, 1))
				p, _ := NewPolicy(name)
				in := map[*Item]bool{}
				var seq uint64
				for step := 0; step < 400; step++ {
					switch r := rng.IntN(10); {
					case r < 5:
						seq++
						it := &Item{
							Seq:      seq,
							Pusher:   Identity(fmt.Sprint("p", rng.IntN(4))),
							Repo:     Repo(fmt.Sprint("r", rng.IntN(3))),
							Priority: rng.IntN(MaxPriority + 1),
							Work:     int64(1+rng.IntN(30)) * 1000,
						}
						p.Push(it)
						in[it] = true
					case r < 8:
						order := p.Order()
						it := p.Pop()
						if len(order) == 0 {
							if it != nil {
								t.Fatalf("seed %d: Pop of empty returned %v", seed, it)
							}
							continue
						}
						if it != order[0] {
							t.Fatalf("seed %d step %d: Pop %+v, Order said %+v", seed, step, *it, *order[0])
						}
						if !in[it] {
							t.Fatalf("seed %d: popped %+v twice or never pushed", seed, *it)
						}
						delete(in, it)
					default:
						order := p.Order()
						if len(order) == 0 {
							if p.Remove(&Item{}) {
								t.Fatal("removed an item never pushed")
							}
							continue
						}
						it := order[rng.IntN(len(order))]
						if !p.Remove(it) || p.Remove(it) {
							t.Fatalf("seed %d: Remove of %+v: not exactly once", seed, *it)
						}
						delete(in, it)
					}
					if p.Len() != len(in) {
						t.Fatalf("seed %d: Len %d, want %d", seed, p.Len(), len(in))
					}
				}
				order := p.Order()
				for _, want := range order {
					if got := p.Pop(); got != want {
						t.Fatalf("seed %d: draining: Pop %+v, Order said %+v", seed, *got, *want)
					}
					delete(in, want)
				}
				if len(in) != 0 || p.Len() != 0 {
					t.Fatalf("seed %d: %d items never came out", seed, len(in))
				}
			}
		})
	}
}

// TestFairShareBound: under random backlogs, while two identities both
// have runs waiting, neither is served more than its share plus one
// quantum's worth: with equal work, the counts of runs popped for each
// differ by at most one.
func TestFairShareBound(t *testing.T) {
	for seed := uint64(0); seed < 100; seed++ {
		rng := rand.New(rand.NewPCG(seed, 2))
		p := newFair()
		backlog := map[Identity]int{"flood": 20 + rng.IntN(100), "few": 1 + rng.IntN(10)}
		var seq uint64
		var pushes []*Item
		for id, n := range backlog {
			for range n {
				seq++
				pushes = append(pushes, &Item{Seq: seq, Pusher: id, Repo: Repo(fmt.Sprint("r", rng.IntN(3))), Work: 1000})
			}
		}
		rng.Shuffle(len(pushes), func(i, j int) { pushes[i], pushes[j] = pushes[j], pushes[i] })
		for _, it := range pushes {
			p.Push(it)
		}
		served := map[Identity]int{}
		for backlog["few"] > 0 {
			it := p.Pop()
			served[it.Pusher]++
			backlog[it.Pusher]--
			if d := served["flood"] - served["few"]; d > 1 || d < -1 {
				t.Fatalf("seed %d: served %v while both waited", seed, served)
			}
		}
	}
}

func TestNewPolicy(t *testing.T) {
	for _, name := range []string{"", "fair", "fifo"} {
		if _, err := NewPolicy(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if _, err := NewPolicy("lifo"); err == nil || !strings.Contains(err.Error(), "fair, fifo") {
		t.Errorf("lifo: %v, want an error listing the known policies", err)
	}
	if got := PolicyNames(); !slices.Equal(got, []string{"fair", "fifo"}) {
		t.Errorf("PolicyNames = %v", got)
	}
	if h := PolicyHelp(); !strings.HasPrefix(h, "fair: ") || !strings.Contains(h, "; fifo: ") {
		t.Errorf("PolicyHelp = %q", h)
	}
}
