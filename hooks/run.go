package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// NodeFailedError is a node that did not succeed.
type NodeFailedError struct {
	Node   string // "clean.revenue", "expect revenue_positive"
	Reason string // one line
}

func (e *NodeFailedError) Error() string { return e.Node + " failed: " + e.Reason }

// run is one execution of a pipeline.
type run struct {
	h       *Pipeline
	push    *Push
	cmd     Command
	branch  string
	opts    options
	out     *progress
	id      RunID
	start   objects.Hash // data the run reads
	dataOld objects.Hash // refs/data/<b> now (ZeroHash: absent)
	code    objects.Hash // the code commit the run runs
	began   time.Time    // the hook started on this branch
	log     *slog.Logger
	tables  TableReader // reads start's tables (the catalog, or a pushed data commit's view)
	// check: the run checks a pushed data commit (start) against the
	// branch's expectations at code, and makes no data.
	check bool
	// logFrom is where the run's lines start in out (for its log).
	logFrom int

	newData objects.Hash            // the data commit a successful run made
	logs    map[string]objects.Hash // run log commit by status (finish)

	dir  string
	plan *pipeline.Plan

	mu      sync.Mutex
	done    int
	outputs map[pipeline.Table]string // table -> Parquet file made in this run
	writes  []catalog.TableWrite
	nodeLog bytes.Buffer // full node outputs, for the run log
	timing  Timing       // Run and Sandbox are summed under mu

	reused map[int]catalog.Pointer // seed nodes not run: their table is already what they make (reuse.go)

	staging  sync.WaitGroup         // tables being staged (stager)
	staged   []*catalog.StagedTable // under mu
	stageErr error                  // under mu
}

