package exec

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
	// Device rules in the devices cgroup need the devices manager.
	_ "github.com/opencontainers/cgroups/devices"
	devcfg "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// nodeUID and nodeGID are who a node runs as inside its sandbox:
// nobody/nogroup, with every capability dropped. With a user namespace the
// sandbox's ids 0-65535 are host ids userBase+0-65535, so a node is host
// uid userBase+65534; without one it is host uid 65534.
const (
	nodeUID  = 65534
	nodeGID  = 65534
	userBase = 1 << 20
	userSize = 65536
)

// Sandboxes builds and runs sandboxes. It is safe for concurrent use; each
// Run owns its container from creation to teardown.
type Sandboxes struct {
	cfg          Config
	containers   string             // libcontainer root: <StateDir>/containers
	runs         string             // per-run staging: <StateDir>/runs
	hostRoot     string             // skeleton rootfs of the host runtime
	roots        map[string]*rootfs // every runtime's root, host included
	seccompFile  string             // the compiled seccomp program, bound at seccompPath
	shimBinary   string             // bound at shimPath: InitBinary, else WeirBinary
	initFile     *os.File           // sealed memfd copy of InitBinary, or nil
	cgroupPrefix string             // relative cgroup parent, unique per StateDir
	log          *slog.Logger
	cgroups      *cgroupPool   // empty cgroups made ahead
	sandboxPool  *sandboxPool  // generic sandboxes built ahead
	seq          atomic.Uint64 // numbers container ids: weir-s<N>

	userns    bool   // sandboxes of the host runtime get a user namespace
	nice      int    // the server's nice value, which nodes get
	niceBuild bool   // the pool builds at nice+10 (and may give nodes nice back)
	nofileMax uint64 // the server's hard RLIMIT_NOFILE: what pooled sandboxes are built with
	mu        sync.Mutex
	running   map[string]bool
	teardowns sync.WaitGroup // AsyncTeardown sandboxes still being torn down
}

// New prepares cfg.StateDir (creating the host-runtime skeleton once) and
// sweeps what a crashed server with the same StateDir left: containers and
// their processes, mounts under StateDir, and cgroups under its prefix.
func New(cfg Config) (*Sandboxes, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: sandboxes need root (running as uid %d)", ErrUnsupported, os.Geteuid())
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil && !cgroups.IsCgroup2UnifiedMode() {
		return nil, fmt.Errorf("%w: no pids cgroup controller", ErrUnsupported)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = "/run/weir/exec"
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = abs
	if cfg.WeirBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("exec: find own binary: %w", err)
		}
		cfg.WeirBinary = exe
	}
	cfg.Defaults = cfg.Defaults.orDefault(DefaultLimits())
	for name, dir := range cfg.Runtimes {
		if name == HostRuntime || name == "" {
			return nil, fmt.Errorf("%w: runtime name %q is reserved", ErrBadSpec, name)
		}
		if !runtimeNameRE.MatchString(name) {
			return nil, fmt.Errorf("%w: runtime name %q: use lower case letters, digits, '_', '.' and '-' (at most 63)", ErrBadSpec, name)
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: runtime %s: rootfs %s is not a directory", ErrBadSpec, name, dir)
		}
	}
	sum := sha256.Sum256([]byte(cfg.StateDir))
	s := &Sandboxes{
		cfg:          cfg,
		containers:   filepath.Join(cfg.StateDir, "containers"),
		runs:         filepath.Join(cfg.StateDir, "runs"),
		hostRoot:     filepath.Join(cfg.StateDir, "rootfs-host"),
		seccompFile:  filepath.Join(cfg.StateDir, "seccomp.bpf"),
		cgroupPrefix: "weir-exec-" + hex.EncodeToString(sum[:4]),
		log:          cmp.Or(cfg.Logger, slog.Default()).With("component", "exec"),
		running:      map[string]bool{},
	}
	for _, d := range []string{cfg.StateDir, s.containers, s.runs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("exec: state dir: %w", err)
		}
	}
	if !cfg.NoUserNamespace {
		// The container's root (host uid userBase) must reach the rootfs
		// skeleton in the state dir; nothing in the state dir is readable.
		if err := os.Chmod(cfg.StateDir, 0o711); err != nil {
			return nil, fmt.Errorf("exec: state dir: %w", err)
		}
		if why := usernsUnusable(cfg.StateDir); why != "" {
			s.log.Info("sandboxes run without a user namespace (nodes are host uid 65534)", "why", why)
		} else {
			s.userns = true
		}
	}
	if prio, err := unix.Getpriority(unix.PRIO_PROCESS, 0); err == nil && hasCap(unix.CAP_SYS_NICE) {
		// Pooled sandboxes are built at a lower priority, which only a
		// server that may raise it back (CAP_SYS_NICE) can do.
		s.nice, s.niceBuild = 20-prio, true // the raw syscall's 40..1 is nice -20..19
	}
	var nofile unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err == nil {
		s.nofileMax = nofile.Max
	}
	s.sweep()
	if err := buildHostRoot(s.hostRoot); err != nil {
		return nil, fmt.Errorf("exec: host runtime skeleton: %w", err)
	}
	prog := seccompProgram()
	if len(prog) == 0 {
		return nil, fmt.Errorf("%w: no seccomp filter for this architecture", ErrUnsupported)
	}
	if err := os.WriteFile(s.seccompFile, prog, 0o644); err != nil {
		return nil, fmt.Errorf("exec: write seccomp program: %w", err)
	}
	pool := cfg.CgroupPool
	if pool == 0 {
		pool = defaultPoolSize
	}
	sbPool := cfg.SandboxPool
	if sbPool == 0 {
		sbPool = DefaultSandboxPool
	}
	s.shimBinary = cfg.WeirBinary
	if cfg.InitBinary == "" {
		if exe, err := os.Executable(); err == nil {
			if cfg.InitBinary, err = findInitBinary(exe); err != nil {
				return nil, err
			}
		}
	}
	if cfg.InitBinary != "" {
		f, err := sealedCopy(cfg.InitBinary)
		if err != nil {
			return nil, fmt.Errorf("exec: init binary: %w", err)
		}
		s.initFile, s.shimBinary = f, cfg.InitBinary
		s.cfg.InitBinary = cfg.InitBinary
	}
	if err := s.buildRoots(); err != nil {
		return nil, err
	}
	s.cgroups = newCgroupPool(s.cgroupPrefix, pool)
	s.sandboxPool = newSandboxPool(s, sbPool)
	if exe, err := filepath.EvalSymlinks(cfg.WeirBinary); err == nil {
		if d := filepath.Dir(exe); strings.HasPrefix(cfg.StateDir+"/", d+"/") {
			s.log.Warn("the state dir is inside the weir binary's dir: libcontainer cannot seal the binary with overlayfs and will copy it for every sandbox (slow); move one of them",
				"state_dir", cfg.StateDir, "binary", exe)
		}
	}
	return s, nil
}

