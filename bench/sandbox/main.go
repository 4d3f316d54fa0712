// Command sandbox measures the per-node overhead of a Weir sandbox: create,
// start, wait and destroy a container running /bin/true, as p50 and p99
// over many runs, side by side in the same run with the runc CLI
// (`runc run`) on an equivalent bundle, and with 8 sandboxes at once.
//
// It must run as root on a host with cgroups:
//
//	go run ./bench/sandbox -n 200
//
// Not a test: the figures depend on the machine and its load.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/weir-dev/weir/exec"
)

func init() { exec.Init() }

func main() {
	n := flag.Int("n", 200, "sequential runs per contender")
	par := flag.Int("parallel", 8, "sandboxes at once in the concurrent round")
	rounds := flag.Int("rounds", 25, "concurrent rounds")
	runcBin := flag.String("runc", "runc", "runc CLI to compare against (\"\" to skip)")
	pool := flag.Int("pool", 0, "sandbox pool size of the first contender (0: exec's default)")
	all := flag.Bool("all", false, "also run without either pool and without the user namespace")
	flag.Parse()

	phases := &phaseLog{sums: map[string][]time.Duration{}}
	slog.SetDefault(slog.New(phases))
	// Not under /tmp: libcontainer seals /proc/self/exe with an overlayfs whose
	// lower layers are the binary's dir and the state dir, and overlayfs
	// refuses overlapping layers (then it falls back to copying the binary).
	dir, err := os.MkdirTemp("/run", "weir-bench-sandbox-")
	check(err)
	// Searchable, so the sandboxes' mapped root reaches the state dirs and
	// they get a user namespace, as under /run/weir/exec.
	check(os.Chmod(dir, 0o711))
	defer os.RemoveAll(dir)
	sb, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state"), SandboxPool: *pool})
	check(err)
	defer sb.Close()
	sb.Warm(exec.HostRuntime, false)
	fresh, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state-fresh"), SandboxPool: -1})
	check(err)
	defer fresh.Close()
	ctx := context.Background()
	env := []string{"PATH=/usr/bin:/bin"}
	var seq atomic.Int64
	var pooled, runs atomic.Int64
	weir := func(s *exec.Sandboxes) func() time.Duration {
		return func() time.Duration {
			id := fmt.Sprintf("bench-%d", seq.Add(1))
			t := time.Now()
			res, err := s.Run(ctx, exec.Spec{ID: id, Args: []string{"/bin/true"}, Env: env})
			d := time.Since(t)
			check(err)
			if res.Reason != exec.ReasonOK {
				check(fmt.Errorf("weir sandbox: %s %s %s", res.Reason, res.Message, res.Output))
			}
			if s == sb {
				runs.Add(1)
				if res.Pooled {
					pooled.Add(1)
				}
			}
			return d
		}
	}
	type contender struct {
		name string
		run  func() time.Duration
		seq  []time.Duration
	}
	cs := []*contender{
		{name: "weir exec (sandbox pool)", run: weir(sb)},
		{name: "weir exec, no sandbox pool", run: weir(fresh)},
	}
	if *all {
		nopool, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state-nopool"), CgroupPool: -1, SandboxPool: -1})
		check(err)
		defer nopool.Close()
		nouserns, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state-nouserns"), NoUserNamespace: true, SandboxPool: -1})
		check(err)
		defer nouserns.Close()
		cs = append(cs,
			&contender{name: "weir exec, no pools", run: weir(nopool)},
			&contender{name: "weir exec, no pool, no userns", run: weir(nouserns)})
	}
	if *runcBin != "" {
		if _, err := osexec.LookPath(*runcBin); err != nil {
			fmt.Fprintf(os.Stderr, "runc CLI not found (%v); apt-get install -y runc, or -runc=\"\"\n", err)
			os.Exit(2)
		}
		bundle := filepath.Join(dir, "bundle")
		check(writeBundle(bundle))
		root := filepath.Join(dir, "runc-root")
		cs = append(cs, &contender{name: "runc CLI (" + *runcBin + " run)", run: func() time.Duration {
			cmd := osexec.Command(*runcBin, "--root", root, "run", "--bundle", bundle, fmt.Sprintf("runc-%d", seq.Add(1)))
			t := time.Now()
			out, err := cmd.CombinedOutput()
			d := time.Since(t)
			if err != nil {
				check(fmt.Errorf("runc run: %v: %s", err, out))
			}
			return d
		}})
	}

	// Warm up (page cache, skeletons, the pools), then interleave the
	// contenders so load from other work on the machine hits all alike.
	for i := 0; i < 5; i++ {
		for _, c := range cs {
			c.run()
		}
	}
	phases.reset()
	for i := 0; i < *n; i++ {
		for _, c := range cs {
			c.seq = append(c.seq, c.run())
			if c == cs[0] {
				phases.keep()
			} else {
				phases.drop()
			}
		}
	}
	fmt.Printf("per-node overhead of /bin/true, %d sequential runs each, interleaved (create, start, wait, destroy)\n", *n)
	for _, c := range cs {
		fmt.Printf("  %-28s %s\n", c.name, summary(c.seq))
	}
	last := cs[len(cs)-1]
	if *runcBin != "" {
		fmt.Printf("  ratio runc/weir: p50 %.2fx, p99 %.2fx (goal: weir p50 <= 10 ms, p99 <= 25 ms, >= 3x faster than runc)\n",
			float64(pct(last.seq, 50))/float64(pct(cs[0].seq, 50)), float64(pct(last.seq, 99))/float64(pct(cs[0].seq, 99)))
	}
	fmt.Printf("  ratio no pool/pool: p50 %.2fx, p99 %.2fx; %d of %d runs took a pooled sandbox\n",
		float64(pct(cs[1].seq, 50))/float64(pct(cs[0].seq, 50)), float64(pct(cs[1].seq, 99))/float64(pct(cs[0].seq, 99)),
		pooled.Load(), runs.Load())
	fmt.Printf("  where weir's time goes (median per phase): %s\n", phases.medians())

	// Concurrent rounds: par sandboxes at once, rounds times.
	fmt.Printf("%d sandboxes at once, %d rounds\n", *par, *rounds)
	for _, c := range cs {
		if *rounds == 0 {
			break
		}
		var mu sync.Mutex
		var lat []time.Duration
		start := time.Now()
		for r := 0; r < *rounds; r++ {
			var wg sync.WaitGroup
			for i := 0; i < *par; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := c.run()
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		total := time.Since(start)
		fmt.Printf("  %-28s latency %s; %.0f nodes/s\n", c.name, summary(lat), float64(len(lat))/total.Seconds())
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func summary(ds []time.Duration) string {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return fmt.Sprintf("p50 %6.2f ms  p99 %6.2f ms  mean %6.2f ms",
		ms(pct(ds, 50)), ms(pct(ds, 99)), ms(sum/time.Duration(len(ds))))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// writeBundle writes an OCI bundle equivalent to a weir host-runtime
// sandbox: read-only root with the host's /usr and /etc bound read-only,
// the same namespaces, limits, unprivileged user, no capabilities,
// no_new_privs and a seccomp denylist.
func writeBundle(dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"proc", "dev", "tmp", "in", "out", "usr", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	var mounts []specs.Mount
	for _, d := range []string{"bin", "sbin", "lib", "lib64", "lib32", "libx32"} {
		fi, err := os.Lstat("/" + d)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			t, _ := os.Readlink("/" + d)
			if err := os.Symlink(t, filepath.Join(rootfs, d)); err != nil {
				return err
			}
			continue
		}
		os.MkdirAll(filepath.Join(rootfs, d), 0o755)
		mounts = append(mounts, specs.Mount{Destination: "/" + d, Type: "bind", Source: "/" + d, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	}
	mounts = append([]specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=64k"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=256m", "mode=1777"}},
		{Destination: "/out", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=1g"}},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		{Destination: "/etc", Type: "bind", Source: "/etc", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
	}, mounts...)
	mem := int64(2 << 30)
	pids := int64(256)
	quota := int64(100000)
	period := uint64(100000)
	var denied []string
	for _, s := range []string{"mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "ptrace",
		"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "bpf",
		"perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "swapon", "swapoff",
		"reboot", "acct", "open_by_handle_at", "iopl", "ioperm", "settimeofday", "clock_settime"} {
		denied = append(denied, s)
	}
	eperm := uint(1)
	spec := specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: true},
		Process: &specs.Process{
			Args: []string{"/bin/true"}, Env: []string{"PATH=/usr/bin:/bin"}, Cwd: "/tmp",
			User:            specs.User{UID: 65534, GID: 65534},
			Capabilities:    &specs.LinuxCapabilities{},
			NoNewPrivileges: true,
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		},
		Hostname: "runc-bench",
		Mounts:   mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"}},
			Resources: &specs.LinuxResources{
				Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &mem},
				Pids:    &specs.LinuxPids{Limit: &pids},
				CPU:     &specs.LinuxCPU{Quota: &quota, Period: &period},
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			Seccomp: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls:      []specs.LinuxSyscall{{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm}},
			},
			MaskedPaths:   []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sysrq-trigger", "/proc/kallsyms"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"},
		},
	}
	b, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// phaseLog is a slog handler that collects exec's per-phase timings from
