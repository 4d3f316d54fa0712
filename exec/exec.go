package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/weir-dev/weir/metrics"
)

// RunnerPath is where the node runner (Config.WeirBinary: weir-node, in
// weir serve) is mounted, read-only, inside a sandbox whose Spec.Weir is
// set. Nodes run "RunnerPath <command> <args>".
const RunnerPath = "/weir/bin/weir-runner"

// HostRuntime is the built-in runtime: the host's /usr, /bin, /lib*, and
// /etc bind-mounted read-only onto an otherwise empty root, so that
// /usr/bin/python3 and /bin/sh with the host's packages work.
const HostRuntime = "host"

// Paths a node sees inside its sandbox.
const (
	InputsDir = "/in"  // each Spec.Inputs entry at /in/<name>, read-only
	OutputDir = "/out" // the node's output folder, writable up to Limits.OutputBytes
	TmpDir    = "/tmp" // a private tmpfs of Limits.TmpBytes; the node's cwd
)

// ReportFD is the descriptor on which a node whose Spec.Report is set finds
// the write end of its report pipe.
const ReportFD = 3

// MaxReport is how many bytes of a node's report Result.Report keeps.
const MaxReport = 64 << 10

// What a node may leave in /out for the server to collect, besides
// Limits.OutputBytes: at most MaxOutputEntries files and dirs, at most
// MaxOutputDepth levels deep (/out/a/b is two).
const (
	MaxOutputEntries = 4096
	MaxOutputDepth   = 16
)

// Limits bound what one node may consume. A zero field means "use the
// Sandboxes' default" (Config.Defaults, itself defaulting to DefaultLimits).
type Limits struct {
	Wall        time.Duration // wall-clock time from start to exit
	Memory      int64         // bytes of memory (cgroup limit, swap included)
	Pids        int64         // processes and threads at once
	CPU         float64       // cores (CFS quota); 1.5 = one and a half cores
	OutputBytes int64         // bytes the node may write under /out
	TmpBytes    int64         // size of the /tmp tmpfs
	OpenFiles   uint64        // RLIMIT_NOFILE
}

// DefaultLimits are laptop defaults: 10 minutes wall, 2 GiB memory, 256
// processes, every core of the machine (a node alone may use what a query
// engine run by hand would), 1 GiB output, 256 MiB /tmp, 1024 open files.
func DefaultLimits() Limits {
	return Limits{
		Wall:        10 * time.Minute,
		Memory:      2 << 30,
		Pids:        256,
		CPU:         float64(runtime.NumCPU()),
		OutputBytes: 1 << 30,
		TmpBytes:    256 << 20,
		OpenFiles:   1024,
	}
}

// orDefault fills the zero fields of l from d.
func (l Limits) orDefault(d Limits) Limits {
	if l.Wall <= 0 {
		l.Wall = d.Wall
	}
	if l.Memory <= 0 {
		l.Memory = d.Memory
	}
	if l.Pids <= 0 {
		l.Pids = d.Pids
	}
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = d.OutputBytes
	}
	if l.TmpBytes <= 0 {
		l.TmpBytes = d.TmpBytes
	}
	if l.OpenFiles == 0 {
		l.OpenFiles = d.OpenFiles
	}
	return l
}

