package gitserver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// The background delta search.
//
// A push that lands queues its repo for the one background worker
// (Server.RunDeltaWorker, started by whoever runs the server and stopped
// by cancelling its context). For each queued repo, the worker plans a
// pack of what the repo's refs reach, with the tips it searched before
// (since the process started) as the client's haves of a thin plan, and
// runs the delta search (delta.go) on the objects of that pack that have
// no delta record yet: one goroutine, recording each result (a delta or
// "none") and keeping nothing, so that the next clone or fetch finds
// records instead of searching on its own path.
//
// Bounds: one worker per process, one core (the search's single
// goroutine), backgroundSearchTime per repo, and the search slot shared
// with fetches (searchSlot): while the worker holds it, a fetch that has
// objects without records sends those whole, as when two fetches race. A
// repo pushed again while queued is queued once; a repo pushed while it is
// searched is queued again.

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

// next takes the oldest queued repo and the tips searched in it before.
func (q *deltaQueue) next() (objects.RepoName, []objects.Hash, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.order) == 0 {
		return "", nil, false
	}
	repo := q.order[0]
	q.order = q.order[1:]
	delete(q.queued, repo)
	return repo, q.tips[repo], true
}

func (q *deltaQueue) searched(repo objects.RepoName, tips []objects.Hash) {
	if len(tips) > maxSearchedTips {
		tips = tips[:maxSearchedTips]
	}
	q.mu.Lock()
	q.tips[repo] = tips
	q.mu.Unlock()
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
		repo, haves, ok := q.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		start := time.Now()
		n, tips, err := s.searchRepoDeltas(ctx, repo, haves)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.logger().Warn("background delta search", "repo", repo, "err", err)
			continue
		}
		q.searched(repo, tips)
		s.logger().Info("background delta search", "repo", repo, "searched", n, "took", time.Since(start).Round(time.Millisecond))
	}
}

// searchRepoDeltas searches the objects of repo that the refs reach and
// haves do not, and that have no delta record. It returns how many it
// searched and the commit tips it covered.
func (s *Server) searchRepoDeltas(ctx context.Context, repo objects.RepoName, haves []objects.Hash) (int, []objects.Hash, error) {
	rs, err := s.loadRefs(ctx, repo)
	if err != nil {
		return 0, nil, err
	}
	var wants, tips []objects.Hash
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
		return 0, nil, err
	}
	pl.kept = nil // the search reads what it compares
	var missing []int32
	for i := pl.commits; i < len(pl.objs); i++ {
		_, ok, err := s.Objects.Delta(ctx, repo, pl.objs[i])
		if err != nil {
			return 0, nil, err
		}
		if !ok {
			missing = append(missing, int32(i))
		}
	}
	if len(missing) == 0 {
		return 0, tips, nil
	}
	select {
	case searchSlot <- struct{}{}:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
	defer func() { <-searchSlot }()
	opt := packOptions{ofsDelta: true, thin: true}
	err = searchDeltas(ctx, s.Objects, repo, pl, missing, nil, nil, opt, nil, nil, searchBounds{workers: 1, time: backgroundSearchTime})
	return len(missing), tips, err
}
