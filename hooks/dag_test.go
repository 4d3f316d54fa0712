package hooks

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeRun is what a fake node's run does.
type fakeRun int

const (
	runOK             fakeRun = iota // succeeds
	runFail                          // fails with failErr
	runUntilCancelled                // runs until its context ends, and fails with its error
	runClientGoes                    // cancels the client's context, then as runUntilCancelled
	runClientGoesOK                  // cancels the client's context and succeeds
)

type failErr int

func (e failErr) Error() string { return fmt.Sprintf("node %d failed", int(e)) }

type stageErr int

func (e stageErr) Error() string { return fmt.Sprintf("node %d: cannot stage", int(e)) }

// fakeNodes are the stage and run of a dag, without sandboxes: they do
// what a case says and record what the dag made them do, checking the
// dag's promises as they go.
type fakeNodes struct {
	t      *testing.T
	d      *dag
	runs   map[int]fakeRun
	stages map[int]bool  // nodes whose staging fails
	meet   []int         // these nodes wait for each other to be running
	after  map[int]int   // node i runs until node after[i] is staged
	reused map[int]bool  // nodes the dag was told are reused
	client func()        // cancels the client's context
	slow   time.Duration // how long a staging takes
	// strict: no run may start once a run has failed. Where another run
	// may end at the same time, the dag can start a node before it has
	// heard of the failure: then only stage is checked.
	strict bool

	mu        sync.Mutex
	log       []string // "stage 1", "start 1", "end 1", "fail 1"
	ready     map[int]chan struct{}
	staged    map[int]chan struct{} // closed when stage(i) was called
	ended     map[int]bool          // ran and succeeded
	failed    bool                  // a run has failed
	running   int
	peak      int
	peakAhead int
	stagings  int // stagings not ready yet
	met       chan struct{}
	meeting   int
}

func newFakeNodes(t *testing.T, n int) *fakeNodes {
	f := &fakeNodes{t: t, runs: map[int]fakeRun{}, stages: map[int]bool{}, after: map[int]int{}, reused: map[int]bool{},
		ready: map[int]chan struct{}{}, staged: map[int]chan struct{}{}, ended: map[int]bool{}, met: make(chan struct{})}
	for i := 0; i < n; i++ {
		f.staged[i] = make(chan struct{})
	}
	return f
}

