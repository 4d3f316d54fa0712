package hooks

import (
	"context"
	"fmt"
)

// nodeState is where one node of a run stands. A node only moves forward:
//
//	waiting ──stage ahead──► staging ──ready──► staged
//	   │                        │                 │
//	 start                    start             start
//	   ▼                        ▼                 ▼
//	starting ────────────────ready──────────► running
//	   │                                          │
//	   └──────────────► done | failed ◄───────────┘
//
//	reused: not run at all; counts as done (and built) from the start
//
// "ready" is the staging's end: folders, source and early inputs in place
// and, with a preparer, the sandbox built (or the staging failed: the
// node's run reports that when it starts). A node that finishes before
// its ready is seen goes to done or failed all the same.
type nodeState uint8

const (
	nodeWaiting  nodeState = iota // nothing begun
	nodeStaging                   // staged ahead of its start, not ready
	nodeStaged                    // staged ahead and ready, not started
	nodeStarting                  // started; its staging is not ready yet
	nodeRunning                   // started, staging ready
	nodeDone                      // ran and succeeded
	nodeFailed                    // ran and failed
	nodeReused                    // not run: its table is already what it makes
)

var nodeStateNames = [...]string{"waiting", "staging", "staged", "starting", "running", "done", "failed", "reused"}

func (s nodeState) String() string {
	if int(s) < len(nodeStateNames) {
		return nodeStateNames[s]
	}
	return fmt.Sprintf("nodeState(%d)", s)
}

// finished: the node's outputs are there for the nodes that read them.
func (s nodeState) finished() bool { return s == nodeDone || s == nodeReused }

// built: the node has started in a built sandbox (or needs none), so the
// nodes that read it may be next and are worth staging.
func (s nodeState) built() bool { return s == nodeRunning || s.finished() }

// startable: the node has not started.
func (s nodeState) startable() bool { return s <= nodeStaged }

// ahead: staged, or being staged, before its start.
func (s nodeState) ahead() bool { return s == nodeStaging || s == nodeStaged }

// dag executes the nodes of one run in dependency order. It decides what
// to stage and what to start; stage and run do it. Its policy:
//
//   - start a node when every node it reads from is done (or reused), in
//     plan order, at most parallel running at once;
//   - stage a node ahead of its start, in plan order, once every node it
//     reads from has started in a built sandbox, up to parallel staged
//     ahead beyond those running: while a node runs, the next one's
//     sandbox is built, so a chain pays sandbox setup once;
//   - on the first failure cancel the context of everything in flight,
//     start and stage nothing more, and wait for what is in flight;
//   - once its context ends (the client went away), start nothing more.
//
// execute returns only when no run it started is in flight and every
// staging it began is ready. The state lives in the dag and is touched
// by execute's goroutine alone: stage is called on that goroutine (and may
// look at state), run on a goroutine of its own.
type dag struct {
	// deps[i] are the nodes node i reads from.
	deps     [][]int
	parallel int
	// stage begins making node i ready to run, in the background, and
	// returns a channel closed when that has ended, well or not.
	stage func(ctx context.Context, i int) (ready <-chan struct{})
	// run runs node i, once it was staged: it waits for its staging and
	// reports a staging error as its own.
	run func(ctx context.Context, i int) error

	state   []nodeState
	running int // starting or running
	ahead   int // staging or staged
	setting int // stagings begun whose ready has not been seen
	events  chan dagEvent
	err     error // the first failure
}

// dagEvent is news from a staging (ready) or a run (finished, with err).
type dagEvent struct {
	node  int
	ready bool
	err   error
}

// notRunError is execute's answer when it stopped with node not done and
// no node failed: its context ended (cause), or nothing could start.
type notRunError struct {
	node  int
	cause error // nil: no node could start, which a planned DAG rules out
}

func (e *notRunError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("node %d not run: %v", e.node, e.cause)
	}
	return fmt.Sprintf("node %d never ran", e.node)
}

// execute runs the dag to its end: nil when every node is done or reused,
// else the first node's error, or a *notRunError.
func (d *dag) execute(ctx context.Context, reused []int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.state = make([]nodeState, len(d.deps))
	d.events = make(chan dagEvent, 2*len(d.deps)) // a ready and a finish per node at most
	d.running, d.ahead, d.setting, d.err = 0, 0, 0, nil
	for _, i := range reused {
		d.state[i] = nodeReused
	}
	for {
		if d.err == nil && ctx.Err() == nil {
			d.stageAhead(ctx)
			d.startReady(ctx)
			d.stageAhead(ctx)
		}
		if d.running == 0 && d.setting == 0 {
			return d.outcome(ctx)
		}
		if d.handle(<-d.events) {
			cancel()
		}
	}
}

// stageAhead stages, in plan order, the waiting nodes every dependency of
// which has started in a built sandbox, while fewer than parallel are
// staged ahead. Waiting for the dependencies' sandboxes leaves the CPU to
// the setup of the nodes about to run, which is on the critical path; the
// next setup then overlaps their run.
func (d *dag) stageAhead(ctx context.Context) {
	for i, s := range d.state {
		if d.ahead >= d.parallel {
			return
		}
		if s == nodeWaiting && d.depsAre(i, nodeState.built) {
			d.state[i] = nodeStaging
			d.ahead++
			d.beginStage(ctx, i)
		}
	}
}

// startReady starts, in plan order, the nodes every dependency of which
// is done, while fewer than parallel run.
func (d *dag) startReady(ctx context.Context) {
	for i, s := range d.state {
		if d.running >= d.parallel {
			return
		}
		if s.startable() && d.depsAre(i, nodeState.finished) {
			d.start(ctx, i)
		}
	}
}

// start runs node i on a goroutine of its own, staging it first if it was
// not staged ahead.
func (d *dag) start(ctx context.Context, i int) {
	switch d.state[i] {
	case nodeWaiting:
		d.state[i] = nodeStarting
		d.beginStage(ctx, i)
	case nodeStaging:
		d.state[i] = nodeStarting
		d.ahead--
	case nodeStaged:
		d.state[i] = nodeRunning
		d.ahead--
	}
	d.running++
	go func() { d.events <- dagEvent{node: i, err: d.run(ctx, i)} }()
}

// beginStage calls stage and has its ready come back as an event.
func (d *dag) beginStage(ctx context.Context, i int) {
	ready := d.stage(ctx, i)
	d.setting++
	go func() {
		<-ready
		d.events <- dagEvent{node: i, ready: true}
	}()
}

// handle applies e; it reports whether e is the first failure, upon which
// everything in flight is to be cancelled.
func (d *dag) handle(e dagEvent) (first bool) {
	if e.ready {
		d.setting--
		switch d.state[e.node] {
		case nodeStaging:
			d.state[e.node] = nodeStaged
		case nodeStarting:
			d.state[e.node] = nodeRunning
		}
		return false
	}
	d.running--
	if e.err == nil {
		d.state[e.node] = nodeDone
		return false
	}
	d.state[e.node] = nodeFailed
	if d.err != nil {
		return false
	}
	d.err = e.err
	return true
}

// depsAre reports whether every node i reads from is in a state that ok
// accepts.
func (d *dag) depsAre(i int, ok func(nodeState) bool) bool {
	for _, dep := range d.deps[i] {
		if !ok(d.state[dep]) {
			return false
		}
	}
	return true
}

// outcome is execute's result once nothing is in flight.
func (d *dag) outcome(ctx context.Context) error {
	if d.err != nil {
		return d.err
	}
	for i, s := range d.state {
		if !s.finished() {
			return &notRunError{node: i, cause: ctx.Err()}
		}
	}
	return nil
}
