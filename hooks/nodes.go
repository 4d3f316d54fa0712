package hooks

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/hooks/sched"
)

// runNodes runs the plan with a dag (dag.go: what to stage and start
// when), staging nodes with stage (stage.go) and running them with
// runNode: a node starts when every node it reads from has succeeded, at
// most Parallel at once; the first failure cancels the rest. Reused seeds
// count as done before anything runs.
func (r *run) runNodes(pushCtx context.Context) error {
	nodes := r.plan.Nodes
	stages := make([]*staged, len(nodes)) // written by stage, on the dag's goroutine
	defer func() {
		for _, st := range stages {
			if st != nil {
				<-st.done
				if st.prepared != nil {
					st.prepared.Close() // no-op for the ones that ran
				}
			}
		}
	}()
	d := &dag{
		deps:     make([][]int, len(nodes)),
		parallel: r.h.cfg.Parallel,
		stage: func(ctx context.Context, i int) <-chan struct{} {
			stages[i] = r.stage(ctx, i)
			return stages[i].ready()
		},
		run: func(ctx context.Context, i int) error {
			return r.runNode(ctx, pushCtx, i, stages[i])
		},
	}
	for i, n := range nodes {
		d.deps[i] = n.Deps()
	}
	err := d.execute(pushCtx, r.announceReused())
	var nr *notRunError
	switch {
	case errors.As(err, &nr) && nr.cause != nil:
		return &NodeFailedError{Node: "run", Reason: "stopped: the client disconnected"}
	case errors.As(err, &nr):
		return fmt.Errorf("node %s never ran", nodes[nr.node].Name)
	}
	return err
}

// announceReused counts the reused seeds as done, telling the pusher, and
// returns them in plan order. Their table is read from the start data like
// any table the run does not make.
func (r *run) announceReused() []int {
	reused := slices.Sorted(maps.Keys(r.reused))
	for _, i := range reused {
		n, p := r.plan.Nodes[i], r.reused[i]
		r.mu.Lock()
		r.done++
		k := r.done
		r.mu.Unlock()
		r.out.linef("weir: [%d/%d] %-19s %-8s %9s rows  unchanged since %s", k, len(r.plan.Nodes), n.Name, n.Kind, commaInt(p.Rows), p.Run)
	}
	return reused
}

// runNode runs staged node i: it links the inputs made earlier in this
// run, runs the node in its sandbox, records its outputs and starts
// staging their tables.
//
// ctx ends with the node phase; pushCtx, which the tables it made are
// staged under, lasts as long as the push.
func (r *run) runNode(ctx, pushCtx context.Context, i int, st *staged) error {
	n := r.plan.Nodes[i]
	spanBegan := time.Now()
	stop := r.keepAlive(n.Name)
	defer stop()
	<-st.done
	if st.err != nil {
		return st.err
	}
	if err := r.linkLate(ctx, n, st); err != nil {
		return err
	}
	// A node slot of the server's pool, held while the sandbox runs
	// (admit.go); the demand is what weir.toml declares.
	release, err := r.nodeSlot(ctx, pushCtx, n)
	if err != nil {
		return err
	}
	began := time.Now()
	result, err := r.sandboxRun(ctx, st)
	release()
	stop()
	if err != nil {
		return nodeError(n, "sandbox: %s", err.Error())
	}
	r.mu.Lock()
	fmt.Fprintf(&r.nodeLog, "== %s (%s) %s in %s\n%s\n", n.Name, n.File, result.Reason, result.Wall.Round(time.Millisecond), Neutralise(string(result.Output)))
	r.nodeTimes = append(r.nodeTimes, NodeTime{Node: n.Name, Result: clipLine(string(result.Reason), 200), Wall: result.Wall})
	r.timing.Run += result.Wall
	r.timing.Sandbox += time.Since(spanBegan) - result.Wall
	r.mu.Unlock()
	if err := r.verdict(ctx, pushCtx, n, result); err != nil {
		return err
	}
	total, err := r.outputRows(n, st.spec.Output)
	if err != nil {
		return err
	}
	r.record(pushCtx, n, st.spec.Output, total, began)
	return nil
}

// nodeSlot waits for a node slot of the run's ticket for n and returns
// its release; without a scheduler it holds nothing.
func (r *run) nodeSlot(ctx, pushCtx context.Context, n *pipeline.Node) (release func(), err error) {
	if r.ticket == nil {
		return func() {}, nil
	}
	release, err = r.ticket.Node(ctx, sched.Demand{CPU: n.Limits.CPU, Memory: n.Limits.Memory})
	switch {
	case err == nil:
		return release, nil
	case pushCtx.Err() != nil:
		return nil, nodeError(n, "stopped: the client disconnected")
	case ctx.Err() != nil:
		return nil, nodeError(n, "stopped: another node failed")
	}
	return nil, nodeError(n, "no node slot: %v", err)
}

