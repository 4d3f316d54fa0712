package exec

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// sweep removes what a crashed server with this StateDir left behind:
// libcontainer state (killing its processes), mounts under StateDir, run
// staging dirs, and cgroups under the prefix (killing their processes).
// It is best effort and logs what it could not remove.
func (s *Sandboxes) sweep() {
	ents, _ := os.ReadDir(s.containers)
	for _, e := range ents {
		c, err := libcontainer.Load(s.containers, e.Name())
		if err == nil {
			_ = c.Signal(unix.SIGKILL)
			for i := 0; i < 100; i++ {
				if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := c.Destroy(); err != nil {
				s.log.Warn("sweep: destroy container", "id", e.Name(), "err", err)
			}
		}
		_ = os.RemoveAll(filepath.Join(s.containers, e.Name()))
		s.log.Info("sweep: removed leftover sandbox", "container", e.Name())
	}
	if mps, err := mountsUnder(s.cfg.StateDir); err == nil {
		for _, mp := range mps {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
				s.log.Warn("sweep: unmount", "path", mp, "err", err)
			}
		}
	}
	ents, _ = os.ReadDir(s.runs)
	for _, e := range ents {
		_ = os.RemoveAll(filepath.Join(s.runs, e.Name()))
	}
	for _, dir := range s.cgroupDirs() {
		subs, _ := os.ReadDir(dir)
		for _, sub := range subs {
			if sub.IsDir() {
				removeCgroup(filepath.Join(dir, sub.Name()))
			}
		}
		_ = unix.Rmdir(dir)
	}
}

// cgroupDirs are the prefix dirs of this server's sandboxes, one per
// mounted hierarchy: <mount>/<own cgroup>/<prefix>.
func (s *Sandboxes) cgroupDirs() []string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mount string
		switch {
		case parts[1] == "":
			mount = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mount); err != nil {
				mount = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(parts[1], "name="):
			mount = "/sys/fs/cgroup/" + strings.TrimPrefix(parts[1], "name=")
		default:
			mount = "/sys/fs/cgroup/" + parts[1]
		}
		d := filepath.Join(mount, parts[2], s.cgroupPrefix)
		if _, err := os.Stat(d); err == nil {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// removeCgroup kills every process in the cgroup dir and removes it,
// retrying briefly while the kernel reaps them. On cgroup v2 (Linux 5.14+)
// one write to cgroup.kill kills them all, forks in flight included; on v1
// the freezer cgroup is frozen first, so nothing forks between the
// listing and the kill.
func removeCgroup(dir string) {
	_ = os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("FROZEN"), 0)
	for i := 0; i < 50; i++ {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			var pid int
			for _, c := range f {
				pid = pid*10 + int(c-'0')
			}
			if pid > 0 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		// A frozen cgroup (v1 freezer) must thaw for SIGKILL to land.
		_ = os.WriteFile(filepath.Join(dir, "freezer.state"), []byte("THAWED"), 0)
		if err := unix.Rmdir(dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