// Spec is one node run.
type Spec struct {
	// ID names the run's container, cgroup and state dir. It must be unique
	// among running sandboxes and match [A-Za-z0-9][A-Za-z0-9_.-]{0,99}.
	ID string
	// Runtime is HostRuntime ("" means HostRuntime) or a name registered
	// in Config.Runtimes.
	Runtime string
	// Args is argv inside the sandbox; Args[0] is an absolute path or a
	// name looked up in the PATH of Env.
	Args []string
	// Env is exactly the environment the node sees; nothing of the
	// server's environment is inherited.
	Env []string
	// Inputs maps a name to a host dir or file (absolute path), mounted
	// read-only at /in/<name>. Names are single path elements. The node runs
	// as uid 65534 (nobody), so inputs must be world-readable (files 0644,
	// dirs 0755, all the way down); Run refuses a top-level input that is not.
	Inputs map[string]string
	// Output is a host dir that receives what the node wrote to /out once
	// it exits (whether it succeeded or not): regular files and dirs only,
	// owned by the server. It must exist and hold none of the names the
	// node writes.
	// "" means the node gets a scratch /out that is thrown away.
	Output string
	// Weir mounts the weir binary (Config.WeirBinary) read-only at
	// RunnerPath.
	Weir bool
	// Limits bound the run; zero fields take the defaults.
	Limits Limits
	// Gate, for a sandbox made with Prepare, starts the node at once, with
	// a pipe as its stdin on which Prepared.Run writes one line, "go\n",
	// and closes it. A node runner that does its start-up (process,
	// libraries, an engine) first and reads that line before it touches
	// /in gets its start-up off its caller's critical path: the caller
	// prepares it while the nodes it reads from still run, and fills /in
	// before Run. The wall clock and limit start at Run; every other limit
	// holds from the start. Only for runners that wait for the line before
	// doing the node's work (the weir runner's --gate): anything else would
	// run before Run, unbounded in wall time until Run or Close.
	Gate bool
	// AsyncTeardown makes Run (and Prepared.Run) return as soon as the
	// node has exited and /out is collected, and tears the sandbox down
	// (container, cgroup, mounts, state) right after, in the background:
	// the caller does not wait for it. The ID stays taken until the
	// teardown is over, and Sandboxes.Close waits for it.
	AsyncTeardown bool
	// Report gives the node a pipe as descriptor ReportFD: a channel
	// beside stdout and stderr, which the node's code shares with
	// whatever it runs and prints. What is written to it, up to MaxReport
	// bytes, comes back in Result.Report once every process of the
	// sandbox has exited. Only the process exec starts (Args) gets it;
	// keeping it from the code that process runs in turn (close-on-exec
	// before starting a child; not dumpable, so that no process of the
	// same uid can open /proc/<pid>/fd/3) is that process's job, as the
	// weir runner does.
	Report bool
	// Stdout, if set, receives the node's combined stdout and stderr live,
	// in whole lines and in order (an unterminated last line comes at
	// exit), besides the bounded capture in Result.Output. A Stdout that
	// fails stops receiving; the node is not affected.
	Stdout io.Writer
}

// Reason says why a node stopped.
type Reason string

// Reasons. Run reports the first that applies, in this order: setup,
// time-limit, aborted, memory-limit, process-limit, output-quota, exit,
// bad-output; ok when none does.
const (
	ReasonOK      Reason = "ok"            // exit status 0
	ReasonSetup   Reason = "setup"         // the sandbox could not be built or started
	ReasonTime    Reason = "time-limit"    // killed at Limits.Wall
	ReasonMemory  Reason = "memory-limit"  // the kernel's OOM killer fired in the node's cgroup
	ReasonProcs   Reason = "process-limit" // a fork failed at Limits.Pids and the node failed
	ReasonOutput  Reason = "output-quota"  // /out filled up to Limits.OutputBytes
	ReasonExit    Reason = "exit"          // any other non-zero exit or signal
	ReasonAborted Reason = "aborted"       // ctx was cancelled
	// ReasonBadOutput: /out held what the server refuses to copy: a
	// symlink, fifo, socket or device, a file with more than one link, a
	// sparse file, more than MaxOutputEntries entries, a tree deeper than
	// MaxOutputDepth, or files larger in all than Limits.OutputBytes.
	// Nothing of /out is copied then, whatever the other reason.
	ReasonBadOutput Reason = "bad-output"
)

// OutputTail is how many bytes of combined output Result.Output keeps (the
// last ones).
const OutputTail = 64 << 10

// Result is how a node run ended. Node failures are reported here, never as
// an error from Run.
type Result struct {
	ExitCode int    // exit status; 128+signal if killed by a signal; -1 if it never started
	Reason   Reason // why it stopped
	// Message says in user words what happened, e.g. "killed after 1s wall
	// time limit"; empty when Reason is ReasonOK.
	Message string
	// Output is the tail (OutputTail bytes) of the node's stdout and
	// stderr, interleaved in the order written.
	Output       []byte
	Wall         time.Duration // the node's run: from its start to its exit
	CPU          time.Duration // user+system CPU of every process in the sandbox
	PeakMemory   int64         // bytes, cgroup high-water mark
	BytesWritten int64         // bytes used under /out at exit
	// Report is what the node wrote on its report pipe (Spec.Report), at
	// most MaxReport bytes; ReportTruncated says it wrote more.
	Report          []byte
	ReportTruncated bool
	// Overhead is the time Run spent outside the node: building (for a
	// pooled sandbox: binding), starting and tearing down the sandbox and
	// collecting /out.
	Overhead time.Duration
	// Pooled says the sandbox was built ahead by the pool (Config.SandboxPool)
	// and bound to this node, rather than built for it.
	Pooled bool
}

