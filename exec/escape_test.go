package exec_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/exec"
)

// The escape suite: each test runs a real program inside a sandbox that
// tries to break one promise of invariant 5 and asserts the exact way it
// fails. run() checks after each that no mount, state, cgroup or process
// is left.

func TestNetworkExternalUnreachable(t *testing.T) {
	res := run(t, exec.Spec{Args: py(attempts + `
def tcp():
    s = socket.socket(); s.settimeout(3); s.connect(("1.1.1.1", 53))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
    s.sendto(b"\x00" * 12, ("1.1.1.1", 53)); s.recvfrom(512)
def tcp6():
    s = socket.socket(socket.AF_INET6); s.settimeout(3); s.connect(("2606:4700:4700::1111", 53))
attempt("tcp", tcp)
attempt("udp", udp)
attempt("tcp6", tcp6)
`)})
	expectDenied(t, res, map[string][]string{
		"tcp":  {"ENETUNREACH"},
		"udp":  {"ENETUNREACH"},
		"tcp6": {"ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"},
	})
	if res.Reason != exec.ReasonOK {
		t.Errorf("want ok, got %s", explain(res))
	}
}

func TestNetworkHostLoopbackUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- struct{}{}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res := run(t, exec.Spec{Args: py(attempts + fmt.Sprintf(`
def tcp():
    s = socket.socket(); s.settimeout(3); s.connect(("127.0.0.1", %d))
attempt("loopback", tcp)
`, port))})
	expectDenied(t, res, map[string][]string{"loopback": {"ECONNREFUSED"}})
	select {
	case <-accepted:
		t.Error("the host listener accepted a connection from the sandbox")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestNetworkNoDNSOnlyLoopback(t *testing.T) {
	res := run(t, exec.Spec{Args: py(`
import socket
try:
    socket.getaddrinfo("example.com", 80)
    print("dns ALLOWED")
except socket.gaierror as e:
    print("dns gaierror")
print("ifaces", ",".join(n for _, n in socket.if_nameindex()))
devs = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
print("netdev", ",".join(devs))
`)})
	out := string(res.Output)
	for _, want := range []string{"dns gaierror", "ifaces lo\n", "netdev lo\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in output:\n%s", want, out)
		}
	}
}

