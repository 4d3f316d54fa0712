package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/bench/internal/host"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/pipeline"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func init() { exec.Init() }

func main() {
	n := flag.Int("n", 20, "measured pushes (after one warm-up push)")
	bin := flag.String("bin", "", "folder holding weir-node and weir-sandbox-init (default: build them from this tree)")
	example := flag.String("example", "examples/orders", "the pipeline to push")
	phases := flag.Bool("phases", false, "also print the median of each phase of a sandbox (exec's debug log)")
	flag.Float64Var(&nodeCPUs, "node-cpus", 0, "CPU limit of each node (0: the server's default, as weir serve --node-cpus)")
	flag.StringVar(&baseline, "baseline", "", "folder holding a weir-node built from an earlier tree: alternate pushes with the old path (that runner, each sandbox built when its node starts, every table written at the end)")
	flag.IntVar(&sandboxPool, "sandbox-pool", 0, "generic sandboxes kept built ahead, as weir serve --sandbox-pool (0: exec's default; -1: none, each sandbox built when its node is prepared)")
	flag.BoolVar(&noPoolPeer, "nopool", false, "also alternate pushes whose sandboxes are each built when its node is prepared (no sandbox pool: exec.Config.SandboxPool -1)")
	flag.DurationVar(&gap, "gap", 0, "idle time before each push, as between the pushes of one user or agent reading the last result (0: back to back, which keeps two cores saturated and leaves a sandbox pool no idle time to refill in)")
	flag.BoolVar(&rerun, "rerun", false, "push with -o rerun: run the seed too, though its CSV is unchanged (every node runs)")
	flag.BoolVar(&sqlPeers, "sql", false, "also alternate pushes whose plan parses its SQL with DuckDB in this process (the server before issue 10) and in a sandbox started when the plan needs it (no parser started ahead)")
	cpuProfile := flag.String("cpuprofile", "", "write the server's CPU profile of the measured pushes to this file")
	flag.Parse()
	if *cpuProfile != "" {
		profileTo = *cpuProfile
	}
	if *phases {
		slog.SetDefault(slog.New(sandboxPhases))
	}
	if os.Geteuid() != 0 {
		fatal(errors.New("run as root: pipeline nodes run in sandboxes"))
	}
	if (sqlPeers || baseline != "") && newInProcessSQL == nil {
		fatal(errors.New("-sql and -baseline parse SQL with DuckDB in this process: build with -tags duckdbpeer (go run -tags duckdbpeer ./bench/pipeline ...)"))
	}
	if err := run(*n, *bin, *example); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/pipeline:", err)
	os.Exit(1)
}

// newInProcessSQL returns a parser of a plan's SQL with DuckDB in this
// process (-sql's sql-in-process, -baseline's old path); nil unless built
// with -tags duckdbpeer (inprocess.go). Without the tag this binary links
// no DuckDB, as weir serve does not: every sandbox's container init starts
// by re-executing this binary (libcontainer's /proc/self/exe), and a
// binary that links DuckDB loads libstdc++ and its relocations first,
// 5-30 ms of CPU per sandbox that weir serve does not pay.
var newInProcessSQL func() pipeline.SQLParser

var (
	nodeCPUs   float64
	baseline   string
	profileTo  string
	sqlPeers   bool
	noPoolPeer bool
)

// Variants of the server's push path a run alternates between.
const (
	current = "weir"     // this tree: sandboxes prepared ahead, gated runners, tables staged as nodes finish
	old     = "baseline" // -baseline's runner, a sandbox built when its node starts, WriteDataCommit at the end
	// -sql: the plan's SQL parsed by DuckDB in the server's process (as
	// before weir-node parsed it), and in a sandbox started only when the
	// plan needs it (hooks.SandboxSQL with no parser started ahead).
	sqlInProcess = "sql-in-process"
	sqlCold      = "sql-cold"
	noPool       = "no-sandbox-pool" // -nopool: every sandbox built when its node is prepared
)

// sample is one push, split into phases.
type sample struct {
	total, protocol, server, client, plan, nodes, run, sandbox, commit, refUpdate, hookRest time.Duration
	cpu, cpuSelf                                                                            time.Duration            // CPU time of this process and its children (git, sandboxes) during the push; of this process alone
	perNode                                                                                 map[string]time.Duration // node -> its progress line's ms (its sandbox's Run)
}