// Config configures Sandboxes.
type Config struct {
	// StateDir holds container state, staging mounts and the host-runtime
	// rootfs skeleton. It must be private to one server (default
	// /run/weir/exec). Everything under it belongs to exec.
	StateDir string
	// Runtimes maps a runtime name ([a-z0-9][a-z0-9_.-]*) to a rootfs dir
	// on the host: any folder, wherever it sits; it needs none of the
	// paths the sandbox supplies and is never written to. New builds its
	// skeleton root and logs the files a node cannot read. HostRuntime is
	// built in and cannot be overridden.
	Runtimes map[string]string
	// Defaults fill the zero fields of Spec.Limits (zero fields here take
	// DefaultLimits).
	Defaults Limits
	// WeirBinary is the node runner mounted at RunnerPath: weir serve
	// passes weir-node (default: the running executable).
	WeirBinary string
	// InitBinary is a small binary built from ./exec/cmd/weir-sandbox-init,
	// used as every sandbox's container init and shim instead of the
	// running binary (libcontainer re-executes the running binary as init;
	// the full weir binary spends ~200 ms in package initialisers alone).
	// Default: weir-sandbox-init next to the running binary, if there is
	// one; otherwise the running binary serves, correctly but slowly.
	InitBinary string
	// NoUserNamespace turns off the user namespace sandboxes get where the
	// kernel allows one and the mapped container root can reach StateDir:
	// every dir above it searchable by others (a registered runtime's
	// rootfs may sit anywhere). Without one a node runs as host uid 65534.
	NoUserNamespace bool
	// CgroupPool is how many empty cgroups a background goroutine keeps
	// ready so a sandbox's start only joins one (default 8; negative: none,
	// each sandbox creates its own).
	CgroupPool int
	// SandboxPool is how many generic sandboxes of each class (runtime,
	// runner mounted or not) are kept built ahead, so that a node's
	// sandbox only has to be bound to it (default DefaultSandboxPool;
	// negative: none, every sandbox is built when its node is prepared).
	// Each is built with Defaults, holds no node, env or input, is used by
	// exactly one node and then torn down; Close tears down those left.
	SandboxPool int
	// Logger receives sandbox events (default slog.Default()).
	Logger *slog.Logger
	// Metrics counts sandbox starts and sandboxes that could not be built
	// or started (ReasonSetup); nil counts nothing.
	Metrics *metrics.Metrics
}

// Errors for misuse of the API. Node failures are never errors.
var (
	ErrBadSpec     = errors.New("exec: bad spec")
	ErrNoRuntime   = errors.New("exec: unknown runtime")
	ErrUnsupported = errors.New("exec: sandboxes are not supported on this host")
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// validate checks the parts of spec Run relies on.
func (s *Spec) validate() error {
	if !idRE.MatchString(s.ID) {
		return fmt.Errorf("%w: id %q", ErrBadSpec, s.ID)
	}
	if len(s.Args) == 0 || s.Args[0] == "" {
		return fmt.Errorf("%w: no args", ErrBadSpec)
	}
	// The shim gets argv and env as NUL-terminated strings (and execve
	// could not pass a NUL either).
	for _, list := range [][]string{s.Args, s.Env} {
		for _, a := range list {
			if strings.IndexByte(a, 0) >= 0 {
				return fmt.Errorf("%w: an argument or environment entry holds a NUL byte: %q", ErrBadSpec, a)
			}
		}
	}
	for name := range s.Inputs {
		if name == "" || name == "." || name == ".." || containsSlash(name) {
			return fmt.Errorf("%w: input name %q", ErrBadSpec, name)
		}
	}
	return nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}

// Runner runs nodes. *Sandboxes implements it; callers that only run nodes
// should depend on this.
type Runner interface {
	Run(ctx context.Context, spec Spec) (*Result, error)
}

var _ Runner = (*Sandboxes)(nil)
