// Command swarm answers "does Weir scale under a swarm of agents?"
// (issue 11). It starts a weir server (the built binary, its own data
// dir, loopback, no anonymous access: one user and HTTP token per agent,
// so fair share between identities means something) with a repo "swarm"
// whose main has a small pipeline of two SQL nodes:
//
//	models/agents.sql       one row per agent: "(i, version)"
//	models/agent_total.sql  count and sum over agents
//
// Each agent changes only a file of its own, agents/agent-i.txt, which no
// node reads: merges of different agents never touch the same path (the
// merge queue's tree merge conflicts on a path changed on both sides), and
// every run runs the same pipeline.
//
// and an unrelated table bg.events on main that a background writer
// appends 10 rows to through the Iceberg REST catalog (iceberg-go, with
// its own token) every -writer-every, all along.
//
// First it measures the CPU one run costs: one agent, -calib serial
// cycles, the server's CPU (its cpuacct cgroup, v1, or cpu.stat, v2,
// which the sandboxes' cgroups nest under, so nodes are counted; else
// /proc/<pid>/stat with its waited-for children) divided by the runs.
// The CPU-bound limit is cores / CPU per run, in runs/s.
//
// Then, for each N of -n, N agents for -duration, each a goroutine with
// its own C git clone, in a loop (a cycle):
//
//	fetch; branch w from origin/main; write a new version into its own
//	file; commit; git push +w:agent-i (synchronous: returns when the run ended)
//	-merge queue (default): git push origin w:refs/merge/main
//	                                 (the server merges w onto main's head,
//	                                 runs the pipeline, lands; returns then;
//	                                 refused for busy or a race: push again)
//	-merge client: fetch; main' = merge --no-ff of w into origin/main;
//	               git push main'    (refused: fetch, merge again, push: a retry)
//
// Every push asks for -o timing. A push that printed "weir: run r-..."
// and was refused anyway ran for nothing: a wasted run, "writer" when the
// data ref moved under it (the REST writer: "the branch moved while this
// push was checked"), "race" when another push won the branch. A push
// refused before its run started (not a fast-forward, a scheduler's
// recheck, server busy) cost nothing and is only retried.
//
// Per N it prints: runs/s (successful runs, branch and main pushes, over
// the phase's wall time), that as a share of the CPU-bound limit, push
// latency p50/p99 of the successful pushes, queue wait p50/p99 (from "ssh
// ... weir runs swarm", polled, matched by run id; "n/a" on a server
// without it), wasted runs (race/writer) and the CPU they took (wasted
// runs x CPU per run), completed cycles per agent min/max, merge retries,
// the writer's appends ok/refused, and two checks, PASS or FAIL:
//
//	acked     every main push the client saw succeed is an ancestor of the
//	          final refs/heads/main, and every agent branch is at the last
//	          push the agent saw succeed
//	lineage   every commit on main's first-parent chain has a data commit
//	          in refs/data/main's history whose Code-Commit: trailer names
//	          it, and refs/data/main's tip names refs/heads/main
//
// and then the goals of the issue (at N = 32, or the largest N below it):
// zero wasted runs, fairness max/min cycles per agent <= 1.5, runs/s >=
// 0.9 x the CPU-bound limit, and no run thrown away because the writer
// appended (at any N).
//
// Its named peer is another weir build (-peer, e.g. main's before the
// run scheduler), measured the same way in the same invocation, one after
// the other; the ratios weir/peer are printed per N. Build the peer with
// its weir-node and weir-sandbox-init next to it:
//
//	git worktree add /tmp/weir-before <commit> && (cd /tmp/weir-before &&
//	  go build -o /tmp/weir-before/bin/ ./cmd/weir ./cmd/weir-node ./exec/cmd/weir-sandbox-init)
//	go run ./bench/swarm -peer /tmp/weir-before/bin/weir
//
// Run it as root (sandboxes, cgroups) from the module root. With no
// -weir it builds this tree's three binaries. The full run (-n 1,8,32,128
// -duration 60s) takes about 6 minutes per build on an idle machine, more
// when pushes in flight at the end of a phase are slow (a phase waits for
// them: at N=32 before the scheduler, 20 s phases ran 75-80 s); a quick look:
//
//	go run ./bench/swarm -n 1,8 -duration 10s
//
// The machine is shared with whatever else runs: the load average and the
// CPU time the hypervisor stole are printed with the figures.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/bench/internal/host"
)

