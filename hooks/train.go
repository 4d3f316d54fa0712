package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Merge trains: merge requests into one branch that wait together are
// merged together and run once (PipelineConfig.MergeTrain).
//
//	t0  A pushes refs/merge/main       A leads a new train of main and asks
//	                                   the run queue for main's claim (it may
//	                                   wait behind the run of main ahead)
//	t1  B, C push refs/merge/main      they join A's train (at most MergeTrain
//	                                   in all) and wait; no run slot, no claim
//	t2  A admitted                     the train closes (the next request
//	                                   leads the next one); A copies B's and
//	                                   C's new objects into its own quarantine
//	                                   and merges A, B, C in arrival order onto
//	                                   main's head: one octopus merge commit
//	                                   (parents: head, A, B, C); a request that
//	                                   conflicts with the ones before it, or is
//	                                   already on main, leaves the train
//	t3  one run on the merge, landed by A's push (Result.Lands)
//	t4  A's refs written (Report)      B and C are told: main advanced, each
//	                                   push says ok; A's, B's and C's commits
//	                                   are on main's first-parent chain's
//	                                   tip's parents, and the tip has its data
//
// When the train's run fails (a node, an expectation, the data moved under
// it) or its landing is refused, every request of it goes through the queue
// alone, one merge and one run each, in the order the queue serves them: a
// bad merge is refused alone and the good ones land. So the train costs one
// run when every merge in it is good, and one run more than merging one by
// one when one is bad.
//
// Only a push whose one command is a merge request rides a train; any
// other push with one merges alone. A rider waits for its leader even if
// its own client goes away: the leader has its objects and may land them.

// trainKey names the branch a train goes to.
type trainKey struct {
	repo   objects.RepoName
	branch string
}

// train is one group of merge requests into one branch.
type train struct {
	riders []*rider // after the leader, in arrival order; fixed once closed
	closed bool
	once   sync.Once
	done   chan struct{} // closed once every rider's outcome is set
	// report, set by the leader when its push lands the train, tells the
	// riders the outcome (the leader's Result.Report calls it).
	report func(refused map[refs.Name]string)
}

// rider is a merge request waiting in a train behind its leader.
type rider struct {
	p   *Push
	c   Command
	out *progress

	// Set by the leader before done is closed.
	landed bool   // the train landed with this request in it
	alone  bool   // not landed: merge alone through the queue
	note   string // the line the rider's client gets
}

// trains is the pipeline hook's trains being formed, by branch.
type trains struct {
	mu      sync.Mutex
	forming map[trainKey]*train
}

// join returns the train the merge request joins: as its leader (lead
// true, a new train) or as a rider of the train forming for its branch.
func (ts *trains) join(key trainKey, r *rider, max int) (t *train, lead bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.forming == nil {
		ts.forming = map[trainKey]*train{}
	}
	if t := ts.forming[key]; t != nil && !t.closed && len(t.riders)+1 < max {
		t.riders = append(t.riders, r)
		return t, false
	}
	t = &train{done: make(chan struct{})}
	ts.forming[key] = t
	return t, true
}

// close stops t taking riders and returns them.
func (ts *trains) close(key trainKey, t *train) []*rider {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t.closed = true
	if ts.forming[key] == t {
		delete(ts.forming, key)
	}
	return t.riders
}

// finish wakes the riders, once: a rider the leader did not decide merges
// alone. Called with the train closed (or never joined again).
func (t *train) finish() {
	t.once.Do(func() {
		for _, r := range t.riders {
			if !r.landed && !r.alone {
				r.alone = true
			}
		}
		close(t.done)
	})
}

// end is the leader's last word, from its Result.Report (or when it
// returns without a Report): the train's outcome to the riders.
func (h *Pipeline) endTrain(key trainKey, t *train, refused map[refs.Name]string) {
	h.trains.close(key, t)
	if t.report != nil && refused != nil {
		t.report(refused)
	}
	t.finish()
}

