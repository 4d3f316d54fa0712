package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Shared by every test: built once in TestMain.
var (
	weirBin string // the weir binary under test
	sshKey  string // an ed25519 private key for the ssh client (its .pub next to it)
	gitHome string // HOME for every git run: a clean global config
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "weir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	weirBin = filepath.Join(dir, "weir")
	// As installed: weir and, next to it, the small sandbox init and node
	// runner that exec uses instead of re-running the whole weir binary.
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/weir", "./cmd/weir-node", "./exec/cmd/weir-sandbox-init")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/weir ./cmd/weir-node ./exec/cmd/weir-sandbox-init: %v\n%s", err, out)
		return 1
	}
	gitHome = filepath.Join(dir, "home")
	if err := os.MkdirAll(gitHome, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := "[user]\n\tname = E2E Tester\n\temail = e2e@weir.test\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n[protocol \"file\"]\n\tallow = always\n"
	if err := os.WriteFile(filepath.Join(gitHome, ".gitconfig"), []byte(cfg), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sshKey = filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e", "-f", sshKey).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: ssh-keygen: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// weirServer is one running "weir serve" on random loopback ports.
type weirServer struct {
	t        *testing.T
	Data     string
	HTTP     string // "http://127.0.0.1:PORT"
	SSHPort  string
	S3       string // "http://127.0.0.1:PORT" when a test started it (--s3 127.0.0.1:0)
	args     []string
	cmd      *exec.Cmd
	Log      *syncBuffer // the server's stderr (slog lines)
	waitDone chan struct{}
}

var listenLine = regexp.MustCompile(`^weir serve: (http|ssh|s3) (\S+)`)

// startWeir starts weir serve on data (created if missing) with extra
// flags and waits until both listeners are up. The S3 endpoint is off
// (--s3 "") unless args turn it on, as "--s3", "127.0.0.1:0" does (then
// S3 is its URL once it is up).
func startWeir(t *testing.T, data string, args ...string) *weirServer {
	t.Helper()
	s := &weirServer{t: t, Data: data, args: args}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *weirServer) start() {
	t := s.t
	t.Helper()
	all := append([]string{"serve", "--data", s.Data, "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0", "--s3", ""}, s.args...)
	cmd := exec.Command(weirBin, all...)
	s.Log = &syncBuffer{}
	cmd.Stderr = s.Log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	s.waitDone = make(chan struct{})
	found := make(chan [2]string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- [2]string{m[1], m[2]}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		cmd.Wait()
		close(s.waitDone)
	}()
	s.HTTP, s.SSHPort, s.S3 = "", "", ""
	wantS3 := false
	for i, a := range s.args {
		if a == "--s3" && i+1 < len(s.args) {
			wantS3 = s.args[i+1] != ""
		}
	}
	deadline := time.After(60 * time.Second)
	for s.HTTP == "" || s.SSHPort == "" || (wantS3 && s.S3 == "") {
		select {
		case f := <-found:
			u, err := url.Parse(strings.Replace(f[1], "<repo>.git", "x", 1))
			if err != nil {
				t.Fatalf("bad listen line %q", f[1])
			}
			switch f[0] {
			case "http":
				s.HTTP = "http://" + u.Host
			case "s3":
				s.S3 = f[1]
			default:
				s.SSHPort = u.Port()
			}
		case <-s.waitDone:
			t.Fatalf("weir serve exited at start:\n%s", s.Log.String())
		case <-deadline:
			t.Fatalf("weir serve did not start in 60s:\n%s", s.Log.String())
		}
	}
}

// Stop stops the server with SIGTERM (graceful) and waits.
func (s *weirServer) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waitDone:
	case <-time.After(30 * time.Second):
		// SIGQUIT makes the Go runtime print every goroutine's stack
		// into the log below: what the server was still waiting for.
		s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.waitDone:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.waitDone
		}
		s.t.Errorf("weir serve did not stop within 30s of SIGTERM (its goroutines, from SIGQUIT, end the log below)")
	}
	s.cmd = nil
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.Log.String())
	}
}

// Kill kills the server with SIGKILL and waits.
func (s *weirServer) Kill() {
	s.cmd.Process.Kill()
	<-s.waitDone
	s.cmd = nil
}

