// Command pipeline measures push-to-result time: how long `git push` of a
// pipeline takes, from the client's start to its exit with the branch
// advanced, for the examples/orders pipeline (a seed, a SQL model, a Python
// model and an expectation) on its small data, and where that time goes.
//
// It runs the server's parts in process exactly as `weir serve` wires them
// (gitserver over HTTP on loopback, the pipeline hook, sandboxes with
// weir-node and weir-sandbox-init built from this tree, Pebble and the
// warehouse on disk) and drives them with the C git client: one warm-up
// push, then -n pushes, each of a new commit that changes the SQL model, so
// that every model runs on every push; the seed, whose CSV does not
// change, is reused from the previous run (hooks/reuse.go) unless -rerun
// pushes with -o rerun, which runs every node. Each push asks for
// `-o timing`, whose last progress line is the hook's split; the bench
// times the hook call and the ref update itself, so a push's wall time
// splits into
//
//	protocol    the wall time minus everything below, itself
//	  server    the receive-pack request in the server: receiving and
//	            checking the pack, the report
//	  client    git's start-up, ref advertisement, pack building, HTTP
//	plan        load and plan the pipeline
//	nodes       first node start to last node end (critical path), itself
//	            run (the node processes) + sandbox (everything else)
//	commit      Iceberg snapshots and the data commit
//	ref update  the one synced write moving code and data refs
//
// It also prints the CPU time each push took, in this process and its
// children (git, and the sandboxes: their inits are its children): on a
// busy or oversubscribed machine (the hypervisor's stolen time is printed
// too) wall times stretch, CPU time much less.
//
// Its named peer, measured in the same run and interleaved with the pushes
// so that machine load hits both alike, is "bare": the same four steps run
// by the same weir-node binary as plain processes, one after the other,
// with no sandbox, no Git and no Iceberg. The ratio weir/bare is the price
// of the push, the isolation and the bookkeeping.
//
// With -baseline DIR (a weir-node built from an earlier tree) pushes
// alternate between this tree's path and the old one (that runner, each
// sandbox built when its node starts, every table written to Iceberg after
// the last node), so "before" and "after" are measured in the same run
// under the same load:
//
//	git archive 695148d | (mkdir -p /tmp/weir-old && tar -x -C /tmp/weir-old)
//	(cd /tmp/weir-old && go build -o bin/ ./cmd/weir-node)
//	go run -tags duckdbpeer ./bench/pipeline -n 20 -baseline /tmp/weir-old/bin
//
// With -sql pushes also alternate with two ways of parsing the plan's SQL
// besides the server's (a parser sandbox started ahead of the plan,
// hooks.SandboxSQL): DuckDB in the server's own process, as before the
// server stopped linking DuckDB ("sql-in-process"), and a sandbox started
// when the plan needs it ("sql-cold"):
//
//	go run -tags duckdbpeer ./bench/pipeline -n 20 -sql
//
// Both need DuckDB in this process, so they need the build tag
// duckdbpeer (inprocess.go). Without it the bench links no DuckDB, as
// weir serve does not: every sandbox's container init begins by
// re-executing the server's binary (libcontainer's /proc/self/exe) before
// weir-sandbox-init takes over, and a binary that links DuckDB first loads
// libstdc++ and its relocations, which cost 5-30 ms of CPU per sandbox (4
// per push) that weir serve does not pay. Figures of CPU per push taken
// with the tag are that much higher.
//
// With -nopool pushes also alternate with a server whose sandboxes are
// each built when its node is prepared ("no-sandbox-pool": no pool of
// sandboxes built ahead, exec.Config.SandboxPool -1; the path before issue
// 16); -sandbox-pool N sets the size of the measured server's pool (0:
// exec's default, -1: none). This tree's server warms its pool as weir
// serve does.
//
// -gap D idles D before each push, as between the pushes of one user or
// agent reading its last result. Back to back (the default) two cores
// stay saturated, so a pool's refills (4 sandboxes a push) run beside the
// next push's nodes and git and cost about what they save; with a gap
// they run in the idle time:
//
//	go run ./bench/pipeline -n 20 -nopool -gap 500ms
//
// -phases adds the median of each phase of a sandbox (exec's debug log),
// -cpuprofile the server's CPU profile, -node-cpus the nodes' CPU limit.
//
// Run it as root (sandboxes) from the module root:
//
//	go run ./bench/pipeline -n 20
package main