// Run runs spec in a fresh sandbox, waits for it (or its limits), tears the
// sandbox down and reports how it ended. The error is non-nil only for a
// bad spec or a duplicate ID; everything that happens to the node, including
// a sandbox that could not be built (ReasonSetup), is in the Result.
//
// Run is Prepare followed at once by Prepared.Run.
func (s *Sandboxes) Run(ctx context.Context, spec Spec) (*Result, error) {
	p, err := s.Prepare(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.Run(ctx)
}

// Prepare gets spec's sandbox ready up to the exec of its node: it takes a
// generic sandbox from the pool (output, /tmp and /in tmpfs, cgroup,
// namespaces, mounts, seccomp program, the shim waiting for its node), or
// starts building one, and binds it to spec: limits, inputs, the node's
// argv and env kept for the shim. Prepared.Run then only hands the node to
// the shim, so a caller that prepares the next node's sandbox while the
// current node runs takes sandbox setup off its critical path.
//
// The inputs are bound when the sandbox is prepared: an input dir must
// exist by then (it may be filled later, before Run: a bind mount shows
// the files added to its dir). Nothing in the sandbox runs before Run, and
// its limits (the wall clock too) start at Run.
//
// Every Prepared must be Run or Closed; one whose ctx ends first is torn
// down, and its Run reports ReasonAborted. The error is non-nil only for a
// bad spec or a duplicate ID.
func (s *Sandboxes) Prepare(ctx context.Context, spec Spec) (*Prepared, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	rt := spec.Runtime
	if rt == "" {
		rt = HostRuntime
	}
	root, ok := s.roots[rt]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoRuntime, rt)
	}
	for name, src := range spec.Inputs {
		if !filepath.IsAbs(src) {
			return nil, fmt.Errorf("%w: input %s: path %q is not absolute", ErrBadSpec, name, src)
		}
		fi, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("%w: input %s: %v", ErrBadSpec, name, err)
		}
		// The node runs as nobody: an input it cannot read is a server bug
		// better reported here than as EACCES inside the node.
		need := fs.FileMode(0o004) // r for others
		if fi.IsDir() {
			need |= 0o001 // and x, to enter it
		}
		if fi.Mode().Perm()&need != need {
			return nil, fmt.Errorf("%w: input %s: %s has mode %s; inputs must be world-readable (the node runs as uid %d)",
				ErrBadSpec, name, src, fi.Mode().Perm(), nodeUID)
		}
	}
	if spec.Output != "" {
		if fi, err := os.Stat(spec.Output); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: output %q is not a directory", ErrBadSpec, spec.Output)
		}
	}
	s.mu.Lock()
	if s.running[spec.ID] {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: id %q is already running", ErrBadSpec, spec.ID)
	}
	s.running[spec.ID] = true
	s.mu.Unlock()

	lim := spec.Limits.orDefault(s.cfg.Defaults)
	c := class{runtime: rt, weir: spec.Weir}
	p := s.sandboxPool.take(c)
	if p == nil {
		// None ready: build one for this spec now (the same sandbox the
		// pool builds, with this spec's limits from the start).
		p = s.newGeneric(c, root, lim, false)
	}
	p.id = spec.ID
	p.bind <- bindReq{ctx: ctx, spec: spec, lim: lim}
	return p, nil
}

// class is what a generic sandbox is built for before any spec is known:
// its runtime (root) and whether the runner is mounted. A pooled sandbox
// serves only specs of its class.
type class struct {
	runtime string
	weir    bool
}

// newGeneric starts building a generic sandbox of class c with limits lim
// on its own goroutine: everything but the node (see own). pooled says the
// pool built it ahead of any spec.
func (s *Sandboxes) newGeneric(c class, root *rootfs, lim Limits, pooled bool) *Prepared {
	cid := fmt.Sprintf("weir-s%d", s.seq.Add(1))
	r := &run{s: s, pooled: pooled, lim: lim, built: lim, cid: cid, root: root, weir: c.weir, out: &lateWriter{}, t0: time.Now()}
	// Every runtime's root is a skeleton under the state dir: a sandbox
	// has a user namespace wherever its image sits (runc opens a bind
	// source the mapped root cannot reach from the host side).
	r.userns = s.userns
	r.cgroupPath = s.cgroups.take()
	p := &Prepared{r: r, pooled: pooled, built: make(chan struct{}), bind: make(chan bindReq, 1),
		ready: make(chan struct{}), start: make(chan context.Context, 1), done: make(chan *Result, 1)}
	if pooled {
		// The pool's before it has anything on disk.
		s.sandboxPool.mu.Lock()
		s.sandboxPool.owned[p] = true
		s.sandboxPool.mu.Unlock()
	}
	go p.own()
	return p
}

