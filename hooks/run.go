package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/hooks/sched"
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
	h    *Pipeline
	push *Push
	cmd  Command
	// key is the command the client sent, by which gitserver knows the
	// outcome: cmd.Name, or the merge request (refs/merge/<b>) that cmd,
	// the merge commit on refs/heads/<b>, lands for.
	key     refs.Name
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
	// ticket is the push's place in the run queue (admit.go); each node
	// takes a node slot of it while it runs. nil: no scheduler.
	ticket *sched.Ticket

	newData  objects.Hash // the data commit a successful run made
	keptData objects.Hash // the partial data commit keep wrote for a failed run
	// landed is what finish last put on the branch for a landing outcome:
	// newData, or newData published onto landedOn, the branch's data then
	// (onto). onto caches its answer for each head it saw.
	landed, landedOn objects.Hash
	ontoCache        map[objects.Hash]ontoResult
	logs             map[string]objects.Hash // run log commit by status (finish)

	dir  string
	plan *pipeline.Plan

	mu      sync.Mutex
	done    int
	outputs map[pipeline.Table]string // table -> Parquet file made in this run
	writes  []catalog.TableWrite
	nodeLog bytes.Buffer // full node outputs, for the run log
	// nodeTimes: each node that ran, in the order they ended (the log's Node: lines)
	nodeTimes []NodeTime
	timing    Timing // Run and Sandbox are summed under mu

	reused map[int]catalog.Pointer // seed nodes not run: their table is already what they make (reuse.go)
	lib    libStage                // lib/ for Python models, staged once (pylib.go)

	staging  sync.WaitGroup         // tables being staged (stager)
	staged   []*catalog.StagedTable // under mu
	stageErr error                  // under mu
}

// exec plans and runs; plErr is pipeline.Load's error.
func (r *run) exec(ctx context.Context, pl *pipeline.Pipeline, plErr error, res *Result) {
	r.logFrom = r.out.mark()
	if plErr != nil {
		r.refusePlan(ctx, res, plErr)
		return
	}
	tabs, ok := r.buildPlan(ctx, pl, res)
	if !ok {
		return
	}
	if r.opts.dryRun {
		r.showPlan(res)
		return
	}
	r.announce()
	var err error
	r.dir, err = os.MkdirTemp(r.h.cfg.WorkDir, string(r.id)+"-")
	if err != nil {
		r.fail(ctx, res, "run", "cannot stage: "+err.Error())
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
			r.fail(ctx, res, nf.Node, nf.Reason)
		} else {
			r.fail(ctx, res, "run", ferr.Error())
		}
		return
	}
	if r.check {
		r.reportTiming()
		r.out.linef("weir: data %s passed the %s at %s", short(r.start), r.expectations(), short(r.code))
		r.log.Info("data check ok", "data", r.start.String(), "ms", time.Since(r.began).Milliseconds())
		return
	}
	r.commitData(ctx, res)
}

