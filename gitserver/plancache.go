package gitserver

import (
	"bytes"
	"container/heap"
	"container/list"
	"context"
	"crypto/sha1"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// Clone plans without a walk: what plays the part of git's reachability
// bitmaps.
//
// planCache remembers the object lists of clones (no haves, no shallow),
// keyed by repo, wants, the include-tag list and the filter: objects are
// immutable and named by content, so an entry never goes stale, and a
// repeated clone of the same tips skips the walk. Two things make a plan
// from another one instead of walking every tree:
//
//   - Extension. An unfiltered plan whose wants are all commits (or tags
//     of commits) is the base of the next unfiltered plan of its repo: the
//     walk starts at the new wants and stops at every commit the base
//     holds (a commit of the base brings its whole history, and a tree of
//     the base its whole content, so nothing under them is new). The base
//     is used only when each of its roots (its wants and the tags
//     include-tag added) is a root of the new plan too, or a commit the
//     new walk stopped at (an ancestor of a new want): so a ref that was
//     deleted or moved back does not leave what only it reached in the
//     plan. Otherwise the plan is walked whole.
//
//   - Filtering. A blob:none, blob:limit=<n> or tree:0 plan is the
//     unfiltered plan of the same wants with objects left out, by the type
//     each object carries in the plan (packList.kinds): blob:none drops the
//     blobs, blob:limit the blobs of n bytes or more, tree:0 the trees and
//     blobs; an object a want names stays. tree:<depth> for depth > 0 is
//     walked.
//
// Bounded by the number of hashes held; least recently used entries go
// first. The plan the background worker makes after a push (warmPlan) is
// also kept in the database (plankeep.go), and read back as a base after
// a restart.
type planCache struct {
	mu      sync.Mutex
	entries map[[sha1.Size]byte]*list.Element
	order   list.List // front: most recently used
	hashes  int
	// bases are, per repo, the most recent entries that may be extended
	// (newest first, at most maxPlanBases).
	bases map[objects.RepoName][]*planEntry
	// building holds, per repo, a channel closed when the plan the
	// background worker makes after a push is in the cache (warmPlan).
	building map[objects.RepoName]chan struct{}
	// kept is, per repo, the key of the plan the database holds
	// (plankeep.go), once read or written by this process.
	kept map[objects.RepoName][sha1.Size]byte
}

// firstRead reports whether repo's kept plan is yet to be read, and
// marks it read.
func (c *planCache) firstRead(repo objects.RepoName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept == nil {
		c.kept = map[objects.RepoName][sha1.Size]byte{}
	}
	if _, ok := c.kept[repo]; ok {
		return false
	}
	c.kept[repo] = [sha1.Size]byte{}
	return true
}

// setKept records key as repo's kept plan; it reports whether it was
// another one.
func (c *planCache) setKept(repo objects.RepoName, key [sha1.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kept == nil {
		c.kept = map[objects.RepoName][sha1.Size]byte{}
	}
	changed := c.kept[repo] != key
	c.kept[repo] = key
	return changed
}

// entry returns the entry of key, or nil.
func (c *planCache) entry(key [sha1.Size]byte) *planEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		return e.Value.(*planEntry)
	}
	return nil
}

// readKeptPlan makes repo's kept plan, the first time this process needs
// a base of repo, a base of the cache.
func (s *Server) readKeptPlan(repo objects.RepoName) {
	if !s.plans.firstRead(repo) {
		return
	}
	if pe := loadPlan(s.Objects.DB(), repo); pe != nil {
		s.plans.put(pe.key, repo, pe.pl, pe.roots)
		s.plans.setKept(repo, pe.key)
	}
}

// maxBuildWait bounds how long a clone waits for the background worker's
// plan of its repo before it walks on its own.
const maxBuildWait = 30 * time.Second