var (
	weirFlag    = flag.String("weir", "", "weir binary under test, weir-node and weir-sandbox-init next to it (default: build this tree's into a temp dir)")
	peerFlag    = flag.String("peer", "", "another weir build to measure the same way (e.g. main's before the scheduler), for ratios")
	nFlag       = flag.String("n", "1,8,32,128", "comma-separated numbers of agents, one phase each")
	durFlag     = flag.Duration("duration", 60*time.Second, "length of each phase")
	calibFlag   = flag.Int("calib", 5, "serial cycles (two runs each) of one agent to measure the CPU per run")
	writerEvery = flag.Duration("writer-every", 200*time.Millisecond, "the background writer's pause between REST appends (0: no writer)")
	extraArgs   = flag.String("args", "", "extra weir serve flags, space-separated, for every build")
	keepFlag    = flag.Bool("keep", false, "keep the temp dir (data dirs, server logs, clones) and print where it is")
	mergeFlag   = flag.String("merge", "queue", "how agents land on main: queue (git push origin w:refs/merge/main, the server merges) or client (fetch, git merge, push main; again when refused)")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/swarm:", err)
		os.Exit(1)
	}
}

// The repo, and the goals of issue 11.
const (
	repoName       = "swarm"
	goalN          = 32
	goalFairness   = 1.5
	goalThroughput = 0.9
)

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("run as root: pipeline nodes run in sandboxes, and the server's CPU is read from its own cgroup")
	}
	ns, err := parseNs(*nFlag)
	if err != nil {
		return err
	}
	if *mergeFlag != "queue" && *mergeFlag != "client" {
		return fmt.Errorf("-merge %q: want queue or client", *mergeFlag)
	}
	tmp, err := os.MkdirTemp("", "weir-bench-swarm-")
	if err != nil {
		return err
	}
	if *keepFlag {
		fmt.Println("bench/swarm: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if *weirFlag == "" {
		bin := filepath.Join(tmp, "bin")
		fmt.Println("building weir, weir-node and weir-sandbox-init ...")
		cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/weir", "./cmd/weir-node", "./exec/cmd/weir-sandbox-init")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build (run from the module root): %w", err)
		}
		*weirFlag = filepath.Join(bin, "weir")
	}
	builds := []struct{ name, path string }{{"weir", *weirFlag}}
	if *peerFlag != "" {
		builds = append(builds, struct{ name, path string }{"peer", *peerFlag})
	}
	fmt.Printf("bench/swarm: %d cores, load %s, phases N=%v of %v, writer every %v, merge %s\n",
		runtime.NumCPU(), host.LoadAvg(), ns, *durFlag, *writerEvery, *mergeFlag)
	var results []*buildResult
	for _, b := range builds {
		r, err := measureBuild(filepath.Join(tmp, b.name), b.name, b.path, ns)
		if err != nil {
			return fmt.Errorf("%s (%s): %w", b.name, b.path, err)
		}
		results = append(results, r)
	}
	for _, r := range results {
		r.print()
	}
	if len(results) == 2 {
		printRatios(results[0], results[1])
	}
	return nil
}

