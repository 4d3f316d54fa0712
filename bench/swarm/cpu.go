package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// cpuMeter reads the CPU time of the server and everything under it from
// a cgroup the server joins before it execs: cpuacct.usage on cgroup v1,
// cpu.stat's usage_usec on v2. Package exec puts each sandbox's cgroup
// under the server's own in every hierarchy, and a parent's counter keeps
// what its removed children used, so nodes are counted. Without such a
// cgroup (not root, no hierarchy) it falls back to /proc/<pid>/stat:
// the server and the children it has waited for.
type cpuMeter struct {
	dir string // the cgroup, "" for the /proc fallback
	v2  bool
}

func newCPUMeter(name string) cpuMeter {
	for _, c := range []struct {
		root string
		v2   bool
		file string
	}{
		{"/sys/fs/cgroup/cpuacct", false, "cpuacct.usage"},
		{"/sys/fs/cgroup/cpu,cpuacct", false, "cpuacct.usage"},
		{"/sys/fs/cgroup", true, "cgroup.controllers"},
	} {
		if _, err := os.Stat(filepath.Join(c.root, c.file)); err != nil {
			continue
		}
		dir := filepath.Join(c.root, "weir-bench-"+name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		return cpuMeter{dir: dir, v2: c.v2}
	}
	fmt.Fprintln(os.Stderr, "bench/swarm: no CPU cgroup for the server: reading /proc/<pid>/stat (nodes' CPU counted only once their sandbox is reaped)")
	return cpuMeter{}
}

// procsFile is where the server writes its pid to join the cgroup.
func (m cpuMeter) procsFile() string {
	if m.dir == "" {
		return ""
	}
	return filepath.Join(m.dir, "cgroup.procs")
}

func (m cpuMeter) source() string {
	switch {
	case m.dir == "":
		return "/proc/<pid>/stat, server and waited-for children"
	case m.v2:
		return "cgroup v2 cpu.stat of the server's cgroup"
	}
	return "cgroup v1 cpuacct.usage of the server's cgroup"
}

// read returns the CPU time used so far by the cgroup, or by pid when
// there is none.
func (m cpuMeter) read(pid int) time.Duration {
	if m.dir == "" {
		return procCPU(pid)
	}
	if !m.v2 {
		b, _ := os.ReadFile(filepath.Join(m.dir, "cpuacct.usage"))
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(n)
	}
	b, _ := os.ReadFile(filepath.Join(m.dir, "cpu.stat"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Duration(n) * time.Microsecond
		}
	}
	return 0
}

// remove removes the cgroup and whatever the server left inside it,
// deepest first.
func (m cpuMeter) remove() {
	if m.dir == "" {
		return
	}
	var dirs []string
	filepath.WalkDir(m.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

// procCPU is utime+stime+cutime+cstime of pid (/proc/<pid>/stat).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// After the comm: state is f[0]; utime, stime, cutime, cstime are
	// fields 14-17 of the line, f[11..14].
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