// Prepared is a sandbox built and started up to the exec of its node (see
// Sandboxes.Prepare). One goroutine owns it from setup to teardown, on one
// locked OS thread: the container's init gets a parent-death signal, which
// the kernel sends when the forking *thread* exits.
//
// It is built generic (no spec: a pool may build it before any node is
// known), then bound to one spec, then run once (or closed), then torn
// down. It is never bound twice.
type Prepared struct {
	r        *run
	id       string // Spec.ID, once bound
	pooled   bool   // built by the pool, before its spec was known
	built    chan struct{}
	setupErr error                // set before built is closed
	bind     chan bindReq         // one spec; closed by the pool to discard an unbound sandbox
	ready    chan struct{}        // closed when setup and binding have finished, well or not
	start    chan context.Context // Run's ctx (buffered); closed by Close
	done     chan *Result         // one value after teardown: the result, nil after Close
	mu       sync.Mutex
	used     bool // Run or Close was called
}

// bindReq is the spec a generic sandbox is bound to, with its limits and
// the ctx of Prepare.
type bindReq struct {
	ctx  context.Context
	spec Spec
	lim  Limits
}

// Ready is closed once the sandbox is set up (or failed to be): from then
// on Run costs only the exec of the node.
func (p *Prepared) Ready() <-chan struct{} { return p.ready }

// Run execs the node in the prepared sandbox, waits for it (or its limits),
// tears the sandbox down and reports how it ended, as Sandboxes.Run. It
// waits for the setup to finish if it has not. A Prepared runs once.
func (p *Prepared) Run(ctx context.Context) (*Result, error) {
	if !p.claim() {
		return nil, fmt.Errorf("%w: sandbox %q was already run or closed", ErrBadSpec, p.id)
	}
	p.start <- ctx
	res := <-p.done
	p.r.s.cfg.Metrics.SandboxStarted(res != nil && res.Reason == ReasonSetup)
	return res, nil
}

// Close tears down a prepared sandbox that will not run, and waits for it.
// Closing one that was run (or closed) does nothing.
func (p *Prepared) Close() {
	if !p.claim() {
		return
	}
	close(p.start)
	<-p.done
}

func (p *Prepared) claim() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used {
		return false
	}
	p.used = true
	return true
}

// discard tears down a generic sandbox that was never bound (the pool's,
// on Close or after a failed setup) and waits for it.
func (p *Prepared) discard() {
	close(p.bind)
	<-p.done
}

// own sets the generic sandbox up, waits to be bound to a spec (or
// discarded), binds it, waits for Run (or Close, or ctx), runs the node and
// tears everything down, all on one locked OS thread. It sends exactly one
// value on done, after the teardown: the result, or nil after Close or
// discard.
func (p *Prepared) own() {
	r := p.r
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.runDir = filepath.Join(r.s.runs, r.cid)
	r.outDir = filepath.Join(r.runDir, "out")
	r.tmpDir = filepath.Join(r.runDir, "tmp")
	r.inDir = filepath.Join(r.runDir, "in")
	if r.pooled && r.s.niceBuild {
		// Built ahead, it must not slow the nodes running now: this thread
		// and what it forks (the sandbox's processes, the shim) run at a
		// lower priority until the sandbox is bound to a node.
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), min(r.s.nice+10, 19))
	}
	container, proc, setupErr := r.setup()
	if r.pooled && r.s.niceBuild {
		_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), r.s.nice)
	}
	r.setupTime = time.Since(r.t0)
	p.setupErr = setupErr
	close(p.built)

	var (
		res      *Result
		runBegan time.Time
		ctx      = context.Background()
	)
	b, bound := <-p.bind
	if bound {
		ctx = b.ctx
		bindBegan := time.Now()
		r.last = bindBegan
		r.spec, r.lim = b.spec, b.lim
		r.capture = newTail(OutputTail, b.spec.Stdout)
		r.out.set(r.capture)
		if setupErr == nil {
			setupErr = r.bind(container, proc)
		}
		if setupErr == nil && r.spec.Gate {
			// Gated: the node starts now and waits for Run's line on stdin.
			r.sendSpec()
		}
		if p.pooled {
			r.setupTime = time.Since(bindBegan) // the pool's work was off the caller's path
		} else {
			r.setupTime = time.Since(r.t0)
		}
		close(p.ready)

		select {
		case runCtx, ok := <-p.start:
			if !ok {
				break // closed
			}
			runBegan = time.Now()
			r.last = runBegan
			switch {
			case setupErr != nil:
				res = r.setupFailed(setupErr)
			case runCtx.Err() != nil:
				res = &Result{ExitCode: -1, Reason: ReasonAborted, Message: "cancelled: " + runCtx.Err().Error()}
			default:
				res = r.execute(runCtx, container, proc)
			}
		case <-ctx.Done():
			// Given up before Run: tear down now; a later Run reports why.
			runBegan = time.Now()
			res = &Result{ExitCode: -1, Reason: ReasonAborted, Message: "cancelled before the node started: " + ctx.Err().Error()}
		}
		if res != nil {
			res.Overhead = r.setupTime + time.Since(runBegan) - res.Wall
			res.Pooled = p.pooled
		}
		if res != nil && r.spec.AsyncTeardown {
			// The result is final: hand it over, then tear down.
			r.s.teardowns.Add(1)
			defer r.s.teardowns.Done()
			p.done <- res
		}
	}
	if container != nil {
		if proc != nil && !r.waited {
			// The init never ran the node (closed, given up, discarded,
			// exec failed): kill and reap it, so Destroy finds its cgroup
			// empty.
			_ = container.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
		}
		if err := container.Destroy(); err != nil {
			r.s.log.Warn("destroy sandbox", "id", p.id, "container", r.cid, "err", err)
		}
		r.phase("destroy")
	}
	for _, f := range []*os.File{r.gate, r.specW, r.reportR} {
		if f != nil {
			f.Close()
		}
	}
	if r.report != nil {
		r.report.close()
	}
	r.cleanupRunDir()
	r.phase("cleanup")
	if bound {
		r.s.mu.Lock()
		delete(r.s.running, r.spec.ID)
		r.s.mu.Unlock()
	}
	if res != nil && r.s.log.Enabled(ctx, slog.LevelDebug) {
		r.s.log.Debug("node finished", "id", r.spec.ID, "container", r.cid, "pooled", p.pooled, "reason", res.Reason, "exit", res.ExitCode,
			"wall", res.Wall, "overhead", res.Overhead, "phases", r.phases.String())
	}
	if res == nil || !r.spec.AsyncTeardown {
		p.done <- res
	}
}

