package gitserver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// The background delta search.
//
// A push that lands queues its repo for the one background worker
// (Server.RunDeltaWorker, started by whoever runs the server and stopped
// by cancelling its context). For each queued repo, the worker first makes
// the plan of a clone of the repo's branches and tags (warmPlan,
// plancache.go: an extension of the last plan, or a walk after a
// restart), so that the first clone after the push does not walk. Then it
// plans a pack of what the repo's refs reach, with the tips it searched
// before as the client's haves of a thin plan, and runs the delta search
// (delta.go) on the objects of that pack that have no delta record yet:
// one goroutine, recording each result (a delta or "none") and keeping
// nothing, so that the next clone or fetch finds records instead of
// searching on its own path. The searched tips are kept in the database
// too, so the first search after a restart plans what the push brought,
// not the whole repo.
//
// Bounds: one worker per process, one core (the search's single
// goroutine), backgroundSearchTime per repo, and the search slot shared
// with fetches (searchSlot). Clients come first: while any upload-pack
// plans or writes a pack, the search waits before its next object (up to
// yieldWait in each step of 64 objects, so a stream of fetches slows it
// but never stops it).
// A fetch that comes while the worker holds the slot does not wait for
// it: it sends the deltas recorded so far (the search records each result
// as it finds it) and the objects still without a record whole, as when
// two fetches race; waiting would make the first clone after a push as
// slow as a search on its own path. A repo pushed again while queued is
// queued once; a repo pushed while it is searched is queued again.

// backgroundSearchTime bounds one repo's background search; what is left
// is searched by the next fetch or push.
const backgroundSearchTime = 10 * time.Minute

// maxSearchedTips bounds the tips kept per repo as the next search's haves.
const maxSearchedTips = 256

// deltaQueue is the background worker's queue; the zero value is ready.
type deltaQueue struct {
	mu      sync.Mutex
	order   []objects.RepoName
	queued  map[objects.RepoName]bool
	tips    map[objects.RepoName][]objects.Hash // commits searched, per repo
	wake    chan struct{}                       // capacity 1
	running atomic.Bool
}

func (q *deltaQueue) init() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
		q.queued = map[objects.RepoName]bool{}
		q.tips = map[objects.RepoName][]objects.Hash{}
	}
}

// add queues repo; without a running worker it does nothing.
func (q *deltaQueue) add(repo objects.RepoName) {
	if !q.running.Load() {
		return
	}
	q.mu.Lock()
	if !q.queued[repo] {
		q.queued[repo] = true
		q.order = append(q.order, repo)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes the oldest queued repo and the tips searched in it before:
// those of this process, else those db kept from an earlier one.
func (q *deltaQueue) next(db kv.Reader) (objects.RepoName, []objects.Hash, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return "", nil, false
	}
	repo := q.order[0]
	q.order = q.order[1:]
	delete(q.queued, repo)
	tips, ok := q.tips[repo]
	if !ok {
		tips = loadSearchedTips(db, repo)
	}
	return repo, tips, true
}

// searched keeps tips as the commits searched in repo, in memory and in db.
func (q *deltaQueue) searched(db kv.DB, repo objects.RepoName, tips []objects.Hash) error {
	if len(tips) > maxSearchedTips {
		tips = tips[:maxSearchedTips]
	}
	q.mu.Lock()
	q.tips[repo] = tips
	q.mu.Unlock()
	return storeSearchedTips(db, repo, tips)
}

// The searched tips of a repo survive a restart, so that the first push
// after it searches what it brings, not the whole repo:
//
//	'g' <repo> 0x00 "searched"    <commit hash:20>*   (at most maxSearchedTips)
//
// Package gitserver owns the keys that start with 'g'. The tips are only
// the haves of the next background search: a lost or stale value costs a
// longer search, never a wrong pack (a tip no longer in the repo is not a
// have; see searchRepoDeltas).
func searchedTipsKey(repo objects.RepoName) []byte {
	k := make([]byte, 0, 1+len(repo)+1+len("searched"))
	k = append(k, 'g')
	k = append(k, repo...)
	k = append(k, 0)
	return append(k, "searched"...)
}

// loadSearchedTips reads the tips db keeps for repo; nil when none (or
// when the value is not a list of hashes).
func loadSearchedTips(db kv.Reader, repo objects.RepoName) []objects.Hash {
	v, closer, err := db.Get(searchedTipsKey(repo))
	if err != nil {
		return nil
	}
	defer closer.Close()
	if len(v)%len(objects.Hash{}) != 0 || len(v) > maxSearchedTips*len(objects.Hash{}) {
		return nil
	}
	tips := make([]objects.Hash, len(v)/len(objects.Hash{}))
	for i := range tips {
		copy(tips[i][:], v[i*len(objects.Hash{}):])
	}
	return tips
}

// storeSearchedTips writes tips as repo's searched tips (not synced: a
// lost write costs a longer search).
func storeSearchedTips(db kv.DB, repo objects.RepoName, tips []objects.Hash) error {
	v := make([]byte, 0, len(tips)*len(objects.Hash{}))
	for _, t := range tips {
		v = append(v, t[:]...)
	}
	if err := db.Set(searchedTipsKey(repo), v, kv.NoSync); err != nil {
		return fmt.Errorf("gitserver: keep searched tips of %s: %w", repo, err)
	}
	return nil
}

// RunDeltaWorker computes and records, in the background, the deltas of
// what pushes bring, until ctx is done. Run it once per Server, in its own
// goroutine; without it, the first fetch after a push does the search.
func (s *Server) RunDeltaWorker(ctx context.Context) {
	q := &s.deltas
	q.init()
	if !q.running.CompareAndSwap(false, true) {
		return // one worker per Server
	}
	defer q.running.Store(false)
	for {
		repo, haves, ok := q.next(s.Objects.DB())
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		start := time.Now()
		n, planned, tips, err := s.searchRepoDeltas(ctx, repo, haves)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.logger().Warn("background delta search", "repo", repo, "err", err)
			continue
		}
		if err := q.searched(s.Objects.DB(), repo, tips); err != nil {
			s.logger().Warn("background delta search", "repo", repo, "err", err)
		}
		s.logger().Info("background delta search", "repo", repo, "searched", n, "objects", planned, "haves", len(haves), "took", time.Since(start).Round(time.Millisecond))
	}
}