// exec plans and runs; plErr is pipeline.Load's error.
func (r *run) exec(ctx context.Context, pl *pipeline.Pipeline, plErr error, res *Result) {
	began := r.began
	r.logFrom = r.out.mark()
	fail := func(node, reason string) {
		r.out.linef("weir: %s failed: %s", node, reason)
		r.reportTiming()
		// A client that went away still gets its run kept.
		r.keep(context.WithoutCancel(ctx), res, "failed")
		what := ""
		if r.check {
			what = "data push refused: "
		}
		res.Refused[r.cmd.Name] = fmt.Sprintf("weir: %s%s failed: %s; run %s kept", what, node, clipLine(reason, 200), r.id)
		r.log.Info("run failed", "node", node, "reason", reason, "ms", time.Since(began).Milliseconds())
	}
	if plErr != nil {
		r.refusePlan(ctx, res, plErr)
		return
	}
	existing := map[pipeline.Table]bool{}
	var tabs map[catalog.TableName]catalog.Pointer
	if !r.start.IsZero() {
		var err error
		tabs, err = r.tables.Tables(ctx, r.push.Repo, r.start)
		if err != nil {
			res.Refused[r.cmd.Name] = "weir: read data of " + r.branch + ": " + clipLine(err.Error(), 200)
			return
		}
		for t := range tabs {
			existing[pipeline.Table(t.String())] = true
		}
	}
	if r.check {
		pl = pl.Expectations()
	}
	plan, err := pipeline.Build(ctx, pl, pipeline.Env{Branch: r.branch, Existing: existing, Runtimes: r.h.runtimes, SQL: r.h.cfg.SQL})
	if err != nil {
		r.refusePlan(ctx, res, err)
		return
	}
	r.plan = plan
	r.timing.Plan = time.Since(began)
	exp := "expectations"
	if plan.Expectations() == 1 {
		exp = "expectation"
	}
	mod := "models"
	if plan.Models() == 1 {
		mod = "model"
	}
	if r.opts.dryRun {
		r.out.linef("weir: dry run on %s at %s (%d %s, %d %s)", r.branch, short(r.code), plan.Models(), mod, plan.Expectations(), exp)
		for i, n := range plan.Nodes {
			var ins []string
			for _, t := range n.Inputs {
				ins = append(ins, string(t))
			}
			if len(ins) == 0 {
				ins = []string{"-"}
			}
			r.out.linef("weir: [%d/%d] %-20s %-7s %s  <- %s", i+1, len(plan.Nodes), n.Name, n.Kind, n.File, strings.Join(ins, ", "))
		}
		res.Refused[r.cmd.Name] = "weir: dry run, nothing changed"
		return
	}
	if r.check {
		r.out.linef("weir: check %s of data %s against the %s at %s (%d %s)", r.id, short(r.start), exp, short(r.code), plan.Expectations(), exp)
	} else {
		r.out.linef("weir: run %s on %s at %s (%d %s, %d %s)", r.id, r.branch, short(r.code), plan.Models(), mod, plan.Expectations(), exp)
	}
	r.log.Info("run started", "nodes", len(plan.Nodes), "start_data", r.start.String())

	r.dir, err = os.MkdirTemp(r.h.cfg.WorkDir, string(r.id)+"-")
	if err != nil {
		fail("run", "cannot stage: "+err.Error())
		return
	}
	defer func(dir string) {
		r.staging.Wait() // staged tables hard-link from dir
		go os.RemoveAll(dir)
	}(r.dir)
	r.outputs = map[pipeline.Table]string{}
	if !r.opts.rerun && !r.check {
		r.reused = r.reusableSeeds(tabs)
	}

	nodesBegan := time.Now()
	ferr := r.runNodes(ctx)
	r.timing.Nodes = time.Since(nodesBegan)
	if ferr != nil {
		var nf *NodeFailedError
		if errors.As(ferr, &nf) {
			fail(nf.Node, nf.Reason)
		} else {
			fail("run", ferr.Error())
		}
		return
	}
	if r.check {
		r.reportTiming()
		r.out.linef("weir: data %s passed the %s at %s", short(r.start), exp, short(r.code))
		r.log.Info("data check ok", "data", r.start.String(), "ms", time.Since(began).Milliseconds())
		return
	}
	commitBegan := time.Now()
	newData, err := r.writeData(ctx, r.commitInfo())
	if err != nil {
		fail("run", "write data commit: "+err.Error())
		return
	}
	// Its pointers are published now, before the ref update that may put
	// them on the branch (catalog/publish.go: a mark whose update then
	// loses a race stays; the data passed every check).
	if err := r.h.cfg.Catalog.Publish(ctx, r.push.Repo, r.start, newData); err != nil {
		fail("run", "publish data commit: "+err.Error())
		return
	}
	r.timing.Commit = time.Since(commitBegan)
	r.reportTiming()
	// Whether the branch advances is known only once gitserver has
	// written the push: finish and report say it then.
	r.newData = newData
	r.log.Info("run ok", "data", newData.String(), "ms", time.Since(began).Milliseconds(),
		"plan_ms", ms(r.timing.Plan), "nodes_ms", ms(r.timing.Nodes), "run_ms", ms(r.timing.Run),
		"sandbox_ms", ms(r.timing.Sandbox), "commit_ms", ms(r.timing.Commit))
}

// reportTiming writes the timing line to the run log, and to the client
// when the push asked for it (-o timing).
func (r *run) reportTiming() {
	r.mu.Lock()
	t := r.timing
	r.mu.Unlock()
	line := "weir: timing: " + t.String()
	if r.opts.timing {
		r.out.linef("%s", line)
		return
	}
	r.mu.Lock()
	fmt.Fprintf(&r.nodeLog, "%s\n", line)
	r.mu.Unlock()
}

// refusePlan reports a pipeline that cannot run and keeps its code and log.
func (r *run) refusePlan(ctx context.Context, res *Result, err error) {
	var pe *pipeline.Error
	if errors.As(err, &pe) {
		r.out.linef("weir: pipeline at %s refused before running anything:", short(r.code))
		for _, p := range pe.Problems {
			r.out.linef("weir:   %s", p.String())
		}
	} else {
		r.out.linef("weir: pipeline at %s refused: %s", short(r.code), clipLine(err.Error(), 300))
	}
	if r.opts.dryRun {
		res.Refused[r.cmd.Name] = "weir: dry run: plan refused: " + clipLine(err.Error(), 200)
		return
	}
	r.keep(ctx, res, "plan refused")
	res.Refused[r.cmd.Name] = "weir: plan refused: " + clipLine(err.Error(), 200) + "; run " + string(r.id) + " kept"
	r.log.Info("plan refused", "err", err)
}

