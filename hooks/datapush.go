package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// A client may push a data commit to refs/data/<b> itself: a git revert of
// a data commit (a table rollback), or a merge of two branches' data. Such
// a push passes the same gate as a run (invariants 6, 7 and 8), in this
// order, cheapest first:
//
//	pair        refs/heads/<b> exists: a data ref only sits beside its code
//	            ref (deleting a branch's data is deleting the branch)
//	pointers    every table pointer and namespace file in the tree was
//	            published (catalog: VerifyPushedDataCommit)
//	lineage     its Code-Commit: trailer, and its code entry when present,
//	            name refs/heads/<b>'s commit, the code it will sit beside
//	require-run on such a branch only a merge: the commit is another
//	            branch's current data, or a merge commit whose parents are
//	            branches' current data
//	expect      the expectations of the pipeline at refs/heads/<b> run on
//	            the pushed data (a check run, kept under refs/runs/<id>/
//	            when it fails)
//
// Protection of refs/data/<b> (no force, rewind or delete) and who may
// push it are decided before the hook, by gitserver and access, exactly as
// for refs/heads/<b>.

// checkDataPush decides a client's push of c to refs/data/<b>.
func (h *Pipeline) checkDataPush(ctx context.Context, p *Push, c Command, opts options, out *progress, res *Result, adm *admission) {
	began := time.Now()
	branch := strings.TrimPrefix(string(c.Name), refs.DataPrefix)
	refuse := func(format string, args ...any) {
		res.Refused[c.Name] = "weir: " + fmt.Sprintf(format, args...)
	}
	if c.New.IsZero() {
		refuse("data refs are deleted with their branch (git push origin :%s)", branch)
		return
	}
	code, err := h.cfg.Refs.Resolve(ctx, p.Repo, refs.Name(refs.HeadsPrefix+branch))
	if errors.Is(err, refs.ErrNotFound) {
		refuse("refs/data/%s has no code branch: a data ref only sits beside its code ref (push refs/heads/%s first)", branch, branch)
		return
	}
	if err != nil {
		refuse("read refs/heads/%s: %v", branch, err)
		return
	}
	v, ok := h.cfg.Catalog.(DataVerifier)
	if !ok {
		refuse("this server does not accept pushed data commits")
		return
	}
	if err := v.VerifyPushedDataCommit(ctx, p.Quarantine, c.New); err != nil {
		refuse("data commit refused: %s", err)
		return
	}
	if why := checkLineage(p.Quarantine.Storer(), c.New, code, branch); why != "" {
		refuse("%s", why)
		return
	}
	if h.cfg.Rules != nil && h.cfg.Rules(p.Repo, branch).RequireRun {
		if why := h.checkMerge(ctx, p, c, branch); why != "" {
			refuse("%s", why)
			return
		}
	}
	pl, err := adm.load(p, code)
	if errors.Is(err, pipeline.ErrNoPipeline) {
		return // no pipeline, no expectations
	}
	if err == nil && len(pl.Expectations().Nodes) == 0 {
		return
	}
	cur, _ := h.cfg.Refs.Resolve(ctx, p.Repo, c.Name)
	r := &run{
		h: h, push: p, cmd: c, branch: branch, opts: opts, out: out,
		id: adm.runID(c.Name), key: c.Name, start: c.New, dataOld: cur, began: began,
		code: code, tables: v.Pushed(p.Quarantine), check: true, ticket: adm.tick(),
	}
	r.log = h.log.With("repo", p.Repo, "ref", c.Name, "run", r.id)
	r.exec(ctx, pl, err, res)
}

// checkLineage returns why the data commit does not name code, the commit
// of refs/heads/<branch> it will sit beside (invariant 7), or "".
func checkLineage(s storer.EncodedObjectStorer, commit, code objects.Hash, branch string) string {
	cm, err := object.GetCommit(s, commit)
	if err != nil {
		return fmt.Sprintf("data commit %s: %v", short(commit), err)
	}
	trailers := codeCommitTrailers(cm.Message)
	trailerOK := len(trailers) > 0
	for _, t := range trailers {
		trailerOK = trailerOK && t == code.String()
	}
	entryOK := true
	if tree, err := cm.Tree(); err == nil {
		for _, e := range tree.Entries {
			if e.Name == "code" && e.Mode == filemode.Submodule && e.Hash != code {
				entryOK = false
			}
		}
	}
	if trailerOK && entryOK {
		return ""
	}
	var fix []string
	if !entryOK {
		fix = append(fix, "git update-index --cacheinfo 160000,"+code.String()+",code")
	}
	fix = append(fix, "git commit --amend --no-edit --trailer 'Code-Commit: "+code.String()+"'")
	what := "Code-Commit: trailer"
	switch {
	case !entryOK && !trailerOK:
		what = "Code-Commit: trailer and code entry"
	case !entryOK:
		what = "code entry"
	}
	return fmt.Sprintf("data commit %s must name the code it sits beside: its %s must be refs/heads/%s's commit %s (lineage); fix it with: %s",
		short(commit), what, branch, short(code), strings.Join(fix, " && "))
}

// codeCommitTrailers returns the values of the Code-Commit: trailers in
// the last paragraph of a commit message.
func codeCommitTrailers(msg string) []string {
	msg = strings.TrimRight(msg, "\n")
	if i := strings.LastIndex(msg, "\n\n"); i >= 0 {
		msg = msg[i+2:]
	}
	var out []string
	for _, l := range strings.Split(msg, "\n") {
		if v, ok := strings.CutPrefix(l, "Code-Commit:"); ok {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// checkMerge returns why a data push to a require-run branch is not a
// merge, or "": the pushed commit must be another branch's current data
// (a fast-forward), or a merge commit each of whose parents is the
// branch's own data or another branch's, one at least another's.
func (h *Pipeline) checkMerge(ctx context.Context, p *Push, c Command, branch string) string {
	refusal := fmt.Sprintf("branch %s requires a run: its data moves only through a pipeline run or a merge of data that stands on another branch; push data commit %s to another branch (git push origin %s:refs/heads/fix, then the data to refs/data/fix) and merge that into %s", branch, short(c.New), branch, branch)
	datas, err := h.cfg.Refs.List(ctx, p.Repo, refs.DataPrefix)
	if err != nil {
		return "read data refs: " + err.Error()
	}
	own := DataRef(branch)
	var cur objects.Hash
	other := map[objects.Hash]bool{}
	for _, d := range datas {
		if d.Name == own {
			cur = d.Hash
		} else {
			other[d.Hash] = true
		}
	}
	if other[c.New] {
		return ""
	}
	cm, err := object.GetCommit(p.Quarantine.Storer(), c.New)
	if err != nil || len(cm.ParentHashes) < 2 {
		return refusal
	}
	fromOther := false
	for _, ph := range cm.ParentHashes {
		switch {
		case other[ph]:
			fromOther = true
		case ph == cur && !cur.IsZero():
		default:
			return refusal
		}
	}
	if !fromOther {
		return refusal
	}
	return ""
}
