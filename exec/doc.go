// Package exec runs one pipeline node in a sandbox: a container built in
// process with runc's libcontainer (no runc binary), with no network but
// loopback, a read-only root, its declared inputs read-only at /in, a
// size-bounded /out and /tmp, and hard limits on wall time, memory,
// processes, CPU, output bytes and open files.
//
// What a node gets (the host runtime):
//
//	namespaces   mount, pid, ipc, uts, net (only lo, up), cgroup
//	user         uid/gid 65534 inside; a user namespace mapping the
//	             sandbox's ids 0-65535 to host ids 1048576+ where the kernel
//	             allows it and every dir above the state dir is searchable
//	             by others (else host uid 65534), for every runtime,
//	             wherever its image sits; no capabilities in any set;
//	             no_new_privs
//	seccomp      deny-list (EPERM): mount family, namespaces (unshare,
//	             setns, clone with CLONE_NEW*; clone3 -> ENOSYS), ptrace,
//	             process_vm_*, kexec, modules, bpf, perf, userfaultfd, keys,
//	             swap, reboot, clocks, io_uring...; non-x86_64 ABIs killed
//	/            read-only skeleton; host runtime: /usr /etc (and /bin
//	             /lib* /sbin, or their symlinks) bound read-only from the
//	             host; a registered runtime: the image's top-level dirs and
//	             files bound read-only, its top-level symlinks copied, its
//	             own /proc /dev /tmp /in /out /sys /weir ignored
//	/weir/lib    registered runtimes: the host's loader and the shared
//	             libraries of the shim and the runner, read-only; both
//	             start as "<loader> --library-path /weir/lib <binary>", so
//	             any image (any C library, or none) runs them, and what
//	             they start uses the image's own loader and libraries
//	/in/<name>   each input, read-only (under a root-owned tmpfs)
//	/out         host tmpfs of Limits.OutputBytes; checked, then copied to
//	             Spec.Output: dirs and regular files (one link, no holes)
//	             only, at most MaxOutputEntries, MaxOutputDepth deep, no
//	             more than Limits.OutputBytes in all; anything else and
//	             nothing is copied (ReasonBadOutput)
//	/tmp         tmpfs of Limits.TmpBytes; the cwd
//	/proc        masked: kcore, keys, kallsyms, sysrq-trigger, timer_list...;
//	             read-only: sys, irq, bus, fs
//	/dev         null zero full random urandom (+ fd/std* symlinks)
//	/sys         not mounted
//	fds          0 (/dev/null), 1 and 2 (one pipe); with Spec.Report, 3
//	             (the report pipe, read into Result.Report); nothing else
//	env          exactly Spec.Env
//
// # Start-up chain
//
// libcontainer re-executes /proc/self/exe with argv[1] == "init"; the
// binary must call Init from an init func before anything else runs
// (cmd/weir/init.go does; test binaries do it in TestMain). Because the
// weir binary spends ~200 ms in package initialisers, a server normally
// ships weir-sandbox-init (./exec/cmd/weir-sandbox-init) next to weir: New
// seals a copy of it in a memfd and passes it to every init as fd 3, and a
// priority-101 ELF constructor (shim_cgo.go) execs it before the large
// binary's initialisers run. The container process is then the shim,
//
//	/weir/bin/.sandbox-exec __weir-sandbox-exec <home> <report> -- argv...
//
// whose C constructor loads the seccomp program New compiled once
// (seccomp.bpf), moves the report pipe (if any) to fd 3, closes every
// other fd above 2 and execs argv.
//
// The container's init has SIGKILL as its parent-death signal, set by Init
// before it first talks to the server (libcontainer's
// Config.ParentDeathSignal reaches only the first process it forks, not
// the init cloned from it); exec and the change to the node's uid keep it.
// So when the server dies, even by SIGKILL, the node's PID 1 is killed and
// the kernel kills the rest of its PID namespace with it.
//
// # Prepared sandboxes
//
// Run is Prepare then Prepared.Run. Prepare does everything but the node:
// the /out tmpfs, the cgroup, the namespaces, the mounts (inputs included),
// and the container's init, which parks on libcontainer's exec fifo;
// Prepared.Run opens the fifo (the init execs the shim, the shim the node)
// and waits. A caller that knows its next node (the pipeline hook does)
// prepares its sandbox while the current node runs, so the ~20 ms of setup
// leaves the critical path. Nothing of the node runs before Run, and its
// limits, the wall clock included, start there; an input dir bound at
// Prepare may be filled up to Run (a bind mount shows files added to its
// dir later). Isolation is the same either way: it is the same sandbox,
// built earlier.
//
//	Prepare   validate, reserve the ID; then, on the sandbox's own locked
//	          goroutine: out tmpfs, Create (cgroup from the pool), Start
//	          (init parked), Ready closed
//	Run       exec fifo opened, node runs, wait, stats, collect /out,
//	          teardown, result
//	Close     (instead of Run) kill and reap the parked init, teardown
//
// Two options move more off a caller's critical path. Spec.Gate opens the
// exec fifo at Prepare, with a pipe as the node's stdin: a runner that
// starts up (its process, DuckDB) and then waits for the line "go" that
// Run writes has its start-up done by Run; its wall clock starts at Run.
// Spec.AsyncTeardown hands the result over once the node has exited and
// /out is collected, and tears down after; the ID stays reserved and
// Close waits until it is done.
//
// Every sandbox is torn down before Run (or Close) returns, and one whose
// Prepare ctx ends first is torn down then: no container state, mount,
// cgroup or process is left behind after success, failure or timeout, and
// New sweeps what a crashed server left under its state dir and cgroup
// prefix (its processes died with the server; the sweep kills any left
// with cgroup.kill on cgroup v2, by freezing and killing on v1).
//
// exec must never import anything above it (hooks, gitserver), never let
// the server's environment, files or descriptors reach a node, and never
// report a node's failure as a Go error: errors are for misuse only.
//
// Layout of the state dir (keep it outside the weir binary's dir, or
// libcontainer cannot seal the binary with overlayfs and copies it per
// sandbox):
//
//	<StateDir>/
//	  rootfs-host/           skeleton root of the host runtime (cached)
//	  runtimes/<name>/       skeleton root of a registered runtime (made
//	                         again by New: mount points only, nothing of
//	                         the image is copied or written)
//	  seccomp.bpf            the compiled seccomp program, bound at /weir/bin/.seccomp
//	  containers/<cid>/      libcontainer state of a running sandbox
//	  runs/<cid>/out         tmpfs of size OutputBytes bound at /out
//
// Container ids are weir-<Spec.ID>. Cgroups live under the server's own
// cgroup in every hierarchy, as weir-exec-<hash of StateDir>/c<N>; a pool
// of empty ones is created ahead of time (see cgroupPool) and each is used
// by exactly one sandbox. Close removes the pool and the prefix.
package exec