// run is one sandbox in flight.
type run struct {
	s          *Sandboxes
	spec       Spec   // set when bound
	lim        Limits // the generic sandbox's limits, then the spec's
	built      Limits // the limits the generic sandbox was built with
	cid        string
	root       *rootfs
	cgroupPath string // relative to the server's cgroup
	weir       bool   // the runner is mounted at RunnerPath
	pooled     bool   // built by the pool, at a lower priority
	capture    *tail
	out        *lateWriter // the sandbox's stdout and stderr, to capture once bound
	cfg        *configs.Config

	userns  bool          // this sandbox has a user namespace
	gate    *os.File      // the write end of the node's stdin (Spec.Gate), until Run
	specW   *os.File      // the write end of the pipe the shim reads the node's argv and env from
	specMsg []byte        // what sendSpec writes on it
	reportR *os.File      // the read end of the report pipe, until bound
	report  *reportReader // Spec.Report: the read end of the node's report pipe
	execed  bool          // the init was released (it execs the node)
	waited  bool          // the init (the node) was waited for
	runDir  string        // <runs>/<cid>
	outDir  string        // tmpfs of lim.OutputBytes, bound at /out
	tmpDir  string        // tmpfs of lim.TmpBytes, bound at /tmp
	inDir   string        // tmpfs (shared) bound at /in (slave): inputs are bound under it

	t0        time.Time       // the generic sandbox's setup began
	setupTime time.Duration   // setup and binding on the caller's path
	last      time.Time       // end of the previous phase
	phases    strings.Builder // "name=duration " per phase, for the debug log
}

// phase ends a named phase of the run (for the debug log and the
// benchmark's breakdown of where sandbox time goes).
func (r *run) phase(name string) {
	now := time.Now()
	if r.last.IsZero() {
		r.last = r.t0
	}
	fmt.Fprintf(&r.phases, "%s=%s ", name, now.Sub(r.last).Round(10*time.Microsecond))
	r.last = now
}

func (r *run) setupFailed(err error) *Result {
	return &Result{ExitCode: -1, Reason: ReasonSetup,
		Message: "the sandbox could not be started: " + err.Error(), Output: r.capture.bytes()}
}

// setup builds the generic sandbox, starts its init and releases it from
// libcontainer's exec fifo at once: it execs the shim, which waits on the
// spec pipe for the node's options, argv and env (sendSpec writes them at
// Run). A non-nil container must be destroyed whatever the error.
func (r *run) setup() (*libcontainer.Container, *libcontainer.Process, error) {
	if err := r.prepareMounts(); err != nil {
		return nil, nil, err
	}
	r.phase("tmpfs")
	r.cfg = r.config()
	container, err := libcontainer.Create(r.s.containers, r.cid, r.cfg)
	if err != nil {
		return nil, nil, err
	}
	r.phase("create")
	noNewPrivs := true
	var extra, theirs []*os.File
	defer func() {
		// The init has its ends now (or never will).
		for _, f := range theirs {
			f.Close()
		}
	}()
	if r.s.initFile != nil {
		// fd 3 of the init: the trampoline in shim_cgo.go execs it.
		extra = append(extra, r.s.initFile)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return container, nil, err
	}
	r.specW = specW
	theirs = append(theirs, specR)
	extra = append(extra, specR)
	specFD := strconv.Itoa(3 + len(extra) - 1)
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return container, nil, err
	}
	r.reportR = reportR
	theirs = append(theirs, reportW)
	extra = append(extra, reportW)
	reportFD := strconv.Itoa(3 + len(extra) - 1)
	gateR, gateW, err := os.Pipe()
	if err != nil {
		return container, nil, err
	}
	r.gate = gateW
	theirs = append(theirs, gateR)
	proc := &libcontainer.Process{
		Args: r.root.throughLoader([]string{shimPath, execArg, specFD, reportFD}),
		// Only the shim sees this; the node gets exactly Spec.Env.
		Env:             []string{"PATH=/usr/bin:/bin"},
		UID:             nodeUID,
		GID:             nodeGID,
		Cwd:             TmpDir,
		Stdin:           gateR,
		Stdout:          r.out,
		Stderr:          r.out,
		Init:            true,
		NoNewPrivileges: &noNewPrivs,
		ExtraFiles:      extra,
	}
	if err := container.Start(proc); err != nil {
		return container, nil, err
	}
	r.phase("start")
	// Release the init: it execs the shim, which waits on the spec pipe
	// for its node (sendSpec) before it does anything else.
	if err := container.Exec(); err != nil {
		return container, proc, err
	}
	r.execed = true
	r.phase("exec-shim")
	return container, proc, nil
}

