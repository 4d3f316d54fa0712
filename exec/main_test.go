package exec_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/weir-dev/weir/exec"
)

// TestMain lets the test binary act as the container init and the
// in-sandbox shim, as the weir binary does, and removes the shared state
// dir at the end.
func TestMain(m *testing.M) {
	exec.Init()
	if os.Getenv("WEIR_EXEC_TEST_PROBE") != "" {
		probe() // the test binary as a runner inside a sandbox
		return
	}
	if dir := os.Getenv("WEIR_EXEC_TEST_CRASHER"); dir != "" {
		crasher(dir) // the test binary as a server about to be killed
		return
	}
	code := m.Run()
	if sb != nil {
		sb.Close()
	}
	if stateDir != "" {
		os.RemoveAll(stateDir)
	}
	os.Exit(code)
}

// testRuntime is the runtime run() uses for a spec that names none:
// TestIsolationOnBuiltRuntime sets it to run the isolation tests again in
// a built runtime.
var testRuntime string

var (
	sbOnce   sync.Once
	sb       *exec.Sandboxes
	sbErr    error
	stateDir string
)

// sandboxes is the Sandboxes every test shares (one state dir).
func sandboxes(t *testing.T) *exec.Sandboxes {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	sbOnce.Do(func() {
		stateDir, sbErr = os.MkdirTemp("", "weir-exec-test-")
		if sbErr != nil {
			return
		}
		cfg := exec.Config{StateDir: stateDir}
		if os.Getenv("WEIR_EXEC_TEST_POOL") == "off" {
			cfg.SandboxPool = -1
		}
		if image := os.Getenv("WEIR_TEST_RUNTIME_PANDAS"); image != "" {
			cfg.Runtimes = map[string]string{"pandas": image}
		}
		sb, sbErr = exec.New(cfg)
	})
	if sbErr != nil {
		t.Fatalf("exec.New: %v", sbErr)
	}
	return sb
}

// run runs spec (ID defaulting to the test's name) and checks that nothing
// is left behind afterwards.
func run(t *testing.T, spec exec.Spec) *exec.Result {
	t.Helper()
	s := sandboxes(t)
	if spec.ID == "" {
		spec.ID = strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
	}
	if spec.Env == nil {
		spec.Env = []string{"PATH=/usr/bin:/bin"}
	}
	if spec.Runtime == "" {
		spec.Runtime = testRuntime
	}
	pooled := usePool() && exec.WaitPool(s, spec.Runtime, spec.Weir)
	res, err := s.Run(context.Background(), spec)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Reason == exec.ReasonSetup {
		t.Fatalf("setup failed: %s\n%s", res.Message, res.Output)
	}
	if res.Pooled != pooled {
		t.Errorf("Result.Pooled = %v, want %v (a sandbox was parked in the pool)", res.Pooled, pooled)
	}
	assertNoLeftovers(t, "weir-"+spec.ID)
	return res
}

// usePool says the tests run in pooled sandboxes (the default; set
// WEIR_EXEC_TEST_POOL=off to run them all in sandboxes built for them).
func usePool() bool { return os.Getenv("WEIR_EXEC_TEST_POOL") != "off" }

// py is argv running a Python one-liner with the host's Debian python.
func py(code string) []string { return []string{"/usr/bin/python3", "-c", code} }

// assertNoLeftovers checks there is no mount under the state dir, no
// container state or run dir, no process in a sandbox cgroup, and no
// cgroup beyond the pool of empty ones kept ready, but for what the
// sandbox pool holds (built or being built, bound to no node).
func assertNoLeftovers(t *testing.T, cid string) {
	t.Helper()
	// Everything is listed before the pool is asked what it holds: what
	// the pool starts building after its answer is not in the lists.
	var found []leftover
	mi, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], stateDir+"/") {
			rel := strings.TrimPrefix(f[4], stateDir+"/runs/")
			found = append(found, leftover{what: "mount " + f[4], cid: strings.Split(rel, "/")[0]})
		}
	}
	for _, d := range []string{"containers", "runs"} {
		ents, _ := os.ReadDir(filepath.Join(stateDir, d))
		for _, e := range ents {
			found = append(found, leftover{what: d + "/" + e.Name(), cid: e.Name()})
		}
	}
	prefix := cgroupPrefix(stateDir)
	cgroupCount := map[string]int{}
	for _, dir := range cgroupParents(t, prefix) {
		subs, _ := os.ReadDir(dir)
		for _, sub := range subs {
			if !sub.IsDir() {
				continue
			}
			cgroupCount[dir]++
			if b, _ := os.ReadFile(filepath.Join(dir, sub.Name(), "cgroup.procs")); len(bytes.TrimSpace(b)) > 0 {
				found = append(found, leftover{what: fmt.Sprintf("processes in cgroup %s/%s: %s", dir, sub.Name(), b), cgroup: sub.Name()})
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if i := bytes.Index(b, []byte("/"+prefix+"/")); err == nil && i >= 0 {
			cg := string(b[i+len(prefix)+2:])
			cg = cg[:strings.IndexAny(cg+"\n", "/\n")]
			found = append(found, leftover{what: "process " + filepath.Dir(p) + " in a sandbox cgroup", cgroup: cg})
		}
	}
	cids, cgroups := exec.PoolOwned(sandboxes(t))
	for _, l := range found {
		if !cids[l.cid] && !cgroups[l.cgroup] {
			t.Errorf("leftover %s (after %s)", l.what, cid)
		}
	}
	for dir, n := range cgroupCount {
		if n > 9+len(cgroups) { // 8 ready in the cgroup pool, 1 in the filler's hands, the sandbox pool's
			t.Errorf("%d cgroups under %s, more than the pool of 8 (+1) and the %d of the sandbox pool", n, dir, len(cgroups))
		}
	}
}

// leftover is something found under the state dir or the cgroup prefix,
// and the container or cgroup it belongs to.
type leftover struct{ what, cid, cgroup string }

// cgroupPrefix mirrors how exec names the cgroup parent of a state dir.
func cgroupPrefix(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return "weir-exec-" + hex.EncodeToString(sum[:4])
}

// cgroupParents are the prefix dirs under this process's cgroups.
func cgroupParents(t *testing.T, prefix string) []string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[1] == "" || strings.HasPrefix(parts[1], "name=") {
			continue
		}
		d := filepath.Join("/sys/fs/cgroup", parts[1], parts[2], prefix)
		if _, err := os.Stat(d); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// attempts is a Python prelude: attempt(name, f) prints "name ERRNO" when f
// raises OSError and "name ALLOWED" when it does not.
const attempts = `
import errno, os, socket, sys, ctypes
def attempt(name, f):
    try:
        f()
        print(name, "ALLOWED", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, "E%s" % e.errno), flush=True)
`

// outcomes parses "name ERRNO" lines.
func outcomes(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// expectDenied asserts that every named attempt failed with one of the
// allowed errnos.
func expectDenied(t *testing.T, res *exec.Result, want map[string][]string) {
	t.Helper()
	got := outcomes(res.Output)
	for name, errs := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: no outcome in output:\n%s", name, res.Output)
			continue
		}
		if !contains(errs, g) {
			t.Errorf("%s: got %s, want one of %v", name, g, errs)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func explain(res *exec.Result) string {
	return fmt.Sprintf("reason=%s exit=%d msg=%q output:\n%s", res.Reason, res.ExitCode, res.Message, res.Output)
}