// linkLate links into st's input folders the tables made earlier in this
// run, once they are.
func (r *run) linkLate(ctx context.Context, n *pipeline.Node, st *staged) error {
	for _, t := range st.late {
		files, err := r.inputFiles(ctx, t)
		if err != nil {
			return nodeError(n, "input %s: %v", t, err)
		}
		if err := linkFiles(st.spec.Inputs[string(t)], files); err != nil {
			return nodeError(n, "stage input %s: %v", t, err)
		}
	}
	return nil
}

// sandboxRun runs st in its prepared sandbox, or in a new one.
func (r *run) sandboxRun(ctx context.Context, st *staged) (*exec.Result, error) {
	if st.prepared != nil {
		return st.prepared.Run(ctx)
	}
	return r.h.cfg.Runner.Run(ctx, st.spec)
}

// verdict is node n's failure, nil when it passed: how its sandbox ended,
// then its runner's result.
func (r *run) verdict(ctx, pushCtx context.Context, n *pipeline.Node, result *exec.Result) error {
	rep, repErr := nodeResult(result)
	if result.Reason != exec.ReasonOK {
		if result.Reason == exec.ReasonAborted && ctx.Err() != nil {
			if pushCtx.Err() != nil {
				return nodeError(n, "stopped: the client disconnected")
			}
			return nodeError(n, "stopped: another node failed")
		}
		tail := lastLines(result.Output, 8)
		for _, l := range tail {
			r.out.linef("weir:   | %s", clipLine(l, 200))
		}
		if repErr != nil {
			rep = nil
		}
		return nodeError(n, "%s", failReason(n, result, rep, tail))
	}
	switch {
	case repErr != nil:
		r.log.Warn("node exited 0 without a valid result", "node", n.Name, "err", repErr)
		return nodeError(n, "its runner reported no valid result (%s); weir-node must come from the same build as weir", repErr.Error())
	case rep.Status != contract.StatusOK:
		return nodeError(n, "its runner exited 0 but reported %s", string(rep.Status))
	}
	return nil
}

// nodeResult is the runner's result, from the sandbox's report pipe.
func nodeResult(res *exec.Result) (*contract.Result, error) {
	if res.ReportTruncated {
		return nil, fmt.Errorf("%w: more than %d bytes", contract.ErrBadResult, exec.MaxReport)
	}
	rep, err := contract.Parse(res.Report)
	if err != nil {
		return nil, err
	}
	return &rep, nil
}

// outputRows counts the rows node n wrote into out: the server's own
// count, from the footers of the files it is about to snapshot, never
// from what the node printed.
func (r *run) outputRows(n *pipeline.Node, out string) (int64, error) {
	var total int64
	for _, t := range n.Outputs {
		f := filepath.Join(out, string(t)+".parquet")
		if fi, err := os.Lstat(f); err != nil || !fi.Mode().IsRegular() {
			return 0, nodeError(n, "wrote no output for %s", string(t))
		}
		rows, err := catalog.ParquetRows(f)
		if err != nil {
			// The error names the staging path on this machine: the log
			// gets it, the pusher does not.
			r.log.Warn("node output is not a readable Parquet file", "node", n.Name, "table", t, "err", err)
			return 0, nodeError(n, "its output %s is not a readable Parquet file", string(t))
		}
		total += rows
	}
	return total, nil
}

// record takes node n's outputs (in out; total rows, the node started at
// began) as the run's, starts staging their tables and tells the pusher.
func (r *run) record(pushCtx context.Context, n *pipeline.Node, out string, total int64, began time.Time) {
	took := time.Since(began).Milliseconds()
	var ws []catalog.TableWrite
	r.mu.Lock()
	for _, t := range n.Outputs {
		f := filepath.Join(out, string(t)+".parquet")
		r.outputs[t] = f
		ws = append(ws, catalog.TableWrite{
			Table: catalog.TableName{Namespace: t.Namespace(), Name: t.Name()},
			Files: []string{f},
			Mode:  string(n.Materialize),
		})
	}
	r.writes = append(r.writes, ws...)
	r.done++
	k := r.done
	r.mu.Unlock()
	r.stageTables(pushCtx, ws)
	if n.Kind == pipeline.KindExpectation {
		r.out.linef("weir: [%d/%d] %-19s ok", k, len(r.plan.Nodes), n.Name)
	} else {
		r.out.linef("weir: [%d/%d] %-19s %-8s %9s rows %6d ms", k, len(r.plan.Nodes), n.Name, n.Kind, commaInt(total), took)
	}
	r.log.Info("node ok", "node", n.Name, "rows", total, "ms", took)
}

// keepAlive prints "<node> still running (N s)" every KeepAlive until stop.
func (r *run) keepAlive(name string) (stop func()) {
	done := make(chan struct{})
	began := time.Now()
	go func() {
		t := time.NewTicker(r.h.cfg.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.out.linef("weir: %s still running (%d s)", name, int(time.Since(began).Seconds()))
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}