// bind gives the parked generic sandbox its node: the spec's limits where
// they differ from those it was built with, its inputs (bound read-only
// under the shared /in), its report pipe and the argv and env the shim
// will read once released. Nothing of the node runs before Run (or, with
// Spec.Gate, before this returns).
func (r *run) bind(container *libcontainer.Container, proc *libcontainer.Process) error {
	if r.pooled && r.s.niceBuild {
		// Back to the server's priority: the node inherits it from the
		// shim, as in a sandbox built for it.
		pid, err := proc.Pid()
		if err != nil {
			return err
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, pid, r.s.nice); err != nil {
			return fmt.Errorf("priority: %w", err)
		}
	}
	built := r.built
	if r.lim.Memory != built.Memory || r.lim.Pids != built.Pids || r.lim.CPU != built.CPU {
		c := *r.cfg
		cg := *c.Cgroups
		res := *cg.Resources
		pids := r.lim.Pids
		res.Memory, res.MemorySwap = r.lim.Memory, memorySwap(r.lim.Memory)
		res.PidsLimit = &pids
		res.CpuQuota = int64(r.lim.CPU * float64(res.CpuPeriod))
		res.SkipDevices = true // set at creation, unchanged
		cg.Resources, c.Cgroups = &res, &cg
		if err := container.Set(c); err != nil {
			return fmt.Errorf("set limits: %w", err)
		}
		r.phase("limits")
	}
	if r.lim.OutputBytes != built.OutputBytes {
		if err := resizeTmpfs(r.outDir, r.lim.OutputBytes); err != nil {
			return fmt.Errorf("output quota: %w", err)
		}
	}
	if r.lim.TmpBytes != built.TmpBytes {
		if err := resizeTmpfs(r.tmpDir, r.lim.TmpBytes); err != nil {
			return fmt.Errorf("/tmp size: %w", err)
		}
	}
	if r.lim.OpenFiles > built.OpenFiles {
		return fmt.Errorf("open files limit %d: above the %d this sandbox was built with (the server's own hard limit)", r.lim.OpenFiles, built.OpenFiles)
	}
	for _, name := range sortedKeys(r.spec.Inputs) {
		if err := bindInput(r.spec.Inputs[name], filepath.Join(r.inDir, name)); err != nil {
			return fmt.Errorf("input %s: %w", name, err)
		}
	}
	r.phase("inputs")
	if r.spec.Report {
		r.report, r.reportR = newReportReader(r.reportR), nil
	}
	// Sent at Run (sendSpec), or at once for a gated node.
	r.specMsg = shimMessage(r.spec.Report, r.spec.Gate, r.lim.OpenFiles, r.nodeArgs(), r.spec.Env)
	if !r.spec.Gate {
		r.gate.Close() // the shim gives the node /dev/null
		r.gate = nil
	}
	return nil
}

// sendSpec hands the node to the shim waiting on the spec pipe: it reads
// it, seals itself and execs the node.
func (r *run) sendSpec() {
	msg, w := r.specMsg, r.specW
	r.specMsg, r.specW = nil, nil
	if len(msg) <= 4096 {
		// An empty pipe takes it at once (PIPE_BUF), and the shim has it
		// as soon as it is written.
		_, _ = w.Write(msg)
		w.Close()
		return
	}
	go func() {
		// A node that dies first makes this fail (EPIPE), which is fine.
		_, _ = w.Write(msg)
		w.Close()
	}()
}

// shimMessage is what the shim reads from its spec pipe before it execs
// the node: NUL-terminated strings: the options ("r" report pipe, "g"
// gate: keep stdin; "-" neither), the open files limit (the shim lowers
// its own: lowering needs no privilege, where setting another process's
// needs CAP_SYS_RESOURCE), argc, argv, then the env.
func shimMessage(report, gate bool, nofile uint64, argv, env []string) []byte {
	opts := ""
	if report {
		opts += "r"
	}
	if gate {
		opts += "g"
	}
	if opts == "" {
		opts = "-"
	}
	var b []byte
	add := func(s string) { b = append(append(b, s...), 0) }
	add(opts)
	add(strconv.FormatUint(nofile, 10))
	add(strconv.Itoa(len(argv)))
	for _, a := range argv {
		add(a)
	}
	for _, e := range env {
		add(e)
	}
	return b
}

// bindInput binds src read-only (recursively: submounts too, nosuid,
// nodev) at target, on the host side of the sandbox's shared /in, whence
// it propagates into the sandbox. target is created (a dir or an empty
// file, as src).
func bindInput(src, target string) error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(target, 0o755)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return err
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// resizeTmpfs sets the size of the (empty) tmpfs mounted at dir.
func resizeTmpfs(dir string, size int64) error {
	return unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d", size))
}

// lateWriter is a sandbox's stdout and stderr: what comes before the
// sandbox is bound to a node (only the init's own complaints) is kept, up
// to 4 KiB, for whoever it is bound to.
type lateWriter struct {
	mu    sync.Mutex
	w     io.Writer
	early []byte
}

func (l *lateWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		if room := 4096 - len(l.early); room > 0 {
			l.early = append(l.early, b[:min(len(b), room)]...)
		}
		return len(b), nil
	}
	_, _ = l.w.Write(b)
	return len(b), nil
}

