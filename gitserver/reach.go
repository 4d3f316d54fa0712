package gitserver

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha1"
	"sort"
	"sync"

	"github.com/weir-dev/weir/objects"
)

// A want of a tree or blob that no ref names (a partial clone's lazy fetch
// of missing blobs) is served only when some advertised ref reaches it:
// never an object only a quarantine holds, nor one no ref reaches any more.
// The set of objects the refs reach is the object list of a full clone of
// every tip; it is computed once per set of tips and kept (reachCache), so
// a burst of lazy fetches between pushes walks the history once.

// reachCache keeps the reachable sets of recent tip sets, bounded by the
// number of hashes held; least recently used entries go first.
type reachCache struct {
	mu      sync.Mutex
	entries map[[sha1.Size]byte]*list.Element
	order   list.List
	hashes  int
	// building serialises the walks, so concurrent lazy fetches of the
	// same tips wait for one walk instead of each doing it.
	building sync.Mutex
}

type reachEntry struct {
	key [sha1.Size]byte
	set map[objects.Hash]struct{}
}

// reachCacheMaxHashes bounds the cache: about 80 MiB of sets at most.
const reachCacheMaxHashes = 2 << 20

// tipsKey names the set of advertised tips of repo.
func tipsKey(repo objects.RepoName, tips []objects.Hash) [sha1.Size]byte {
	sorted := append([]objects.Hash(nil), tips...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i][:], sorted[j][:]) < 0 })
	h := sha1.New()
	h.Write([]byte(repo))
	h.Write([]byte{0})
	for _, t := range sorted {
		h.Write(t[:])
	}
	var key [sha1.Size]byte
	copy(key[:], h.Sum(nil))
	return key
}

func (c *reachCache) get(key [sha1.Size]byte) map[objects.Hash]struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*reachEntry).set
	}
	return nil
}

func (c *reachCache) put(key [sha1.Size]byte, set map[objects.Hash]struct{}) {
	if len(set) > reachCacheMaxHashes/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[[sha1.Size]byte]*list.Element{}
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	c.entries[key] = c.order.PushFront(&reachEntry{key: key, set: set})
	c.hashes += len(set)
	for c.hashes > reachCacheMaxHashes {
		e := c.order.Back()
		re := e.Value.(*reachEntry)
		c.order.Remove(e)
		delete(c.entries, re.key)
		c.hashes -= len(re.set)
	}
}

// reachableSet returns every object the advertised refs of rs reach.
func (s *Server) reachableSet(ctx context.Context, repo objects.RepoName, rs *repoRefs) (map[objects.Hash]struct{}, error) {
	var tips []objects.Hash
	if !rs.head.IsZero() {
		tips = append(tips, rs.head)
	}
	for _, r := range rs.list {
		tips = append(tips, r.hash)
	}
	key := tipsKey(repo, tips)
	if set := s.reach.get(key); set != nil {
		return set, nil
	}
	s.reach.building.Lock()
	defer s.reach.building.Unlock()
	if set := s.reach.get(key); set != nil {
		return set, nil
	}
	pl, _, err := s.planFetch(ctx, repo, nil, &fetchPlan{wants: tips}, nil)
	if err != nil {
		return nil, err
	}
	set := make(map[objects.Hash]struct{}, len(pl.objs))
	for _, h := range pl.objs {
		set[h] = struct{}{}
	}
	s.reach.put(key, set)
	return set, nil
}
