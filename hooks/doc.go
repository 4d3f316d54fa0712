// Package hooks owns what happens between receiving a push and moving its
// refs: the pre-receive decision. gitserver calls a PreReceive with the ref
// commands and the quarantined objects; the pipeline hook (Pipeline) plans
// the pushed pipeline, runs it in sandboxes (package exec) on a temporary
// data branch (package catalog) and decides. A seed whose CSV is unchanged
// since the pipeline run that made its table is not run again (reuse.go).
//
// Subpackages: hooks/pipeline parses and plans a pipeline (no I/O beyond
// the commit's files); hooks/node is what runs inside a sandbox for one
// node ("weir node ...") and the read-only query engine ("weir query");
// hooks/contract is the runner's command line and the result it reports.
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
// It must never run a node outside a sandbox, never let a node see a table
// it did not declare, and never interpret push parameters: they reach the
// nodes verbatim.
package hooks
