package exec

import (
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	// nsenter's C constructor joins and sets up namespaces in the re-executed
	// init before the Go runtime starts; libcontainer needs it.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
	"golang.org/x/sys/unix"
)

// InitArg is argv[1] of the re-executed binary acting as a container's
// init (libcontainer's convention).
const InitArg = "init"

// execArg is argv[1] of the in-sandbox shim that seals the node (seccomp)
// and execs its argv.
const execArg = "__weir-sandbox-exec"

// shimPath is where the weir binary is mounted, read-only, in every
// sandbox, to act as the seccomp shim; seccompPath is where the compiled
// filter is mounted (read by the C shim in shim_cgo.go).
const (
	shimPath    = "/weir/bin/.sandbox-exec"
	seccompPath = "/weir/bin/.seccomp"
)

// Init must be called first thing in main's package init (and in TestMain
// of any test binary that runs sandboxes). When the process was started as
// a container's init or as the in-sandbox shim it never returns; otherwise
// it does nothing.
//
// argv of the two hidden entries:
//
//	<bin> init                                            libcontainer's container init
//	<bin> __weir-sandbox-exec <home> <report> -- argv...  seccomp, then execve(argv)
//
// <home> is "1" when the node's Env had HOME (libcontainer adds one
// otherwise, which the shim removes so the env is exactly Spec.Env).
// <report> is the descriptor of the report pipe (Spec.Report), which the
// shim moves to ReportFD, or "-": every other descriptor above 2 is closed.
func Init() {
	if len(os.Args) < 2 {
		return
	}
	switch os.Args[1] {
	case InitArg:
		// The node must die with the server. libcontainer sets
		// Config.ParentDeathSignal only on the process it forks (nsexec's
		// first stage); the container's init is that process's grandchild,
		// cloned with CLONE_PARENT, and a clone starts with no parent-death
		// signal. Set it here, on the main thread (package init runs
		// locked to it), before the init talks to its parent: libcontainer
		// keeps it across the change of user (pdeath.Restore) and execve
		// keeps it for the shim and the node (same uid, no privileges
		// gained). The server dying before this line is caught by the init
		// itself: its next sync with the parent fails and it exits.
		_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)
		libcontainer.Init() // never returns
		os.Exit(1)
	case execArg:
		err := shim(os.Args[2:])
		fmt.Fprintf(os.Stderr, "weir sandbox: %v\n", err)
		os.Exit(127)
	}
}

// shim runs inside the sandbox as the unprivileged node user, with
// no_new_privs already set: it installs the seccomp filter on every thread
// and replaces itself with the node's program.
func shim(args []string) error {
	if len(args) < 4 || args[2] != "--" {
		return fmt.Errorf("bad shim argv %q", args)
	}
	keepHome := args[0] == "1"
	argv := args[3:]
	keep := uint(3)
	if args[1] != "-" {
		rfd, err := strconv.Atoi(args[1])
		if err != nil || rfd < ReportFD || rfd > 1023 {
			return fmt.Errorf("bad report descriptor %q", args[1])
		}
		if rfd != ReportFD {
			if err := unix.Dup3(rfd, ReportFD, 0); err != nil {
				return fmt.Errorf("report descriptor: %w", err)
			}
		} else if _, err := unix.FcntlInt(uintptr(ReportFD), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("report descriptor: %w", err)
		}
		keep = ReportFD + 1
	}
	env := os.Environ()
	if !keepHome {
		kept := env[:0]
		for _, kv := range env {
			if !strings.HasPrefix(kv, "HOME=") {
				kept = append(kept, kv)
			}
		}
		env = kept
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := osexec.LookPath(path)
		if err != nil {
			return fmt.Errorf("%s: command not found", path) // same words as the C shim
		}
		path = p
	}
	// Belt and braces against leaked descriptors (CVE-2024-21626 class):
	// nothing but stdio (and the report pipe) crosses into the node.
	unix.CloseRange(keep, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err := installSeccomp(); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	err := unix.Exec(path, argv, env)
	return fmt.Errorf("exec %s: %w", argv[0], err)
}