// startBuild marks a plan of repo as being made; done unmarks it.
func (c *planCache) startBuild(repo objects.RepoName) (done func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.building == nil {
		c.building = map[objects.RepoName]chan struct{}{}
	}
	if _, ok := c.building[repo]; ok {
		return func() {}
	}
	ch := make(chan struct{})
	c.building[repo] = ch
	return func() {
		c.mu.Lock()
		delete(c.building, repo)
		c.mu.Unlock()
		close(ch)
	}
}

// awaitBuild waits, up to maxBuildWait, for a plan of repo being made.
func (c *planCache) awaitBuild(ctx context.Context, repo objects.RepoName) {
	c.mu.Lock()
	ch := c.building[repo]
	c.mu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(maxBuildWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}

type planEntry struct {
	key  [sha1.Size]byte
	repo objects.RepoName
	pl   *packList
	// roots, for a base (unfiltered, wants of commits and tags only): the
	// wants and the tags include-tag added; nil otherwise.
	roots []objects.Hash
}

// planCacheMaxHashes bounds the cache: 2M hashes is about 40 MiB.
const planCacheMaxHashes = 2 << 20

// maxPlanBases bounds the bases kept per repo.
const maxPlanBases = 4

// planKey names a clone plan; ok is false when the plan is not cacheable.
func planKey(repo objects.RepoName, fp *fetchPlan) (key [sha1.Size]byte, ok bool) {
	if len(fp.haves) > 0 || len(fp.graftsWant) > 0 || len(fp.graftsHave) > 0 {
		return key, false
	}
	h := sha1.New()
	h.Write([]byte(repo))
	h.Write([]byte{0})
	wants := append([]objects.Hash(nil), fp.wants...)
	sort.Slice(wants, func(i, j int) bool { return bytes.Compare(wants[i][:], wants[j][:]) < 0 })
	for _, w := range wants {
		h.Write(w[:])
	}
	h.Write([]byte("\x00tags"))
	for _, t := range fp.tags {
		h.Write(t.hash[:])
		h.Write(t.peeled[:])
	}
	if fp.filter != nil {
		h.Write([]byte("\x00filter " + fp.filter.spec()))
	}
	copy(key[:], h.Sum(nil))
	return key, true
}

func (c *planCache) get(key [sha1.Size]byte) *packList {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*planEntry).pl
	}
	return nil
}

// put keeps pl under key; roots, when not nil, make it a base of repo.
func (c *planCache) put(key [sha1.Size]byte, repo objects.RepoName, pl *packList, roots []objects.Hash) {
	if 2*len(pl.objs) > planCacheMaxHashes/4 {
		return // one huge clone must not flush everything else
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha1.Size]byte]*list.Element{}
		c.bases = map[objects.RepoName][]*planEntry{}
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	pe := &planEntry{key: key, repo: repo, roots: roots,
		pl: &packList{objs: pl.objs, kinds: pl.kinds, commits: pl.commits, names: pl.names, objWants: pl.objWants}}
	c.entries[key] = c.order.PushFront(pe)
	c.hashes += 2 * len(pl.objs)
	if roots != nil {
		b := append([]*planEntry{pe}, c.bases[repo]...)
		if len(b) > maxPlanBases {
			b = b[:maxPlanBases]
		}
		c.bases[repo] = b
	}
	for c.hashes > planCacheMaxHashes {
		e := c.order.Back()
		old := e.Value.(*planEntry)
		c.order.Remove(e)
		delete(c.entries, old.key)
		c.hashes -= 2 * len(old.pl.objs)
		c.dropBase(old)
	}
}

// dropBase forgets pe as a base; c.mu is held.
func (c *planCache) dropBase(pe *planEntry) {
	b := c.bases[pe.repo]
	for i, x := range b {
		if x == pe {
			b = append(b[:i:i], b[i+1:]...)
			break
		}
	}
	if len(b) == 0 {
		delete(c.bases, pe.repo)
	} else {
		c.bases[pe.repo] = b
	}
}