// searchRepoDeltas searches the objects of repo that the refs reach and
// haves do not, and that have no delta record. It returns how many it
// searched, how many it planned (the objects the haves do not reach) and
// the commit tips it covered.
func (s *Server) searchRepoDeltas(ctx context.Context, repo objects.RepoName, haves []objects.Hash) (searched, planned int, tips []objects.Hash, err error) {
	rs, err := s.loadRefs(ctx, repo)
	if err != nil {
		return 0, 0, nil, err
	}
	if err := s.warmPlan(ctx, repo, rs); err != nil {
		return 0, 0, nil, err
	}
	var wants []objects.Hash
	seen := map[objects.Hash]bool{}
	for _, r := range rs.list {
		if seen[r.hash] {
			continue
		}
		seen[r.hash] = true
		wants = append(wants, r.hash)
		if typ, _, err := s.Objects.Stat(ctx, repo, r.hash); err == nil && typ == plumbing.CommitObject {
			tips = append(tips, r.hash)
		}
	}
	w := newWalker(ctx, s.Objects, repo)
	pl, err := w.plan(&fetchPlan{wants: wants, haves: haves}, nil)
	if err != nil && len(haves) > 0 && ctx.Err() == nil {
		// A tip searched before may be gone: search from nothing.
		pl, err = newWalker(ctx, s.Objects, repo).plan(&fetchPlan{wants: wants}, nil)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	pl.kept = nil // the search reads what it compares
	var missing []int32
	for i := pl.commits; i < len(pl.objs); i++ {
		_, ok, err := s.Objects.Delta(ctx, repo, pl.objs[i])
		if err != nil {
			return 0, 0, nil, err
		}
		if !ok {
			missing = append(missing, int32(i))
		}
	}
	if len(missing) == 0 {
		return 0, len(pl.objs), tips, nil
	}
	select {
	case searchSlot <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, nil, ctx.Err()
	}
	defer func() { <-searchSlot }()
	opt := packOptions{ofsDelta: true, thin: true}
	err = searchDeltas(ctx, s.Objects, repo, pl, missing, nil, nil, opt, nil, nil, searchBounds{workers: 1, time: backgroundSearchTime,
		yield: func() bool { return s.serving.Load() > 0 }})
	return len(missing), len(pl.objs), tips, err
}
