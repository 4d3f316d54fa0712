// Package exec runs one pipeline node in a sandbox: a container built in
// process with runc's libcontainer (no runc binary), with no network but
// loopback, a read-only root, its declared inputs read-only at /in, a
// size-bounded /out and /tmp, and hard limits on wall time, memory,
// processes, CPU, output bytes and open files.
//
// The weir binary doubles as the container's init: libcontainer re-executes
// /proc/self/exe with argv[1] == "init", and the binary must call Init from
// an init func before anything else runs (cmd/weir/init.go does; tests do it
// in TestMain).
//
// Every sandbox Run builds is torn down before Run returns: no container
// state, mount, cgroup or process is left behind after success, failure or
// timeout, and New sweeps what a crashed server left under its state dir and
// cgroup prefix.
//
// exec must never import anything above it (hooks, gitserver), never let
// the server's environment, files or descriptors reach a node, and never
// report a node's failure as a Go error: errors are for misuse only.
//
// Layout of the state dir:
//
//	<StateDir>/
//	  rootfs-host/           skeleton root of the host runtime (cached)
//	  containers/<cid>/      libcontainer state of a running sandbox
//	  runs/<cid>/out         tmpfs of size OutputBytes bound at /out
//
//	  seccomp.bpf            the compiled seccomp program, bound at /weir/bin/.seccomp
//
// Container ids are weir-<Spec.ID>. Cgroups live under the server's own
// cgroup in every hierarchy, as weir-exec-<hash of StateDir>/c<N>; a pool
// of empty ones is created ahead of time (see cgroupPool) and each is used
// by exactly one sandbox. Close removes the pool and the prefix.
package exec