// base returns the base of repo whose roots miss fewest of newRoots (the
// newest on a tie), or nil.
func (c *planCache) base(repo objects.RepoName, newRoots map[objects.Hash]bool) *planEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var best *planEntry
	bestMiss := 0
	for _, pe := range c.bases[repo] {
		miss := 0
		for _, r := range pe.roots {
			if !newRoots[r] {
				miss++
			}
		}
		if best == nil || miss < bestMiss {
			best, bestMiss = pe, miss
		}
	}
	return best
}

// planFetch returns the plan of fp, from the cache when it can (see
// planCache), and whether it came from there without a whole walk. w, when
// not nil, is the fetch's walker, for a plan that is walked.
func (s *Server) planFetch(ctx context.Context, repo objects.RepoName, w *walker, fp *fetchPlan, progress progressFunc) (*packList, bool, error) {
	return s.planFetchWait(ctx, repo, w, fp, progress, true)
}

// planFetchWait is planFetch; with wait, an unfiltered plan that is not in
// the cache first waits for the background worker's plan of the repo
// (warmPlan), to extend it instead of walking the same history at the
// same time.
func (s *Server) planFetchWait(ctx context.Context, repo objects.RepoName, w *walker, fp *fetchPlan, progress progressFunc, wait bool) (*packList, bool, error) {
	if w == nil {
		w = newWalker(ctx, s.Objects, repo)
	}
	key, cacheable := planKey(repo, fp)
	if !cacheable {
		pl, err := w.plan(fp, progress)
		return pl, false, err
	}
	if pl := s.plans.get(key); pl != nil {
		return pl, true, nil
	}
	if f := fp.filter; f != nil {
		derivable := f.kind == filterBlobNone || f.kind == filterBlobLimit || (f.kind == filterTreeDepth && f.limit == 0)
		if !derivable {
			pl, err := newWalker(ctx, s.Objects, repo).plan(fp, progress)
			if err == nil {
				s.plans.put(key, repo, pl, nil)
			}
			return pl, false, err
		}
		full := *fp
		full.filter = nil
		if f.kind == filterTreeDepth {
			// tree:0 reads no tree when walked: derive it only from a
			// plan that costs no tree walk either.
			s.readKeptPlan(repo)
			if k, _ := planKey(repo, &full); s.plans.get(k) == nil && s.plans.base(repo, rootSet(&full)) == nil {
				pl, err := newWalker(ctx, s.Objects, repo).plan(fp, progress)
				if err == nil {
					s.plans.put(key, repo, pl, nil)
				}
				return pl, false, err
			}
		}
		fullPl, cached, err := s.planFetchWait(ctx, repo, nil, &full, progress, wait)
		if err != nil {
			return nil, false, err
		}
		pl, err := deriveFiltered(ctx, s.Objects, repo, fullPl, f)
		if err != nil {
			return nil, false, err
		}
		s.plans.put(key, repo, pl, nil)
		return pl, cached, nil
	}
	if wait {
		s.plans.awaitBuild(ctx, repo)
		if pl := s.plans.get(key); pl != nil {
			return pl, true, nil
		}
	}
	s.readKeptPlan(repo)
	newRoots := rootSet(fp)
	if b := s.plans.base(repo, newRoots); b != nil {
		pl, roots, ok, err := extendPlan(ctx, s.Objects, repo, b, fp, newRoots)
		if err != nil && ctx.Err() != nil {
			return nil, false, err
		}
		if err != nil {
			// The walk below says what is wrong, if anything is.
			s.logger().Warn("extend clone plan", "repo", repo, "err", err)
		} else if ok {
			s.plans.put(key, repo, pl, roots)
			return pl, true, nil
		}
	}
	pl, err := w.plan(fp, progress)
	if err != nil {
		return nil, false, err
	}
	var roots []objects.Hash
	if !pl.objWants {
		roots = planRoots(fp, func(h objects.Hash) bool { _, ok := pl.has[h]; return ok })
	}
	s.plans.put(key, repo, pl, roots)
	return pl, false, nil
}