// trainRequest returns the merge request of p and its branch when p may
// ride a train: trains are on and p's one command is a merge request.
func (h *Pipeline) trainRequest(p *Push, opts options) (Command, string, bool) {
	if h.cfg.MergeTrain < 2 || h.cfg.Scheduler == nil || opts.dryRun || len(p.Commands) != 1 {
		return Command{}, "", false
	}
	c := p.Commands[0]
	b, ok := strings.CutPrefix(string(c.Name), refs.MergePrefix)
	if !ok || c.New.IsZero() {
		return Command{}, "", false
	}
	return c, b, true
}

// ride waits in the train of c's branch as a rider. It returns the
// push's result when the train decided it, or nil when the request must
// merge alone (the caller then goes the usual way).
func (h *Pipeline) ride(t *train, r *rider) *Result {
	r.out.linef("weir: merge queue: %s waits in a train into %s (one merge and one run for the train)", short(r.c.New), strings.TrimPrefix(string(r.c.Name), refs.MergePrefix))
	tick := time.NewTicker(h.cfg.KeepAlive)
	defer tick.Stop()
wait:
	for {
		select {
		case <-t.done:
			break wait
		case <-tick.C:
			r.out.linef("weir: merge queue: %s still in its train", short(r.c.New))
		}
	}
	if r.alone {
		if r.note != "" {
			r.out.linef("weir: %s", r.note)
		}
		return nil
	}
	res := &Result{Refused: map[refs.Name]string{}, Lands: map[refs.Name]refs.Update{r.c.Name: {}}}
	r.out.linef("weir: %s", r.note)
	return res
}

// lead runs a train as its leader, once admitted (adm holds the branch's
// claim): it closes the train, merges its requests and runs the pipeline
// once. It returns the run (as branch does) and true when the train is
// handled; false: the leader merges alone (its riders were told to).
func (h *Pipeline) lead(ctx context.Context, p *Push, c Command, branch string, opts options, out *progress, res *Result, adm *admission, key trainKey, t *train) (*run, bool) {
	riders := h.trains.close(key, t)
	alone := func(note string) {
		for _, r := range riders {
			r.alone, r.note = true, note
		}
		t.finish()
	}
	if len(riders) == 0 {
		t.finish()
		return nil, false
	}
	target := refs.Name(refs.HeadsPrefix + branch)
	head, err := h.cfg.Refs.Resolve(ctx, p.Repo, target)
	if err != nil {
		alone("")
		return nil, false
	}
	// The riders' objects go into the leader's quarantine: its push lands
	// the train.
	var in []*rider
	for _, r := range riders {
		if err := copyObjects(ctx, r.p.Quarantine, p.Quarantine); err != nil {
			h.log.Warn("train: copy a rider's objects", "repo", p.Repo, "err", err)
			r.alone = true
			continue
		}
		in = append(in, r)
	}
	mc, parts, out2 := h.trainCommit(ctx, p, head, branch, c, in)
	for _, r := range in {
		if !parts[r] {
			r.alone = true // conflicts with the train, or already on the branch: alone it is told which
		}
	}
	var inTrain []*rider
	for _, r := range in {
		if parts[r] {
			inTrain = append(inTrain, r)
		}
	}
	if mc.IsZero() || len(inTrain) == 0 {
		for _, r := range inTrain {
			r.alone = true
		}
		t.finish()
		return nil, false
	}
	if res.Lands == nil {
		res.Lands = map[refs.Name]refs.Update{}
	}
	out.linef("weir: merge queue: a train of %d into %s at %s: %s as %s", len(inTrain)+1, branch, short(head), out2, short(mc))
	tc := Command{Name: target, Old: head, New: mc}
	// The train's run is the leader's admitted run (weir runs lists it).
	run := h.branch(ctx, p, tc, branch, opts, out, res, adm, c.Name)
	if why, refused := res.Refused[target]; refused {
		delete(res.Refused, target)
		// The leader runs again alone, under a new run id: the train's
		// failed run is kept under its own.
		if adm != nil {
			delete(adm.ids, c.Name)
		}
		out.linef("weir: merge queue: the train's run failed (%s); each of its %d merges goes alone", clipLine(why, 200), len(inTrain)+1)
		for _, r := range inTrain {
			r.alone, r.note = true, "merge queue: the train's run failed; merging alone"
		}
		t.finish()
		return nil, false
	}
	if run == nil {
		// Nothing to publish (no pipeline): the code lands alone.
		res.Lands[c.Name] = refs.Update{Name: target, Old: head, New: mc}
		h.trainReport(res, c, t, inTrain, branch, mc)
		return nil, true
	}
	res.Lands[c.Name] = refs.Update{Name: target, Old: head, New: mc}
	h.trainReport(res, c, t, inTrain, branch, mc)
	return run, true
}

