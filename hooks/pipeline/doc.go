// Package pipeline owns the definition of a Weir pipeline and its plan: it
// reads the declarations in a pushed code commit (models/, seeds/,
// expectations/, weir.toml), builds the DAG of nodes from what each node
// reads and writes, and refuses a pipeline that cannot run (a cycle, two
// writers of one table, a read of a table that exists nowhere, SQL that does
// not parse, a runtime not on the allow-list) before anything runs.
//
// Layout in a pushed commit:
//
//	weir.toml                       optional configuration (Config)
//	seeds/<name>.csv                seed table  <ns>.<name>
//	seeds/<ns>/<name>.csv           seed table  <ns>.<name>
//	models/<name>.sql               SQL model   <ns>.<name>   (one SELECT)
//	models/<ns>/<name>.sql          SQL model   <ns>.<name>
//	models/<name>.py                Python model; inputs and outputs in its header
//	expectations/<name>.sql         a SELECT returning failing rows
//
// <ns> defaults to weir.toml's namespace, itself defaulting to "main".
//
// The package only reads and decides. It never runs a node and never reads
// data: everything it knows comes from the commit's files and, for the
// tables that already exist, from the caller, and what a SQL query reads
// from the SQLParser the caller hands it (the hook's runs DuckDB's parser
// in weir-node, in a sandbox). It must never import a SQL engine or the
// sandboxes (exec): its limits are its own type (Limits), and it builds
// and is fuzzed without cgo (CGO_ENABLED=0 go test ./hooks/pipeline/).
package pipeline