func (l *lateWriter) set(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = w
	if len(l.early) > 0 {
		_, _ = w.Write(l.early)
		l.early = nil
	}
}

// execute releases the parked init (it execs the node), waits for the
// node or its limits, and collects /out.
func (r *run) execute(ctx context.Context, container *libcontainer.Container, proc *libcontainer.Process) *Result {
	res := &Result{ExitCode: -1}
	if r.specMsg != nil {
		r.sendSpec()
		r.phase("exec")
	}
	if r.gate != nil {
		// A node that has died meanwhile makes this fail (EPIPE): its exit
		// status says why.
		_, _ = r.gate.Write([]byte("go\n"))
		r.gate.Close()
		r.gate = nil
		r.phase("gate")
	}
	// The node runs from here: its wall clock and limit start now.
	start := time.Now()
	wallCtx, cancel := context.WithTimeout(ctx, r.lim.Wall)
	defer cancel()
	var (
		killedBy = make(chan error, 1)
		exited   = make(chan struct{})
	)
	go func() {
		select {
		case <-wallCtx.Done():
			killedBy <- wallCtx.Err()
			// SIGKILL to the PID-namespace init takes every process with it;
			// the cgroup kill in Destroy is the backstop.
			_ = container.Signal(unix.SIGKILL)
		case <-exited:
			killedBy <- nil
		}
	}()
	ps, waitErr := proc.Wait()
	r.waited = true
	res.Wall = time.Since(start)
	close(exited)
	killErr := <-killedBy
	r.phase("node")

	st := r.stats(container)
	res.CPU, res.PeakMemory = st.cpu, st.peakMem
	res.ExitCode = exitCode(ps, waitErr)
	// The main process is gone; make sure nothing it started lingers before
	// reading /out (Destroy repeats this and removes the cgroups).
	_ = container.Signal(unix.SIGKILL)
	if r.report != nil {
		// The init's exit took every process of its PID namespace with
		// it, and with them every write end of the pipe: EOF is there or
		// about to be. The bound only guards against the impossible.
		res.Report, res.ReportTruncated = r.report.wait(5 * time.Second)
	}
	used, full := r.outUsage()
	res.BytesWritten = used
	var bad *badOutputError
	if err := r.collectOut(); errors.As(err, &bad) {
		r.capture.Write([]byte("weir: " + bad.Error() + "\n"))
	} else if err != nil {
		r.capture.Write([]byte("weir: copying /out to the host failed: " + err.Error() + "\n"))
		if res.Reason == "" && res.ExitCode == 0 {
			res.Reason, res.Message = ReasonSetup, "the node's output could not be collected: "+err.Error()
		}
	}
	r.capture.flush()
	res.Output = r.capture.bytes()
	r.phase("collect")
	if res.Reason != "" {
		return res
	}
	switch {
	case errors.Is(killErr, context.DeadlineExceeded) && ctx.Err() == nil:
		res.Reason = ReasonTime
		res.Message = fmt.Sprintf("killed after the %s wall time limit; make the step faster or raise its time limit", r.lim.Wall)
	case killErr != nil:
		res.Reason = ReasonAborted
		res.Message = "cancelled: " + ctx.Err().Error()
	case st.oomKills > 0:
		res.Reason = ReasonMemory
		res.Message = fmt.Sprintf("killed for exceeding the %s memory limit; use less memory or raise the step's memory limit", bytesString(r.lim.Memory))
	case st.pidsMax > 0 && res.ExitCode != 0:
		res.Reason = ReasonProcs
		res.Message = fmt.Sprintf("failed after hitting the %d process limit; start fewer processes or threads, or raise the step's process limit", r.lim.Pids)
	case full:
		res.Reason = ReasonOutput
		res.Message = fmt.Sprintf("filled the %s output quota of /out; write less or raise the step's output limit", bytesString(r.lim.OutputBytes))
	case res.ExitCode != 0:
		res.Reason = ReasonExit
		if res.ExitCode > 128 {
			res.Message = fmt.Sprintf("killed by signal %d", res.ExitCode-128)
		} else {
			res.Message = fmt.Sprintf("exited with status %d", res.ExitCode)
		}
	case bad != nil:
		res.Reason = ReasonBadOutput
		res.Message = bad.Error()
	default:
		res.Reason = ReasonOK
	}
	return res
}

// memorySwap is the memory+swap limit: equal to the memory limit (no
// swap) where the kernel accounts swap, unset where it does not (cgroup v1
// without swapaccount: libcontainer would refuse the setting).
func memorySwap(mem int64) int64 {
	if cgroups.IsCgroup2UnifiedMode() {
		return mem
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
		return 0
	}
	return mem
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		var ee interface{ Sys() any }
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				ps = nil
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	return ps.ExitCode()
}

// sealedCopy copies the binary at path into a sealed memfd (no write, grow,
// shrink or further seals), so no sandbox can alter what later sandboxes
// run as init even if the file on disk changes.
func sealedCopy(path string) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("weir-sandbox-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "weir-sandbox-init")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal: %w", err)
	}
	return f, nil
}