// rootSet is what may be a root of fp's plan: its wants and the tags of
// its include-tag list.
func rootSet(fp *fetchPlan) map[objects.Hash]bool {
	set := make(map[objects.Hash]bool, len(fp.wants)+len(fp.tags))
	for _, h := range fp.wants {
		set[h] = true
	}
	for _, t := range fp.tags {
		if !t.peeled.IsZero() {
			set[t.hash] = true
		}
	}
	return set
}

// planRoots returns the roots of a plan of fp: its wants, and the tags of
// its include-tag list that the plan holds (in).
func planRoots(fp *fetchPlan, in func(objects.Hash) bool) []objects.Hash {
	roots := append([]objects.Hash{}, fp.wants...)
	for _, t := range fp.tags {
		if !t.peeled.IsZero() && in(t.hash) {
			roots = append(roots, t.hash)
		}
	}
	return roots
}

// extendPlan makes the unfiltered plan of fp from base, walking only what
// base lacks (see planCache). ok is false when base does not cover it: a
// root of base that is neither a root of fp nor reached from fp's wants,
// or a want of a tree or blob.
func extendPlan(ctx context.Context, store *objects.Store, repo objects.RepoName, base *planEntry, fp *fetchPlan, newRoots map[objects.Hash]bool) (pl *packList, roots []objects.Hash, ok bool, err error) {
	bp := base.pl
	seen := make(map[objects.Hash]struct{}, len(bp.objs)+len(bp.objs)/8)
	for _, h := range bp.objs {
		seen[h] = struct{}{}
	}
	w := newWalker(ctx, store, repo)
	add := &packList{names: map[objects.Hash]uint32{}}
	w.names = add.names

	// Wants: tags are added and peeled, commits walked below.
	var q commitQueue
	for _, h := range fp.wants {
		for depth := 0; ; depth++ {
			if depth == 16 {
				return nil, nil, false, nil
			}
			if _, ok := seen[h]; ok {
				break // in the base, with all it reaches
			}
			typ, _, err := store.Stat(ctx, repo, h)
			if err != nil {
				return nil, nil, false, fmt.Errorf("read wanted object %s: %w", h, err)
			}
			if typ == plumbing.CommitObject {
				c, err := w.commit(h)
				if err != nil {
					return nil, nil, false, err
				}
				if c.flags&flagQueued == 0 {
					c.flags |= flagQueued
					heap.Push(&q, c)
				}
				break
			}
			if typ != plumbing.TagObject {
				return nil, nil, false, nil // a want of a tree or blob: walked whole
			}
			seen[h] = struct{}{}
			add.push(h, typ)
			o, err := w.get(h)
			if err != nil {
				return nil, nil, false, fmt.Errorf("read tag %s: %w", h, err)
			}
			t, ok := tagTarget(o.Data)
			if !ok {
				return nil, nil, false, fmt.Errorf("tag %s: no object line", h)
			}
			h = t
		}
	}

	// New commits, newest first, down to the commits of the base.
	stops := map[objects.Hash]bool{}
	var commits []*commitNode
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return nil, nil, false, err
		}
		c := heap.Pop(&q).(*commitNode)
		seen[c.hash] = struct{}{}
		add.push(c.hash, plumbing.CommitObject)
		commits = append(commits, c)
		for _, ph := range c.parents {
			if _, ok := seen[ph]; ok {
				stops[ph] = true
				continue
			}
			p, err := w.commit(ph)
			if err != nil {
				return nil, nil, false, err
			}
			if p.flags&flagQueued == 0 {
				p.flags |= flagQueued
				heap.Push(&q, p)
			}
		}
	}
	for _, r := range base.roots {
		if !newRoots[r] && !stops[r] {
			return nil, nil, false, nil
		}
	}
	head := len(add.objs)

	// Their trees, down to the trees of the base.
	for _, c := range commits {
		if err := w.walkTree(c.tree, seen, add); err != nil {
			return nil, nil, false, err
		}
	}
	isCommit := func(h objects.Hash) bool {
		if _, ok := seen[h]; !ok {
			return false
		}
		typ, _, err := store.Stat(ctx, repo, h)
		return err == nil && typ == plumbing.CommitObject
	}
	if err := w.includeTags(fp.tags, seen, isCommit, add); err != nil {
		return nil, nil, false, err
	}

	n := len(bp.objs) + len(add.objs)
	pl = &packList{
		objs:    make([]objects.Hash, 0, n),
		kinds:   make([]uint8, 0, n),
		commits: bp.commits + len(commits),
		names:   make(map[objects.Hash]uint32, len(bp.names)+len(add.names)),
	}
	pl.objs = append(append(append(pl.objs, add.objs[:head]...), bp.objs...), add.objs[head:]...)
	pl.kinds = append(append(append(pl.kinds, add.kinds[:head]...), bp.kinds...), add.kinds[head:]...)
	for h, v := range bp.names {
		pl.names[h] = v
	}
	for h, v := range add.names {
		if _, ok := pl.names[h]; !ok {
			pl.names[h] = v
		}
	}
	roots = planRoots(fp, func(h objects.Hash) bool { _, ok := seen[h]; return ok })
	return pl, roots, true, nil
}

