// Package sched owns the server's one run queue: it decides when a run
// may start (admission, bounded by run slots, with fair share, priority
// and back-pressure), which runs of one branch wait for which, and when
// each node of a running run may take its share of the machine (node
// slots from a pool of cores and memory). It lists the runs it holds and
// the last ones that ended, for "weir runs <repo>".
//
// It only decides and counts. It must never run a node, open a sandbox,
// read or move a ref, read a table or parse a pipeline: it knows a run by
// the Request its caller fills in (repo, branches, pusher, priority, an
// estimate of its nodes) and a node by its Demand. It imports the
// standard library only (TestStandardLibraryOnly), so it builds and is
// tested on its own: its names (Repo, Identity, Commit, RunID) are its
// own types, which the hook converts from objects' and access'. Its
// callbacks (Request.Progress, Request.Recheck) are never called under
// its lock.
//
// # A request's life
//
//	Admit(ctx, req)
//	  │
//	  ├─ can start now (branches free, slot free, nobody queued) ──────────► running
//	  ├─ MaxQueue requests already waiting ─────────────► *BusyError (nothing queued)
//	  ├─ a branch of req held or waited for ──► branch wait (holds nothing)
//	  │                                            │ every branch handed over
//	  │                                            ▼
//	  │                                         recheck (Request.Recheck, holds
//	  │                                            │      its branches)
//	  │                                            ├─ error ──► refused
//	  │                                            ▼
//	  └─ branches free, no slot ───────────────► run queue (Policy; holds its
//	                                               │        branches)
//	                                               │ a run slot, the policy's turn
//	                                               ▼
//	                                            running ──Ticket.Done──► succeeded,
//	                                               │                     failed, cancelled
//	                                               └─ Ticket.Node(ctx, Demand) per node:
//	                                                  a node slot, FIFO, released when
//	                                                  the node ends
//
//	ctx ends while waiting (branch, recheck, queue) ──► cancelled, its place freed at once
//
// While it waits, Request.Progress gets its Position ("queued, 3 runs
// ahead") whenever it changes and every Config.KeepAlive.
//
// # Same branch
//
// At most one admitted request holds a branch of a repo (claims.go). A
// request whose branch is held waits behind the holder, in arrival
// order, holding no run slot; when the holder is Done the branch is
// handed to the next waiter, which runs Request.Recheck before it queues
// for a slot: the code ref may have moved under it, and a push that is
// no longer a fast-forward is refused then, before anything of it runs.
// A push to several branches takes them all at once or waits for all.
//
// # Capacity and why nothing deadlocks
//
// Runs: at most Config.MaxRuns admitted at once. Nodes: a pool of
// Config.CPU cores and Config.Memory bytes (pool.go); each node takes
// its demand (weir.toml's cpus and memory_mb, Config.NodeDefault when it
// declares none) clamped to the pool, in FIFO order.
//
// A run takes what it holds in one order and never gives it back early:
//
//	step 1  its branches   all at once; while waiting it holds nothing
//	step 2  a run slot     while waiting it holds its branches
//	step 3  node slots     one per running node; while waiting it holds
//	                       steps 1, 2 and the slots of its other nodes
//	                       that run
//
// A cycle of waits would need someone to wait for a resource of a lower
// step while holding one of a higher, or two requests each holding what
// the other waits for within one step. Neither can happen:
//
//   - Branches are taken all at once or not at all, and the waiting
//     lists are in arrival order, so the earliest waiter is first in all
//     of its lists and nobody holds a branch while waiting for another.
//   - A run slot is held until Done; its holder waits only for node
//     slots (step 3), never for a branch or another run slot.
//   - A node slot is held by a node that is running: it waits for
//     nothing of the scheduler, and is released when the node ends
//     (bounded by the node's wall-time limit). So held node slots always
//     come back; and since every demand is clamped to the pool, the
//     first waiter fits at the latest when the pool is empty, so it is
//     granted, and so is each one after it (FIFO: a large node is never
//     overtaken for ever by small ones).
//
// Hence every wait ends, provided the caller keeps its side: one Admit
// per push (never Admit while holding a Ticket); Ticket.Node right
// before a node runs and its release as the node ends, so that a slot is
// held only by a running node (a node whose inputs are still being made
// has not asked yet); Done always.
// TestRandomLoad drives many goroutines at random against small
// capacities and checks that every run finishes and no capacity is ever
// exceeded.
//
// # Policies
//
// The run queue's order is a Policy (policy.go), chosen by name
// (Config.Policy, NewPolicy): "fair" (default; fair.go: surplus round
// robin across pushing identities, then their repos, a run's cost its
// estimated work divided by its priority's weight) or "fifo" (first in,
// first out within a priority). Another policy is a type with Push, Pop,
// Remove, Len and Order, and a line in the policies table.
//
// One rule stands above the policy (sched.go, next): a queued run that a
// push of another identity waits behind, for its branch, starts first
// (the earliest such). Its waiters hold no run slot and cannot start
// before it whatever their turn, so it inherits their place; a branch has
// one holder, so at most one run per branch is lifted, and waiters of the
// holder's own identity do not count, so a flood on one branch is not.
//
// # How the pipeline hook uses it
//
// Five pieces, each in one place:
//
// Step 1, cmd/weir serve (newServeApp, cmd/weir/runs.go) builds one
// Scheduler from flags, all in "weir serve --help": --runs (MaxRuns),
// --run-queue (MaxQueue; 0 there is no queue, this package's negative),
// --run-policy (Policy; its help from PolicyHelp), --node-pool-cpus (CPU)
// and --node-pool-memory-mb (Memory) (not --node-cpus: that flag already
// caps one node's sandbox), --node-default-cpus and
// --node-default-memory-mb (NodeDefault), --runs-history (History). It
// logs Config() once at start, so the sizes taken from the machine show,
// and hands the Scheduler to the hook (hooks.PipelineConfig.Scheduler;
// nil keeps every push running at once) and to the SSH command of step 5.
//
// Step 2, hooks.Pipeline.PreReceive (hooks/admit.go), once the options
// are parsed and the priority checked, before the loop over the
// commands: it finds the commands that will run nodes (refs/heads/<b>
// whose new commit has a pipeline that loads, but not a new branch at its
// base's code commit; refs/data/<b> whose code has expectations) and, if
// there are any, calls Admit once for the whole push with the push's ctx:
// ID the first run's id (each command's run keeps the id chosen here, so
// the listing and refs/runs/<id>/ agree), Targets {b, code} per such
// command (none for -o dry-run), Pusher, Priority (push option
// "priority=N", refused above what access.Access.MaxPriority allows the
// pusher, users.json max_priority, default 0), Need (the nodes and their
// largest cpus and memory_mb), Progress printing "weir: queued, 3 runs
// ahead" to the client, Recheck requiring each command's ref to still be
// c.Old ("weir: refs/heads/<b> moved to <short> while this push waited
// for the run ahead of it; fetch first"). ErrBusy refuses every command
// with "weir: server busy: ...; try again later", a *RecheckError with
// its text, ctx's end with "weir: stopped: the client disconnected".
// Nothing ran in any of these cases.
//
// Step 3, hooks/nodes.go: each run keeps the Ticket (run.ticket); runNode
// takes a node slot (Ticket.Node with the Demand weir.toml declares, not
// the capped sandbox limits) after its inputs are linked, right before
// sandboxRun, and releases it when the sandbox ends. The dag's Parallel
// still bounds one run; the pool bounds the server. The plan's SQL
// parser sandbox (SandboxSQL) takes no node slot: it runs once per
// admitted push, so MaxRuns bounds it.
//
// Step 4, Result.Report (gitserver calls it once the push is written,
// after commitPush) ends the ticket: Cancelled when a command did not
// land and the push's ctx ended (the run log says "stopped: the client
// disconnected"), else Failed with the first refusal as the note, else
// Succeeded. Done thus waits for the ref update: the next push to the
// branch rechecks against the branch as this one left it, and never runs
// only to lose the compare-and-swap. Once Admit has returned a ticket
// PreReceive returns a Result with that Report on every path.
//
// Step 5, "weir runs <repo>" (SSHServer.Commands["runs"], cmd/weir/runs.go)
// checks req.Can(repo, access.PermRead) and writes WriteRuns(req.Stdout,
// s.Runs(sched.Repo(repo))).
//
// # Executors: the seam stays exec.Runner
//
// The scheduler decides when a node may run and how much of the machine
// it takes; where it runs is the hook's Runner (hooks.PipelineConfig.Runner,
// an exec.Runner: Run(ctx, Spec) (*Result, error), with the optional
// Prepare of *exec.Sandboxes). That interface is already the seam: the
// hook hands every node, and the plan's SQL parser, to it and nothing
// else, and a Spec says all a node needs (runtime, argv, env, inputs,
// output folder, limits). Defining another executor interface here would
// make this package import exec (or copy its Spec) for nothing: the node
// slot and the Runner meet in the hook, in the two lines of step 3. The
// local sandboxes (*exec.Sandboxes) are one Runner; for another, the
// node pool is sized to what that Runner serves (Config.CPU, Config.Memory
// set to the cluster's quota rather than this machine's).
//
// A Kubernetes Runner (not built; it would use k8s.io/client-go, nothing
// home-made) would implement Run as one Job per node:
//
//   - Job: backoffLimit 0, activeDeadlineSeconds = Limits.Wall,
//     ttlSecondsAfterFinished; pod: runtimeClassName naming a sandboxed
//     runtime (gVisor's runsc, or Kata Containers), since the node's code
//     is hostile and shares the cluster's kernel otherwise;
//     automountServiceAccountToken false, enableServiceLinks false, no
//     host namespaces; securityContext runAsUser/runAsGroup 65534,
//     runAsNonRoot, readOnlyRootFilesystem, allowPrivilegeEscalation
//     false, capabilities drop ALL, seccompProfile RuntimeDefault;
//     resources requests = limits = Limits.CPU and Limits.Memory,
//     ephemeral-storage for /tmp (emptyDir, sizeLimit TmpBytes);
//     image: the runtime's root filesystem as an image, with weir-node
//     at exec.RunnerPath; label weir.dev/node=true.
//   - Network: a NetworkPolicy in the nodes' namespace selecting
//     weir.dev/node=true with policyTypes [Ingress, Egress] and no rules
//     (deny all, in and out), enforced by the cluster's CNI (Cilium,
//     Calico); the nodes' namespace holds no Secrets.
//   - Inputs and outputs: the pod cannot fetch or upload anything (no
//     network), so a per-run volume (a PersistentVolumeClaim) carries
//     Spec.Inputs, mounted read-only at /in, and /out (read-write, size
//     bounded by OutputBytes). A trusted stager Job (egress only to the
//     warehouse's object store) fills /in from the warehouse before the
//     node's Job, and a trusted collector reads /out after it, with the
//     checks exec's collector applies (regular files, one link, bounded
//     size, count and depth) before anything reaches the warehouse.
//   - Result: the Job's status gives Result.Reason (OOMKilled:
//     memory-limit; DeadlineExceeded: time-limit; the exit code: exit);
//     the pod's log tail is Result.Output. The runner's report (verdict,
//     expectation counts, Spec.Report) must come on a channel the node's
//     code cannot write: in a pod that is a separate container, or a
//     different uid for the model's code than for the runner, with the
//     report on a volume only the runner's uid can write. This is the
//     one part that needs design of its own before such a Runner exists.
//   - ctx ending (the client went away, a sibling node failed) deletes
//     the Job with propagationPolicy Foreground, so its pod is killed.
//
// Kubernetes then places the pods; this package still bounds how many
// are asked for at once, and in what order, so a flood of pushes never
// becomes a flood of pending pods.
package sched