// keep adds refs/runs/<id>/{code,data,log} for a failed run (status says
// how it ended, for the log). A failed check keeps the data it checked.
func (r *run) keep(ctx context.Context, res *Result, status string) {
	res.Updates = append(res.Updates, refs.Update{Name: RunRef(r.id, "code"), New: r.code})
	if r.check {
		res.Updates = append(res.Updates, refs.Update{Name: RunRef(r.id, "data"), New: r.start})
	} else if ws := r.sortedWrites(); len(ws) > 0 {
		info := r.commitInfo()
		info.Message = fmt.Sprintf("weir: partial data of failed run %s on %s", r.id, r.branch)
		if h, err := r.writeData(ctx, info); err == nil {
			res.Updates = append(res.Updates, refs.Update{Name: RunRef(r.id, "data"), New: h})
			r.out.linef("weir: partial data of the run: %s (%d tables)", short(h), len(ws))
		} else {
			r.log.Warn("partial data not kept", "err", err)
		}
	}
	r.out.linef("weir: run %s kept: git fetch origin 'refs/runs/%s/*:refs/runs/%s/*'", r.id, r.id, r.id)
	if h, err := r.writeLog(status); err == nil {
		res.Updates = append(res.Updates, refs.Update{Name: RunRef(r.id, "log"), New: h})
	} else {
		r.log.Warn("run log not kept", "err", err)
	}
}

// finish returns the updates of a run that made data, for one outcome of
// the push (Result.Finish): why is "" when its code ref lands. Then the
// data ref moves with it; otherwise the run is kept under refs/runs/<id>/, its log saying why the
// branch did not move.
func (r *run) finish(why string) []refs.Update {
	if why == "" {
		ups := []refs.Update{{Name: DataRef(r.branch), Old: r.dataOld, New: r.newData}}
		if h, err := r.logCommit("ok"); err == nil {
			ups = append(ups, refs.Update{Name: RunRef(r.id, "log"), New: h})
		}
		return ups
	}
	ups := []refs.Update{{Name: RunRef(r.id, "code"), New: r.code}, {Name: RunRef(r.id, "data"), New: r.newData}}
	if h, err := r.logCommit("not published: " + why); err == nil {
		ups = append(ups, refs.Update{Name: RunRef(r.id, "log"), New: h})
	}
	return ups
}

// logCommit returns the run's log commit with status, written once.
func (r *run) logCommit(status string) (objects.Hash, error) {
	if h, ok := r.logs[status]; ok {
		return h, nil
	}
	h, err := r.writeLog(status)
	if err != nil {
		r.log.Warn("run log not kept", "err", err)
		return objects.ZeroHash, err
	}
	if r.logs == nil {
		r.logs = map[string]objects.Hash{}
	}
	r.logs[status] = h
	return h, nil
}

// report tells the client what became of a run that made data, once the
// push is written (Result.Report).
func (r *run) report(why string) {
	if why == "" {
		r.out.linef("weir: %s advanced: code %s, data %s", r.branch, short(r.code), short(r.newData))
		return
	}
	r.out.linef("weir: %s did not advance: %s", r.branch, clipLine(why, 200))
	r.out.linef("weir: run %s kept: git fetch origin 'refs/runs/%s/*:refs/runs/%s/*'", r.id, r.id, r.id)
}

// stager is a Catalog that can snapshot a table as soon as the node that
// made it has finished, and tie the snapshots into one data commit at the
// end (*catalog.Catalog): the Iceberg work of a table then overlaps the
// nodes that run after its node, and only the commit itself is left when
// the last node finishes.
type stager interface {
	StageTable(ctx context.Context, repo objects.RepoName, base objects.Hash, w catalog.TableWrite, info catalog.CommitInfo) (*catalog.StagedTable, error)
	CommitStaged(ctx context.Context, repo objects.RepoName, base objects.Hash, staged []*catalog.StagedTable, info catalog.CommitInfo) (objects.Hash, error)
}