func run(n int, bin, example string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "weir-bench-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "bin")
		fmt.Println("building weir-node and weir-sandbox-init ...")
		if err := sh("", nil, "go", "build", "-o", bin+"/", "./cmd/weir-node", "./exec/cmd/weir-sandbox-init"); err != nil {
			return err
		}
	}
	srv, err := startServer(ctx, tmp, bin)
	if err != nil {
		return err
	}
	defer srv.close()

	work := filepath.Join(tmp, "work")
	if err := sh("", nil, "cp", "-r", example, work); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "orders pipeline"},
	} {
		if err := sh(work, nil, "git", args...); err != nil {
			return err
		}
	}
	url := srv.url + "/orders.git"
	if _, err := srv.push(work, url, current); err != nil { // warm-up: creates the repo and its tables
		return err
	}
	// A new commit that changes the SQL model, so the whole pipeline runs.
	change := func(i int) error {
		f := filepath.Join(work, "models", "clean_orders.sql")
		if err := appendFile(f, fmt.Sprintf("-- push %d\n", i)); err != nil {
			return err
		}
		return sh(work, nil, "git", "commit", "-q", "-am", fmt.Sprintf("push %d", i))
	}
	if baseline != "" {
		if err := change(-1); err != nil {
			return err
		}
		if _, err := srv.push(work, url, old); err != nil { // its warm-up
			return err
		}
	}
	if noPoolPeer {
		if err := change(-2); err != nil {
			return err
		}
		if _, err := srv.push(work, url, noPool); err != nil { // its warm-up
			return err
		}
	}
	bare, err := newBare(filepath.Join(tmp, "bare"), filepath.Join(bin, "weir-node"), example)
	if err != nil {
		return err
	}
	if _, err := bare.run(); err != nil { // warm-up
		return err
	}

	fmt.Printf("load average: %s\n", host.LoadAvg())
	if profileTo != "" {
		f, err := os.Create(profileTo)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	t0, s0 := host.CPUTimes()
	variants := []string{current}
	if baseline != "" {
		variants = append(variants, old)
	}
	if sqlPeers {
		variants = append(variants, sqlInProcess, sqlCold)
	}
	if noPoolPeer {
		variants = append(variants, noPool)
	}
	weir := map[string][]sample{}
	var peer []time.Duration
	for i := 0; i < n*len(variants); i++ {
		variant := variants[i%len(variants)]
		if err := change(i); err != nil {
			return err
		}
		time.Sleep(gap)
		s, err := srv.push(work, url, variant)
		if err != nil {
			return err
		}
		weir[variant] = append(weir[variant], s)
		if variant != current {
			continue
		}
		d, err := bare.run()
		if err != nil {
			return err
		}
		peer = append(peer, d)
	}
	if profileTo != "" {
		pprof.StopCPUProfile()
	}
	fmt.Printf("load average: %s; CPU time stolen by the hypervisor during the pushes: %s\n", host.LoadAvg(), host.StealSince(t0, s0))
	for _, v := range variants {
		report(example, v, weir[v], peer)
	}
	for _, v := range variants[1:] {
		c50, c99, _ := stats(totals(weir[current]))
		o50, o99, _ := stats(totals(weir[v]))
		fmt.Printf("\n%s/%s: p50 %.2fx, p99 %.2fx (same run, pushes interleaved)\n", current, v, float64(c50)/float64(o50), float64(c99)/float64(o99))
	}
	sandboxPhases.print()
	return nil
}

func totals(ss []sample) []time.Duration {
	var ds []time.Duration
	for _, s := range ss {
		ds = append(ds, s.total)
	}
	return ds
}

