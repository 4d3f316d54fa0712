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
//	/in/<name>   each input, read-only, recursively (under a root-owned
//	             host tmpfs, shared on the host, a slave in the sandbox)
//	/out         host tmpfs of Limits.OutputBytes; checked, then copied to
//	             Spec.Output: dirs and regular files (one link, no holes)
//	             only, at most MaxOutputEntries, MaxOutputDepth deep, no
//	             more than Limits.OutputBytes in all; anything else and
//	             nothing is copied (ReasonBadOutput)
//	/tmp         host tmpfs of Limits.TmpBytes; the cwd
//	/proc        masked: kcore, keys, kallsyms, sysrq-trigger, timer_list...;
//	             read-only: sys, irq, bus, fs
//	/dev         null zero full random urandom (+ fd/std* symlinks)
//	/sys         not mounted
//	fds          0 (/dev/null; with Spec.Gate the gate pipe), 1 and 2 (one
//	             pipe); with Spec.Report, 3 (the report pipe, read into
//	             Result.Report); nothing else
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
//	/weir/bin/.sandbox-exec __weir-sandbox-exec <spec fd> <report fd>
//
// whose C constructor, before any Go runtime starts, blocks reading the
// node from the spec pipe (options, argv, the exact env: written by the
// server at Run, see shimMessage), then loads the seccomp program New
// compiled once (seccomp.bpf), moves the report pipe to fd 3 if the node
// asked for it, gives it /dev/null as stdin unless gated, closes every
// other fd above 2 and execs argv with exactly that env.
//
// The container's init has SIGKILL as its parent-death signal, set by Init
// before it first talks to the server (libcontainer's
// Config.ParentDeathSignal reaches only the first process it forks, not
// the init cloned from it); exec and the change to the node's uid keep it.
// So when the server dies, even by SIGKILL, the node's PID 1 is killed and
// the kernel kills the rest of its PID namespace with it.
//
// # Generic sandboxes and the pool
//
// Every sandbox is built generic, before (or without) knowing its node:
// the /out, /tmp and /in tmpfs on the host side, the cgroup, the
// namespaces, the mounts, the seccomp program bound, and the container's
// init, which execs the shim at once; the shim waits on its spec pipe.
// It holds no node, no env but PATH (the shim's only), no input and no
// secret. Binding it to a spec (Prepare) then sets what differs from the
// limits it was built with (memory, pids and CPU with Container.Set, the
// /out and /tmp sizes by remounting the host tmpfs; open files are set by
// the shim itself, lowering the server's hard limit a pooled sandbox is
// built with), binds each input read-only under the
// host side of /in (open_tree(OPEN_TREE_CLONE|AT_RECURSIVE), mount_setattr
// read-only/nosuid/nodev, move_mount), whence it propagates into the
// sandbox's slave /in, and keeps the spec for the shim. So a sandbox built
// ahead is exactly as sealed as one built for its node: it is the same
// sandbox, built by the same code, earlier.
//
// The pool (Config.SandboxPool, default DefaultSandboxPool) keeps that
// many generic sandboxes of each class (runtime, runner mounted or not)
// built ahead with Config.Defaults, filled by one background goroutine per
// class, started by a class's first node or by Warm. Prepare takes one if
// there is one (Result.Pooled), else builds one for the spec. A sandbox is
// bound once, runs once, and is torn down; the filler builds another.
// Close tears down those still parked. The parked ones hold one OS thread
// each in the server (the parent-death signal) and one process, the shim,
// blocked on a read.
//
// # Prepared sandboxes
//
// Run is Prepare then Prepared.Run. Prepare binds a generic sandbox to the
// spec (taking one from the pool, or building one); Prepared.Run writes
// the node's argv and env on the spec pipe (the shim execs the node) and
// waits. A caller that knows its next node (the pipeline hook does)
// prepares its sandbox while the current node runs, so binding (and,
// without a pooled sandbox, building) leaves the critical path. Nothing of
// the node runs before Run, and its limits, the wall clock included,
// start there; an input dir bound at Prepare may be filled up to Run (a
// bind mount shows files added to its dir later).
//
//	Prepare   validate, reserve the ID; take a pooled sandbox or start
//	          building one; then, on the sandbox's own locked goroutine:
//	          limits, inputs, spec kept for the shim; Ready closed
//	Run       spec written (the shim execs the node), node runs, wait,
//	          stats, collect /out, teardown, result
//	Close     (instead of Run) kill and reap the parked init, teardown
//
// Two options move more off a caller's critical path. Spec.Gate writes the
// spec at Prepare, with a pipe as the node's stdin: a runner that
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
// prefix, pooled sandboxes included (their processes died with the
// server; the sweep kills any left with cgroup.kill on cgroup v2, by
// freezing and killing on v1).
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
//	  containers/<cid>/      libcontainer state of a sandbox (parked or running)
//	  runs/<cid>/out         tmpfs of size OutputBytes bound at /out
//	  runs/<cid>/tmp         tmpfs of size TmpBytes bound at /tmp
//	  runs/<cid>/in          tmpfs (shared) bound at /in (slave); inputs under it
//
// Container ids are weir-s<N> (N counts the sandboxes a Sandboxes built;
// the debug log names the Spec.ID with it). Cgroups live under the server's own
// cgroup in every hierarchy, as weir-exec-<hash of StateDir>/c<N>; a pool
// of empty ones is created ahead of time (see cgroupPool) and each is used
// by exactly one sandbox. Close removes the pool and the prefix.
package exec