// trainReport makes the leader's Report tell the riders, once the train's
// landing is decided and written, whether they landed.
func (h *Pipeline) trainReport(res *Result, c Command, t *train, riders []*rider, branch string, mc objects.Hash) {
	t.report = func(refused map[refs.Name]string) {
		why, no := refused[c.Name]
		for _, r := range riders {
			if no {
				r.alone, r.note = true, "merge queue: the train did not land ("+clipLine(why, 200)+"); merging alone"
			} else {
				r.landed, r.note = true, fmt.Sprintf("%s advanced: code %s, a train of %d with %s in it", branch, short(mc), len(riders)+1, short(r.c.New))
			}
		}
		t.finish()
	}
}

// trainCommit merges the leader's and the riders' commits, in that order,
// onto head: one merge commit whose parents are head and each commit
// that merged. A rider that conflicts with what is merged before it, or is
// already on the branch, is left out (parts false). It returns the merge
// (zero when the leader itself cannot merge) and a description.
func (h *Pipeline) trainCommit(ctx context.Context, p *Push, head objects.Hash, branch string, lead Command, riders []*rider) (objects.Hash, map[*rider]bool, string) {
	st := p.Quarantine.Storer()
	parts := map[*rider]bool{}
	hc, err := object.GetCommit(st, head)
	if err != nil {
		return objects.ZeroHash, parts, ""
	}
	tree := hc.TreeHash
	parents := []plumbing.Hash{head}
	var names []string
	add := func(commit objects.Hash) bool {
		pc, err := object.GetCommit(st, commit)
		if err != nil {
			return false
		}
		bases, err := pc.MergeBase(hc)
		if err != nil || len(bases) != 1 || bases[0].Hash == commit {
			return false
		}
		merged, err := objects.MergeTrees(ctx, p.Quarantine, bases[0].TreeHash, tree, pc.TreeHash)
		if err != nil {
			return false
		}
		tree = merged
		parents = append(parents, commit)
		names = append(names, short(commit))
		return true
	}
	if !add(lead.New) {
		return objects.ZeroHash, parts, ""
	}
	for _, r := range riders {
		parts[r] = add(r.c.New)
	}
	if len(parents) < 3 {
		return objects.ZeroHash, parts, ""
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "Merge %s into %s (weir merge queue)\n\n", strings.Join(hashStrings(parents[1:]), ", "), branch)
	fmt.Fprintf(&msg, "A merge train of %d: one run for all of them.\n", len(parents)-1)
	sig := object.Signature{Name: identName(string(p.Pusher)), When: time.Now()}
	mc := &object.Commit{Author: sig, Committer: sig, TreeHash: tree, ParentHashes: parents, Message: msg.String()}
	b, err := encode(mc)
	if err != nil {
		return objects.ZeroHash, parts, ""
	}
	h2, err := p.Quarantine.Put(plumbing.CommitObject, b)
	if err != nil {
		return objects.ZeroHash, parts, ""
	}
	return h2, parts, strings.Join(names, ", ")
}

func hashStrings(hs []plumbing.Hash) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.String()
	}
	return out
}

// copyObjects puts the objects pushed into from into to.
func copyObjects(ctx context.Context, from, to *objects.Quarantine) error {
	for _, h := range from.Ingested() {
		o, err := from.Get(ctx, h)
		if err != nil {
			if errors.Is(err, objects.ErrNotFound) {
				continue
			}
			return err
		}
		if _, err := to.Put(o.Type, o.Data); err != nil {
			return err
		}
	}
	return nil
}