// stageTables starts snapshotting ws in the background, with a Catalog
// that can (stager); writeData waits for them.
func (r *run) stageTables(ctx context.Context, ws []catalog.TableWrite) {
	s, ok := r.h.cfg.Catalog.(stager)
	if !ok {
		return
	}
	for _, w := range ws {
		r.staging.Add(1)
		go func() {
			defer r.staging.Done()
			st, err := s.StageTable(ctx, r.push.Repo, r.start, w, r.commitInfo())
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.stageErr = errors.Join(r.stageErr, err)
				return
			}
			r.staged = append(r.staged, st)
		}()
	}
}

// writeData makes the data commit of every output written so far on top
// of the start data: from the tables staged while the nodes ran when all
// of them were, else with WriteDataCommit.
func (r *run) writeData(ctx context.Context, info catalog.CommitInfo) (objects.Hash, error) {
	r.staging.Wait()
	ws := r.sortedWrites()
	r.mu.Lock()
	staged, stageErr := append([]*catalog.StagedTable(nil), r.staged...), r.stageErr
	r.mu.Unlock()
	if s, ok := r.h.cfg.Catalog.(stager); ok && len(staged) == len(ws) {
		return s.CommitStaged(ctx, r.push.Repo, r.start, staged, info)
	}
	if stageErr != nil {
		return objects.ZeroHash, stageErr
	}
	return r.h.cfg.Catalog.WriteDataCommit(ctx, r.push.Repo, r.start, ws, info)
}

func (r *run) commitInfo() catalog.CommitInfo {
	return catalog.CommitInfo{
		RunID:      string(r.id),
		CodeCommit: r.code,
		Message:    fmt.Sprintf("weir: run %s on %s at %s", r.id, r.branch, short(r.code)),
	}
}

func (r *run) sortedWrites() []catalog.TableWrite {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := append([]catalog.TableWrite(nil), r.writes...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Table.String() < ws[j].Table.String() })
	return ws
}

// preparer is a Runner that can build a node's sandbox ahead of time
// (*exec.Sandboxes): the hook prepares the next nodes' sandboxes while
// earlier nodes run.
type preparer interface {
	Prepare(ctx context.Context, spec exec.Spec) (*exec.Prepared, error)
}

// staged is one node made ready to run: its folders, source and the inputs
// that exist before the run are in place, its spec is built and, with a
// preparer, its sandbox is built and parked.
type staged struct {
	done     chan struct{} // closed when staging has finished
	spec     exec.Spec
	late     []pipeline.Table // inputs made in this run: linked when the node starts
	prepared *exec.Prepared   // nil: run with Runner.Run
	err      error            // *NodeFailedError
}

