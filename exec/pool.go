package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
)

// defaultPoolSize is how many empty cgroups are kept ready: enough for the
// sandboxes one server typically starts at once.
const defaultPoolSize = 8

// cgroupPool keeps empty cgroups (one dir per hierarchy) created ahead of
// time by a background goroutine, because creating them is the single
// biggest cost of starting a sandbox on cgroup v1 (a dozen mkdirs, cpuset
// inheritance). A sandbox takes one, libcontainer's Apply finds the dirs
// existing and only joins them, and Destroy removes them: a cgroup is used
// exactly once, so its counters (oom_kill, pids max, peak memory) belong to
// one node.
//
//	<own cgroup>/<prefix>/c<N>    N counts up; never reused
type cgroupPool struct {
	prefix string
	next   atomic.Uint64
	ready  chan string
	stop   chan struct{}
	done   sync.WaitGroup
	once   sync.Once
}

// newCgroupPool starts filling a pool of size n; n <= 0 makes a pool that
// only hands out fresh names.
func newCgroupPool(prefix string, n int) *cgroupPool {
	p := &cgroupPool{prefix: prefix, stop: make(chan struct{})}
	if n > 0 {
		p.ready = make(chan string, n)
		p.done.Add(1)
		go p.fill()
	}
	return p
}

// name is a fresh cgroup path relative to the server's own cgroup.
func (p *cgroupPool) name() string {
	return fmt.Sprintf("%s/c%d", p.prefix, p.next.Add(1))
}

func (p *cgroupPool) fill() {
	defer p.done.Done()
	for {
		name := p.name()
		if err := precreate(name); err != nil {
			// Let sandboxes create their own cgroups; try again later.
			select {
			case <-p.stop:
				return
			case p.ready <- "":
			}
			continue
		}
		select {
		case p.ready <- name:
		case <-p.stop:
			destroyCgroup(name)
			return
		}
	}
}

// take returns a pre-created cgroup path, or a fresh name libcontainer
// creates itself when the pool is empty.
func (p *cgroupPool) take() string {
	select {
	case name := <-p.ready:
		if name != "" {
			return name
		}
	default:
	}
	return p.name()
}

// close stops the filler and removes the cgroups still in the pool.
func (p *cgroupPool) close() {
	p.once.Do(func() {
		close(p.stop)
		for {
			select {
			case name := <-p.ready:
				if name != "" {
					destroyCgroup(name)
				}
				continue
			default:
			}
			break
		}
		p.done.Wait()
		for {
			select {
			case name := <-p.ready:
				if name != "" {
					destroyCgroup(name)
				}
				continue
			default:
			}
			return
		}
	})
}

func precreate(name string) error {
	m, err := manager.New(&cgroups.Cgroup{Path: name, Resources: &cgroups.Resources{}})
	if err != nil {
		return err
	}
	if err := m.Apply(-1); err != nil {
		_ = m.Destroy()
		return err
	}
	return nil
}

func destroyCgroup(name string) {
	m, err := manager.New(&cgroups.Cgroup{Path: name, Resources: &cgroups.Resources{}})
	if err == nil {
		_ = m.Destroy()
	}
}

// Close waits for the sandboxes still being torn down (AsyncTeardown),
// stops the background work of s and removes its empty cgroups and cgroup
// prefix. Call it after every Run has returned and every Prepared was run
// or closed; a Sandboxes must not be used after Close.
func (s *Sandboxes) Close() error {
	s.sandboxPool.close()
	s.teardowns.Wait()
	s.cgroups.close()
	if s.initFile != nil {
		s.initFile.Close()
	}
	for _, dir := range s.cgroupDirs() {
		subs, _ := os.ReadDir(dir)
		for _, sub := range subs {
			if sub.IsDir() {
				removeCgroup(filepath.Join(dir, sub.Name()))
			}
		}
		_ = os.Remove(dir)
	}
	return nil
}

// DefaultSandboxPool is how many generic sandboxes of each class (runtime,
// runner mounted or not) Sandboxes keeps built ahead by default: about as
// many as one push starts nodes at once.
const DefaultSandboxPool = 4

// sandboxPool keeps, for each class of sandbox asked for (a runtime, with
// or without the runner mounted), up to size generic sandboxes built
// ahead by a background goroutine: cgroup, namespaces, mounts (/in
// empty), seccomp program bound, the shim waiting on its spec pipe, with
// the server's default limits and no node, no env, no input. Prepare takes one
// and binds its spec to it (bind); a sandbox is bound once, runs once and
// is torn down, and the filler builds another. A class gets its pool the
// first time it is asked for (or Warm).
type sandboxPool struct {
	s    *Sandboxes
	size int // <= 0: no pool

	mu      sync.Mutex
	closed  bool
	classes map[class]*classPool
	owned   map[*Prepared]bool // being built or parked: not yet any node's
	fillers sync.WaitGroup
}

