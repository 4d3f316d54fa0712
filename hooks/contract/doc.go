// Package contract is the agreement between the pipeline hook (package
// hooks), which starts a node's runner in a sandbox, and the runner
// (package hooks/node, the weir-node binary or "weir node"): the runner's
// command line, and the result it reports back. Both sides import it, so
// they cannot drift apart; it imports nothing but the standard library, so
// the runner pulls in nothing of the server.
//
// # Command line
//
//	<runner> node <kind> --source FILE [--ns NS] [--in ns.t]... [--out ns.t]...
//	         [--threads N] [--memory-limit BYTES] [--gate] [--result-fd FD]
//	         [--dir-in DIR] [--dir-out DIR] [--dir-tmp DIR]
//
// (Args, Argv, ParseArgs). Push parameters reach the node as environment
// variables ParamEnvPrefix+NAME; its source is in the input named
// CodeInput.
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