func parseNs(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1000 {
			return nil, fmt.Errorf("-n: %q is not a number of agents from 1 to 1000", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// buildResult is everything measured of one build.
type buildResult struct {
	name, path  string
	cpuSource   string
	cpuPerRun   time.Duration // server (and nodes) per successful run, serial
	procPerRun  time.Duration // the same from /proc/<pid>/stat, for comparison
	gitPerRun   time.Duration // the bench's git clients per run, serial
	aloneP50    time.Duration // push latency of one agent alone
	limit       float64       // runs/s: cores / cpuPerRun
	listing     bool          // the server has "weir runs"
	phases      []*phase
	setupTime   time.Duration
	serverNotes []string
}

func measureBuild(dir, name, bin string, ns []int) (*buildResult, error) {
	res := &buildResult{name: name, path: bin}
	began := time.Now()
	maxN := slices.Max(ns)
	s, err := newSwarm(dir, bin, maxN)
	if err != nil {
		return nil, err
	}
	defer s.close()
	res.cpuSource = s.srv.cpu.source()
	res.setupTime = time.Since(began)
	fmt.Printf("%s: server up, %d agent users, repo seeded, bg.events created in %v (CPU from %s)\n",
		name, maxN, res.setupTime.Round(100*time.Millisecond), res.cpuSource)

	// Calibration: one agent, serial cycles, no writer.
	if err := s.ensureAgents(1); err != nil {
		return nil, err
	}
	cal := newPhase(1)
	cpu0, proc0 := s.srv.cpu.read(s.srv.pid), procCPU(s.srv.pid)
	git0, _ := host.CPUUsed()
	ctx := context.Background()
	for i := 0; i < *calibFlag; i++ {
		if err := s.agents[0].cycle(ctx, cal, time.Time{}); err != nil {
			return nil, fmt.Errorf("calibration: %w", err)
		}
	}
	cpu1, proc1 := s.srv.cpu.read(s.srv.pid), procCPU(s.srv.pid)
	git1, _ := host.CPUUsed()
	if cal.runsOK == 0 || cal.failed > 0 {
		return nil, fmt.Errorf("calibration: %d runs succeeded, %d pushes failed; first failure:\n%s", cal.runsOK, cal.failed, cal.firstFailure)
	}
	res.cpuPerRun = (cpu1 - cpu0) / time.Duration(cal.runsOK)
	res.procPerRun = (proc1 - proc0) / time.Duration(cal.runsOK)
	res.gitPerRun = (git1 - git0) / time.Duration(cal.runsOK)
	res.aloneP50 = pct(cal.latencies, 0.5)
	res.limit = float64(runtime.NumCPU()) / res.cpuPerRun.Seconds()
	_, res.listing = s.listRuns()
	fmt.Printf("%s: CPU per run %v (%s; /proc of the server and its waited-for children: %v), git clients %v; limit %.2f runs/s; push alone p50 %v\n",
		name, ms(res.cpuPerRun), res.cpuSource, ms(res.procPerRun), ms(res.gitPerRun), res.limit, ms(res.aloneP50))

	for _, n := range ns {
		if err := s.ensureAgents(n); err != nil {
			return nil, err
		}
		p := s.runPhase(n, *durFlag, res.cpuPerRun)
		p.check(s)
		res.phases = append(res.phases, p)
		fmt.Printf("%s: N=%d done: %s\n", name, n, p.summary(res))
	}
	res.serverNotes = s.srv.notes()
	return res, nil
}

// swarm is one server and its agents.
type swarm struct {
	dir    string
	srv    *server
	tokens []string // agent i's HTTP token
	writer string   // the background writer's token
	agents []*agent
	seed   string // a clone the checks fetch into
}

func newSwarm(dir, bin string, maxN int) (*swarm, error) {
	s := &swarm{dir: dir}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	// Users: one per agent and the writer, each with a token and write
	// on the repo, made with package access as "weir user" makes them
	// (hundreds of CLI runs would take minutes on a loaded machine); and
	// an SSH key of --authorized-keys for "weir runs".
	users := access.OpenUsers(filepath.Join(data, "users.json"))
	for i := 0; i <= maxN; i++ {
		name := agentName(i)
		if i == maxN {
			name = "writer"
		}
		if err := users.AddUser(name); err != nil {
			return nil, err
		}
		if err := users.Grant(name, repoName, access.PermWrite); err != nil {
			return nil, err
		}
		tok, _, err := users.NewToken(name, "bench/swarm")
		if err != nil {
			return nil, err
		}
		if i == maxN {
			s.writer = tok
		} else {
			s.tokens = append(s.tokens, tok)
		}
	}
	key := filepath.Join(dir, "observer")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "observer", "-f", key).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %v\n%s", err, out)
	}
	var err error
	if s.srv, err = startServer(bin, data, filepath.Join(dir, "cgroup"), key); err != nil {
		return nil, err
	}
	// main: the pipeline, pushed by agent 0.
	s.seed = filepath.Join(dir, "seed")
	if err := writePipeline(s.seed, maxN); err != nil {
		s.close()
		return nil, err
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "swarm pipeline"},
		{"remote", "add", "origin", s.remote(0)},
	} {
		if _, err := git(s.seed, args...); err != nil {
			s.close()
			return nil, err
		}
	}
	if out, err := git(s.seed, "push", "-q", "origin", "main"); err != nil {
		s.close()
		return nil, fmt.Errorf("first push of the pipeline: %v\n%s", err, out)
	}
	if err := s.createWriterTable(); err != nil {
		s.close()
		return nil, fmt.Errorf("create bg.events through the REST catalog: %w", err)
	}
	return s, nil
}

func (s *swarm) close() {
	if s.srv != nil {
		s.srv.stop()
	}
}

func agentName(i int) string { return fmt.Sprintf("agent-%d", i) }

// remote is agent i's HTTP URL of the repo, its token in it.
func (s *swarm) remote(i int) string {
	return strings.Replace(s.srv.http, "http://", "http://"+agentName(i)+":"+s.tokens[i]+"@", 1) + "/" + repoName + ".git"
}