// buildPlan plans pl against the tables of the start data, which it
// returns; false when the plan was refused (res says why).
func (r *run) buildPlan(ctx context.Context, pl *pipeline.Pipeline, res *Result) (map[catalog.TableName]catalog.Pointer, bool) {
	existing := map[pipeline.Table]bool{}
	var tabs map[catalog.TableName]catalog.Pointer
	if !r.start.IsZero() {
		var err error
		tabs, err = r.tables.Tables(ctx, r.push.Repo, r.start)
		if err != nil {
			res.Refused[r.cmd.Name] = "weir: read data of " + r.branch + ": " + clipLine(err.Error(), 200)
			return nil, false
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
		return nil, false
	}
	r.plan = plan
	r.timing.Plan = time.Since(r.began)
	return tabs, true
}

// expectations is "expectation" or "expectations", as the plan has.
func (r *run) expectations() string {
	if r.plan.Expectations() == 1 {
		return "expectation"
	}
	return "expectations"
}

// counts is "<n> models, <m> expectations" for the plan.
func (r *run) counts() string {
	mod := "models"
	if r.plan.Models() == 1 {
		mod = "model"
	}
	return fmt.Sprintf("%d %s, %d %s", r.plan.Models(), mod, r.plan.Expectations(), r.expectations())
}

// showPlan prints the plan of a dry run (-o dry-run) and refuses the
// command: nothing runs, nothing changes.
func (r *run) showPlan(res *Result) {
	r.out.linef("weir: dry run on %s at %s (%s)", r.branch, short(r.code), r.counts())
	for i, n := range r.plan.Nodes {
		var ins []string
		for _, t := range n.Inputs {
			ins = append(ins, string(t))
		}
		if len(ins) == 0 {
			ins = []string{"-"}
		}
		r.out.linef("weir: [%d/%d] %-20s %-7s %s  <- %s", i+1, len(r.plan.Nodes), n.Name, n.Kind, n.File, strings.Join(ins, ", "))
	}
	res.Refused[r.cmd.Name] = "weir: dry run, nothing changed"
}

// announce tells the pusher (and the log) what is about to run.
func (r *run) announce() {
	if r.check {
		r.out.linef("weir: check %s of data %s against the %s at %s (%d %s)", r.id, short(r.start), r.expectations(), short(r.code), r.plan.Expectations(), r.expectations())
	} else {
		r.out.linef("weir: run %s on %s at %s (%s)", r.id, r.branch, short(r.code), r.counts())
	}
	r.log.Info("run started", "nodes", len(r.plan.Nodes), "start_data", r.start.String())
}

// fail reports that node failed for reason, keeps the run and refuses
// the command.
func (r *run) fail(ctx context.Context, res *Result, node, reason string) {
	r.out.linef("weir: %s failed: %s", node, reason)
	r.reportTiming()
	// A client that went away still gets its run kept.
	r.keep(context.WithoutCancel(ctx), res, "failed")
	what := ""
	if r.check {
		what = "data push refused: "
	}
	res.Refused[r.cmd.Name] = fmt.Sprintf("weir: %s%s failed: %s; run %s kept", what, node, clipLine(reason, 200), r.id)
	r.log.Info("run failed", "node", node, "reason", reason, "ms", time.Since(r.began).Milliseconds())
}

// commitData writes and publishes the data commit of a run every node of
// which passed; finish and report then say whether the branch advanced.
func (r *run) commitData(ctx context.Context, res *Result) {
	commitBegan := time.Now()
	newData, err := r.writeData(ctx, r.commitInfo())
	if err != nil {
		r.fail(ctx, res, "run", "write data commit: "+err.Error())
		return
	}
	// Its pointers are published now, before the ref update that may put
	// them on the branch (catalog/publish.go: a mark whose update then
	// loses a race stays; the data passed every check).
	if err := r.h.cfg.Catalog.Publish(ctx, r.push.Repo, r.start, newData); err != nil {
		r.fail(ctx, res, "run", "publish data commit: "+err.Error())
		return
	}
	r.timing.Commit = time.Since(commitBegan)
	r.reportTiming()
	// Whether the branch advances is known only once gitserver has
	// written the push: finish and report say it then.
	r.newData = newData
	r.log.Info("run ok", "data", newData.String(), "ms", time.Since(r.began).Milliseconds(),
		"plan_ms", ms(r.timing.Plan), "nodes_ms", ms(r.timing.Nodes), "run_ms", ms(r.timing.Run),
		"sandbox_ms", ms(r.timing.Sandbox), "commit_ms", ms(r.timing.Commit))
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
			r.keptData = h
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
// data ref moves with it: to the run's data commit, or, when the branch's
// data moved during the run, to that commit published onto the new head
// (onto); if it cannot be, finish refuses the command instead (refuse).
// Otherwise the run is kept under refs/runs/<id>/, its log saying why the
// branch did not move.
func (r *run) finish(ctx context.Context, why string) (ups []refs.Update, refuse string) {
	if why == "" {
		data, old, refuse := r.onto(ctx)
		if refuse != "" {
			return nil, refuse
		}
		r.landed, r.landedOn = data, old
		ups := []refs.Update{{Name: DataRef(r.branch), Old: old, New: data}}
		status := "ok"
		if data != r.newData {
			status = "ok, published onto " + short(old) + " (the branch's data moved during the run)"
		}
		if h, err := r.logCommit(status); err == nil {
			ups = append(ups, refs.Update{Name: RunRef(r.id, "log"), New: h})
		}
		return ups, ""
	}
	ups = []refs.Update{{Name: RunRef(r.id, "code"), New: r.code}, {Name: RunRef(r.id, "data"), New: r.newData}}
	if h, err := r.logCommit("not published: " + why); err == nil {
		ups = append(ups, refs.Update{Name: RunRef(r.id, "log"), New: h})
	}
	return ups, ""
}

// report tells the client what became of a run that made data, once the
// push is written (Result.Report).
func (r *run) report(why string) {
	if why == "" {
		if r.landed.IsZero() { // Finish was not asked for this outcome
			r.landed = r.newData
		}
		if r.landed != r.newData {
			r.out.linef("weir: %s's data moved during the run (to %s); the run's outputs were published on top of it", r.branch, short(r.landedOn))
		}
		r.out.linef("weir: %s advanced: code %s, data %s", r.branch, short(r.code), short(r.landed))
		return
	}
	r.out.linef("weir: %s did not advance: %s", r.branch, clipLine(why, 200))
	r.out.linef("weir: run %s kept: git fetch origin 'refs/runs/%s/*:refs/runs/%s/*'", r.id, r.id, r.id)
}
