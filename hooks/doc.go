// Package hooks owns what happens between receiving a push and moving its
// refs: the pre-receive decision. gitserver calls a PreReceive with the ref
// commands and the quarantined objects; the pipeline hook (Pipeline) plans
// the pushed pipeline, runs it in sandboxes (package exec) on a temporary
// data branch (package catalog) and decides. A seed whose CSV is unchanged
// since the pipeline run that made its table is not run again (reuse.go).
//
// A run, file by file: run.go plans it, announces it and decides (and
// keeps a failed run); nodes.go runs its nodes, in the order and with the
// overlap the executor of dag.go decides (each node one state: waiting,
// staging, staged, starting, running, done, failed, reused), staging each
// one with stage.go (folders, inputs, sandbox spec, sandbox built ahead);
// failure.go says in one line why a node failed; datacommit.go makes the
// data commit from tables snapshotted as their nodes end, and publishes it
// onto the branch's data when that moved during the run without touching
// what the run read or wrote (onto; else it refuses naming the table);
// merge.go is the merge queue: a push to refs/merge/<b> is merged onto
// <b>'s head by the hook and runs and lands as a push of the merge commit
// to <b> would (Result.Lands); train.go groups merge requests that wait
// together into one merge and one run (a merge train);
// runlog.go writes
// the run log; timing.go says where the time went; sqlparse.go has the
// plan's SQL parsed by the runner in a sandbox (SandboxSQL); limits.go
// turns a node's weir.toml limits into its sandbox's.
//
// Subpackages: hooks/pipeline parses and plans a pipeline (no I/O beyond
// the commit's files, no SQL engine); hooks/node is the runner, weir-node:
// what runs inside a sandbox for one node, the plan's SQL parser and the
// read-only query engine of weir query; hooks/contract is what the hook
// and the runner agree on; hooks/sched is the server's run queue and
// node slots (standard library only), which the pipeline hook asks once
// per push that runs nodes (admit.go) when PipelineConfig.Scheduler is
// set. This package links no SQL engine: the
// plan's queries are parsed by the runner in a sandbox (SandboxSQL,
// sqlparse.go), one per push, started ahead of the next push once a push
// is decided.
//
// A node's result is never read from what it prints: the verdict (and an
// expectation's failing-row count, a failure's reason) comes from the
// runner on the sandbox's report pipe (contract.Parse), and row counts
// from the footers of the Parquet files the node wrote. What it prints is
// shown to the pusher only after "weir:   | ", with control and format
// characters escaped (Neutralise), so it cannot pass for the server's
// own lines.
//
// It must never move a ref itself: it returns the extra ref updates (data
// refs, run refs) and gitserver commits them with the push in one write.
// It must never run a node outside a sandbox, never parse or run pushed
// SQL in its own process, never let a node see a table
// it did not declare, and never interpret push parameters: they reach the
// nodes verbatim.
package hooks
