package hooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// The merge queue: a push to refs/merge/<b> asks the server to merge the
// pushed commit into branch b, so that many agents can land on one shared
// branch without each fetching, merging and pushing again every time
// another lands first.
//
//	git push origin HEAD:refs/merge/main
//	  gitserver   the identity must be allowed to push refs/heads/main;
//	              a deletion of refs/merge/... is refused
//	  admission   the request holds main's branch claim (admit.go): merges
//	              and pushes to main take their turns in arrival order
//	  merge       on main's head *now*: the merge base from the commit graph
//	              (exactly one, else refused), objects.MergeTrees (a path
//	              changed on both sides differently refuses the request
//	              naming it), a merge commit (parents: head, pushed commit;
//	              author and committer the pusher) in the push's quarantine
//	  run         the pipeline at the merge commit on main's data, exactly
//	              as a push of it to main would (branch); its data commit is
//	              published onto main's data if that moved (datacommit.go)
//	  land        Result.Lands: gitserver writes refs/heads/main head ->
//	              merge commit with refs/data/main in one compare-and-swap,
//	              in place of refs/merge/main, which is never written
//
// The client's push waits for all of it and gets "ok refs/merge/main" only
// when main advanced; a refusal (conflict, a failed node, an expectation,
// the branch moved) is reported on refs/merge/main and nothing moves. A
// commit already on the branch is accepted and writes nothing.

// mergeMessage is the subject of a merge queue's merge commit.
func mergeMessage(pushed objects.Hash, branch string) string {
	return fmt.Sprintf("Merge %s into %s (weir merge queue)\n", pushed, branch)
}

// merge handles one merge request c (refs/merge/<branch>). It returns the
// run when one made data for the branch, as branch does.
func (h *Pipeline) merge(ctx context.Context, p *Push, c Command, branch string, opts options, out *progress, res *Result, adm *admission) *run {
	target := refs.Name(refs.HeadsPrefix + branch)
	if c.New.IsZero() {
		res.Refused[c.Name] = "weir: refs/merge/ names merge requests, not refs: there is nothing to delete"
		return nil
	}
	head, err := h.cfg.Refs.Resolve(ctx, p.Repo, target)
	switch {
	case errors.Is(err, refs.ErrNotFound):
		res.Refused[c.Name] = fmt.Sprintf("weir: branch %s does not exist; push it (git push origin HEAD:%s) instead of merging into it", branch, branch)
		return nil
	case err != nil:
		res.Refused[c.Name] = "weir: read " + string(target) + ": " + clipLine(err.Error(), 200)
		return nil
	}
	if res.Lands == nil {
		res.Lands = map[refs.Name]refs.Update{}
	}
	mc, already, why := h.mergeCommit(ctx, p, c.New, head, branch)
	if why != "" {
		out.linef("%s", why)
		res.Refused[c.Name] = why
		h.log.Info("merge refused", "repo", p.Repo, "ref", c.Name, "pushed", c.New.String(), "head", head.String(), "why", why)
		return nil
	}
	if already {
		res.Lands[c.Name] = refs.Update{}
		out.linef("weir: %s is already on %s; nothing to merge", short(c.New), branch)
		return nil
	}
	out.linef("weir: merge queue: %s merged into %s at %s as %s", short(c.New), branch, short(head), short(mc))
	tc := Command{Name: target, Old: head, New: mc}
	res.Lands[c.Name] = refs.Update{Name: target, Old: head, New: mc}
	r := h.branch(ctx, p, tc, branch, opts, out, res, adm, c.Name)
	// What the run refused, it refused on the branch's name: the client
	// asked for refs/merge/<b>.
	if why, ok := res.Refused[target]; ok {
		delete(res.Refused, target)
		res.Refused[c.Name] = why
	}
	return r
}

// mergeCommit merges pushed into head (the branch's code now) and writes
// the merge commit into the push's quarantine. already: pushed is on the
// branch (nothing to do). refuse says why it cannot merge.
func (h *Pipeline) mergeCommit(ctx context.Context, p *Push, pushed, head objects.Hash, branch string) (merge objects.Hash, already bool, refuse string) {
	st := p.Quarantine.Storer()
	fail := func(err error) (objects.Hash, bool, string) {
		return objects.ZeroHash, false, "weir: merge into " + branch + " failed: " + clipLine(err.Error(), 200)
	}
	pc, err := object.GetCommit(st, pushed)
	if err != nil {
		return fail(err)
	}
	hc, err := object.GetCommit(st, head)
	if err != nil {
		return fail(err)
	}
	if pushed == head {
		return objects.ZeroHash, true, ""
	}
	bases, err := pc.MergeBase(hc)
	if err != nil {
		return fail(err)
	}
	switch {
	case len(bases) == 0:
		return objects.ZeroHash, false, fmt.Sprintf("weir: %s and %s (%s) have no common history; refusing to merge unrelated histories", short(pushed), branch, short(head))
	case len(bases) > 1:
		return objects.ZeroHash, false, fmt.Sprintf("weir: %s and %s (%s) have %d merge bases (criss-cross merges); merge %s into your branch and push to refs/merge/%s again", short(pushed), branch, short(head), len(bases), branch, branch)
	case bases[0].Hash == pushed:
		return objects.ZeroHash, true, ""
	}
	tree, err := objects.MergeTrees(ctx, p.Quarantine, bases[0].TreeHash, hc.TreeHash, pc.TreeHash)
	var ce *objects.MergeConflictError
	if errors.As(err, &ce) {
		return objects.ZeroHash, false, fmt.Sprintf("weir: %s conflicts with %s at %s: %s changed on both sides; merge %s into your branch, resolve, and push to refs/merge/%s again",
			short(pushed), branch, short(head), conflictList(ce.Paths), branch, branch)
	}
	if err != nil {
		return fail(err)
	}
	sig := object.Signature{Name: identName(string(p.Pusher)), Email: "", When: time.Now()}
	mc := &object.Commit{
		Author: sig, Committer: sig, TreeHash: tree,
		ParentHashes: []plumbing.Hash{head, pushed},
		Message:      mergeMessage(pushed, branch),
	}
	b, err := encode(mc)
	if err != nil {
		return fail(err)
	}
	merge, err = p.Quarantine.Put(plumbing.CommitObject, b)
	if err != nil {
		return fail(err)
	}
	return merge, false, ""
}

// conflictList names conflicting paths: "a, b and 3 more" (at most five).
func conflictList(paths []string) string {
	if len(paths) > 5 {
		return strings.Join(paths[:5], ", ") + fmt.Sprintf(" and %d more", len(paths)-5)
	}
	return strings.Join(paths, ", ")
}

// identName makes an identity safe for a commit's author line: no angle
// brackets, no control characters.
func identName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '<' || r == '>' || r < 0x20 || r == 0x7f {
			return '-'
		}
		return r
	}, s)
	if s == "" {
		return "anonymous"
	}
	return s
}