func (f *fakeNodes) record(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

// stage is called on the dag's goroutine: it may read the dag's state.
func (f *fakeNodes) stage(ctx context.Context, i int) <-chan struct{} {
	ahead := 0
	for _, s := range f.d.state {
		if s.ahead() {
			ahead++
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("stage %d", i)
	if f.reused[i] {
		f.t.Errorf("reused node %d staged", i)
	}
	if _, dup := f.ready[i]; dup {
		f.t.Errorf("node %d staged twice", i)
	}
	if f.d.err != nil {
		f.t.Errorf("node %d staged after a failure", i)
	}
	f.peakAhead = max(f.peakAhead, ahead)
	ready := make(chan struct{})
	f.ready[i] = ready
	f.stagings++
	close(f.staged[i])
	time.AfterFunc(f.slow, func() {
		f.mu.Lock()
		f.stagings--
		f.mu.Unlock()
		close(ready)
	})
	return ready
}

// run is called on a goroutine of its own; like runNode it waits for its
// staging and reports a staging error as its own.
func (f *fakeNodes) run(ctx context.Context, i int) error {
	f.mu.Lock()
	f.record("start %d", i)
	ready, staged := f.ready[i]
	if !staged {
		f.t.Errorf("node %d started unstaged", i)
	}
	if f.reused[i] {
		f.t.Errorf("reused node %d started", i)
	}
	if f.failed && f.strict {
		f.t.Errorf("node %d started after a failure", i)
	}
	for _, dep := range f.d.deps[i] {
		if !f.ended[dep] && !f.reused[dep] {
			f.t.Errorf("node %d started before node %d, which it reads, ended", i, dep)
		}
	}
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	err := f.do(ctx, i, ready)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if err != nil {
		f.record("fail %d", i)
		f.failed = true
		return err
	}
	f.record("end %d", i)
	f.ended[i] = true
	return nil
}

func (f *fakeNodes) do(ctx context.Context, i int, ready <-chan struct{}) error {
	if ready != nil {
		<-ready
	}
	if f.stages[i] {
		return stageErr(i)
	}
	if slices.Contains(f.meet, i) {
		f.mu.Lock()
		if f.meeting++; f.meeting == len(f.meet) {
			close(f.met)
		}
		f.mu.Unlock()
		if !f.wait(f.met) {
			f.t.Errorf("nodes %v never ran at the same time", f.meet)
		}
	}
	if j, ok := f.after[i]; ok && !f.wait(f.staged[j]) {
		f.t.Errorf("node %d was not staged while node %d ran", j, i)
	}
	switch f.runs[i] {
	case runFail:
		return failErr(i)
	case runClientGoes:
		f.client()
		fallthrough
	case runUntilCancelled:
		if !f.wait(ctx.Done()) {
			f.t.Errorf("node %d was never cancelled", i)
		}
		return ctx.Err()
	case runClientGoesOK:
		f.client()
	}
	return nil
}

// wait waits for c, for a while; false if c never came.
func (f *fakeNodes) wait(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// ran lists the nodes that were started, in order.
func (f *fakeNodes) ran() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, l := range f.log {
		var i int
		if _, err := fmt.Sscanf(l, "start %d", &i); err == nil {
			out = append(out, i)
		}
	}
	return out
}

// index is where line is in the log; -1 if absent.
func (f *fakeNodes) index(line string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Index(f.log, line)
}

// chain is n nodes, each reading the one before.
func chain(n int) [][]int {
	deps := make([][]int, n)
	for i := 1; i < n; i++ {
		deps[i] = []int{i - 1}
	}
	return deps
}

// fanOut is node 0 and n nodes reading it.
func fanOut(n int) [][]int {
	deps := make([][]int, n+1)
	for i := 1; i <= n; i++ {
		deps[i] = []int{0}
	}
	return deps
}

// TestDAG: the run's executor starts each node once every node it reads
// has succeeded, at most parallel at once, stages nodes ahead of their
// start (never more than parallel), stops at the first failure or when
// the client goes, and returns only once nothing is in flight.
func TestDAG(t *testing.T) {
	diamond := [][]int{nil, {0}, {0}, {1, 2}}
	for _, tc := range []struct {
		name     string
		deps     [][]int
		parallel int
		reused   []int
		runs     map[int]fakeRun
		stages   []int       // nodes whose staging fails
		meet     []int       // run at the same time
		after    map[int]int // node i runs until after[i] is staged (ahead of its start)
		gone     bool        // the client has gone before the run
		wantErr  error
		wantRan  []int // nil: every node not reused, in any order
		wantPeak int   // 0: not checked
		check    func(t *testing.T, f *fakeNodes)
	}{
		{
			name: "chain", deps: chain(4), parallel: 1,
			after:   map[int]int{0: 1, 1: 2, 2: 3},
			wantRan: []int{0, 1, 2, 3}, wantPeak: 1,
		},
		{
			name: "chain, parallel 4", deps: chain(4), parallel: 4,
			after:   map[int]int{0: 1, 1: 2, 2: 3},
			wantRan: []int{0, 1, 2, 3}, wantPeak: 1,
		},
		{
			name: "diamond", deps: diamond, parallel: 2, meet: []int{1, 2},
			wantPeak: 2,
			check: func(t *testing.T, f *fakeNodes) {
				if f.ran()[0] != 0 || f.ran()[3] != 3 {
					t.Errorf("diamond ran in order %v", f.ran())
				}
			},
		},
		{
			name: "diamond, parallel 1", deps: diamond, parallel: 1,
			wantRan: []int{0, 1, 2, 3}, wantPeak: 1,
		},
		{
			name: "wide fan-out limited by parallel", deps: fanOut(8), parallel: 3,
			meet: []int{1, 2, 3}, wantPeak: 3,
		},
		{
			name: "independent nodes", deps: make([][]int, 10), parallel: 2,
			meet: []int{0, 1}, wantPeak: 2,
		},
		{
			name: "first failure cancels the rest", deps: fanOut(6), parallel: 2,
			runs: map[int]fakeRun{1: runUntilCancelled, 2: runFail}, meet: []int{1, 2},
			wantErr: failErr(2), wantRan: []int{0, 1, 2},
		},
		{
			name: "failure in a chain", deps: chain(4), parallel: 2,
			runs:    map[int]fakeRun{1: runFail},
			wantErr: failErr(1), wantRan: []int{0, 1},
		},
		{
			name: "failure while others run on", deps: make([][]int, 5), parallel: 3,
			runs: map[int]fakeRun{0: runUntilCancelled, 1: runUntilCancelled, 2: runFail}, meet: []int{0, 1, 2},
			wantErr: failErr(2), wantRan: []int{0, 1, 2},
		},
		{
			name: "reused nodes count as done", deps: [][]int{nil, nil, {0}, {1, 2}}, parallel: 2,
			reused:  []int{0, 1},
			wantRan: []int{2, 3},
			check: func(t *testing.T, f *fakeNodes) {
				if f.index("stage 2") != 0 {
					t.Errorf("the reader of reused nodes was not staged first: %v", f.log)
				}
			},
		},
		{
			name: "every node reused", deps: [][]int{nil, nil}, parallel: 1,
			reused: []int{0, 1}, wantRan: []int{},
		},
		{
			name: "staging error", deps: chain(3), parallel: 1,
			stages:  []int{1},
			wantErr: stageErr(1), wantRan: []int{0, 1},
		},
		{
			name: "staging error of a node that never starts", deps: chain(2), parallel: 1,
			stages: []int{1}, runs: map[int]fakeRun{0: runFail}, after: map[int]int{0: 1},
			wantErr: failErr(0), wantRan: []int{0},
		},
		{
			name: "client goes while a node runs", deps: chain(3), parallel: 1,
			runs:    map[int]fakeRun{1: runClientGoes},
			wantErr: context.Canceled, wantRan: []int{0, 1},
		},
		{
			name: "client goes between nodes", deps: chain(3), parallel: 1,
			runs:    map[int]fakeRun{1: runClientGoesOK},
			wantErr: &notRunError{node: 2, cause: context.Canceled}, wantRan: []int{0, 1},
		},
		{
			name: "client gone before the run", deps: diamond, parallel: 2, gone: true,
			wantErr: &notRunError{node: 0, cause: context.Canceled}, wantRan: []int{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNodes(t, len(tc.deps))
			f.runs, f.meet, f.slow, f.strict = tc.runs, tc.meet, time.Millisecond, true
			for _, i := range tc.stages {
				f.stages[i] = true
			}
			for i, j := range tc.after {
				f.after[i] = j
			}
			for _, i := range tc.reused {
				f.reused[i] = true
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.client = cancel
			if tc.gone {
				cancel()
			}
			f.d = &dag{deps: tc.deps, parallel: tc.parallel, stage: f.stage, run: f.run}
			err := f.d.execute(ctx, tc.reused)
			checkOutcome(t, err, tc.wantErr)
			f.mu.Lock()
			if f.running != 0 || f.stagings != 0 {
				t.Errorf("execute returned with %d runs and %d stagings in flight", f.running, f.stagings)
			}
			if f.peak > tc.parallel || f.peakAhead > tc.parallel {
				t.Errorf("parallel %d: %d ran at once, %d staged ahead at once", tc.parallel, f.peak, f.peakAhead)
			}
			if tc.wantPeak != 0 && f.peak != tc.wantPeak {
				t.Errorf("%d ran at once, want %d", f.peak, tc.wantPeak)
			}
			f.mu.Unlock()
			want := tc.wantRan
			if want == nil {
				for i := range tc.deps {
					if !slices.Contains(tc.reused, i) {
						want = append(want, i)
					}
				}
			}
			if got := slices.Sorted(slices.Values(f.ran())); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("ran %v, want %v", f.ran(), want)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
			if t.Failed() {
				t.Logf("log: %v", f.log)
			}
		})
	}
}

func checkOutcome(t *testing.T, err, want error) {
	t.Helper()
	var nr, wantNR *notRunError
	switch {
	case errors.As(want, &wantNR):
		if !errors.As(err, &nr) || nr.node != wantNR.node || !errors.Is(nr.cause, wantNR.cause) {
			t.Errorf("execute = %v, want %v", err, want)
		}
	case !errors.Is(err, want):
		t.Errorf("execute = %v, want %v", err, want)
	}
}

// TestDAGRandom runs random DAGs, some with a failing node and reused
// roots, under the checks of fakeNodes: every node runs once its readers
// are done, the bounds hold, and a failure keeps whatever reads it from
// running.
func TestDAGRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for k := 0; k < 200; k++ {
		n := 1 + rng.Intn(12)
		deps := make([][]int, n)
		for i := 1; i < n; i++ {
			for j := 0; j < i; j++ {
				if rng.Intn(4) == 0 {
					deps[i] = append(deps[i], j)
				}
			}
		}
		parallel := 1 + rng.Intn(4)
		var reused []int
		for i := range n {
			if len(deps[i]) == 0 && rng.Intn(3) == 0 {
				reused = append(reused, i)
			}
		}
		failing := -1
		if rng.Intn(2) == 0 {
			failing = rng.Intn(n)
		}
		t.Run(fmt.Sprintf("%d", k), func(t *testing.T) {
			f := newFakeNodes(t, n)
			f.slow = time.Duration(rng.Intn(300)) * time.Microsecond
			for _, i := range reused {
				f.reused[i] = true
			}
			if failing >= 0 && !f.reused[failing] {
				f.runs[failing] = runFail
			}
			f.d = &dag{deps: deps, parallel: parallel, stage: f.stage, run: f.run}
			err := f.d.execute(context.Background(), reused)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.running != 0 || f.stagings != 0 || f.peak > parallel || f.peakAhead > parallel {
				t.Errorf("in flight %d/%d at the end; peaks %d/%d, parallel %d", f.running, f.stagings, f.peak, f.peakAhead, parallel)
			}
			if f.runs[failing] == runFail {
				if !errors.Is(err, failErr(failing)) {
					t.Errorf("execute = %v, want node %d's failure", err, failing)
				}
				return
			}
			if err != nil {
				t.Errorf("execute = %v", err)
			}
			for i := range n {
				if !f.ended[i] && !f.reused[i] {
					t.Errorf("node %d did not run", i)
				}
			}
		})
	}
}

// TestNodeState: the states' names, and which count as finished and
// built.
func TestNodeState(t *testing.T) {
	for _, tc := range []struct {
		s                                 nodeState
		name                              string
		finished, built, startable, ahead bool
	}{
		{nodeWaiting, "waiting", false, false, true, false},
		{nodeStaging, "staging", false, false, true, true},
		{nodeStaged, "staged", false, false, true, true},
		{nodeStarting, "starting", false, false, false, false},
		{nodeRunning, "running", false, true, false, false},
		{nodeDone, "done", true, true, false, false},
		{nodeFailed, "failed", false, false, false, false},
		{nodeReused, "reused", true, true, false, false},
	} {
		if tc.s.String() != tc.name || tc.s.finished() != tc.finished || tc.s.built() != tc.built ||
			tc.s.startable() != tc.startable || tc.s.ahead() != tc.ahead {
			t.Errorf("%v: finished %v built %v startable %v ahead %v", tc.s, tc.s.finished(), tc.s.built(), tc.s.startable(), tc.s.ahead())
		}
	}
}