func TestFilesServerDataInvisible(t *testing.T) {
	sandboxes(t) // sets stateDir, which the script names
	data := t.TempDir()
	mustWrite(t, filepath.Join(data, "ssh_host_ed25519_key"), "-----BEGIN OPENSSH PRIVATE KEY-----\n")
	if err := os.MkdirAll(filepath.Join(data, "pebble"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(data, "pebble", "000001.sst"), "sst")
	other := t.TempDir() // another node's output dir
	mustWrite(t, filepath.Join(other, "part-0.parquet"), "PAR1")
	os.Setenv("WEIR_TEST_SECRET", "hunter2")
	defer os.Unsetenv("WEIR_TEST_SECRET")
	res := run(t, exec.Spec{
		Env: []string{"PATH=/usr/bin:/bin", "ONLY=this"},
		Args: py(attempts + fmt.Sprintf(`
attempt("key", lambda: open(%q).read())
attempt("pebble", lambda: os.listdir(%q))
attempt("other", lambda: open(%q).read())
attempt("state", lambda: os.listdir(%q))
attempt("shadow", lambda: open("/etc/shadow").read())
e = open("/proc/1/environ").read()
print("environ", "LEAK" if "hunter2" in e else "clean")
print("pids", len([p for p in os.listdir("/proc") if p.isdigit()]) < 5)
`, filepath.Join(data, "ssh_host_ed25519_key"), filepath.Join(data, "pebble"),
			filepath.Join(other, "part-0.parquet"), filepath.Dir(stateDir)+"/"+filepath.Base(stateDir)))})
	expectDenied(t, res, map[string][]string{
		"key": {"ENOENT"}, "pebble": {"ENOENT"}, "other": {"ENOENT"}, "state": {"ENOENT"},
		"shadow": {"EACCES", "ENOENT"}, // ENOENT: an image without one
	})
	out := string(res.Output)
	if !strings.Contains(out, "environ clean") || !strings.Contains(out, "pids True") {
		t.Errorf("host environment or processes visible:\n%s", out)
	}
}

func TestEnvIsExactlySpecEnv(t *testing.T) {
	os.Setenv("WEIR_TEST_SECRET", "hunter2")
	defer os.Unsetenv("WEIR_TEST_SECRET")
	env := []string{"PATH=/usr/bin:/bin", "A=1", "B=two words"}
	res := run(t, exec.Spec{Env: env, Args: []string{"/usr/bin/env"}})
	if got, want := string(res.Output), strings.Join(env, "\n")+"\n"; got != want {
		t.Errorf("env inside:\n%s\nwant:\n%s", got, want)
	}
}

func TestWritesDenied(t *testing.T) {
	in := t.TempDir()
	os.Chmod(in, 0o755)
	mustWrite(t, filepath.Join(in, "x.csv"), "a,b\n")
	res := run(t, exec.Spec{
		Weir:   true,
		Inputs: map[string]string{"dir": in, "file": filepath.Join(in, "x.csv")},
		Args: py(attempts + `
attempt("root", lambda: open("/evil", "w"))
attempt("usr", lambda: open("/usr/evil", "w"))
attempt("etc", lambda: open("/etc/passwd", "a"))
attempt("in", lambda: open("/in/evil", "w"))
attempt("indir", lambda: open("/in/dir/evil", "w"))
attempt("infile", lambda: open("/in/file", "a"))
attempt("runner", lambda: open("` + exec.RunnerPath + `", "r+b"))
attempt("selfexe", lambda: open("/proc/self/exe", "r+b"))
attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("c"))
attempt("procsys", lambda: open("/proc/sys/kernel/hostname", "w").write("x"))
attempt("sys", lambda: open("/sys/kernel/uevent_helper", "w").write("x"))
attempt("devmem", lambda: open("/dev/mem", "rb"))
attempt("tmp", lambda: open("/tmp/ok", "w").write("fine"))
attempt("out", lambda: open("/out/ok", "w").write("fine"))
print("runner-exists", os.path.exists("` + exec.RunnerPath + `"))
print("devs", ",".join(sorted(os.listdir("/dev"))))
`)})
	ro := []string{"EROFS", "EACCES", "EPERM", "ETXTBSY"}
	expectDenied(t, res, map[string][]string{
		"root": ro, "usr": ro, "etc": ro, "in": ro, "indir": ro, "infile": ro,
		"runner": ro, "selfexe": ro, "procsys": ro,
		"sysrq": append(ro, "ENOENT"), // masked, or absent without CONFIG_MAGIC_SYSRQ
		"sys":   {"ENOENT", "EROFS"}, "devmem": {"ENOENT"},
		"tmp": {"ALLOWED"}, "out": {"ALLOWED"},
	})
	out := string(res.Output)
	if !strings.Contains(out, "runner-exists True") {
		t.Errorf("runner not mounted:\n%s", out)
	}
	// /dev holds the five devices and the symlinks libcontainer adds.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "devs ") {
			for _, d := range strings.Split(strings.TrimPrefix(line, "devs "), ",") {
				if !contains([]string{"null", "zero", "full", "random", "urandom", "fd", "stdin", "stdout", "stderr", "core", "ptmx", "pts", "shm", "mqueue"}, d) {
					t.Errorf("unexpected /dev entry %q", d)
				}
			}
		}
	}
}

func TestOnlyStdioOpenAndCwd(t *testing.T) {
	res := run(t, exec.Spec{Args: []string{"/bin/sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; echo; pwd"}})
	// ls opens one descriptor (3) to read the listing itself; /bin/sh
	// execs ls from a fork and keeps only 0, 1, 2 open.
	if got, want := string(res.Output), "0 1 2 3 \n/tmp\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestForkBombStopped(t *testing.T) {
	res := run(t, exec.Spec{
		Limits: exec.Limits{Pids: 64, Wall: 30 * time.Second},
		Args: py(`
import os, time
while True:
    os.fork()
`)})
	if res.Reason != exec.ReasonProcs {
		t.Fatalf("want process-limit, got %s", explain(res))
	}
	if !strings.Contains(res.Message, "64 process limit") {
		t.Errorf("message %q", res.Message)
	}
}

