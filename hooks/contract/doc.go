// Package contract is the agreement between weir (the pipeline hook in
// package hooks, which starts the runner in sandboxes, and weir query) and
// the runner (package hooks/node, the weir-node binary): the runner's
// commands, their command lines and what each answers. Both sides import
// it, so they cannot drift apart; it imports nothing but the standard
// library, so the runner pulls in nothing of the server, nor the server
// anything of the runner (DuckDB).
//
//	node <kind> ...      run one node (Args); one Result on --result-fd
//	sqlrefs ...          parse a plan's queries (SQLRefsArgs); one SQLAnswer
//	query ...            weir query (QueryArgs, QueryRequest); rows on stdout, one Result
//	version              the Handshake
//
// # Handshake
//
// weir refuses a runner whose Handshake is not its own (contract Version
// and the fingerprint of the runner's sources, which both binaries embed:
// see Handshake), at the start of weir serve and of weir query. The
// runner's own executable or version control stamps cannot serve: the two
// binaries differ by nature, "go run" stamps none, and a tree with
// uncommitted changes has one revision for many contents.
//
// # SQL answer
//
// The server reads a SQLAnswer as it reads a Result: exactly one encoding
// (ParseSQLAnswer re-encodes and compares), bounded in size, and for
// exactly the queries it sent. A parser subverted by a hostile query can
// at most name other tables, which the planner checks like any.
//
// # Command line
//
//	<runner> node <kind> --source FILE [--ns NS] [--in ns.t]... [--out ns.t]...
//	         [--threads N] [--memory-limit BYTES] [--gate] [--result-fd FD]
//	         [--dir-in DIR] [--dir-out DIR] [--dir-tmp DIR] [--file PATH] [--runtime NAME]
//
// (Args, Argv, ParseArgs). Push parameters reach the node as environment
// variables ParamEnvPrefix+NAME; its source is in the input named
// CodeInput, a Python model's lib/ helpers in the input named LibInput.
//
// # Result
//
// The runner's stdout and stderr carry what the node's own code prints as
// well as what the runner prints: they are a log for people, never a
// result. The result travels on a descriptor only the runner holds (the
// sandbox's report pipe, exec.Spec.Report, passed as --result-fd): the
// runner makes it close-on-exec and makes itself non-dumpable before any
// of the node's code runs, so neither a Python model (a child process of
// the same uid) nor SQL (DuckDB in the runner, locked to the node's dirs)
// can write to it. The runner writes one Result, encoded by Encode, as its
// last act; the hook accepts exactly that encoding (Parse) and nothing
// else.
//
// What the server can derive itself it does not take from the result: a
// node's row counts are read from the footers of the Parquet files it
// wrote. The result carries what only the runner knows: whether the node
// succeeded, why it failed, and how many rows an expectation returned.
//
// This package must never import anything but the standard library.
package contract