type classPool struct {
	c      class
	root   *rootfs
	parked []*Prepared // built, oldest first
	wake   chan struct{}
	stop   chan struct{}
}

func newSandboxPool(s *Sandboxes, size int) *sandboxPool {
	return &sandboxPool{s: s, size: size, classes: map[class]*classPool{}, owned: map[*Prepared]bool{}}
}

// take returns a parked sandbox of class c, or nil if there is none (the
// pool is off, empty, or c was never asked for: its pool starts filling).
func (sp *sandboxPool) take(c class) *Prepared {
	if sp.size <= 0 {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	cp := sp.classLocked(c)
	if cp == nil || len(cp.parked) == 0 {
		return nil
	}
	p := cp.parked[0]
	cp.parked = cp.parked[1:]
	delete(sp.owned, p)
	select {
	case cp.wake <- struct{}{}:
	default:
	}
	return p
}

// classLocked is c's pool, started if it was not; nil once closed.
func (sp *sandboxPool) classLocked(c class) *classPool {
	if sp.closed {
		return nil
	}
	cp := sp.classes[c]
	if cp == nil {
		cp = &classPool{c: c, root: sp.s.roots[c.runtime], wake: make(chan struct{}, 1), stop: make(chan struct{})}
		sp.classes[c] = cp
		sp.fillers.Add(1)
		go sp.fill(cp)
	}
	return cp
}

// fill keeps cp full: it builds one sandbox at a time while fewer than
// size are parked, then sleeps until one is taken. A sandbox that cannot
// be built is discarded, logged, and tried again later.
func (sp *sandboxPool) fill(cp *classPool) {
	defer sp.fillers.Done()
	backoff := 100 * time.Millisecond
	for {
		sp.mu.Lock()
		need := !sp.closed && len(cp.parked) < sp.size
		sp.mu.Unlock()
		if !need {
			select {
			case <-cp.wake:
				continue
			case <-cp.stop:
				return
			}
		}
		lim := sp.s.cfg.Defaults
		// The most open files a node may be given: binding lowers it.
		lim.OpenFiles = max(lim.OpenFiles, sp.s.nofileMax)
		p := sp.s.newGeneric(cp.c, cp.root, lim, true)
		<-p.built
		if p.setupErr != nil {
			sp.mu.Lock()
			delete(sp.owned, p)
			sp.mu.Unlock()
			p.discard()
			sp.s.log.Warn("sandbox pool: could not build a sandbox; retrying", "runtime", cp.c.runtime, "err", p.setupErr, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-cp.stop:
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		sp.mu.Lock()
		if sp.closed {
			delete(sp.owned, p)
			sp.mu.Unlock()
			p.discard()
			return
		}
		cp.parked = append(cp.parked, p)
		sp.mu.Unlock()
	}
}

// warm starts the pool of class c (so the first node of that class finds
// a sandbox ready).
func (sp *sandboxPool) warm(c class) {
	if sp.size <= 0 {
		return
	}
	sp.mu.Lock()
	sp.classLocked(c)
	sp.mu.Unlock()
}

// close stops the fillers and tears down every parked sandbox.
func (sp *sandboxPool) close() {
	sp.mu.Lock()
	if sp.closed {
		sp.mu.Unlock()
		return
	}
	sp.closed = true
	for _, cp := range sp.classes {
		close(cp.stop)
	}
	sp.mu.Unlock()
	sp.fillers.Wait()
	sp.mu.Lock()
	var parked []*Prepared
	for _, cp := range sp.classes {
		parked = append(parked, cp.parked...)
		cp.parked = nil
	}
	sp.owned = map[*Prepared]bool{}
	sp.mu.Unlock()
	for _, p := range parked {
		p.discard()
	}
}

// Warm starts building, in the background, the pool of generic sandboxes
// for nodes of runtime rt ("" is HostRuntime) with the runner mounted
// (weir) or not, so that the first such node after start-up finds one
// ready. Without Warm a class's pool starts with its first node. It does
// nothing when the pool is off (Config.SandboxPool < 0) or rt is unknown.
func (s *Sandboxes) Warm(rt string, weir bool) {
	if rt == "" {
		rt = HostRuntime
	}
	if _, ok := s.roots[rt]; !ok {
		return
	}
	s.sandboxPool.warm(class{runtime: rt, weir: weir})
}
