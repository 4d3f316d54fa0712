package exec

import (
	"path"
	"time"
)

// PoolOwned lists what the sandbox pool of s holds right now (sandboxes
// being built or parked, bound to no node): their container ids and the
// base names of their cgroups, so that tests can tell them from leftovers.
func PoolOwned(s *Sandboxes) (cids, cgroups map[string]bool) {
	cids, cgroups = map[string]bool{}, map[string]bool{}
	sp := s.sandboxPool
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for p := range sp.owned {
		cids[p.r.cid] = true
		if cg := p.r.cgroupPath; cg != "" {
			cgroups[path.Base(cg)] = true
		}
	}
	return cids, cgroups
}

// WaitPool waits (up to a minute) until the pool of s has a sandbox of
// runtime rt with the runner mounted or not parked, and says whether it has.
func WaitPool(s *Sandboxes, rt string, weir bool) bool {
	if rt == "" {
		rt = HostRuntime
	}
	c := class{runtime: rt, weir: weir}
	s.sandboxPool.warm(c)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		sp := s.sandboxPool
		sp.mu.Lock()
		n := 0
		if cp := sp.classes[c]; cp != nil {
			n = len(cp.parked)
		}
		sp.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}

// Parked counts the sandboxes parked in the pool of s, every class.
func Parked(s *Sandboxes) int {
	sp := s.sandboxPool
	sp.mu.Lock()
	defer sp.mu.Unlock()
	n := 0
	for _, cp := range sp.classes {
		n += len(cp.parked)
	}
	return n
}
