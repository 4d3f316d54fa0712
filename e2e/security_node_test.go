package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	writeFiles(t, dir, files, "pipeline")
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
	push := pushAsync(t, dir, nil, s.URL("sleepy"), "main")
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
	killed := time.Now()
	// An outcome, not a timing: the bound is far above what the kernel
	// needs to deliver a parent-death signal.
	deadline = time.Now().Add(20 * time.Second)
	for {
		left := procsWith("sleepy_" + tok)
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		inCgroup := strings.Fields(string(b))
		if len(left) == 0 && len(inCgroup) == 0 {
			t.Logf("the node's processes and cgroup were empty %s after the server was reaped", time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node outlived the server killed with SIGKILL: processes %v, in its cgroup %s: %v", left, cg, inCgroup)
		}
		time.Sleep(100 * time.Millisecond)
	}
	push.cmd.Wait() // the push fails with the server gone
}

// pushLines are the lines of a push's output that the server sent
// ("remote: ..."), with git's padding trimmed.
func pushLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "remote: ") {
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	return lines
}

// TestNodeForgesRowCounts: a Python model that prints the runner's old
// row-count line and imitations of the server's progress lines, ends its
// output with an unterminated line (so that the runner's own line after it
// is garbled), and writes 3 rows: the push reports 3 rows, the data
// pointer says 3 rows, and nothing the model printed reaches the pusher.
func TestNodeForgesRowCounts(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := pipelineRepo(t, map[string]string{
		"models/fake.py": `# weir: outputs = main.fake
import os, sys
print("weir-rows main.fake 999999")
print("weir: [2/2] expect everything ok")
print("expectation failed: 0 failing rows")
sys.stdout.write("\x1b[2K\rweir: main advanced: code 1234567, data 89abcde\n")
with open(os.environ["WEIR_OUT_MAIN_FAKE"], "w") as f:
    f.write("n\n1\n2\n3\n")
# No newline: whatever the runner prints next lands on this line.
sys.stdout.write("x")
`,
	})
	out := git(t, dir, "push", s.URL("forge"), "main")
	if !regexp.MustCompile(`(?m)^remote: weir: \[1/1\] main\.fake +python +3 rows`).MatchString(out) {
		t.Errorf("push does not report the 3 rows the model wrote:\n%s", out)
	}
	for _, l := range pushLines(out) {
		if strings.Contains(l, "999") || strings.Contains(l, "89abcde") || strings.Contains(l, "expect everything") {
			t.Errorf("the model's own output reached the pusher as %q", l)
		}
	}
	git(t, dir, "fetch", "-q", s.URL("forge"), "refs/data/main:refs/data/main")
	if ptr := git(t, dir, "show", "refs/data/main:tables/main/fake"); !strings.Contains(ptr, "\nrows 3\n") {
		t.Errorf("data pointer:\n%s", ptr)
	}
	if got := query(t, s, "forge", "main", "SELECT count(*) AS n FROM main.fake"); got != "n\n3\n" {
		t.Errorf("table holds %q", got)
	}
}

// TestNodeOutputCannotPassForServer: a failing model whose last lines
// imitate the server's progress, with terminal escapes, a carriage return
// and a bidi override to hide the prefix: every line it printed reaches
// the pusher after "weir:   | ", with those characters shown escaped.
func TestNodeOutputCannotPassForServer(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := pipelineRepo(t, map[string]string{
		"models/spoof.py": `# weir: outputs = main.spoof
import sys
print("weir: main advanced: code 1234567, data 89abcde")
sys.stdout.write("\x1b[1A\x1b[2K\rweir: main advanced: code 7654321, data edcba98\n")
sys.stdout.write("\u202eweir: main advanced\u202c\b\b\b\b\n")
sys.exit(1)
`,
	})
	out := gitFails(t, dir, "push", s.URL("spoof"), "main")
	if strings.ContainsAny(out, "\x1b\r\b\u202e") {
		t.Errorf("the push output carries the model's control characters: %q", out)
	}
	for _, l := range pushLines(out) {
		if strings.HasPrefix(l, "remote: weir: main advanced") {
			t.Errorf("a line of the model reads as the server's: %q", l)
		}
	}
	for _, want := range []string{
		"remote: weir:   | weir: main advanced: code 1234567, data 89abcde",
		`remote: weir:   | \x1b[1A\x1b[2K\x0dweir: main advanced: code 7654321, data edcba98`,
		`remote: weir:   | \u202eweir: main advanced\u202c\x08\x08\x08\x08`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the model's line is not shown, escaped, after the prefix: want %q in\n%s", want, out)
		}
	}
	if refs := lsRemote(t, s.URL("spoof")); refs["refs/heads/main"] != "" {
		t.Fatalf("main exists after a failed run: %v", refs)
	}
}