func TestMemoryBombKilled(t *testing.T) {
	res := run(t, exec.Spec{
		Limits: exec.Limits{Memory: 64 << 20, Wall: 30 * time.Second},
		Args:   py(`b = bytearray(b"\x01") * (1 << 30); print(len(b))`),
	})
	if res.Reason != exec.ReasonMemory {
		t.Fatalf("want memory-limit, got %s", explain(res))
	}
	if res.ExitCode != 128+9 {
		t.Errorf("exit %d, want 137 (SIGKILL)", res.ExitCode)
	}
	if res.PeakMemory < 32<<20 || res.PeakMemory > 80<<20 {
		t.Errorf("peak memory %d, want about the 64 MiB limit", res.PeakMemory)
	}
}

func TestBusyLoopKilledAtWallLimit(t *testing.T) {
	res := run(t, exec.Spec{
		Limits: exec.Limits{Wall: time.Second},
		Args:   []string{"/bin/sh", "-c", "while :; do :; done"},
	})
	if res.Reason != exec.ReasonTime {
		t.Fatalf("want time-limit, got %s", explain(res))
	}
	if res.Wall < time.Second || res.Wall > 5*time.Second {
		t.Errorf("wall %s", res.Wall)
	}
	if res.CPU <= 0 {
		t.Errorf("cpu %s, want the spinning accounted", res.CPU)
	}
}

func TestBackgroundChildKilled(t *testing.T) {
	res := run(t, exec.Spec{Args: []string{"/bin/sh", "-c", "sleep 987654 & echo started"}})
	if res.Reason != exec.ReasonOK || string(res.Output) != "started\n" {
		t.Fatalf("got %s", explain(res))
	}
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		if b, err := os.ReadFile(p); err == nil && bytes.Equal(b, []byte("sleep\x00987654\x00")) {
			t.Errorf("background child survived: %s", p)
		}
	}
}

func TestOutputQuota(t *testing.T) {
	out := t.TempDir()
	res := run(t, exec.Spec{
		Output: out,
		Limits: exec.Limits{OutputBytes: 1 << 20},
		Args:   py(`open("/out/big", "wb").write(b"x" * (2 << 20))`),
	})
	if res.Reason != exec.ReasonOutput {
		t.Fatalf("want output-quota, got %s", explain(res))
	}
	if !bytes.Contains(res.Output, []byte("No space left on device")) {
		t.Errorf("node did not see ENOSPC:\n%s", res.Output)
	}
	if fi, err := os.Stat(filepath.Join(out, "big")); err != nil || fi.Size() > 1<<20 {
		t.Errorf("host copy of /out/big: %v %v", fi, err)
	}
}

func TestPrivilegeDenied(t *testing.T) {
	res := run(t, exec.Spec{Args: py(attempts + `
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    def f():
        if getattr(libc, name)(*args) == -1:
            e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return f
def syscall(nr, *args):
    def f():
        if libc.syscall(nr, *args) == -1:
            e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return f
attempt("mount", call("mount", b"none", b"/tmp", b"tmpfs", 0, None))
attempt("umount", call("umount2", b"/proc", 2))
attempt("unshare_user", call("unshare", 0x10000000))
attempt("unshare_net", call("unshare", 0x40000000))
attempt("clone_newuser", syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
attempt("ptrace", call("ptrace", 0, 0, 0, 0))
attempt("setuid", lambda: os.setuid(0))
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0))
fd = os.open("/dev/null", os.O_RDONLY)
attempt("finit_module", syscall(313, fd, b"", 0))
attempt("bpf", syscall(321, 0, 0, 0))
attempt("keyctl", syscall(250, 0, 0, 0))
attempt("chroot", lambda: os.chroot("/tmp"))
attempt("sethostname", call("sethostname", b"x", 1))
attempt("mknod", lambda: os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0)))
attempt("chown", lambda: os.chown("/tmp", 0, 0))
`)})
	expectDenied(t, res, map[string][]string{
		"mount": {"EPERM"}, "umount": {"EPERM"}, "unshare_user": {"EPERM"}, "unshare_net": {"EPERM"},
		"clone_newuser": {"EPERM"}, "ptrace": {"EPERM"}, "setuid": {"EPERM"},
		"raw": {"EPERM"}, "packet": {"EPERM"}, "finit_module": {"EPERM"}, "bpf": {"EPERM"},
		"keyctl": {"EPERM"}, "chroot": {"EPERM"}, "sethostname": {"EPERM"},
		"mknod": {"EPERM"}, "chown": {"EPERM"},
	})
}