// report prints p50, p99 and mean of every phase, and the ratio.
func report(example, variant string, weir []sample, peer []time.Duration) {
	col := func(f func(sample) time.Duration) []time.Duration {
		var ds []time.Duration
		for _, s := range weir {
			ds = append(ds, f(s))
		}
		return ds
	}
	fmt.Printf("\n%s: push-to-result, %s, %d pushes (C git over HTTP, in-process weir server)\n", variant, example, len(weir))
	fmt.Printf("  %-34s %9s %9s %9s\n", "", "p50", "p99", "mean")
	rows := []struct {
		name string
		ds   []time.Duration
	}{
		{"total (git push wall time)", col(func(s sample) time.Duration { return s.total })},
		{"  protocol", col(func(s sample) time.Duration { return s.protocol })},
		{"    server (receive-pack)", col(func(s sample) time.Duration { return s.server })},
		{"    client (git, HTTP)", col(func(s sample) time.Duration { return s.client })},
		{"  plan", col(func(s sample) time.Duration { return s.plan })},
		{"  nodes (critical path)", col(func(s sample) time.Duration { return s.nodes })},
		{"    run (node processes)", col(func(s sample) time.Duration { return s.run })},
		{"    sandbox (setup, teardown)", col(func(s sample) time.Duration { return s.sandbox })},
		{"  commit (Iceberg + data commit)", col(func(s sample) time.Duration { return s.commit })},
		{"  ref update", col(func(s sample) time.Duration { return s.refUpdate })},
		{"  rest of the hook (run log)", col(func(s sample) time.Duration { return s.hookRest })},
		{"CPU time (server, git, nodes)", col(func(s sample) time.Duration { return s.cpu })},
		{"  of which the server process", col(func(s sample) time.Duration { return s.cpuSelf })},
		{"bare: weir-node, plain processes", peer},
	}
	for _, r := range rows {
		p50, p99, mean := stats(r.ds)
		fmt.Printf("  %-34s %9s %9s %9s\n", r.name, msStr(p50), msStr(p99), msStr(mean))
	}
	var names []string
	for name := range weir[len(weir)-1].perNode {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Println("  per node (exec to teardown, as in its progress line):")
	for _, name := range names {
		p50, p99, mean := stats(col(func(s sample) time.Duration { return s.perNode[name] }))
		fmt.Printf("    %-32s %9s %9s %9s\n", name, msStr(p50), msStr(p99), msStr(mean))
	}
	w50, w99, _ := stats(rows[0].ds)
	b50, b99, _ := stats(peer)
	fmt.Printf("ratio %s/bare: p50 %.2fx, p99 %.2fx\n", variant, float64(w50)/float64(b50), float64(w99)/float64(b99))
	if !rerun {
		fmt.Println("(weir reused the unchanged seed; bare runs all four steps; -rerun makes weir run every node)")
	}
}

// stats returns the p50 and p99 (nearest rank) and the mean of ds.
func stats(ds []time.Duration) (p50, p99, mean time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return rank(0.50), rank(0.99), sum / time.Duration(len(s))
}

func msStr(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var gitEnv = []string{
	"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@localhost",
	"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@localhost",
	"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent",
}

func sh(dir string, stdout io.Writer, name string, args ...string) error {
	cmd := osexec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return nil
}

// server is weir serve's push path, in process.
type server struct {
	url    string
	db     interface{ Close() error }
	sb     *exec.Sandboxes
	ln     net.Listener
	hook   *timedHook
	http   *timedHTTP
	old    *exec.Sandboxes // -baseline's
	nopool *exec.Sandboxes // -nopool's
	refs   *timedRefs
	state  string
}

func startServer(ctx context.Context, tmp, bin string) (*server, error) {
	data := filepath.Join(tmp, "data")
	db, err := pebblekv.Open(filepath.Join(data, "pebble"), nil)
	if err != nil {
		return nil, err
	}
	s := &server{db: db}
	objs := objects.New(db, objects.Limits{})
	rs := &timedRefs{Store: refs.NewDB(objs)}
	s.refs = rs
	wh, err := catalog.NewLocalWarehouse(filepath.Join(data, "warehouse"))
	if err != nil {
		return nil, err
	}
	cat := catalog.New(objs, rs.Store, wh)
	// As weir serve: the state dir under /run (a tmpfs away from the
	// binaries), searchable by others so sandboxes get a user namespace.
	if s.state, err = os.MkdirTemp("/run", "weir-bench-pipeline-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(s.state, 0o711); err != nil {
		return nil, err
	}
	s.sb, err = exec.New(exec.Config{
		StateDir:    filepath.Join(s.state, "exec"),
		WeirBinary:  filepath.Join(bin, "weir-node"),
		InitBinary:  filepath.Join(bin, "weir-sandbox-init"),
		Defaults:    exec.Limits{CPU: nodeCPUs},
		SandboxPool: sandboxPool,
	})
	if err != nil {
		return nil, fmt.Errorf("sandboxes: %w", err)
	}
	s.sb.Warm(exec.HostRuntime, true) // as weir serve
	quiet := slog.New(slog.DiscardHandler)
	h, err := hooks.NewPipeline(hooks.PipelineConfig{
		Refs: rs.Store, Catalog: cat, Runner: s.sb, WorkDir: filepath.Join(data, "runs"), Logger: quiet,
		MaxLimits: exec.Limits{CPU: nodeCPUs},
	})
	if err != nil {
		return nil, err
	}
	s.hook = &timedHook{hooks: map[string]hooks.PreReceive{current: h}}
	if baseline != "" {
		// The old default: one core per node.
		oldLim := exec.Limits{CPU: 1}
		if nodeCPUs > 0 {
			oldLim.CPU = nodeCPUs
		}
		s.old, err = exec.New(exec.Config{
			StateDir:   filepath.Join(s.state, "exec-old"),
			WeirBinary: filepath.Join(baseline, "weir-node"),
			InitBinary: filepath.Join(bin, "weir-sandbox-init"),
			Defaults:   oldLim,
		})
		if err != nil {
			return nil, fmt.Errorf("sandboxes: %w", err)
		}
		// Hiding Prepare and StageTable takes the hook down the old path.
		// An old runner parses no SQL: DuckDB in this process does, as it
		// did in the server then.
		oh, err := hooks.NewPipeline(hooks.PipelineConfig{
			Refs: rs.Store, Catalog: struct{ hooks.Catalog }{cat}, Runner: oldRunner{s.old},
			WorkDir: filepath.Join(data, "runs-old"), Logger: quiet, MaxLimits: oldLim, SQL: newInProcessSQL(),
		})
		if err != nil {
			return nil, err
		}
		s.hook.hooks[old] = oh
	}
	if sqlPeers {
		for v, sql := range map[string]pipeline.SQLParser{
			sqlInProcess: newInProcessSQL(),
			sqlCold:      &hooks.SandboxSQL{Runner: s.sb, WorkDir: filepath.Join(data, "runs-"+sqlCold), Idle: -1},
		} {
			vh, err := hooks.NewPipeline(hooks.PipelineConfig{
				Refs: rs.Store, Catalog: cat, Runner: s.sb, WorkDir: filepath.Join(data, "runs-"+v), Logger: quiet,
				MaxLimits: exec.Limits{CPU: nodeCPUs}, SQL: sql,
			})
			if err != nil {
				return nil, err
			}
			s.hook.hooks[v] = vh
		}
	}
	if noPoolPeer {
		s.nopool, err = exec.New(exec.Config{
			StateDir:    filepath.Join(s.state, "exec-nopool"),
			WeirBinary:  filepath.Join(bin, "weir-node"),
			InitBinary:  filepath.Join(bin, "weir-sandbox-init"),
			Defaults:    exec.Limits{CPU: nodeCPUs},
			SandboxPool: -1,
		})
		if err != nil {
			return nil, fmt.Errorf("sandboxes: %w", err)
		}
		nh, err := hooks.NewPipeline(hooks.PipelineConfig{
			Refs: rs.Store, Catalog: cat, Runner: s.nopool, WorkDir: filepath.Join(data, "runs-"+noPool), Logger: quiet,
			MaxLimits: exec.Limits{CPU: nodeCPUs},
		})
		if err != nil {
			return nil, err
		}
		s.hook.hooks[noPool] = nh
	}
	git := &gitserver.Server{Objects: objs, Refs: rs, Hook: s.hook, Logger: quiet}
	acc, err := access.New(access.Config{Users: access.OpenUsers(filepath.Join(data, "users.json"))})
	if err != nil {
		return nil, err
	}
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	s.http = &timedHTTP{h: gitserver.NewHTTPHandler(git, acc.WithAnonymous(true))}
	go http.Serve(s.ln, s.http)
	s.url = "http://" + s.ln.Addr().String()
	return s, nil
}

func (s *server) close() {
	s.ln.Close()
	// The hooks first: each closes the SQL parser it keeps started ahead
	// in the sandboxes.
	for _, h := range s.hook.hooks {
		if c, ok := h.(io.Closer); ok {
			c.Close()
		}
	}
	s.sb.Close()
	if s.old != nil {
		s.old.Close()
	}
	if s.nopool != nil {
		s.nopool.Close()
	}
	s.db.Close()
	os.RemoveAll(s.state)
}

// rerun pushes with -o rerun (-rerun).
var rerun bool

// gap is -gap: idle time before each measured push.
var gap time.Duration

// sandboxPool is -sandbox-pool (exec.Config.SandboxPool).
var sandboxPool int

// timingRE matches the hook's -o timing line.
var timingRE = regexp.MustCompile(`weir: timing: plan (\d+) ms, nodes (\d+) ms \(run (\d+) ms, sandbox (\d+) ms\), commit (\d+) ms`)

// nodeRE matches a node's progress line: "[2/4] main.clean_orders sql 34 rows 62 ms".
var nodeRE = regexp.MustCompile(`weir: \[\d+/\d+\] (\S+)\s+(\S+)\s+[\d,]+ rows\s+(\d+) ms`)

// push pushes HEAD of work to main with -o timing, through the hook of
// variant, and splits its time.
func (s *server) push(work, url, variant string) (sample, error) {
	s.hook.use(variant)
	var out bytes.Buffer
	cpu0, self0 := host.CPUUsed()
	began := time.Now()
	args := []string{"push", "-o", hooks.OptionTiming}
	if rerun {
		args = append(args, "-o", hooks.OptionRerun)
	}
	cmd := osexec.Command("git", append(args, url, "HEAD:refs/heads/main")...)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), gitEnv...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	total := time.Since(began)
	cpu1, self1 := host.CPUUsed()
	if err != nil {
		return sample{}, fmt.Errorf("git push: %v\n%s", err, out.String())
	}
	m := timingRE.FindStringSubmatch(out.String())
	if m == nil {
		return sample{}, fmt.Errorf("git push printed no timing line:\n%s", out.String())
	}
	msOf := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) * time.Millisecond }
	hook, ref := s.hook.take(), s.refs.take()
	smp := sample{
		total: total, plan: msOf(m[1]), nodes: msOf(m[2]), run: msOf(m[3]), sandbox: msOf(m[4]), commit: msOf(m[5]),
		refUpdate: ref, cpu: cpu1 - cpu0, cpuSelf: self1 - self0,
	}
	smp.hookRest = hook - smp.plan - smp.nodes - smp.commit
	smp.perNode = map[string]time.Duration{}
	for _, m := range nodeRE.FindAllStringSubmatch(out.String(), -1) {
		smp.perNode[m[1]+" ("+m[2]+")"] = msOf(m[3])
	}
	smp.protocol = total - hook - ref
	smp.server = s.http.take() - hook - ref
	smp.client = smp.protocol - smp.server
	return smp, nil
}

