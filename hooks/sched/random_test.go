package sched

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestRandomLoad drives a scheduler with small capacities from many
// goroutines at random: requests for zero to two of a few branches, with
// and without rechecks (some refusing), some given up while queued,
// admitted runs asking for node slots in parallel (some larger than the
// pool, some given up), some runs ending while their nodes still hold or
// wait for slots. It checks, from outside, that no more runs run than
// MaxRuns, no branch is held by two runs and the pool is never exceeded
// (and, inside, the scheduler's invariants after every change); and that
// every request and every node call ends: a deadlock fails the test.
func TestRandomLoad(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { randomLoad(t, seed) })
	}
}

func randomLoad(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	cfg := Config{
		MaxRuns:     1 + rng.IntN(4),
		MaxQueue:    4 + rng.IntN(40),
		CPU:         []float64{0.5, 1, 2, 3}[rng.IntN(4)],
		Memory:      []int64{256 * mib, 1024 * mib}[rng.IntN(2)],
		NodeDefault: Demand{CPU: 1, Memory: 128 * mib},
		Policy:      PolicyNames()[rng.IntN(2)],
		KeepAlive:   time.Millisecond,
		History:     50,
	}
	s := newSched(t, cfg)

	v := &view{cfg: cfg, holders: map[claimKey]RunID{}, capCPU: int64(math.Ceil(cfg.CPU * 1000)), capMem: cfg.Memory}

	const pushers, perPusher = 40, 3
	type outcome struct{ ran, busy, refused, cancelled int }
	outcomes := make(chan outcome, pushers)
	var wg sync.WaitGroup
	for p := range pushers {
		prng := rand.New(rand.NewPCG(seed, uint64(100+p)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var o outcome
			for i := range perPusher {
				id := RunID(fmt.Sprintf("p%d-%d", p, i))
				r := Request{ID: id, Repo: Repo([]string{"x", "y"}[prng.IntN(2)]), Pusher: Identity(fmt.Sprint("agent", prng.IntN(6))), Priority: prng.IntN(12) - 1}
				r.Need = Need{Nodes: prng.IntN(5), Node: Demand{CPU: float64(prng.IntN(3))}}
				for range prng.IntN(3) {
					r.Targets = append(r.Targets, Target{Branch: []string{"main", "dev", "feat"}[prng.IntN(3)]})
				}
				switch prng.IntN(10) {
				case 0, 1:
					r.Recheck = func(context.Context) error { return errors.New("moved") }
				case 2, 3, 4:
				default:
					r.Recheck = func(context.Context) error { return nil }
				}
				r.Progress = func(Position) {}
				ctx, cancel := context.WithCancel(context.Background())
				if prng.IntN(7) == 0 {
					time.AfterFunc(time.Duration(prng.IntN(2000))*time.Microsecond, cancel)
				}
				tk, err := s.Admit(ctx, r)
				var re *RecheckError
				switch {
				case errors.Is(err, ErrBusy):
					o.busy++
				case errors.As(err, &re):
					o.refused++
				case errors.Is(err, context.Canceled):
					o.cancelled++
				case err != nil:
					t.Errorf("%s: Admit: %v", id, err)
				default:
					o.ran++
					v.run(ctx, t, prng, tk, r)
				}
				cancel()
			}
			outcomes <- o
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		s.mu.Lock()
		st := fmt.Sprintf("running %d waiting %d claims %d pool waiters %d used %d/%d", s.running, s.waiting, len(s.claims), len(s.pool.waiters), s.pool.usedCPU, s.pool.usedMem)
		s.mu.Unlock()
		t.Fatalf("deadlock: not every request ended (%s)", st)
	}
	close(outcomes)
	var total outcome
	for o := range outcomes {
		total.ran += o.ran
		total.busy += o.busy
		total.refused += o.refused
		total.cancelled += o.cancelled
	}
	if n := total.ran + total.busy + total.refused + total.cancelled; n != pushers*perPusher {
		t.Errorf("%d outcomes for %d requests", n, pushers*perPusher)
	}
	t.Logf("runs %d, queue %d, pool %v cores %d MiB, %s: %+v", cfg.MaxRuns, cfg.MaxQueue, cfg.CPU, cfg.Memory/mib, cfg.Policy, total)
	if total.ran == 0 {
		t.Errorf("nothing ran: %+v", total)
	}
	st := s.Stats()
	if st.Running != 0 || st.Waiting != 0 || st.UsedCPU != 0 || st.UsedMemory != 0 || st.NodesWaiting != 0 {
		t.Errorf("left behind: %+v", st)
	}
	s.mu.Lock()
	if len(s.claims) != 0 || len(s.active) != 0 || s.policy.Len() != 0 {
		t.Errorf("left behind: %d claims, %d active, %d queued", len(s.claims), len(s.active), s.policy.Len())
	}
	s.mu.Unlock()
	for _, ri := range s.Runs("") {
		if !ri.State.Final() {
			t.Errorf("%s listed as %v after everything ended", ri.ID, ri.State)
		}
	}
	if n := len(s.Runs("")); n > cfg.History {
		t.Errorf("history holds %d, max %d", n, cfg.History)
	}
}

// view is the test's own account of what runs hold: what it counts
// between a grant and its release lies inside the scheduler's hold, so a
// bound that holds here was not broken there either.
type view struct {
	cfg            Config
	capCPU, capMem int64

	mu       sync.Mutex
	runs     int
	holders  map[claimKey]RunID
	cpu, mem int64
}

// clamp is d as the pool counts it: defaults, then at most the pool.
func (v *view) clamp(d Demand) (int64, int64) {
	c, m := d.CPU, d.Memory
	if c <= 0 {
		c = v.cfg.NodeDefault.CPU
	}
	if m <= 0 {
		m = v.cfg.NodeDefault.Memory
	}
	return min(int64(math.Ceil(c*1000)), v.capCPU), min(m, v.capMem)
}

// run plays an admitted run: it holds its branches (checked against
// every other run's), runs a few nodes in parallel and ends.
func (v *view) run(ctx context.Context, t *testing.T, rng *rand.Rand, tk *Ticket, r Request) {
	v.mu.Lock()
	v.runs++
	if v.runs > v.cfg.MaxRuns {
		t.Errorf("%d runs at once, max %d", v.runs, v.cfg.MaxRuns)
	}
	seen := map[claimKey]bool{}
	for _, tg := range r.Targets {
		k := claimKey{r.Repo, tg.Branch}
		if seen[k] {
			continue
		}
		seen[k] = true
		if other, ok := v.holders[k]; ok {
			t.Errorf("%s and %s both hold %v", other, r.ID, k)
		}
		v.holders[k] = r.ID
	}
	v.mu.Unlock()

	// Runs that end early (Done while nodes hold or wait for slots) do
	// not count their nodes: the scheduler lets others have those slots
	// at Done, before these goroutines release.
	early := rng.IntN(8) == 0
	var nodes sync.WaitGroup
	for range rng.IntN(5) {
		d := Demand{CPU: []float64{0, 0.3, 1, 2, 5}[rng.IntN(5)], Memory: []int64{0, 100 * mib, 2048 * mib}[rng.IntN(3)]}
		hold := time.Duration(rng.IntN(300)) * time.Microsecond
		giveUp := rng.IntN(10) == 0
		nodes.Add(1)
		go func() {
			defer nodes.Done()
			nctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if giveUp {
				time.AfterFunc(hold/2, cancel)
			}
			rel, err := tk.Node(nctx, d)
			if err != nil {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrDone) {
					t.Errorf("%s: Node: %v", r.ID, err)
				}
				return
			}
			c, m := v.clamp(d)
			if !early {
				v.mu.Lock()
				v.cpu += c
				v.mem += m
				if v.cpu > v.capCPU || v.mem > v.capMem {
					t.Errorf("pool exceeded: %d/%d of %d/%d", v.cpu, v.mem, v.capCPU, v.capMem)
				}
				v.mu.Unlock()
			}
			time.Sleep(hold)
			if !early {
				v.mu.Lock()
				v.cpu -= c
				v.mem -= m
				v.mu.Unlock()
			}
			rel()
		}()
	}
	end := func() {
		v.mu.Lock()
		v.runs--
		for k := range seen {
			delete(v.holders, k)
		}
		v.mu.Unlock()
		tk.Done([]State{Succeeded, Failed, Cancelled}[rng.IntN(3)], "")
	}
	if early {
		end()
		nodes.Wait()
		return
	}
	nodes.Wait()
	end()
}
