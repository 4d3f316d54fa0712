// Package node is the runner, the weir-node binary: the one part of Weir
// that links DuckDB. It owns what runs inside a sandbox for one pipeline
// node: the SQL runner (DuckDB in memory over the node's input Parquet
// files), the expectation runner, the Python runner (inputs as CSV for
// the script with their types beside them, the weir Python module and its
// launcher (py/weir: the function form, errors named by the model's line;
// started before the inputs are exported, it imports pandas meanwhile and
// runs the model on the runner's "go"),
// outputs converted back to Parquet with the types the module wrote) and the seed loader (CSV
// to Parquet). Every output carries the Iceberg field ids a new table
// gives its columns (fieldids.go), so the server need not write it again.
// The planner's SQL parser (SQLRefsMain, ParseSQL: DuckDB's
// json_serialize_sql, nothing executed), which the hook runs in a sandbox
// once per plan; and weir query's engine (Query, QueryMain). Their command
// lines and answers are hooks/contract's. The hook runs weir-node mounted
// read-only in its sandboxes; weir query runs it in a sandbox over SSH and
// as a plain process offline.
//
// Files a node sees (Dirs, /in, /out and /tmp inside a sandbox):
//
//	/in/_code/<file>            the node's source (SQL, Python or seed CSV)
//	/in/<ns.table>/*.parquet    each declared input table, read-only
//	/out/<ns.table>.parquet     each declared output table, written here
//	/in/_lib/lib/...            the repo's lib/ (Python models), read-only
//	/tmp                        scratch (the Python runner's CSV files, the weir module)
//
// It must never read anything but the declared inputs nor write anything
// but the declared outputs: every DuckDB it opens is locked to the node's
// dirs (allowed_directories, enable_external_access=false,
// lock_configuration) before it runs user SQL, and never installs or loads
// extensions. It must never talk to the server: its results are files in
// /out, its exit status and one contract.Result on the descriptor the hook
// names (--result-fd). It keeps that descriptor from the node's code
// (close-on-exec, not dumpable) before any of it runs, and as the
// sandbox's PID 1 kills whatever a Python script left running before it
// reads the script's outputs. What it prints is a log for people, shared
// with the node's own code, and never a result.
//
// Query (weir query) is locked down the same way, to exactly the files of
// the tables it is given, and shows no path
// of the machine it runs on: DuckDB reads each file by descriptor
// (/proc/self/fd/<n>), its home, extension and secret folders are blanked,
// and errors name files as the caller named them (repo-relative).
package node
