// Package runs reads a repo's runs the way readers see them: one run
// (View) from what the run queue still holds (hooks/sched: queued,
// running, the last that ended) and what refs/runs/<id>/ keeps once it
// ended (hooks.ReadRun: status, pusher, code and data commits, per-node
// times, the log), with the tables it wrote and their row counts read
// from its data commit (catalog). "weir run", GET /api/repos/<repo>/runs
// (cmd/weir) and the web view (web) all read runs through it.
//
// It only reads: it must never move a ref, admit or cancel a run, or run
// a node. Every id and branch it is given is a client's: a run id reaches
// a ref name only after hooks.ValidRunID.
package runs
