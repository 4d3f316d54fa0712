package node

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// claimResult makes descriptor fd the runner's own before any of the
// node's code runs: close-on-exec, so no child (a Python model) inherits
// it, and the process not dumpable, so that no other process of the same
// uid (the model, or anything it starts) may open /proc/<runner>/fd/<fd>,
// read or write /proc/<runner>/mem, or trace the runner (ptrace is also
// refused by the sandbox's seccomp filter). SQL runs inside this process,
// in DuckDB, which open locks to the node's dirs before any user SQL.
func claimResult(fd int) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "result"), nil
}

// killStrays kills every other process of the sandbox, which the caller
// (its PID 1) outlives, and reaps them: kill(-1) from a PID namespace's
// init reaches every process of the namespace but the init itself.
func killStrays() {
	_ = unix.Kill(-1, unix.SIGKILL)
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); err == unix.ECHILD {
			return
		} else if err != nil && err != unix.EINTR {
			return
		}
	}
}