// ensureAgents clones the repo for agents up to n (8 clones at a time).
func (s *swarm) ensureAgents(n int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for i := len(s.agents); i < n; i++ {
		a := &agent{i: i, dir: filepath.Join(s.dir, "agents", agentName(i)), version: 0}
		s.agents = append(s.agents, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if out, err := git("", "clone", "-q", s.remote(a.i), a.dir); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("clone for %s: %v\n%s", agentName(a.i), err, out))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writePipeline writes the pipeline of main into dir.
func writePipeline(dir string, agents int) error {
	var b strings.Builder
	b.WriteString("-- One row per agent.\n")
	b.WriteString("SELECT agent, version FROM (VALUES\n")
	for i := 0; i < agents; i++ {
		fmt.Fprintf(&b, "  -- agent %d\n  (%d, 0)", i, i)
		if i < agents-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString(") AS t(agent, version)\n")
	files := map[string]string{
		"weir.toml":              "cpus = 1.0\nmemory_mb = 512\n",
		"models/agents.sql":      b.String(),
		"models/agent_total.sql": "SELECT count(*) AS agents, sum(version) AS versions FROM agents\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

var gitEnv = []string{
	"GIT_AUTHOR_NAME=swarm", "GIT_AUTHOR_EMAIL=swarm@localhost",
	"GIT_COMMITTER_NAME=swarm", "GIT_COMMITTER_EMAIL=swarm@localhost",
	"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent",
}

// git runs C git in dir and returns its output (stdout and stderr).
func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// server is one weir serve, in a CPU cgroup of its own.
type server struct {
	cmd     *exec.Cmd
	pid     int
	http    string
	sshPort string
	sshKey  string
	cpu     cpuMeter
	log     *lockedBuffer
	done    chan struct{}
}

var listenLine = regexp.MustCompile(`^weir serve: (http|ssh) (\S+)`)

func startServer(bin, data, cgName, sshKey string) (*server, error) {
	pub, err := os.ReadFile(sshKey + ".pub")
	if err != nil {
		return nil, err
	}
	authKeys := filepath.Join(filepath.Dir(sshKey), "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return nil, err
	}
	args := []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--ssh", "127.0.0.1:0",
		"--assume-remote", "--authorized-keys", authKeys}
	if *extraArgs != "" {
		args = append(args, strings.Fields(*extraArgs)...)
	}
	s := &server{sshKey: sshKey, log: &lockedBuffer{}, done: make(chan struct{})}
	// The server joins its cgroup before it execs, so everything it
	// starts (the sandboxes' cgroups nest under its own) is counted.
	s.cpu = newCPUMeter(filepath.Base(cgName) + fmt.Sprintf("-%d", os.Getpid()))
	if procs := s.cpu.procsFile(); procs != "" {
		s.cmd = exec.Command("sh", append([]string{"-c", `echo $$ > "$WEIR_SWARM_CGROUP" && exec "$@"`, "sh", bin}, args...)...)
		s.cmd.Env = append(os.Environ(), "WEIR_SWARM_CGROUP="+procs)
	} else {
		s.cmd = exec.Command(bin, args...)
	}
	s.cmd.Stderr = s.log
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.cpu.remove()
		return nil, err
	}
	s.pid = s.cmd.Process.Pid
	go func() { s.cmd.Wait(); close(s.done) }()
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
	deadline := time.After(60 * time.Second)
	for s.http == "" || s.sshPort == "" {
		select {
		case f := <-found:
			u, err := url.Parse(strings.Replace(f[1], "<repo>.git", "x", 1))
			if err != nil {
				s.stop()
				return nil, fmt.Errorf("bad listen line %q", f[1])
			}
			if f[0] == "http" {
				s.http = "http://" + u.Host
			} else {
				s.sshPort = u.Port()
			}
		case <-s.done:
			s.cpu.remove()
			return nil, fmt.Errorf("weir serve exited at start:\n%s", s.log.String())
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("weir serve did not start in 60s:\n%s", s.log.String())
		}
	}
	return s, nil
}

func (s *server) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cpu.remove()
}

// notes are the server's log lines at level WARN or ERROR, counted by
// message, each with its first line (clipped), for the report.
func (s *server) notes() []string {
	counts := map[string]int{}
	first := map[string]string{}
	var order []string
	msgRE := regexp.MustCompile(`msg=("[^"]*"|\S+)`)
	for _, line := range strings.Split(s.log.String(), "\n") {
		if !strings.Contains(line, "level=WARN") && !strings.Contains(line, "level=ERROR") {
			continue
		}
		msg := msgRE.FindString(line)
		if counts[msg] == 0 {
			order = append(order, msg)
			first[msg] = line[:min(len(line), 400)]
		}
		counts[msg]++
	}
	var out []string
	for _, m := range order {
		out = append(out, fmt.Sprintf("%d x %s; first: %s", counts[m], m, first[m]))
	}
	return out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// pct is the nearest-rank percentile p of ds (0 if none).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// jitter sleeps a random time up to d.
func jitter(d time.Duration) { time.Sleep(time.Duration(rand.Int64N(int64(d)))) }
