package exec_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/exec"
	"golang.org/x/sys/unix"
)

// pooledRun runs spec in a sandbox taken from the pool (it waits for one to
// be parked) and fails unless it was.
func pooledRun(t *testing.T, s *exec.Sandboxes, spec exec.Spec) *exec.Result {
	t.Helper()
	if !exec.WaitPool(s, spec.Runtime, spec.Weir) {
		t.Fatal("the pool never had a sandbox ready")
	}
	res, err := s.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Reason == exec.ReasonSetup {
		t.Fatalf("setup failed: %s\n%s", res.Message, res.Output)
	}
	if !res.Pooled {
		t.Fatalf("%s did not run in a pooled sandbox", spec.ID)
	}
	return res
}

// TestPoolNothingCarriesOver runs two nodes in a row in pooled sandboxes:
// the first leaves files in /tmp and /out, a background process, its env
// and its inputs; the second, in the next sandbox of the same pool, sees
// none of them, only its own input, read-only.
func TestPoolNothingCarriesOver(t *testing.T) {
	if !usePool() {
		t.Skip("WEIR_EXEC_TEST_POOL=off")
	}
	s := sandboxes(t)
	in1, in2 := t.TempDir(), t.TempDir()
	os.Chmod(in1, 0o755)
	os.Chmod(in2, 0o755)
	mustWrite(t, filepath.Join(in1, "first.txt"), "first's secret\n")
	mustWrite(t, filepath.Join(in2, "second.txt"), "second's data\n")
	first := pooledRun(t, s, exec.Spec{ID: "carry-first", Inputs: map[string]string{"one": in1},
		Env:  []string{"PATH=/usr/bin:/bin", "FIRST_SECRET=s3cr3t"},
		Args: []string{"/bin/sh", "-c", `echo left > /tmp/first-tmp; echo left > /out/first-out; (sleep 1000 &); cat /in/one/first.txt`}})
	if first.Reason != exec.ReasonOK || !strings.Contains(string(first.Output), "first's secret") {
		t.Fatalf("first node: %s", explain(first))
	}
	second := pooledRun(t, s, exec.Spec{ID: "carry-second", Inputs: map[string]string{"two": in2},
		Env: []string{"PATH=/usr/bin:/bin"},
		Args: []string{"/bin/sh", "-c", `
echo "in: $(ls /in | tr '\n' ' ')"
echo "tmp: $(ls -A /tmp | tr '\n' ' ')"
echo "out: $(ls -A /out | tr '\n' ' ')"
echo "procs: $(ls /proc | grep -c '^[0-9]')"
echo "sleepers: $(for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < $f; echo; done 2>/dev/null | grep -c 'sleep 10[0]0')"
echo "env: $(env | grep -c FIRST_SECRET)"
cat /in/two/second.txt
cat /in/one/first.txt 2>&1
echo x > /in/two/new 2>&1 && echo "input write ALLOWED"
echo x > /in/two/second.txt 2>&1 && echo "input overwrite ALLOWED"
touch /in/new 2>&1 && echo "in write ALLOWED"
true`}})
	out := string(second.Output)
	if second.Reason != exec.ReasonOK {
		t.Fatalf("second node: %s", explain(second))
	}
	for _, want := range []string{"in: two \n", "tmp: \n", "out: \n", "sleepers: 0\n", "env: 0\n", "second's data\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("second node: want %q in its output:\n%s", want, out)
		}
	}
	for _, bad := range []string{"first's secret", "ALLOWED"} {
		if strings.Contains(out, bad) {
			t.Errorf("second node saw or did %q:\n%s", bad, out)
		}
	}
	// Its own processes: sh, and what sh runs for "ls /proc" (at most a
	// few); the first node's sleeper is not among them.
	if !strings.Contains(out, "procs: ") {
		t.Errorf("no process count:\n%s", out)
	}
	assertNoLeftovers(t, "carry-second")
}

// TestPoolLimitsApply: a pooled sandbox is built with the server's
// defaults; the node's own limits replace them when it is bound.
func TestPoolLimitsApply(t *testing.T) {
	if !usePool() {
		t.Skip("WEIR_EXEC_TEST_POOL=off")
	}
	s := sandboxes(t)
	res := pooledRun(t, s, exec.Spec{ID: "pool-limits", Env: []string{"PATH=/usr/bin:/bin"},
		Limits: exec.Limits{OpenFiles: 99, TmpBytes: 3 << 20, OutputBytes: 2 << 20, Memory: 96 << 20, CPU: 0.5},
		Args: []string{"/bin/sh", "-c", `
echo "nofile $(ulimit -n)"
echo "nice $(nice)"
df -k /tmp /out | tail -n 2 | awk '{print "size " $6 " " $2}'
head -c 3000000 /dev/zero > /out/big 2>/dev/null || echo "out full"
true`}})
	out := string(res.Output)
	// The pool builds at a lower priority; the node gets the server's.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nofile 99\n", "size /tmp 3072\n", "size /out 2048\n", "out full\n", fmt.Sprintf("nice %d\n", 20-prio)} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	// More open files than the pool's default (1024): the pooled sandbox
	// holds the server's hard limit and is lowered to the node's, so this
	// needs no CAP_SYS_RESOURCE (weir query asks for more than 1024).
	var hard unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &hard); err == nil && hard.Max >= 4096 {
		more := pooledRun(t, s, exec.Spec{ID: "pool-nofile", Env: []string{"PATH=/usr/bin:/bin"},
			Limits: exec.Limits{OpenFiles: 4096}, Args: []string{"/bin/sh", "-c", "ulimit -n; ulimit -Hn"}})
		if string(more.Output) != "4096\n4096\n" {
			t.Errorf("open files raised to 4096: %s", explain(more))
		}
	}
	pids := pooledRun(t, s, exec.Spec{ID: "pool-pids", Env: []string{"PATH=/usr/bin:/bin"},
		Limits: exec.Limits{Pids: 12},
		Args: py(`import os, time
n = 0
try:
    while n < 100:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        n += 1
except OSError as e:
    print("fork failed after", n, flush=True)
`)})
	var forked int
	if _, err := fmt.Sscanf(string(pids.Output), "fork failed after %d", &forked); err != nil || forked >= 12 {
		t.Errorf("forks under a limit of 12 processes: %s", explain(pids))
	}
	mem := pooledRun(t, s, exec.Spec{ID: "pool-memory", Env: []string{"PATH=/usr/bin:/bin"},
		Limits: exec.Limits{Memory: 64 << 20, Wall: 30 * time.Second},
		Args:   py("b = []\nwhile True: b.append(bytearray(16 << 20))")})
	if mem.Reason != exec.ReasonMemory {
		t.Errorf("memory bomb in a pooled sandbox: %s", explain(mem))
	}
	wall := pooledRun(t, s, exec.Spec{ID: "pool-wall", Env: []string{"PATH=/usr/bin:/bin"},
		Limits: exec.Limits{Wall: 300 * time.Millisecond}, Args: []string{"/bin/sleep", "30"}})
	if wall.Reason != exec.ReasonTime {
		t.Errorf("sleeper in a pooled sandbox: %s", explain(wall))
	}
	assertNoLeftovers(t, "pool-wall")
}