// TestExpectationCountIsTheRunners: an expectation whose failing rows say
// "0 failing rows" is refused with its true count.
func TestExpectationCountIsTheRunners(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	dir := pipelineRepo(t, map[string]string{
		"seeds/one.csv":           "n\n1\n",
		"expectations/forged.sql": "SELECT '0 failing rows' AS note FROM range(12)",
	})
	out := gitFails(t, dir, "push", s.URL("count"), "main")
	if !strings.Contains(out, "(weir: expect forged failed: 12 failing rows; run r-") {
		t.Fatalf("refusal does not give the true count:\n%s", out)
	}
}

// TestNodeResultChannelOutOfReach: a Python model tries every way to the
// runner's result descriptor (inherited fd 3, /proc/<runner>/fd/3, the
// runner's memory, a link planted where the runner writes its output, a
// background process outliving the script) to make a failing expectation
// pass: each attempt fails, the model's own result stands (it succeeds
// with its true row count), and the expectation still refuses the push.
func TestNodeResultChannelOutOfReach(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	ok := `{"status":"ok"}\n`
	dir := pipelineRepo(t, map[string]string{
		"models/x.py": `# weir: outputs = main.x
import errno, os, sys, time
OK = b'` + ok + `'
def attempt(name, f):
    try:
        f()
        print(name, "ALLOWED", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno), flush=True)
def write_path(p):
    fd = os.open(p, os.O_WRONLY)
    os.write(fd, OK)
attempt("inherited-fd3", lambda: os.write(3, OK))
attempt("dev-fd3", lambda: write_path("/dev/fd/3"))
attempt("runner-fd3", lambda: write_path("/proc/%d/fd/3" % os.getppid()))
attempt("pid1-fd3", lambda: write_path("/proc/1/fd/3"))
attempt("runner-mem", lambda: os.open("/proc/1/mem", os.O_RDWR))
attempt("runner-fdinfo", lambda: os.listdir("/proc/1/fd"))
attempt("plant-link", lambda: os.symlink("/proc/1/fd/3", "/out/main.x.parquet"))
if os.fork() == 0:
    # Outlive the script: keep writing at the result and the output.
    os.setsid()
    for _ in range(2000):
        for p in ("/proc/1/fd/3", "/out/main.x.parquet"):
            try:
                fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(fd, OK)
                os.close(fd)
            except OSError:
                pass
        time.sleep(0.005)
    os._exit(0)
with open(os.environ["WEIR_OUT_MAIN_X"], "w") as f:
    f.write("v\n-1\n-2\n-3\n4\n")
`,
		"expectations/positive.sql": "SELECT v FROM main.x WHERE v <= 0",
	})
	out := gitFails(t, dir, "push", s.URL("channel"), "main")
	if !regexp.MustCompile(`(?m)^remote: weir: \[1/2\] main\.x +python +4 rows`).MatchString(out) {
		t.Errorf("the model did not succeed with its true rows:\n%s", out)
	}
	if !strings.Contains(out, "(weir: expect positive failed: 3 failing rows; run r-") {
		t.Fatalf("the failing expectation did not refuse the push:\n%s", out)
	}
	if refs := lsRemote(t, s.URL("channel")); refs["refs/heads/main"] != "" || refs["refs/data/main"] != "" {
		t.Fatalf("main exists after a refused push: %v", refs)
	}
	m := runRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no kept run in:\n%s", out)
	}
	git(t, dir, "fetch", "-q", s.URL("channel"), "refs/runs/*:refs/runs/*")
	log := git(t, dir, "show", "refs/runs/"+m[1]+"/log:log")
	for name, errs := range map[string][]string{
		"inherited-fd3": {"EBADF"},
		"dev-fd3":       {"ENOENT"},
		"runner-fd3":    {"EACCES", "EPERM"},
		"pid1-fd3":      {"EACCES", "EPERM"},
		"runner-mem":    {"EACCES", "EPERM"},
		"runner-fdinfo": {"EACCES", "EPERM"},
	} {
		got := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(log)
		if got == nil || !slices.Contains(errs, got[1]) {
			t.Errorf("%s: %v, want one of %v; run log:\n%s", name, got, errs, log)
		}
	}
}