// its debug lines ("phases" attribute: "name=dur name=dur ...").
type phaseLog struct {
	mu      sync.Mutex
	sums    map[string][]time.Duration
	pending []string // phases of the last run, until keep or drop
}

// keep records the pending phases (the run was of the contender whose
// breakdown is reported); drop forgets them.
func (p *phaseLog) keep() {
	p.mu.Lock()
	for _, f := range p.pending {
		k, v, _ := strings.Cut(f, "=")
		if d, err := time.ParseDuration(v); err == nil {
			p.sums[k] = append(p.sums[k], d)
		}
	}
	p.pending = nil
	p.mu.Unlock()
}

func (p *phaseLog) drop() {
	p.mu.Lock()
	p.pending = nil
	p.mu.Unlock()
}

func (p *phaseLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *phaseLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *phaseLog) WithGroup(string) slog.Handler            { return p }
func (p *phaseLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		fmt.Fprintln(os.Stderr, r.Level, r.Message)
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "phases" {
			p.mu.Lock()
			p.pending = strings.Fields(a.Value.String())
			p.mu.Unlock()
		}
		return true
	})
	return nil
}

func (p *phaseLog) reset() {
	p.mu.Lock()
	p.sums = map[string][]time.Duration{}
	p.mu.Unlock()
}

func (p *phaseLog) medians() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, group := range []struct {
		name   string
		phases []string
	}{
		// Built ahead by the pool (on Run's path without one).
		{"built ahead", []string{"tmpfs", "create", "start", "exec-shim"}},
		// Bound to the node (Prepare), then Run.
		{"on Run's path", []string{"limits", "inputs", "exec", "node", "collect", "destroy", "cleanup"}},
	} {
		var parts []string
		for _, k := range group.phases {
			if ds := p.sums[k]; len(ds) > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, ms(pct(ds, 50))))
			}
		}
		fmt.Fprintf(&b, "\n    %-14s %s ms", group.name+":", strings.Join(parts, ", "))
	}
	return b.String()
}
