package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile nodes: what a model's own code can do to the server that runs
// it. Node results travel on a channel the model cannot write, /out is
// checked before the server copies a byte of it, and a node dies with the
// server that started it.

// pipelineRepo is a work repo on main with files (path -> content)
// committed.
func pipelineRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", "-b", "main", dir)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "pipeline")
	return dir
}

// token is a random lower-case name part, to find a test's own processes.
func token(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// procsWith lists the pids of the processes whose command line contains
// tok.
func procsWith(tok string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), tok) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// asyncPush is a git push running in the background.
type asyncPush struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// startPush starts "git push url ref" in dir.
func startPush(t *testing.T, dir, url, ref string) *asyncPush {
	t.Helper()
	cmd := exec.Command("git", "push", url, ref)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	p := &asyncPush{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// pidsCgroup is the pids-controller cgroup dir of pid ("" if unknown).
func pidsCgroup(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "pids" || strings.Contains(","+parts[1]+",", ",pids,"):
			return filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
				return filepath.Join("/sys/fs/cgroup", parts[2])
			}
		}
	}
	return ""
}

// TestNodeDiesWithServer kills the server with SIGKILL while a node
// sleeps: the node's processes are gone soon after, without waiting for
// the next start, and its cgroup holds no process.
func TestNodeDiesWithServer(t *testing.T) {
	needSandboxes(t)
	tok := token(t)
	s := startWeir(t, t.TempDir())
	dir := pipelineRepo(t, map[string]string{
		"models/sleepy_" + tok + ".py": "# weir: outputs = main.sleepy\nimport time\nprint('sleeping', flush=True)\ntime.sleep(600)\n",
	})
	t.Cleanup(func() {
		// Whatever the outcome: no sleeper of this test survives it, and
		// a server killed by it starts once more to sweep its sandboxes.
		for _, pid := range procsWith("sleepy_" + tok) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if s.cmd == nil {
			s.start()
		}
	})
	push := startPush(t, dir, s.URL("sleepy"), "main")
	var pids []int
	deadline := time.Now().Add(60 * time.Second)
	for {
		pids = procsWith("sleepy_" + tok)
		if len(pids) >= 2 { // the runner and the script
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not start; push so far:\n%s", push.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cg := pidsCgroup(pids[0])
	if cg == "" {
		t.Fatalf("no pids cgroup for node pid %d", pids[0])
	}
	s.Kill()
	push.cmd.Wait()
	// An outcome, not a timing: the bound is far above what the kernel
	// needs to deliver a parent-death signal.
	deadline = time.Now().Add(20 * time.Second)
	for len(procsWith("sleepy_"+tok)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("node processes %v outlived the server killed with SIGKILL", procsWith("sleepy_"+tok))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err == nil && strings.TrimSpace(string(b)) != "" {
		t.Fatalf("cgroup %s still holds processes: %s", cg, b)
	}
	// The next start sweeps the dead sandbox's cgroup away.
	s.Restart()
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s of the dead sandbox is still there after a restart: %v", cg, err)
	}
}
