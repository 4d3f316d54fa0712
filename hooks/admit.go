package hooks

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Admission: with PipelineConfig.Scheduler set, a push whose commands
// will run nodes asks the server's one run queue (package sched) before
// anything of it runs, once for the whole push:
//
//	PreReceive   options parsed, priority checked against the pusher's cap
//	  │
//	  ├─ admitPlan: the commands that will run nodes (a branch whose new
//	  │  commit has a pipeline, not a new branch at its base's code; a
//	  │  data push whose branch has expectations; a merge request,
//	  │  always: merges into one branch take turns), their branches, the
//	  │  run ids, the estimate of their nodes
//	  ├─ Scheduler.Admit(ctx): "weir: queued, 3 runs ahead" while it waits
//	  │    ErrBusy        every command refused: "weir: server busy: ..."
//	  │    RecheckError   every command refused with its text (the branch
//	  │                   moved while the push waited behind a run of it)
//	  │    ctx ended      every command refused: the client disconnected
//	  ├─ the runs, each node taking a node slot (Ticket.Node) right
//	  │  before its sandbox runs (nodes.go)
//	  └─ Result.Report, after gitserver wrote the refs: Ticket.Done
//	     (succeeded, failed with the first refusal, cancelled)
//
// Nothing is refused or queued when the push runs nothing (plain Git,
// deletions, a new branch at its base's code). A merge request that rides
// a train (train.go) is not admitted itself: its train's leader is.

// OptionPriority is the push option "priority=N": the run's priority in
// the queue, 0 (normal) to sched.MaxPriority, at most what the pusher may
// ask for (PipelineConfig.MaxPriority).
const OptionPriority = "priority="

// admission is one push's place in the scheduler: its ticket once
// admitted, and the run id of each command that will run.
type admission struct {
	ticket *sched.Ticket
	ids    map[refs.Name]RunID
	cmds   []refs.Name // the commands admitted, in push order
	dryRun bool
	// loaded holds the pipelines admitPlan read, by commit (a commit's
	// pipeline never changes), so that the runs do not read them again.
	// Each is handed out once: planning fills in its nodes (inputs), so
	// two runs of one commit (two branches pushed at it) each load their
	// own.
	loaded map[objects.Hash]*pipeline.Pipeline
}

// load returns the pipeline at commit: the one admitPlan read, if not
// handed out yet, else pipeline.Load's answer. Called from PreReceive's
// goroutine only.
func (a *admission) load(p *Push, commit objects.Hash) (*pipeline.Pipeline, error) {
	if a != nil {
		if pl, ok := a.loaded[commit]; ok {
			delete(a.loaded, commit)
			return pl, nil
		}
	}
	return pipeline.Load(p.Quarantine.Storer(), commit)
}

// runID is the id of c's run: the one the scheduler lists it under.
func (a *admission) runID(c refs.Name) RunID {
	if a != nil {
		if id, ok := a.ids[c]; ok {
			return id
		}
	}
	return newRunID()
}

// tick returns the push's ticket; nil without a scheduler.
func (a *admission) tick() *sched.Ticket {
	if a == nil {
		return nil
	}
	return a.ticket
}

// dryRunRefusal is the refusal of every command of a dry run that planned.
const dryRunRefusal = "weir: dry run, nothing changed"

// done ends the ticket with the push's outcome (Result.Report): refused
// holds the reason of every command that did not land. A push whose
// client went away is Cancelled, one whose admitted commands all landed
// Succeeded, else Failed with the first refusal as the note.
func (a *admission) done(ctx context.Context, refused map[refs.Name]string) {
	if a == nil || a.ticket == nil {
		return
	}
	first := ""
	for _, c := range a.cmds {
		if why, ok := refused[c]; ok && why != dryRunRefusal {
			if why == "" {
				why = "refused"
			}
			first = why
			break
		}
	}
	switch {
	case first != "" && ctx.Err() != nil:
		a.ticket.Done(sched.Cancelled, "stopped: the client disconnected")
	case first != "":
		a.ticket.Done(sched.Failed, strings.TrimPrefix(first, "weir: "))
	case a.dryRun:
		a.ticket.Done(sched.Succeeded, "dry run")
	default:
		a.ticket.Done(sched.Succeeded, "")
	}
}