// runNodes runs the plan: a node starts when every node it reads from has
// succeeded, at most Parallel at once; the first failure cancels the rest.
//
// Nodes are staged (and their sandboxes prepared) ahead, in plan order,
// once every node they read from has started in a built sandbox, up to
// Parallel of them beyond those running: while a node runs, the next one's
// sandbox is built (and its runner started, gated), so a chain of nodes
// pays sandbox setup once, not once per node.
func (r *run) runNodes(pushCtx context.Context) error {
	ctx, cancel := context.WithCancel(pushCtx)
	defer cancel()
	nodes := r.plan.Nodes
	stages := make([]*staged, len(nodes))
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
	doneCh := make(chan int, len(nodes))
	errCh := make(chan error, len(nodes))
	started := make([]bool, len(nodes))
	finished := make([]bool, len(nodes))
	setCh := make(chan int, len(nodes))
	setUp := make([]bool, len(nodes)) // staged, and its sandbox built
	ahead := 0                        // staged, not started
	stage := func(i int) {
		st := r.stage(ctx, i)
		stages[i] = st
		go func() {
			<-st.done
			if st.prepared != nil {
				<-st.prepared.Ready()
			}
			setCh <- i
		}()
	}
	// stageAhead stages, in plan order, the nodes every dependency of which
	// has started with its sandbox built (they may be next), up to Parallel
	// of them. Waiting for the sandboxes leaves the CPU to the setup of the
	// nodes about to run, which is on the critical path; the next setup
	// then overlaps their run.
	stageAhead := func() {
		for i, n := range nodes {
			if ahead >= r.h.cfg.Parallel {
				return
			}
			if stages[i] != nil {
				continue
			}
			next := true
			for _, d := range n.Deps() {
				if !started[d] || !setUp[d] {
					next = false
					break
				}
			}
			if next {
				stage(i)
				ahead++
			}
		}
	}
	// Reused seeds are done before anything runs; their table is read
	// from the start data like any table the run does not make.
	for i, p := range r.reused {
		started[i], setUp[i], finished[i] = true, true, true
		r.mu.Lock()
		r.done++
		k := r.done
		r.mu.Unlock()
		r.out.linef("weir: [%d/%d] %-19s %-8s %9s rows  unchanged since %s", k, len(nodes), nodes[i].Name, nodes[i].Kind, commaInt(p.Rows), p.Run)
	}
	running := 0
	var firstErr error
	for {
		if firstErr == nil {
			stageAhead()
			for i, n := range nodes {
				if started[i] || running >= r.h.cfg.Parallel {
					continue
				}
				ready := true
				for _, d := range n.Deps() {
					if !finished[d] {
						ready = false
						break
					}
				}
				if !ready {
					continue
				}
				started[i] = true
				running++
				if stages[i] == nil {
					stage(i)
				} else {
					ahead--
				}
				go func(i int, st *staged) {
					if err := r.runNode(ctx, pushCtx, i, st); err != nil {
						errCh <- err
						return
					}
					doneCh <- i
				}(i, stages[i])
			}
			stageAhead()
		}
		if running == 0 {
			break
		}
		select {
		case i := <-setCh:
			setUp[i] = true
		case i := <-doneCh:
			finished[i] = true
			running--
		case err := <-errCh:
			running--
			if firstErr == nil {
				firstErr = err
				cancel()
			}
		}
	}
	if firstErr != nil {
		return firstErr
	}
	for i := range nodes {
		if !finished[i] {
			return fmt.Errorf("node %s never ran", nodes[i].Name)
		}
	}
	return nil
}

// stage starts making node i ready to run, in the background: folders,
// source, the inputs that exist before the run (hard links), the spec,
// and with a preparer the sandbox. staged.done says when it has finished.
func (r *run) stage(ctx context.Context, i int) *staged {
	st := &staged{done: make(chan struct{})}
	go func() {
		defer close(st.done)
		st.err = r.stageNode(ctx, i, st)
	}()
	return st
}

