package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/weir-dev/weir"
	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/exec/image"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/runs"
)

// nodeFlags are weir serve's configuration of pipeline nodes: the limits
// every node gets (weir.toml may lower them, never raise them), the
// registered runtimes (the package allow-list) and how many nodes run at
// once.
type nodeFlags struct {
	limits   exec.Limits
	runtimes runtimeFlags
	parallel int
	pool     int
}

func (n *nodeFlags) register(fs *flag.FlagSet) {
	d := exec.DefaultLimits()
	l := &n.limits
	fs.DurationVar(&l.Wall, "node-timeout", d.Wall, "pipeline nodes: wall-clock limit of one node (weir.toml may lower it)")
	fs.Int64Var(&l.Memory, "node-memory-bytes", d.Memory, "pipeline nodes: memory limit of one node, in bytes")
	fs.Int64Var(&l.Pids, "node-pids", d.Pids, "pipeline nodes: processes and threads one node may have at once")
	fs.Float64Var(&l.CPU, "node-cpus", d.CPU, "pipeline nodes: CPU cores one node may use (default: every core); a SQL node's DuckDB runs as many threads")
	fs.Int64Var(&l.OutputBytes, "node-output-bytes", d.OutputBytes, "pipeline nodes: bytes one node may write to its outputs")
	fs.Int64Var(&l.TmpBytes, "node-tmp-bytes", d.TmpBytes, "pipeline nodes: size of one node's /tmp, in bytes")
	fs.Uint64Var(&l.OpenFiles, "node-open-files", d.OpenFiles, "pipeline nodes: open files of one node")
	fs.IntVar(&n.parallel, "node-parallel", runtime.NumCPU(), "pipeline nodes: how many nodes of one run may run at once")
	fs.IntVar(&n.pool, "sandbox-pool", exec.DefaultSandboxPool, "pipeline nodes: sandboxes of each runtime kept built ahead, holding nothing of any node, so a node's sandbox is only bound to it (0: none, each is built for its node)")
	fs.Var(&n.runtimes, "runtime", "NAME=ROOTFS: register a runtime nodes may ask for (any unpacked root filesystem folder, read-only, wherever it sits); repeatable. 'host' (the host's /usr, /etc read-only) is built in, and every runtime built with 'weir runtime build' (<data>/runtimes) is registered without a flag")
}

// runtimeFlags is the repeatable --runtime NAME=ROOTFS flag.
type runtimeFlags map[string]string