// parsePriority reads the value of "priority=N".
func parsePriority(s string) (int, error) {
	v := strings.TrimPrefix(s, OptionPriority)
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > sched.MaxPriority || len(v) > 2 {
		return 0, fmt.Errorf("weir: bad push option %q: want priority=N with N from 0 (normal) to %d", clipLine(s, 60), sched.MaxPriority)
	}
	return n, nil
}

// checkPriority refuses a priority above what the pusher may ask for.
func (h *Pipeline) checkPriority(p *Push, o options) error {
	if o.priority == 0 {
		return nil
	}
	limit := 0
	if h.cfg.MaxPriority != nil {
		limit = h.cfg.MaxPriority(p.Pusher)
	}
	if o.priority <= limit {
		return nil
	}
	return fmt.Errorf("weir: priority %d is above what %s may ask for (at most %d); push with -o priority=%d or less, or ask an admin to raise it (weir user priority %s %d)",
		o.priority, p.Pusher, limit, limit, p.Pusher, o.priority)
}

// admitPush asks the scheduler to run the push p, once for the whole
// push, and waits for its turn. It returns nil and no refusal when there
// is no scheduler or nothing of p runs nodes; refusal, when not empty,
// refuses every command and nothing ran.
func (h *Pipeline) admitPush(ctx context.Context, p *Push, opts options, out *progress) (a *admission, refusal string) {
	s := h.cfg.Scheduler
	if s == nil {
		return nil, ""
	}
	a, req, rechecks := h.admitPlan(ctx, p, opts)
	if len(a.cmds) == 0 {
		return nil, ""
	}
	req.Progress = func(pos sched.Position) { out.linef("weir: %s", pos) }
	req.Recheck = func(ctx context.Context) error {
		for _, rc := range rechecks {
			if err := rc(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	log := h.log.With("repo", p.Repo, "run", req.ID, "pusher", p.Pusher)
	t, err := s.Admit(ctx, req)
	var re *sched.RecheckError
	switch {
	case err == nil:
		a.ticket = t
		if w := t.Waited(); w > 0 {
			log.Info("run admitted", "waited_ms", w.Milliseconds())
		}
		return a, ""
	case errors.Is(err, sched.ErrBusy):
		log.Warn("push refused: run queue full", "err", err)
		return nil, "weir: " + err.Error()
	case errors.As(err, &re):
		log.Info("push refused on recheck", "err", err)
		return nil, err.Error()
	case ctx.Err() != nil:
		log.Info("push cancelled while queued")
		return nil, "weir: stopped: the client disconnected"
	}
	log.Warn("push not admitted", "err", err)
	return nil, "weir: " + err.Error()
}

// admitPlan finds the commands of p that will run nodes: their targets,
// run ids and node estimate (the Request, without callbacks), and for
// each the recheck of its ref after a wait for its branch. It reads only
// refs and the pushed commits' files; branch and checkDataPush decide
// again, from the refs as they are once the push is admitted.
func (h *Pipeline) admitPlan(ctx context.Context, p *Push, opts options) (*admission, sched.Request, []func(context.Context) error) {
	a := &admission{ids: map[refs.Name]RunID{}, dryRun: opts.dryRun, loaded: map[objects.Hash]*pipeline.Pipeline{}}
	req := sched.Request{Repo: sched.Repo(p.Repo), Pusher: sched.Identity(p.Pusher), Priority: opts.priority}
	var rechecks []func(context.Context) error
	pushedData := map[string]bool{}
	for _, c := range p.Commands {
		if b, ok := strings.CutPrefix(string(c.Name), refs.DataPrefix); ok {
			pushedData[b] = true
		}
	}
	add := func(c Command, branch string, code objects.Hash, pl *pipeline.Pipeline) {
		id := newRunID()
		if len(a.cmds) == 0 {
			req.ID = sched.RunID(id)
		}
		a.ids[c.Name] = id
		a.cmds = append(a.cmds, c.Name)
		req.Need.Nodes += len(pl.Nodes)
		for _, n := range pl.Nodes {
			req.Need.Node.CPU = max(req.Need.Node.CPU, n.Limits.CPU)
			req.Need.Node.Memory = max(req.Need.Node.Memory, n.Limits.Memory)
		}
		if opts.dryRun {
			return // a dry run moves nothing: it waits for no branch
		}
		req.Targets = append(req.Targets, sched.Target{Branch: branch, Code: sched.Commit(code)})
		rechecks = append(rechecks, h.recheck(p, c))
	}
	for _, c := range p.Commands {
		name := string(c.Name)
		if c.New.IsZero() {
			continue
		}
		switch {
		case strings.HasPrefix(name, refs.HeadsPrefix):
			branch := strings.TrimPrefix(name, refs.HeadsPrefix)
			if pushedData[branch] {
				continue
			}
			cur, err := h.cfg.Refs.Resolve(ctx, p.Repo, DataRef(branch))
			if err != nil && !errors.Is(err, refs.ErrNotFound) {
				continue
			}
			if cur.IsZero() {
				if start, same := h.baseData(ctx, p, c.New, branch); same && !start.IsZero() {
					continue // a ref copy: nothing runs
				}
			}
			pl, err := pipeline.Load(p.Quarantine.Storer(), c.New)
			if err != nil {
				continue // no pipeline, or one refused before anything runs
			}
			a.loaded[c.New] = pl
			add(c, branch, c.New, pl)
		case strings.HasPrefix(name, refs.MergePrefix):
			// A merge request always takes its branch's claim: merges
			// into one branch land one after the other, each on the
			// head the one before left (merge.go). Its nodes are
			// estimated from the pushed commit's pipeline.
			pl, err := pipeline.Load(p.Quarantine.Storer(), c.New)
			if err != nil {
				pl = &pipeline.Pipeline{}
			}
			add(c, strings.TrimPrefix(name, refs.MergePrefix), c.New, pl)
		case strings.HasPrefix(name, refs.DataPrefix):
			branch := strings.TrimPrefix(name, refs.DataPrefix)
			code, err := h.cfg.Refs.Resolve(ctx, p.Repo, refs.Name(refs.HeadsPrefix+branch))
			if err != nil {
				continue
			}
			pl, err := pipeline.Load(p.Quarantine.Storer(), code)
			if err != nil {
				continue
			}
			a.loaded[code] = pl
			if pl = pl.Expectations(); len(pl.Nodes) == 0 {
				continue
			}
			add(c, branch, code, pl)
		}
	}
	return a, req, rechecks
}

// recheck returns the check that c's ref is still where the client saw
// it, run once the push has waited for a run of its branch: a code update
// that is no longer a fast-forward is refused before anything runs.
func (h *Pipeline) recheck(p *Push, c Command) func(context.Context) error {
	return func(ctx context.Context) error {
		now, err := h.cfg.Refs.Resolve(ctx, p.Repo, c.Name)
		switch {
		case errors.Is(err, refs.ErrNotFound):
			now = objects.ZeroHash
		case err != nil:
			return fmt.Errorf("weir: read %s: %v", c.Name, err)
		}
		if now == c.Old {
			return nil
		}
		where := "was deleted"
		if !now.IsZero() {
			where = "moved to " + short(now)
		}
		return fmt.Errorf("weir: %s %s while this push waited for the run ahead of it; fetch first", c.Name, where)
	}
}