// prepareMounts mounts the sandbox's three host-side tmpfs: /out of the
// output quota (tmpfs refuses writes past size= with ENOSPC, which is how
// the quota is enforced; a full tmpfs after the run is how it is
// reported), /tmp, and /in, a small root-owned tmpfs made shared, so that
// the inputs bound under it once the sandbox has its node (bind) propagate
// into the sandbox's slave copy. Being on the host side, all three can be
// resized or filled after the sandbox was built.
func (r *run) prepareMounts() error {
	if err := os.MkdirAll(r.runDir, 0o700); err != nil {
		return err
	}
	for _, d := range []string{r.outDir, r.tmpDir, r.inDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	root, uid, gid := 0, nodeUID, nodeGID
	if r.userns {
		root, uid, gid = userBase, uid+userBase, gid+userBase
	}
	mounts := []struct {
		what, dir, data string
		flags           uintptr
	}{
		{"weir-out", r.outDir, fmt.Sprintf("size=%d,mode=0755,uid=%d,gid=%d,nr_inodes=65536", r.lim.OutputBytes, uid, gid), unix.MS_NOSUID | unix.MS_NODEV},
		{"weir-tmp", r.tmpDir, fmt.Sprintf("size=%d,mode=1777,uid=%d,gid=%d,nr_inodes=65536", r.lim.TmpBytes, root, root), unix.MS_NOSUID | unix.MS_NODEV},
		{"weir-in", r.inDir, fmt.Sprintf("size=64k,mode=0755,uid=%d,gid=%d,nr_inodes=4096", root, root), unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
	}
	for _, m := range mounts {
		if err := unix.Mount(m.what, m.dir, "tmpfs", m.flags, m.data); err != nil {
			return fmt.Errorf("mount %s tmpfs: %w", m.what, err)
		}
	}
	if err := unix.Mount("", r.inDir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make /in shared: %w", err)
	}
	return nil
}

// outUsage reports the bytes used in /out and whether the quota is
// (practically) exhausted: fewer than two pages or no inodes left.
func (r *run) outUsage() (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(r.outDir, &st); err != nil {
		return 0, false
	}
	used := int64(st.Blocks-st.Bfree) * st.Bsize
	full := int64(st.Bavail)*st.Bsize < 2*4096 || st.Ffree == 0
	return used, full
}

// collectOut copies what the node left in /out to spec.Output, after
// checking all of it (collectTree): a *badOutputError refuses the lot and
// copies nothing.
func (r *run) collectOut() error {
	if r.spec.Output == "" {
		return nil
	}
	return collectTree(r.outDir, r.spec.Output, r.lim.OutputBytes)
}

func (r *run) cleanupRunDir() {
	if r.runDir == "" {
		return
	}
	// /in first: the inputs bound under it go with it (MNT_DETACH).
	for _, d := range []string{r.inDir, r.tmpDir, r.outDir} {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			r.s.log.Warn("unmount", "container", r.cid, "dir", d, "err", err)
		}
	}
	if err := os.RemoveAll(r.runDir); err != nil {
		r.s.log.Warn("remove run dir", "container", r.cid, "err", err)
	}
}

// cgroupStats are the figures read from the cgroup before it is destroyed.
type cgroupStats struct {
	cpu      time.Duration
	peakMem  int64
	oomKills int64
	pidsMax  int64
}

func (r *run) stats(c *libcontainer.Container) cgroupStats {
	var st cgroupStats
	state, err := c.State()
	if err != nil {
		return st
	}
	p := state.CgroupPaths
	if d := p["memory"]; d != "" {
		st.peakMem = readInt(filepath.Join(d, "memory.max_usage_in_bytes"))
		st.oomKills = readKey(filepath.Join(d, "memory.oom_control"), "oom_kill")
	}
	if d := p["pids"]; d != "" {
		st.pidsMax = readKey(filepath.Join(d, "pids.events"), "max")
	}
	if d := p["cpuacct"]; d != "" {
		st.cpu = time.Duration(readInt(filepath.Join(d, "cpuacct.usage")))
	}
	if d := p[""]; d != "" && cgroups.IsCgroup2UnifiedMode() {
		st.peakMem = readInt(filepath.Join(d, "memory.peak"))
		st.oomKills = readKey(filepath.Join(d, "memory.events"), "oom_kill")
		st.pidsMax = readKey(filepath.Join(d, "pids.events"), "max")
		st.cpu = time.Duration(readKey(filepath.Join(d, "cpu.stat"), "usage_usec")) * time.Microsecond
	}
	return st
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// readKey reads "key value" lines (memory.oom_control, pids.events).
func readKey(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// config is the libcontainer configuration of one sandbox.
func (r *run) config() *configs.Config {
	const (
		roBind = unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
		noX    = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	)
	var mounts []*configs.Mount
	mounts = append(mounts,
		&configs.Mount{Source: "proc", Destination: "/proc", Device: "proc", Flags: noX},
		&configs.Mount{Source: "tmpfs", Destination: "/dev", Device: "tmpfs",
			Flags: unix.MS_NOSUID | unix.MS_STRICTATIME | unix.MS_NOEXEC, Data: "mode=755,size=64k"},
	)
	mounts = append(mounts, r.root.mounts...)
	mounts = append(mounts,
		&configs.Mount{Source: r.tmpDir, Destination: TmpDir, Device: "bind", Flags: unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV},
		// A slave of the host's shared /in: the inputs bound there
		// later appear here, and nothing mounted here goes back.
		&configs.Mount{Source: r.inDir, Destination: InputsDir, Device: "bind", Flags: unix.MS_BIND | noX,
			PropagationFlags: []int{unix.MS_SLAVE}},
		&configs.Mount{Source: r.outDir, Destination: OutputDir, Device: "bind",
			Flags: unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV},
		&configs.Mount{Source: r.s.shimBinary, Destination: shimPath, Device: "bind", Flags: roBind},
		&configs.Mount{Source: r.s.seccompFile, Destination: seccompPath, Device: "bind", Flags: roBind | unix.MS_NOEXEC},
	)
	if r.weir {
		mounts = append(mounts, &configs.Mount{Source: r.s.cfg.WeirBinary, Destination: RunnerPath, Device: "bind", Flags: roBind})
	}

	var devs []*devcfg.Device
	var rules []*devcfg.Rule
	for _, d := range []struct {
		name  string
		minor int64
	}{{"null", 3}, {"zero", 5}, {"full", 7}, {"random", 8}, {"urandom", 9}} {
		dev := &devcfg.Device{
			Rule: devcfg.Rule{Type: devcfg.CharDevice, Major: 1, Minor: d.minor, Permissions: "rwm", Allow: true},
			Path: "/dev/" + d.name, FileMode: 0o666,
		}
		devs = append(devs, dev)
		rules = append(rules, &dev.Rule)
	}
	pids := r.lim.Pids
	period := uint64(100000)
	oomAdj := 1000 // the node, never the server, is the OOM killer's first pick
	c := &configs.Config{
		Rootfs:            r.root.skeleton,
		Readonlyfs:        true,
		ParentDeathSignal: int(unix.SIGKILL),
		Hostname:          "weir-sandbox",
		Capabilities:      &configs.Capabilities{},
		NoNewPrivileges:   true,
		OomScoreAdj:       &oomAdj,
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWUTS}, {Type: configs.NEWIPC},
			{Type: configs.NEWPID}, {Type: configs.NEWNET}, {Type: configs.NEWCGROUP},
		},
		Networks: []*configs.Network{{Type: "loopback", Address: "127.0.0.1/0", Gateway: "localhost"}},
		Cgroups: &cgroups.Cgroup{
			Path: r.cgroupPath,
			Resources: &cgroups.Resources{
				Memory:     r.lim.Memory,
				MemorySwap: memorySwap(r.lim.Memory),
				PidsLimit:  &pids,
				CpuPeriod:  period,
				CpuQuota:   int64(r.lim.CPU * float64(period)),
				Devices:    append([]*devcfg.Rule{{Type: devcfg.WildcardDevice, Permissions: "rwm", Allow: false}}, rules...),
			},
		},
		Devices: devs,
		Mounts:  mounts,
		MaskPaths: []string{
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
			"/proc/sysrq-trigger", "/proc/kallsyms", "/proc/kmsg", "/proc/interrupts",
			"/sys/firmware", "/sys/devices/virtual/powercap",
		},
		ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"},
		Rlimits: []configs.Rlimit{
			{Type: unix.RLIMIT_NOFILE, Hard: r.lim.OpenFiles, Soft: r.lim.OpenFiles},
			{Type: unix.RLIMIT_CORE, Hard: 0, Soft: 0},
		},
	}
	if r.userns {
		c.Namespaces = append(c.Namespaces, configs.Namespace{Type: configs.NEWUSER})
		c.UIDMappings = []configs.IDMap{{ContainerID: 0, HostID: userBase, Size: userSize}}
		c.GIDMappings = []configs.IDMap{{ContainerID: 0, HostID: userBase, Size: userSize}}
	}
	return c
}

// nodeArgs is the node's argv: the runner (RunnerPath) of a sandbox with
// Spec.Weir starts through the runtime's loader, so it runs in an image
// whatever C library the image has.
func (r *run) nodeArgs() []string {
	if r.spec.Weir && r.spec.Args[0] == RunnerPath {
		return r.root.throughLoader(r.spec.Args)
	}
	return r.spec.Args
}

// buildRoots makes the root of every runtime: the host's (built once,
// kept across restarts) and a fresh skeleton for each registered image
// under <StateDir>/runtimes/<name>, whose loader and libraries are those
// the shim and the runner need on this host. It says, once, which files
// of an image a node cannot read.
func (s *Sandboxes) buildRoots() error {
	s.roots = map[string]*rootfs{HostRuntime: {skeleton: s.hostRoot, mounts: hostMounts()}}
	if len(s.cfg.Runtimes) == 0 {
		return nil
	}
	bins := []string{s.shimBinary}
	if s.cfg.WeirBinary != s.shimBinary {
		bins = append(bins, s.cfg.WeirBinary)
	}
	l, err := sharedLibs(bins...)
	if err != nil {
		return fmt.Errorf("exec: runtimes: %w", err)
	}
	dir := filepath.Join(s.cfg.StateDir, "runtimes")
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("exec: runtimes: %w", err)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("exec: runtimes: %w", err)
	}
	for _, name := range sortedKeys(s.cfg.Runtimes) {
		image, err := filepath.Abs(s.cfg.Runtimes[name])
		if err != nil {
			return err
		}
		rf, err := buildImageRoot(filepath.Join(dir, name), image, l)
		if err != nil {
			return fmt.Errorf("exec: runtime %s: %w", name, err)
		}
		s.roots[name] = rf
		if list, n := unreadable(image, 5); n > 0 {
			s.log.Warn("runtime has files its nodes cannot read (not readable by others); chmod o+rX them if nodes need them",
				"runtime", name, "rootfs", image, "count", n, "examples", strings.Join(list, " "))
		}
	}
	return nil
}

// usernsUnusable says why sandboxes rooted at dir cannot have a user
// namespace ("" if they can): the kernel must allow one, and the mapped
// container root (an unprivileged host uid) must be able to reach dir, so
// every dir from / down to dir must be searchable by others.
func usernsUnusable(dir string) string {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return "the kernel has no user namespaces"
	}
	if n := readInt("/proc/sys/user/max_user_namespaces"); n == 0 {
		return "user.max_user_namespaces is 0"
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err.Error()
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Sprintf("%s is not searchable by others (mode %s)", d, fi.Mode().Perm())
		}
		if d == "/" || d == "." {
			return ""
		}
	}
}

// hasCap says whether this process has capability c in its effective set.
func hasCap(c int) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<uint(c)) != 0
		}
	}
	return false
}