func (r *runtimeFlags) String() string {
	var out []string
	for name, dir := range *r {
		out = append(out, name+"="+dir)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func (r *runtimeFlags) Set(v string) error {
	name, dir, ok := strings.Cut(v, "=")
	if !ok || name == "" || dir == "" {
		return fmt.Errorf("want NAME=ROOTFS, got %q", v)
	}
	if name == exec.HostRuntime {
		return fmt.Errorf("runtime %q is built in", name)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("runtime %s: %s is not a directory (an unpacked root filesystem)", name, dir)
	}
	if *r == nil {
		*r = runtimeFlags{}
	}
	(*r)[name] = dir
	return nil
}

// buildPipelines builds the node runner of weir serve: weir-node (found
// and checked by findRunner), the sandboxes it runs in (exec, state under
// /run/weir/exec-<hash of the data dir>), and what uses them: the
// pipeline hook, whose pushes run their pipeline on the repo's tables and
// move code and data refs together, each run admitted by the run queue
// (--runs, --run-queue, ...), and weir query and weir runs over SSH.
func (a *serveApp) buildPipelines() error {
	nodes := a.Config.nodes
	runtimes, err := a.runtimes()
	if err != nil {
		return err
	}
	bin, binErr := findRunner()
	if errors.Is(binErr, errRunnerMismatch) {
		return binErr // a stale weir-node: refuse to start
	}
	var runner exec.Runner
	var sb *exec.Sandboxes
	if binErr != nil {
		// Plain Git still works; pipelines and weir query are
		// refused with the reason.
		a.Logger.Warn("pushes with a pipeline and weir query will be refused", "err", binErr)
		// What clients are told names no path of this machine.
		binErr = errNoRunner
		runner = noRunner{binErr}
	} else if sb, err = exec.New(exec.Config{
		StateDir:    sandboxStateDir(a.DataDir),
		WeirBinary:  bin,
		Runtimes:    runtimes,
		Defaults:    nodes.limits,
		SandboxPool: cmp.Or(nodes.pool, -1),
		Logger:      a.Logger,
		Metrics:     a.Metrics,
	}); err != nil {
		// Plain Git still works; pipelines are refused with the
		// reason; weir query runs weir-node as a plain process.
		a.Logger.Warn("sandboxes unavailable: pushes with a pipeline will be refused, weir query runs unsandboxed", "err", err)
		runner = noRunner{fmt.Errorf("this server cannot run sandboxes: %v", err)}
	} else {
		a.closers = append(a.closers, sb.Close)
		runner = sb
		// Nodes run weir-node: the first push finds sandboxes ready.
		sb.Warm(exec.HostRuntime, true)
	}
	if a.Runs, err = newScheduler(a.Config.runs, a.Logger, schedObserver{a.Metrics}); err != nil {
		return err
	}
	work := filepath.Join(a.DataDir, "runs")
	os.RemoveAll(work) // staging of runs a crash interrupted
	h, err := hooks.NewPipeline(hooks.PipelineConfig{
		Refs: a.Refs, Catalog: a.Catalog, Runner: runner, WorkDir: work, Logger: a.Logger,
		Runtimes: slices.Sorted(maps.Keys(runtimes)), Parallel: nodes.parallel,
		MaxLimits: nodes.limits, Rules: a.Access.Branch,
		HidePaths:   []string{a.DataDir, sandboxStateDir(a.DataDir)},
		Scheduler:   a.Runs,
		MaxPriority: a.Access.MaxPriority,
		MergeTrain:  a.Config.runs.mergeTrain,
	})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, h.Close) // runs before sb.Close
	a.Git.Hook = h
	if a.SSH != nil {
		qr := &queryRunner{bin: bin, binErr: binErr, workDir: filepath.Join(a.DataDir, "queries"), limits: nodes.limits,
			hide: []string{a.DataDir, sandboxStateDir(a.DataDir)}}
		if sb != nil {
			qr.sandbox = sb
		}
		os.RemoveAll(qr.workDir) // staging of queries a crash interrupted
		a.SSH.Commands["query"] = func(ctx context.Context, req *gitserver.SSHRequest) int {
			return sshQuery(ctx, a.Catalog, qr, req)
		}
	}
	rs := &runsAPI{src: runs.NewSource(a.Runs, a.Catalog, a.Objects), cat: a.Catalog}
	if a.SSH != nil {
		a.SSH.Commands["runs"] = rs.sshRuns
		a.SSH.Commands["run"] = rs.sshRun
	}
	if a.HTTPAccess != nil {
		a.Mux.Handle("/api/repos/", rs.handler(a.HTTPAccess))
	}
	return nil
}

// runtimes are the runtimes this server registers besides host: every
// named runtime of the data dir's store (weir runtime build) and every
// --runtime flag; a name in both is refused.
func (a *serveApp) runtimes() (map[string]string, error) {
	store := image.Open(a.DataDir)
	es, err := store.List()
	if err != nil {
		return nil, err
	}
	built := map[string]string{}
	for _, e := range es {
		if e.Rootfs == "" {
			a.Logger.Warn("runtime not registered: its folder is missing; build it again with weir runtime build", "runtime", e.Name, "store", store.Dir)
			continue
		}
		built[e.Name] = e.Rootfs
	}
	for name, dir := range a.Config.nodes.runtimes {
		if b, dup := built[name]; dup {
			return nil, fmt.Errorf("runtime %s is both built (%s, see weir runtime ls) and given by --runtime %s=%s: rename one", name, b, name, dir)
		}
		built[name] = dir
	}
	for _, name := range slices.Sorted(maps.Keys(built)) {
		a.Logger.Info("runtime registered", "runtime", name, "rootfs", built[name])
	}
	return built, nil
}

// errRunnerMismatch is a weir-node that does not belong with this weir.
var errRunnerMismatch = errors.New("weir-node does not match this weir")

// errNoRunner is what clients are told when weir serve has no weir-node
// (its log says where it looked).
var errNoRunner = errors.New("this server has no weir-node (the node runner); " + buildRunner)

// buildRunner says how to build weir-node next to weir.
const buildRunner = "build both from one tree with: go build -o bin/ ./cmd/weir ./cmd/weir-node ./exec/cmd/weir-sandbox-init"

// findRunner finds weir-node, the runner that weir starts for pipeline
// nodes, their SQL and weir query (it links DuckDB; weir does not): next
// to this executable, else on PATH. It checks that the one it finds was
// built from the same sources as this weir (contract.Handshake) and
// returns an error wrapping errRunnerMismatch when not.
func findRunner() (string, error) {
	var where []string
	if exe, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(exe), "weir-node")
		if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
			return cand, checkRunner(cand)
		}
		where = append(where, "next to "+exe)
	}
	if p, err := osexec.LookPath("weir-node"); err == nil {
		if p, err = filepath.Abs(p); err == nil {
			return p, checkRunner(p)
		}
	}
	where = append(where, "on PATH")
	return "", fmt.Errorf("weir-node (the node runner, which links DuckDB) is not %s: %s (go run ./cmd/weir builds weir alone: build weir-node and put bin/ on PATH)",
		strings.Join(where, " nor "), buildRunner)
}

// checkRunner runs "weir-node version" and compares its handshake with
// this binary's own.
func checkRunner(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, bin, contract.CommandVersion)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%w: %s version: %v; %s", errRunnerMismatch, bin, err, buildRunner)
	}
	got, err := contract.ParseHandshake(out)
	if err == nil {
		err = runnerHandshake().Check(got)
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v; %s", errRunnerMismatch, bin, err, buildRunner)
	}
	return nil
}

// runnerHandshake is the handshake weir expects of weir-node: this
// contract, and the fingerprint of the runner's sources this binary was
// built with.
func runnerHandshake() contract.Handshake {
	return contract.Handshake{Contract: contract.Version, Sources: weir.RunnerSources()}
}

// sandboxStateDir is the exec state dir of the server whose data dir is
// data: under /run/weir (a tmpfs, away from the binary, so libcontainer
// can seal the binary instead of copying it per sandbox), one per data dir
// so that two servers never sweep each other's sandboxes.
func sandboxStateDir(data string) string {
	sum := sha256.Sum256([]byte(data))
	if st, err := os.Stat("/run"); err == nil && st.IsDir() {
		// Searchable (not listable) by others: a sandbox's user namespace
		// maps its root to an unprivileged host uid that must reach the
		// rootfs skeleton below; without it exec falls back to no userns.
		if os.MkdirAll("/run/weir", 0o711) == nil {
			os.Chmod("/run/weir", 0o711)
		}
		return filepath.Join("/run/weir", "exec-"+hex.EncodeToString(sum[:6]))
	}
	return filepath.Join(data, "exec")
}

// noRunner is the runner of a server that cannot run nodes: weir-node
// is missing, or the host cannot run sandboxes.
type noRunner struct{ err error }

// Run refuses every node.
func (n noRunner) Run(context.Context, exec.Spec) (*exec.Result, error) { return nil, n.err }
