package exec

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

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
	s.teardowns.Wait()
	s.pool.close()
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