// Restart starts the server again on the same data directory (new ports).
func (s *weirServer) Restart() {
	if s.cmd != nil {
		s.Stop()
	}
	s.start()
}

// URL is the HTTP clone URL of repo.
func (s *weirServer) URL(repo string) string { return s.HTTP + "/" + repo + ".git" }

// SSHURL is the SSH clone URL of repo.
func (s *weirServer) SSHURL(repo string) string {
	return "ssh://git@127.0.0.1:" + s.SSHPort + "/" + repo + ".git"
}

// sshCommand is GIT_SSH_COMMAND for a client key.
func sshCommand(key string) string {
	return "ssh -F /dev/null -i " + key + " -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
}

// gitEnv is the environment of every git run: a clean HOME, no prompts,
// the test key for ssh, plus extra.
func gitEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+gitHome, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_SSH_COMMAND="+sshCommand(sshKey))
	return append(env, extra...)
}

// gitRun runs git in dir and returns its combined output and error.
func gitRun(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// git runs git in dir and fails the test if it fails.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gitEnvRun is git with extra environment; it fails the test on error.
func gitWith(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, env, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// gitFails runs git, expects it to fail, and returns its output.
func gitFails(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitRun(dir, nil, args...)
	if err == nil {
		t.Fatalf("git %s succeeded, want failure:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// revParse returns the full hash of rev in dir.
func revParse(t *testing.T, dir, rev string) string {
	t.Helper()
	return strings.TrimSpace(git(t, dir, "rev-parse", rev))
}

// newWorkRepo makes a local repo with n commits on main and returns its path.
func newWorkRepo(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "work")
	git(t, "", "init", "-q", dir)
	for i := 0; i < n; i++ {
		commitFile(t, dir, fmt.Sprintf("file%d.txt", i), fmt.Sprintf("content %d\n", i))
	}
	return dir
}

// commitFile writes name in dir and commits it.
func commitFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", name)
	git(t, dir, "commit", "-q", "-m", "change "+name)
	return revParse(t, dir, "HEAD")
}

// lsRemote returns ref -> hash as the server advertises them.
func lsRemote(t *testing.T, url string) map[string]string {
	t.Helper()
	out := git(t, "", "ls-remote", url)
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			refs[f[1]] = f[0]
		}
	}
	return refs
}

// transport is one way to reach the server.
type transport struct {
	name string
	url  func(s *weirServer, repo string) string
}

var transports = []transport{
	{"http", (*weirServer).URL},
	{"ssh", (*weirServer).SSHURL},
}

// asyncPush is a git push running in the background.
type asyncPush struct {
	cmd *exec.Cmd
	out *syncBuffer
}

// pushAsync starts "git push [opts] url ref" in dir with env, in its own
// process group (kill takes its transport helper with it).
func pushAsync(t *testing.T, dir string, env []string, url, ref string, opts ...string) *asyncPush {
	t.Helper()
	cmd := exec.Command("git", append(append([]string{"push"}, opts...), url, ref)...)
	cmd.Dir = dir
	cmd.Env = gitEnv(env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &asyncPush{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return p
}

// waitOut waits until p's output contains text (or p ends without it).
func (p *asyncPush) waitOut(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("push output never showed %q:\n%s", text, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wait waits for p to end and returns its output and whether it succeeded.
func (p *asyncPush) wait() (string, bool) {
	err := p.cmd.Wait()
	return p.out.String(), err == nil
}

// pyDriver writes script (a Python program driving a Git library) to a
// temp file and returns a function that runs it under Debian's python3
// with a step and its arguments and parses the "key value" lines it
// prints. module is imported first: the test skips, saying what to
// install, when /usr/bin/python3 cannot import it.
func pyDriver(t *testing.T, module, script string) func(step string, args ...string) map[string]string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import "+module).Run(); err != nil {
		t.Skipf("%s not installed for %s (apt-get install python3-%s)", module, py, module)
	}
	file := filepath.Join(t.TempDir(), module+"-driver.py")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(step string, args ...string) map[string]string {
		t.Helper()
		cmd := exec.Command(py, append([]string{file, step}, args...)...)
		cmd.Env = gitEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s\n%s", module, step, err, out, stderr.String())
		}
		kv := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if k, v, ok := strings.Cut(line, " "); ok {
				kv[k] = v
			}
		}
		return kv
	}
}