func (r *run) stageNode(ctx context.Context, i int, st *staged) error {
	n := r.plan.Nodes[i]
	failed := func(format string, args ...any) error {
		return &NodeFailedError{Node: n.Name, Reason: fmt.Sprintf(format, args...)}
	}
	nd := filepath.Join(r.dir, strconv.Itoa(i))
	code := filepath.Join(nd, "code")
	outDir := filepath.Join(nd, "out")
	for _, d := range []string{code, outDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return failed("cannot stage: %v", err)
		}
	}
	src := path.Base(n.File)
	if err := os.WriteFile(filepath.Join(code, src), n.Source, 0o644); err != nil {
		return failed("cannot stage: %v", err)
	}
	inputs := map[string]string{contract.CodeInput: code}
	var early []pipeline.Table // on the branch already: linked once the sandbox is on its way
	for _, t := range n.Inputs {
		dir := filepath.Join(nd, "in", string(t))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return failed("stage input %s: %v", t, err)
		}
		inputs[string(t)] = dir
		if r.plan.Producer(t) != nil {
			st.late = append(st.late, t) // made in this run: linked at start
		} else {
			early = append(early, t)
		}
	}
	ca := contract.Args{
		Kind:      string(n.Kind),
		Source:    exec.InputsDir + "/" + contract.CodeInput + "/" + src,
		Namespace: r.plan.Config.Namespace,
		// The runner's result comes back on the sandbox's report pipe,
		// which only the runner holds: never from what the node prints.
		ResultFD: exec.ReportFD,
	}
	for _, t := range n.Inputs {
		ca.Inputs = append(ca.Inputs, string(t))
	}
	for _, t := range n.Outputs {
		ca.Outputs = append(ca.Outputs, string(t))
	}
	lim, max := n.Limits, r.h.cfg.MaxLimits
	if lim.Wall <= 0 || lim.Wall > max.Wall {
		lim.Wall = max.Wall
	}
	if lim.Memory <= 0 || lim.Memory > max.Memory {
		lim.Memory = max.Memory
	}
	if lim.CPU <= 0 || lim.CPU > max.CPU {
		lim.CPU = max.CPU
	}
	// DuckDB in the node uses the cores the sandbox may use, and keeps its
	// buffers to half the sandbox's memory: the rest is for its /tmp and
	// /out files (tmpfs, counted in the same limit) and everything else.
	ca.Threads, ca.MemoryLimit = int(math.Ceil(lim.CPU)), lim.Memory/2
	p, canPrepare := r.h.cfg.Runner.(preparer)
	// A node that waits for earlier nodes of the run starts its runner
	// now: process and DuckDB start-up happen while those nodes run, and
	// the runner waits for "go" (sent when its inputs are linked) before
	// reading any input or running any of the node's code.
	gate := canPrepare && len(st.late) > 0
	ca.Gate = gate
	args := append([]string{exec.RunnerPath}, ca.Argv()...)
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}
	names := make([]string, 0, len(r.opts.params))
	for k := range r.opts.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env = append(env, contract.ParamEnvPrefix+k+"="+r.opts.params[k])
	}
	st.spec = exec.Spec{
		ID:      fmt.Sprintf("%s-%d", r.id, i),
		Runtime: n.Runtime,
		Args:    args,
		Env:     env,
		Inputs:  inputs,
		Output:  outDir,
		Weir:    true,
		Limits:  lim,
		Gate:    gate,
		Report:  true,
		// The next node need not wait for this one's sandbox to be gone.
		AsyncTeardown: true,
	}
	if canPrepare {
		prepared, err := p.Prepare(ctx, st.spec)
		if err != nil {
			return failed("sandbox: %v", err)
		}
		st.prepared = prepared
	}
	// The sandbox builds meanwhile; its input dirs are bound already and
	// show these files, which are in place before the node runs.
	for _, t := range early {
		files, err := r.inputFiles(ctx, t)
		if err != nil {
			return failed("input %s: %v", t, err)
		}
		if err := linkFiles(inputs[string(t)], files); err != nil {
			return failed("stage input %s: %v", t, err)
		}
	}
	return nil
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
	for _, t := range st.late {
		files, err := r.inputFiles(ctx, t)
		if err != nil {
			return &NodeFailedError{Node: n.Name, Reason: fmt.Sprintf("input %s: %v", t, err)}
		}
		if err := linkFiles(st.spec.Inputs[string(t)], files); err != nil {
			return &NodeFailedError{Node: n.Name, Reason: fmt.Sprintf("stage input %s: %v", t, err)}
		}
	}
	began := time.Now()
	var (
		result *exec.Result
		err    error
	)
	if st.prepared != nil {
		result, err = st.prepared.Run(ctx)
	} else {
		result, err = r.h.cfg.Runner.Run(ctx, st.spec)
	}
	stop()
	if err != nil {
		return &NodeFailedError{Node: n.Name, Reason: "sandbox: " + err.Error()}
	}
	r.mu.Lock()
	fmt.Fprintf(&r.nodeLog, "== %s (%s) %s in %s\n%s\n", n.Name, n.File, result.Reason, result.Wall.Round(time.Millisecond), Neutralise(string(result.Output)))
	r.timing.Run += result.Wall
	r.timing.Sandbox += time.Since(spanBegan) - result.Wall
	r.mu.Unlock()
	rep, repErr := nodeResult(result)
	if result.Reason != exec.ReasonOK {
		if result.Reason == exec.ReasonAborted && ctx.Err() != nil {
			if pushCtx.Err() != nil {
				return &NodeFailedError{Node: n.Name, Reason: "stopped: the client disconnected"}
			}
			return &NodeFailedError{Node: n.Name, Reason: "stopped: another node failed"}
		}
		tail := lastLines(result.Output, 8)
		for _, l := range tail {
			r.out.linef("weir:   | %s", clipLine(l, 200))
		}
		if repErr != nil {
			rep = nil
		}
		return &NodeFailedError{Node: n.Name, Reason: failReason(n, result, rep, tail)}
	}
	switch {
	case repErr != nil:
		r.log.Warn("node exited 0 without a valid result", "node", n.Name, "err", repErr)
		return &NodeFailedError{Node: n.Name, Reason: "its runner reported no valid result (" + repErr.Error() + "); weir-node must come from the same build as weir"}
	case rep.Status != contract.StatusOK:
		return &NodeFailedError{Node: n.Name, Reason: "its runner exited 0 but reported " + string(rep.Status)}
	}
	// Row counts are the server's own: from the footers of the files it
	// is about to snapshot, never from what the node printed.
	var total int64
	for _, t := range n.Outputs {
		f := filepath.Join(st.spec.Output, string(t)+".parquet")
		if fi, err := os.Lstat(f); err != nil || !fi.Mode().IsRegular() {
			return &NodeFailedError{Node: n.Name, Reason: "wrote no output for " + string(t)}
		}
		rows, err := catalog.ParquetRows(f)
		if err != nil {
			// The error names the staging path on this machine: the log
			// gets it, the pusher does not.
			r.log.Warn("node output is not a readable Parquet file", "node", n.Name, "table", t, "err", err)
			return &NodeFailedError{Node: n.Name, Reason: "its output " + string(t) + " is not a readable Parquet file"}
		}
		total += rows
	}
	took := time.Since(began).Milliseconds()
	var ws []catalog.TableWrite
	r.mu.Lock()
	for _, t := range n.Outputs {
		f := filepath.Join(st.spec.Output, string(t)+".parquet")
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
	return nil
}