// oldRunner runs nodes with an old weir-node: it drops the runner flags
// added since (--threads N, --memory-limit N) and hides Prepare.
type oldRunner struct{ sb *exec.Sandboxes }

func (o oldRunner) Run(ctx context.Context, spec exec.Spec) (*exec.Result, error) {
	var args []string
	for i := 0; i < len(spec.Args); i++ {
		switch spec.Args[i] {
		case "--threads", "--memory-limit":
			i++
			continue
		}
		args = append(args, spec.Args[i])
	}
	spec.Args = args
	return o.sb.Run(ctx, spec)
}

// elapsed sums durations until taken; one per timed part of a push.
type elapsed struct {
	mu  sync.Mutex
	sum time.Duration
}

func (e *elapsed) add(d time.Duration) {
	e.mu.Lock()
	e.sum += d
	e.mu.Unlock()
}

// take returns the sum so far and starts again from zero.
func (e *elapsed) take() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.sum
	e.sum = 0
	return d
}

// timedHTTP times the server's receive-pack requests (POSTs).
type timedHTTP struct {
	h http.Handler
	elapsed
}

func (t *timedHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	t.h.ServeHTTP(w, r)
	if r.Method == http.MethodPost {
		t.add(time.Since(began))
	}
}

// timedHook times the pre-receive hook of the variant in use.
type timedHook struct {
	hooks map[string]hooks.PreReceive
	mu    sync.Mutex
	cur   string
	elapsed
}

