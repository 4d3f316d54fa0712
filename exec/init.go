package exec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
//	<bin> init                                             libcontainer's container init
//	<bin> __weir-sandbox-exec <spec fd> <report fd>        seccomp, then execve(the node)
//
// The shim reads the node from the spec pipe once the server has bound the
// sandbox to it (see shimMessage): options, argv and the exact env. With
// option "r" it moves the report pipe (Spec.Report) to ReportFD; with "g"
// it keeps stdin (the gate), else stdin becomes /dev/null; every other
// descriptor above 2 is closed.
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
// no_new_privs already set: it reads the node from the spec pipe, installs
// the seccomp filter on every thread and replaces itself with the node's
// program. (The C shim in shim_cgo.go does the same before the Go runtime
// starts; this is its fallback.)
func shim(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("bad shim argv %q", args)
	}
	var fds [2]int
	for i, a := range args {
		fd, err := strconv.Atoi(a)
		if err != nil || fd < 3 || fd > 1023 {
			return fmt.Errorf("bad descriptor %q", a)
		}
		fds[i] = fd
	}
	f := os.NewFile(uintptr(fds[0]), "spec")
	msg, err := io.ReadAll(io.LimitReader(f, 64<<20))
	f.Close()
	if err != nil {
		return fmt.Errorf("read node spec: %w", err)
	}
	if len(msg) == 0 || msg[len(msg)-1] != 0 {
		return errors.New("no node spec") // the server tore the sandbox down
	}
	strs := strings.Split(string(msg[:len(msg)-1]), "\x00")
	if len(strs) < 4 {
		return errors.New("bad node spec")
	}
	nofile, err1 := strconv.ParseUint(strs[1], 10, 64)
	n, err := strconv.Atoi(strs[2])
	if err1 != nil || nofile < 1 || err != nil || n < 1 || n > len(strs)-3 {
		return errors.New("bad node spec")
	}
	opts, argv, env := strs[0], strs[3:3+n], strs[3+n:]
	// Only ever a lowering (the sandbox was built with more), which needs
	// no privilege.
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: nofile, Max: nofile}); err != nil {
		return fmt.Errorf("open files limit: %w", err)
	}
	keep := uint(3)
	if strings.Contains(opts, "r") {
		if rfd := fds[1]; rfd != ReportFD {
			if err := unix.Dup3(rfd, ReportFD, 0); err != nil {
				return fmt.Errorf("report descriptor: %w", err)
			}
		} else if _, err := unix.FcntlInt(uintptr(ReportFD), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("report descriptor: %w", err)
		}
		keep = ReportFD + 1
	}
	if !strings.Contains(opts, "g") {
		null, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
		if err != nil {
			return fmt.Errorf("open /dev/null: %w", err)
		}
		if null != 0 {
			if err := unix.Dup3(null, 0, 0); err != nil {
				return fmt.Errorf("stdin: %w", err)
			}
			unix.Close(null)
		}
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := lookPath(path, env)
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
	err = unix.Exec(path, argv, env)
	return fmt.Errorf("exec %s: %w", argv[0], err)
}

// lookPath finds name in the PATH of env (as execvp: /bin:/usr/bin when
// env has none).
func lookPath(name string, env []string) (string, error) {
	dirs := "/bin:/usr/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs = v
		}
	}
	for _, d := range filepath.SplitList(dirs) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}