func TestSetuidBinariesGainNothing(t *testing.T) {
	res := run(t, exec.Spec{Args: []string{"/bin/sh", "-c",
		"/usr/bin/su root -c 'id -u' </dev/null; echo su=$?; /usr/bin/passwd -S root </dev/null; echo passwd=$?; " +
			"/usr/bin/unshare -U -r id -u; echo unshare=$?; id -u"}})
	out := string(res.Output)
	for _, bad := range []string{"\n0\n", "su=0", "passwd=0", "unshare=0"} {
		if strings.Contains("\n"+out, bad) {
			t.Errorf("privilege gained (%q):\n%s", bad, out)
		}
	}
	if !strings.HasSuffix(out, "65534\n") {
		t.Errorf("want to end as 65534:\n%s", out)
	}
}

func TestSuccessReadsInputWritesOutput(t *testing.T) {
	in := filepath.Join(t.TempDir(), "orders.csv")
	mustWrite(t, in, "id,amount\n1,10\n2,32\n")
	out := t.TempDir()
	var live bytes.Buffer
	res := run(t, exec.Spec{
		Inputs: map[string]string{"orders": in},
		Output: out,
		Stdout: &live,
		Args: py(`
import os
rows = open("/in/orders").read().splitlines()[1:]
total = sum(int(r.split(",")[1]) for r in rows)
os.makedirs("/out/part", exist_ok=True)
open("/out/part/total.csv", "w").write("total\n%d\n" % total)
print("wrote", total)
`)})
	if res.Reason != exec.ReasonOK || res.ExitCode != 0 {
		t.Fatalf("got %s", explain(res))
	}
	got, err := os.ReadFile(filepath.Join(out, "part", "total.csv"))
	if err != nil || string(got) != "total\n42\n" {
		t.Errorf("host output: %q %v", got, err)
	}
	if string(res.Output) != "wrote 42\n" || live.String() != "wrote 42\n" {
		t.Errorf("output %q live %q", res.Output, live.String())
	}
	if res.Wall <= 0 || res.CPU <= 0 || res.PeakMemory <= 0 || res.BytesWritten <= 0 {
		t.Errorf("usage figures: wall=%s cpu=%s peak=%d written=%d", res.Wall, res.CPU, res.PeakMemory, res.BytesWritten)
	}
}

func TestNonZeroExitAndMissingCommand(t *testing.T) {
	res := run(t, exec.Spec{Args: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}})
	if res.Reason != exec.ReasonExit || res.ExitCode != 3 || string(res.Output) != "oops\n" {
		t.Errorf("got %s", explain(res))
	}
	res = run(t, exec.Spec{Args: []string{"no-such-tool"}})
	if res.Reason != exec.ReasonExit || res.ExitCode != 127 || !strings.Contains(string(res.Output), "no-such-tool: command not found") {
		t.Errorf("got %s", explain(res))
	}
}

func TestBadSpec(t *testing.T) {
	s := sandboxes(t)
	private := t.TempDir() // 0700: nobody cannot read it
	os.Chmod(private, 0o700)
	for _, spec := range []exec.Spec{
		{ID: "ok", Args: []string{"/bin/true"}, Inputs: map[string]string{"p": private}},
		{ID: "../x", Args: []string{"/bin/true"}},
		{ID: "ok", Args: nil},
		{ID: "ok", Args: []string{"/bin/true"}, Inputs: map[string]string{"a/b": "/etc"}},
		{ID: "ok", Args: []string{"/bin/true"}, Inputs: map[string]string{"a": "relative"}},
		{ID: "ok", Args: []string{"/bin/true"}, Runtime: "nope"},
		// NUL would split an entry in two on the shim's spec pipe.
		{ID: "ok", Args: []string{"/bin/sh", "-c", "echo hi\x00INJECTED=1"}},
		{ID: "ok", Args: []string{"/bin/true"}, Env: []string{"A=1\x00B=2"}},
	} {
		if _, err := s.Run(context.Background(), spec); err == nil {
			t.Errorf("spec %+v accepted", spec)
		}
	}
}