func (t *timedHook) use(variant string) {
	t.mu.Lock()
	t.cur = variant
	t.mu.Unlock()
}

func (t *timedHook) PreReceive(ctx context.Context, p *hooks.Push) (*hooks.Result, error) {
	t.mu.Lock()
	h := t.hooks[t.cur]
	t.mu.Unlock()
	began := time.Now()
	res, err := h.PreReceive(ctx, p)
	t.add(time.Since(began))
	return res, err
}

// timedRefs times ref updates (the push's commit: refs and quarantined
// objects in one synced write).
type timedRefs struct {
	refs.Store
	elapsed
}

func (t *timedRefs) Update(ctx context.Context, repo objects.RepoName, ups []refs.Update, q refs.Quarantine, msg string) error {
	began := time.Now()
	err := t.Store.Update(ctx, repo, ups, q, msg)
	t.add(time.Since(began))
	return err
}

// bare runs the example's four steps with weir-node as plain processes:
// no sandbox, no Git, no Iceberg.
type bare struct {
	dir, node, example string
}

func newBare(dir, node, example string) (*bare, error) {
	return &bare{dir: dir, node: node, example: example}, os.MkdirAll(dir, 0o755)
}

func (b *bare) run() (time.Duration, error) {
	root, err := os.MkdirTemp(b.dir, "run-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(root)
	out := filepath.Join(root, "out")
	steps := []struct {
		kind, src string
		ins, outs []string
	}{
		{"seed", "seeds/raw_orders.csv", nil, []string{"main.raw_orders"}},
		{"sql", "models/clean_orders.sql", []string{"main.raw_orders"}, []string{"main.clean_orders"}},
		{"python", "models/revenue.py", []string{"main.clean_orders"}, []string{"main.revenue"}},
		{"expect", "expectations/revenue_positive.sql", []string{"main.revenue"}, nil},
	}
	// Staging (copying the sources) is not timed; the sandboxed run's is.
	for i, s := range steps {
		code := filepath.Join(root, strconv.Itoa(i), "in", "_code")
		if err := os.MkdirAll(code, 0o755); err != nil {
			return 0, err
		}
		if err := sh("", nil, "cp", filepath.Join(b.example, s.src), code); err != nil {
			return 0, err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	began := time.Now()
	for i, s := range steps {
		d := filepath.Join(root, strconv.Itoa(i))
		in, tmp := filepath.Join(d, "in"), filepath.Join(d, "tmp")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return 0, err
		}
		for _, t := range s.ins {
			if err := os.MkdirAll(filepath.Join(in, t), 0o755); err != nil {
				return 0, err
			}
			if err := os.Link(filepath.Join(out, t+".parquet"), filepath.Join(in, t, "part-00000.parquet")); err != nil {
				return 0, err
			}
		}
		args := []string{"node", s.kind, "--source", filepath.Join(in, "_code", filepath.Base(s.src)), "--ns", "main",
			"--dir-in", in, "--dir-out", out, "--dir-tmp", tmp}
		for _, t := range s.ins {
			args = append(args, "--in", t)
		}
		for _, t := range s.outs {
			args = append(args, "--out", t)
		}
		cmd := osexec.Command(b.node, args...)
		cmd.Dir = tmp
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tmp, "LANG=C.UTF-8"}
		if o, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("bare %s: %v\n%s", s.src, err, o)
		}
	}
	return time.Since(began), nil
}

// sandboxPhases collects exec's per-phase timings from its debug lines
// ("phases" attribute: "name=dur name=dur ...") when -phases is given.
var sandboxPhases = &phaseLog{byPhase: map[string][]time.Duration{}}

type phaseLog struct {
	mu      sync.Mutex
	order   []string
	byPhase map[string][]time.Duration
}

func (p *phaseLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *phaseLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *phaseLog) WithGroup(string) slog.Handler            { return p }

func (p *phaseLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "phases" {
			return true
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range strings.Fields(a.Value.String()) {
			k, v, _ := strings.Cut(f, "=")
			if d, err := time.ParseDuration(v); err == nil {
				if _, ok := p.byPhase[k]; !ok {
					p.order = append(p.order, k)
				}
				p.byPhase[k] = append(p.byPhase[k], d)
			}
		}
		return false
	})
	return nil
}

func (p *phaseLog) print() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return
	}
	fmt.Printf("sandbox phases (median over %d sandboxes, warm-ups included):", len(p.byPhase[p.order[0]]))
	for _, k := range p.order {
		p50, _, _ := stats(p.byPhase[k])
		fmt.Printf(" %s %s", k, msStr(p50))
	}
	fmt.Println()
}