// TestSQLCannotWriteTheResult: SQL that would write (COPY to the result
// descriptor or stdout) or read the result descriptor is refused before
// anything runs, and nothing moves.
func TestSQLCannotWriteTheResult(t *testing.T) {
	needSandboxes(t)
	s := startWeir(t, t.TempDir())
	for _, tc := range []struct{ name, file, sql string }{
		{"copy to the result fd", "models/m.sql", "COPY (SELECT '{\"status\":\"ok\"}' AS s) TO '/proc/self/fd/3' (FORMAT csv, HEADER false)"},
		{"copy to stdout", "models/m.sql", "COPY (SELECT 'weir-rows main.m 999' AS s) TO '/dev/stdout'"},
		{"select then copy", "models/m.sql", "SELECT 1 AS a; COPY (SELECT 1) TO '/proc/self/fd/3'"},
		{"expectation reads the fd", "expectations/e.sql", "SELECT * FROM read_text('/proc/self/fd/3') WHERE false"},
		{"expectation writes", "expectations/e.sql", "COPY (SELECT '{\"status\":\"ok\"}') TO '/proc/self/fd/3'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := pipelineRepo(t, map[string]string{"seeds/one.csv": "n\n1\n", tc.file: tc.sql})
			out := gitFails(t, dir, "push", s.URL("sql"), "main")
			if !strings.Contains(out, "(weir: plan refused: ") {
				t.Fatalf("not refused before running:\n%s", out)
			}
			if refs := lsRemote(t, s.URL("sql")); refs["refs/heads/main"] != "" {
				t.Fatalf("main exists: %v", refs)
			}
		})
	}
}

// diskUsage is the disk space (blocks) the files under dir take, but its
// Pebble database (whose WAL is preallocated at the first write).
func diskUsage(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		switch {
		case err != nil:
			return nil
		case fi.IsDir() && fi.Name() == "pebble":
			return filepath.SkipDir
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			n += st.Blocks * 512
		}
		return nil
	})
	return n
}

// watchGrowth samples diskUsage(dir) until the returned stop is called,
// and stop returns the largest growth it saw: the server deletes a run's
// staging when the run ends, so only a watch during the run sees what
// landed there.
func watchGrowth(t *testing.T, dir string) (stop func() int64) {
	t.Helper()
	base := diskUsage(dir)
	done, peak := make(chan struct{}), make(chan int64, 1)
	go func() {
		var most int64
		for {
			most = max(most, diskUsage(dir)-base)
			select {
			case <-done:
				peak <- max(most, diskUsage(dir)-base)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() int64 { close(done); return <-peak }
}

// TestSparseOutputRefused: a model that leaves a 10 GiB sparse file (or
// a link) in /out is refused with the reason, and nothing large lands on
// the host: the server's data dir (where runs stage /out) does not grow.
func TestSparseOutputRefused(t *testing.T) {
	needSandboxes(t)
	data := t.TempDir()
	s := startWeir(t, data)
	for _, tc := range []struct{ name, code, reason string }{
		{"sparse", "with open('/out/big', 'wb') as f:\n    f.truncate(10 << 30)\n",
			"weir: main.x failed: output refused, nothing of /out was kept: /out/big is a sparse file (10 GiB apparent size, 0 bytes written); leave only regular files and directories in /out"},
		{"symlink", "os.symlink('/etc/shadow', '/out/link')\n",
			"weir: main.x failed: output refused, nothing of /out was kept: /out/link is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := pipelineRepo(t, map[string]string{
				"models/x.py": "# weir: outputs = main.x\nimport os\n" + tc.code +
					"with open(os.environ['WEIR_OUT_MAIN_X'], 'w') as f:\n    f.write('v\\n1\\n')\n",
			})
			stop := watchGrowth(t, data)
			out := gitFails(t, dir, "push", s.URL("sparse"), "main")
			grown := stop()
			t.Logf("the data dir grew by up to %d bytes during the run", grown)
			if !strings.Contains(out, "("+tc.reason) {
				t.Fatalf("push output lacks %q:\n%s", tc.reason, out)
			}
			if refs := lsRemote(t, s.URL("sparse")); refs["refs/heads/main"] != "" {
				t.Fatalf("main exists: %v", refs)
			}
			if grown > 64<<20 {
				t.Fatalf("the data dir grew by up to %d bytes during the refused run", grown)
			}
		})
	}
}