// deriveFiltered returns the plan of the same wants as full under filter
// f (blob:none, blob:limit or tree:0), leaving out what f filters.
func deriveFiltered(ctx context.Context, store *objects.Store, repo objects.RepoName, full *packList, f *objectFilter) (*packList, error) {
	pl := &packList{commits: full.commits, names: full.names, objWants: full.objWants}
	for i, h := range full.objs {
		k := full.kinds[i]
		typ := plumbing.ObjectType(k &^ kindWanted)
		keep := k&kindWanted != 0 || (typ != plumbing.BlobObject && typ != plumbing.TreeObject)
		if !keep {
			switch f.kind {
			case filterBlobNone:
				keep = typ == plumbing.TreeObject
			case filterBlobLimit:
				keep = typ == plumbing.TreeObject
				if typ == plumbing.BlobObject {
					_, size, err := store.Stat(ctx, repo, h)
					if err != nil {
						return nil, fmt.Errorf("read blob %s: %w", h, err)
					}
					keep = size < f.limit
				}
			case filterTreeDepth:
				keep = false // tree:0
			}
		}
		if keep {
			pl.objs = append(pl.objs, h)
			pl.kinds = append(pl.kinds, k)
		}
	}
	return pl, nil
}

// warmPlan makes, after a push landed, the plan of the clone git makes by
// default (every branch and tag, with include-tag) and keeps it, so that
// the first clone after the push extends it instead of walking the
// history on its own path (a clone that comes while it is made waits for
// it: awaitBuild).
func (s *Server) warmPlan(ctx context.Context, repo objects.RepoName, rs *repoRefs) error {
	done := s.plans.startBuild(repo)
	defer done()
	seen := map[objects.Hash]bool{}
	var wants []objects.Hash
	for _, r := range rs.list {
		if !strings.HasPrefix(string(r.name), "refs/heads/") && !strings.HasPrefix(string(r.name), "refs/tags/") {
			continue
		}
		if !seen[r.hash] {
			seen[r.hash] = true
			wants = append(wants, r.hash)
		}
	}
	if len(wants) == 0 {
		return nil
	}
	fp := &fetchPlan{wants: wants, tags: rs.list}
	if _, _, err := s.planFetchWait(ctx, repo, nil, fp, nil, false); err != nil {
		return err
	}
	// Kept in the database for the first clone after a restart.
	key, _ := planKey(repo, fp)
	if pe := s.plans.entry(key); pe != nil && pe.roots != nil && s.plans.setKept(repo, key) {
		return keepPlan(s.Objects.DB(), repo, pe)
	}
	return nil
}
