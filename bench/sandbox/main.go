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
	flag.Parse()

	phases := &phaseLog{sums: map[string][]time.Duration{}}
	slog.SetDefault(slog.New(phases))
	// Not under /tmp: libcontainer seals /proc/self/exe with an overlayfs whose
	// lower layers are the binary's dir and the state dir, and overlayfs
	// refuses overlapping layers (then it falls back to copying the binary).
	dir, err := os.MkdirTemp("/run", "weir-bench-sandbox-")
	check(err)
	defer os.RemoveAll(dir)
	sb, err := exec.New(exec.Config{StateDir: filepath.Join(dir, "state")})
	check(err)
	ctx := context.Background()
	env := []string{"PATH=/usr/bin:/bin"}
	var seq int
	ours := func() time.Duration {
		seq++
		t := time.Now()
		res, err := sb.Run(ctx, exec.Spec{ID: fmt.Sprintf("bench-%d", seq), Args: []string{"/bin/true"}, Env: env})
		d := time.Since(t)
		check(err)
		if res.Reason != exec.ReasonOK {
			check(fmt.Errorf("weir sandbox: %s %s %s", res.Reason, res.Message, res.Output))
		}
		return d
	}
	var runc func() time.Duration
	if *runcBin != "" {
		if _, err := osexec.LookPath(*runcBin); err != nil {
			fmt.Fprintf(os.Stderr, "runc CLI not found (%v); apt-get install -y runc, or -runc=\"\"\n", err)
			os.Exit(2)
		}
		bundle := filepath.Join(dir, "bundle")
		check(writeBundle(bundle))
		root := filepath.Join(dir, "runc-root")
		runc = func() time.Duration {
			seq++
			cmd := osexec.Command(*runcBin, "--root", root, "run", "--bundle", bundle, fmt.Sprintf("runc-%d", seq))
			t := time.Now()
			out, err := cmd.CombinedOutput()
			d := time.Since(t)
			if err != nil {
				check(fmt.Errorf("runc run: %v: %s", err, out))
			}
			return d
		}
	}

	// Warm up both (page cache, skeletons, the runtime's first cgroup).
	for i := 0; i < 5; i++ {
		ours()
		if runc != nil {
			runc()
		}
	}
	phases.reset()
	// Interleave the contenders so load from other work hits both alike.
	var a, b []time.Duration
	for i := 0; i < *n; i++ {
		a = append(a, ours())
		if runc != nil {
			b = append(b, runc())
		}
	}
	fmt.Printf("per-node overhead of /bin/true, %d sequential runs each (create, start, wait, destroy)\n", *n)
	fmt.Printf("  %-28s %s\n", "weir exec (libcontainer)", summary(a))
	if runc != nil {
		fmt.Printf("  %-28s %s\n", "runc CLI ("+*runcBin+" run)", summary(b))
		fmt.Printf("  ratio runc/weir: p50 %.2fx, p99 %.2fx\n",
			float64(pct(b, 50))/float64(pct(a, 50)), float64(pct(b, 99))/float64(pct(a, 99)))
	}
	fmt.Printf("  where weir's time goes (median per phase): %s\n", phases.medians())

	// Concurrent rounds.
	concurrent := func(f func() time.Duration) ([]time.Duration, time.Duration) {
		var mu sync.Mutex
		var lat []time.Duration
		start := time.Now()
		for r := 0; r < *rounds; r++ {
			var wg sync.WaitGroup
			for i := 0; i < *par; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d := f()
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}()
			}
			wg.Wait()
		}
		return lat, time.Since(start)
	}
	var mu sync.Mutex
	oursLocked := func() time.Duration {
		mu.Lock()
		seq++
		id := fmt.Sprintf("bench-%d", seq)
		mu.Unlock()
		t := time.Now()
		res, err := sb.Run(ctx, exec.Spec{ID: id, Args: []string{"/bin/true"}, Env: env})
		d := time.Since(t)
		check(err)
		if res.Reason != exec.ReasonOK {
			check(fmt.Errorf("weir sandbox: %s %s", res.Reason, res.Message))
		}
		return d
	}
	lat, total := concurrent(oursLocked)
	fmt.Printf("%d sandboxes at once, %d rounds\n", *par, *rounds)
	fmt.Printf("  %-28s latency %s; %.0f nodes/s\n", "weir exec", summary(lat), float64(len(lat))/total.Seconds())
	if runc != nil {
		runcLocked := func() time.Duration { mu.Lock(); mu.Unlock(); return runcSafe(runc, &mu) }
		lat, total = concurrent(runcLocked)
		fmt.Printf("  %-28s latency %s; %.0f nodes/s\n", "runc CLI", summary(lat), float64(len(lat))/total.Seconds())
	}
}

// runcSafe serialises only the id counter of the runc closure.
func runcSafe(f func() time.Duration, mu *sync.Mutex) time.Duration {
	return f()
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
	mu   sync.Mutex
	sums map[string][]time.Duration
}

func (p *phaseLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *phaseLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *phaseLog) WithGroup(string) slog.Handler            { return p }
func (p *phaseLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		fmt.Fprintln(os.Stderr, r.Message)
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "phases" {
			p.mu.Lock()
			for _, f := range strings.Fields(a.Value.String()) {
				k, v, _ := strings.Cut(f, "=")
				if d, err := time.ParseDuration(v); err == nil {
					p.sums[k] = append(p.sums[k], d)
				}
			}
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
	for _, k := range []string{"out-tmpfs", "create", "start", "node", "collect", "destroy", "cleanup"} {
		if ds := p.sums[k]; len(ds) > 0 {
			fmt.Fprintf(&b, "%s %.2f ms, ", k, ms(pct(ds, 50)))
		}
	}
	return strings.TrimSuffix(b.String(), ", ")
}
