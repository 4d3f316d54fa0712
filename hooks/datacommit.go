package hooks

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// The run's data commit: each table a node made is snapshotted (staged)
// in the background as soon as its node has finished; writeData ties the
// snapshots into one commit on top of the start data once every node has
// passed (or, for a failed run, the partial data kept as evidence).

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

// Publishing onto a branch whose data moved during the run.
//
// A run reads its branch's data at start and makes its data commit on top
// of it; the push then moves refs/data/<b> from start to that commit in one
// compare-and-swap with refs/heads/<b>. When the data ref moved meanwhile
// (a REST commit, an import, a merge: theirs), the run's result still
// holds if nothing it read or wrote changed there:
//
//	start ── ... ── theirs ─┬─ published (parents: theirs, run's commit;
//	   └── run's commit ────┘  Run:, Code-Commit: of the run)
//
//	changed   tables whose pointers differ between start and theirs
//	touched   tables the plan's nodes read (inputs) or write (outputs)
//	code      refs/heads/<b> moved too (another push won): nothing to do,
//	          the compare-and-swap refuses the command (stale info)
//	disjoint  published = the table-level three-way merge (the one
//	          `weir data merge` uses) of the run's commit onto theirs;
//	          its pointers are marked published; the update is
//	          theirs -> published
//	overlap   the command is refused naming the first such table and the
//	          commit that changed it; the run is kept under refs/runs/<id>/
//
// gitserver asks again (Result.Finish, bounded) when the data ref moved once
// more before its compare-and-swap; each head is merged at most once.

// mover is a Catalog that can publish a run onto data that moved during it
// (*catalog.Catalog).
type mover interface {
	ChangedTables(ctx context.Context, repo objects.RepoName, from, to objects.Hash) ([]catalog.TableChange, error)
	MergeOnto(ctx context.Context, repo objects.RepoName, base, ours, theirs objects.Hash, info catalog.CommitInfo) (objects.Hash, error)
}

// ontoResult is onto's answer for one head of the branch's data.
type ontoResult struct {
	data   objects.Hash
	refuse string
}

// onto returns the data commit a landing run publishes and the value of
// refs/data/<b> it replaces, or why the command must be refused because the
// data moved under the run in a way its outputs cannot go on top of.
func (r *run) onto(ctx context.Context) (data, old objects.Hash, refuse string) {
	head, err := r.h.cfg.Refs.Resolve(ctx, r.push.Repo, DataRef(r.branch))
	switch {
	case errors.Is(err, refs.ErrNotFound):
		head = objects.ZeroHash
	case err != nil:
		r.log.Warn("read data ref", "err", err)
		return r.newData, r.dataOld, "" // the compare-and-swap decides
	}
	if head == r.dataOld {
		return r.newData, r.dataOld, ""
	}
	// Another push moved the code ref too: its compare-and-swap refuses
	// this push (stale info, fetch first), nothing to merge.
	if code, err := r.h.cfg.Refs.Resolve(ctx, r.push.Repo, r.cmd.Name); (err == nil && code != r.cmd.Old) || (errors.Is(err, refs.ErrNotFound) && !r.cmd.Old.IsZero()) {
		return r.newData, r.dataOld, ""
	}
	res, ok := r.ontoCache[head]
	if !ok {
		res = r.mergeOnto(ctx, head)
		if r.ontoCache == nil {
			r.ontoCache = map[objects.Hash]ontoResult{}
		}
		r.ontoCache[head] = res
	}
	return res.data, head, res.refuse
}

// mergeOnto publishes the run's data commit onto head, the branch's data
// now, or says why it cannot.
func (r *run) mergeOnto(ctx context.Context, head objects.Hash) ontoResult {
	ref := string(DataRef(r.branch))
	again := "; push again to rerun on the new data"
	if head.IsZero() {
		return ontoResult{refuse: "weir: " + ref + " was deleted during the run" + again}
	}
	m, ok := r.h.cfg.Catalog.(mover)
	if !ok {
		return ontoResult{refuse: "weir: " + ref + " moved during the run" + again}
	}
	changed, err := m.ChangedTables(ctx, r.push.Repo, r.start, head)
	if err != nil {
		return ontoResult{refuse: "weir: " + ref + " moved during the run and cannot be read: " + clipLine(err.Error(), 200) + again}
	}
	reads, writes := r.touched()
	for _, ch := range changed {
		t := pipeline.Table(ch.Table.String())
		how := ""
		switch {
		case writes[t] && reads[t]:
			how = ", which the run reads and writes,"
		case writes[t]:
			how = ", which the run writes,"
		case reads[t]:
			how = ", which the run reads,"
		default:
			continue
		}
		by := short(ch.By)
		if s := strings.TrimPrefix(ch.Subject, "weir: "); s != "" {
			by = clipLine(s, 120) + ", " + by
		}
		r.log.Info("data moved under the run", "table", ch.Table.String(), "by", ch.By.String(), "head", head.String())
		return ontoResult{refuse: fmt.Sprintf("weir: %s moved during the run: table %s%s changed under it (by %s)%s", ref, ch.Table, how, by, again)}
	}
	info := r.commitInfo()
	info.Message = fmt.Sprintf("weir: run %s on %s at %s, published onto %s\n\n"+
		"%s moved from %s to %s during the run (%s); the run read and wrote none of it, so its outputs are carried onto %s.",
		r.id, r.branch, short(r.code), short(head), ref, short(r.start), short(head), changedList(changed), short(head))
	data, err := m.MergeOnto(ctx, r.push.Repo, r.start, r.newData, head, info)
	var ce *catalog.ConflictError
	if errors.As(err, &ce) {
		return ontoResult{refuse: fmt.Sprintf("weir: %s moved during the run: %s changed under it%s", ref, strings.Join(ce.Tables, ", "), again)}
	}
	if err == nil {
		err = r.h.cfg.Catalog.Publish(ctx, r.push.Repo, head, data)
	}
	if err != nil {
		r.log.Warn("publish onto moved data", "err", err, "head", head.String())
		return ontoResult{refuse: "weir: " + ref + " moved during the run; publishing on top failed: " + clipLine(err.Error(), 200) + again}
	}
	r.log.Info("run published onto moved data", "head", head.String(), "data", data.String(), "changed", len(changed))
	return ontoResult{data: data}
}

// touched returns the tables the run's plan reads and writes.
func (r *run) touched() (reads, writes map[pipeline.Table]bool) {
	reads, writes = map[pipeline.Table]bool{}, map[pipeline.Table]bool{}
	for _, n := range r.plan.Nodes {
		for _, t := range n.Inputs {
			reads[t] = true
		}
		for _, t := range n.Outputs {
			writes[t] = true
		}
	}
	return reads, writes
}

// changedList names the tables that changed: "a.b, c.d" (at most five).
func changedList(chs []catalog.TableChange) string {
	if len(chs) == 0 {
		return "no table changed"
	}
	var names []string
	for i, ch := range chs {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(chs)-5))
			break
		}
		names = append(names, ch.Table.String())
	}
	return "changed " + strings.Join(names, ", ")
}