// TestPoolRefillAndClose: the pool builds a new sandbox after one is taken,
// a parked sandbox holds no process outside its cgroup, and Close leaves
// no container, mount, run dir, cgroup or process behind.
func TestPoolRefillAndClose(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o711)
	s, err := exec.New(exec.Config{StateDir: dir, SandboxPool: 2})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	s.Warm("", false)
	waitOwned := func(n int) map[string]bool {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if cids, _ := exec.PoolOwned(s); len(cids) == n && exec.Parked(s) == n {
				return cids
			}
		}
		cids, _ := exec.PoolOwned(s)
		t.Fatalf("pool holds %d sandboxes, want %d", len(cids), n)
		return nil
	}
	before := waitOwned(2)
	for i := 0; i < 3; i++ {
		exec.WaitPool(s, "", false)
		res, err := s.Run(context.Background(), exec.Spec{ID: fmt.Sprintf("refill-%d", i), Args: []string{"/bin/true"}, Env: []string{}})
		if err != nil || res.Reason != exec.ReasonOK || !res.Pooled {
			t.Fatalf("run %d: %v %+v", i, err, res)
		}
	}
	after := waitOwned(2)
	for cid := range after {
		if before[cid] {
			// Two of the first three are gone: at most one can remain.
			delete(before, cid)
		}
	}
	if len(before) != 2 {
		t.Errorf("the pool did not refill with new sandboxes: before and after share %d", 2-len(before))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	assertClean(t, dir)
}

// countParked counts the parked sandboxes' containers under dir.
func countParked(dir string) int {
	ents, _ := os.ReadDir(filepath.Join(dir, "containers"))
	return len(ents)
}

// assertClean checks nothing of the Sandboxes on state dir dir is left:
// no mount under it, no container state or run dir, no cgroup.
func assertClean(t *testing.T, dir string) {
	t.Helper()
	if n := countMounts(dir); n > 0 {
		t.Errorf("%d mounts left under %s", n, dir)
	}
	for _, d := range []string{"containers", "runs"} {
		ents, _ := os.ReadDir(filepath.Join(dir, d))
		for _, e := range ents {
			t.Errorf("left %s/%s", d, e.Name())
		}
	}
	if left := cgroupParents(t, cgroupPrefix(dir)); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

// TestPoolCrash kills (SIGKILL) a server process whose pool has sandboxes
// parked while a node runs: its sandboxes die with it, and New on the same
// state dir (a restart) sweeps everything they left.
func TestPoolCrash(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o711)
	cmd := osexec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WEIR_EXEC_TEST_CRASHER="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("crasher said %q (%v)", line, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "containers")); len(ents) < 3 {
		t.Fatalf("%d sandboxes under the crasher's state dir, want the running one and 2 parked", len(ents))
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Their inits die with the server's threads (parent-death signal).
	prefix := cgroupPrefix(dir)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := 0
		procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
		for _, p := range procs {
			if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "/"+prefix+"/") {
				n++
			}
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes of the killed server's sandboxes still alive", n)
		}
	}
	if n := countMounts(dir); n < 9 {
		t.Errorf("%d mounts of the killed server's 3 sandboxes before the sweep, want 9 (/in, /tmp, /out each)", n)
	}
	s, err := exec.New(exec.Config{StateDir: dir, SandboxPool: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertClean(t, dir)
}

func countMounts(dir string) int {
	mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
	return strings.Count(string(mi), " "+dir+"/")
}

// crasher is the server TestPoolCrash kills: a pool of 2 parked sandboxes
// and one node running.
func crasher(dir string) {
	s, err := exec.New(exec.Config{StateDir: dir, SandboxPool: 2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go s.Run(context.Background(), exec.Spec{ID: "crashing", Args: []string{"/bin/sleep", "1000"}, Env: []string{}})
	for {
		if cids, _ := exec.PoolOwned(s); len(cids) == 2 && countParked(dir) == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready")
	select {}
}