func TestCancelKillsNode(t *testing.T) {
	s := sandboxes(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err := s.Run(ctx, exec.Spec{ID: "cancel", Args: []string{"/bin/sleep", "100"}, Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != exec.ReasonAborted {
		t.Errorf("got %s", explain(res))
	}
	assertNoLeftovers(t, "weir-cancel")
}

// TestSweepAfterCrash builds a second Sandboxes on the state dir of a first
// one while a node runs, as a restarted server would after a crash: New must
// kill the node and leave nothing behind.
func TestSweepAfterCrash(t *testing.T) {
	dir := t.TempDir()
	// No sandbox pool: this first server lives on, and its pool would
	// build again behind the sweep (TestPoolCrash kills a server that
	// has one).
	first, err := exec.New(exec.Config{StateDir: dir, SandboxPool: -1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *exec.Result, 1)
	go func() {
		res, _ := first.Run(context.Background(), exec.Spec{ID: "crashed", Args: []string{"/bin/sleep", "100"}})
		done <- res
	}()
	// Wait for the container to be running.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ents, _ := os.ReadDir(filepath.Join(dir, "containers")); len(ents) > 0 {
			if m, _ := filepath.Glob("/proc/[0-9]*/cmdline"); len(m) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("container never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	second, err := exec.New(exec.Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.Reason == exec.ReasonOK {
			t.Errorf("swept node reported ok: %s", explain(res))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("swept node still running")
	}
	mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
	if strings.Contains(string(mi), dir+"/") {
		t.Errorf("mount left under %s", dir)
	}
	second.Close()
	first.Close()
	if left := cgroupParents(t, cgroupPrefix(dir)); len(left) > 0 {
		t.Errorf("cgroups left after Close: %v", left)
	}
}

// TestConcurrentSandboxes runs 8 nodes at once, twice over: every one must
// succeed and see only its own input and output.
func TestConcurrentSandboxes(t *testing.T) {
	s := sandboxes(t)
	const n = 8
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				in := filepath.Join(t.TempDir(), "in.txt")
				os.WriteFile(in, []byte(fmt.Sprint(i)), 0o644)
				out := t.TempDir()
				id := fmt.Sprintf("conc-%d-%d", round, i)
				res, err := s.Run(context.Background(), exec.Spec{ID: id, Env: []string{"PATH=/bin"},
					Inputs: map[string]string{"n": in}, Output: out,
					Args: []string{"/bin/sh", "-c", "cat /in/n > /out/n; ls /in"}})
				if err != nil {
					errs <- err.Error()
					return
				}
				if res.Reason != exec.ReasonOK || string(res.Output) != "n\n" {
					errs <- id + ": " + explain(res)
					return
				}
				if b, _ := os.ReadFile(filepath.Join(out, "n")); string(b) != fmt.Sprint(i) {
					errs <- fmt.Sprintf("%s: output %q", id, b)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
	assertNoLeftovers(t, "weir-conc-0-0")
}

// TestRunnerExecutes runs the mounted weir binary (here: this test binary)
// inside the sandbox, as SQL nodes do.
func TestRunnerExecutes(t *testing.T) {
	res := run(t, exec.Spec{Weir: true, Args: []string{exec.RunnerPath, "-test.list", "^TestRunnerExecutes$"}})
	if res.Reason != exec.ReasonOK || string(res.Output) != "TestRunnerExecutes\n" {
		t.Errorf("got %s", explain(res))
	}
}

// TestOutputCollectionSafe: what a node leaves in /out cannot keep a
// setuid bit on the host; its dirs and files are copied as they are (the
// refusals are in TestOutputRefused).
func TestOutputCollectionSafe(t *testing.T) {
	out := t.TempDir()
	res := run(t, exec.Spec{Output: out, Args: []string{"/bin/sh", "-c",
		"echo x > /out/suid; chmod 4755 /out/suid; mkdir /out/d; echo y > /out/d/f"}})
	if res.Reason != exec.ReasonOK {
		t.Fatalf("got %s", explain(res))
	}
	if fi, err := os.Stat(filepath.Join(out, "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("suid: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "d", "f")); string(b) != "y\n" {
		t.Errorf("d/f = %q", b)
	}
}

// TestUserNamespace: where the kernel allows one, the node's ids are
// unprivileged on the host (container 0-65535 = host 1048576-...).
func TestUserNamespace(t *testing.T) {
	res := run(t, exec.Spec{Args: []string{"/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map | tr -s ' '; id -u"}})
	want := " 0 1048576 65536\n 0 1048576 65536\n65534\n"
	if b, _ := os.ReadFile("/proc/sys/user/max_user_namespaces"); strings.TrimSpace(string(b)) == "0" {
		want = " 0 0 4294967295\n 0 0 4294967295\n65534\n"
	}
	if got := string(res.Output); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