// inputFiles are the Parquet files of table t as the node must see it:
// made in this run (replace: the new file; append: the old files and the
// new one), else the table's files at the start data.
func (r *run) inputFiles(ctx context.Context, t pipeline.Table) ([]string, error) {
	tn := catalog.TableName{Namespace: t.Namespace(), Name: t.Name()}
	r.mu.Lock()
	made, ok := r.outputs[t]
	r.mu.Unlock()
	if ok {
		if p := r.plan.Producer(t); p != nil && p.Materialize == pipeline.Append && !r.start.IsZero() {
			if old, err := r.tables.ReadTableFiles(ctx, r.push.Repo, r.start, tn); err == nil {
				return append(old, made), nil
			}
		}
		return []string{made}, nil
	}
	return r.tables.ReadTableFiles(ctx, r.push.Repo, r.start, tn)
}

// linkFiles hard-links (or copies) files into dir as part-N.parquet.
func linkFiles(dir string, files []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, f := range files {
		dst := filepath.Join(dir, fmt.Sprintf("part-%05d.parquet", i))
		if err := os.Link(f, dst); err == nil {
			continue
		}
		if err := copyFile(f, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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

// lastLines are the last n non-blank lines of a node's output, as they
// are shown to the pusher (after "weir:   | ").
func lastLines(out []byte, n int) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, strings.TrimRight(l, "\r"))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// failReason is the one-line reason a node failed: the sandbox's when it
// stopped the node, else the runner's result (rep, nil without a valid
// one), with a Python traceback's exception and line preferred to the
// runner's summary of it.
func failReason(n *pipeline.Node, res *exec.Result, rep *contract.Result, tail []string) string {
	if res.Reason != exec.ReasonExit {
		if res.Message != "" {
			return res.Message
		}
		return string(res.Reason)
	}
	if rep != nil && rep.Status == contract.StatusExpectationFailed {
		return fmt.Sprintf("%d failing rows", rep.FailingRows)
	}
	if n.Kind == pipeline.KindPython {
		staged := exec.InputsDir + "/" + contract.CodeInput + "/" + path.Base(n.File)
		if why := pythonFailure(res.Output, staged, n.File); why != "" {
			return why
		}
	}
	if rep != nil && rep.Status == contract.StatusFailed {
		return rep.Message
	}
	if len(tail) > 0 {
		return tail[len(tail)-1]
	}
	return fmt.Sprintf("exit status %d", res.ExitCode)
}

// pyFrame matches a traceback frame line: File "<path>", line <n>, in <f>.
var pyFrame = regexp.MustCompile(`^\s*File "([^"]+)", line (\d+)`)

// pyException matches the last line of a traceback: "ZeroDivisionError:
// division by zero", "decimal.DivisionByZero: [...]", "KeyError: 'x'".
var pyException = regexp.MustCompile(`^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|[A-Z]\w*))(?::|$)`)

// pythonFailure turns a Python traceback in out into "<exception>: <message>
// at <file>:<line>", the line being the script's own deepest frame (staged is
// the script's path inside the sandbox, file its path in the repo). It
// returns "" when out holds no traceback.
func pythonFailure(out []byte, staged, file string) string {
	lines := strings.Split(string(out), "\n")
	start := -1
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(strings.TrimLeft(lines[i], " |"), "Traceback (most recent call last)") {
			start = i
			break
		}
	}
	if start < 0 {
		return ""
	}
	line, exc := "", ""
	for _, l := range lines[start+1:] {
		l = strings.TrimLeft(l, "|")
		if m := pyFrame.FindStringSubmatch(l); m != nil {
			if m[1] == staged {
				line = m[2]
			}
			continue
		}
		if exc == "" && !strings.HasPrefix(l, " ") && pyException.MatchString(l) {
			exc = clipLine(strings.TrimSpace(l), 160)
		}
	}
	if exc == "" {
		return ""
	}
	if line == "" {
		return exc + " in " + file
	}
	return exc + " at " + file + ":" + line
}

// writeLog stores the run's log as a commit (tree: "log") in the push's
// quarantine, so it is committed with the push and fetchable under
// refs/runs/<id>/log. status ("ok", "failed", ...) is in its subject.
func (r *run) writeLog(status string) (objects.Hash, error) {
	q := r.push.Quarantine
	r.mu.Lock()
	text := r.out.textFrom(r.logFrom) + "\n" + r.nodeLog.String()
	r.mu.Unlock()
	blob, err := q.Put(plumbing.BlobObject, []byte(text))
	if err != nil {
		return objects.ZeroHash, err
	}
	tree := &object.Tree{Entries: []object.TreeEntry{{Name: "log", Mode: filemode.Regular, Hash: blob}}}
	tb, err := encode(tree)
	if err != nil {
		return objects.ZeroHash, err
	}
	th, err := q.Put(plumbing.TreeObject, tb)
	if err != nil {
		return objects.ZeroHash, err
	}
	now := time.Now()
	sig := object.Signature{Name: "weir", Email: "weir@localhost", When: now}
	c := &object.Commit{
		Author: sig, Committer: sig, TreeHash: th,
		Message: fmt.Sprintf("weir: run %s on %s %s\n\nRun: %s\nCode-Commit: %s\nPusher: %s\n", r.id, r.branch, clipLine(status, 200), r.id, r.code, r.push.Pusher),
	}
	cb, err := encode(c)
	if err != nil {
		return objects.ZeroHash, err
	}
	return q.Put(plumbing.CommitObject, cb)
}

type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func encode(e encoder) ([]byte, error) {
	o := &plumbing.MemoryObject{}
	if err := e.Encode(o); err != nil {
		return nil, err
	}
	rd, err := o.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
