// Command weir-node is Weir's runner: the one binary that links DuckDB.
// weir mounts it read-only at exec.RunnerPath in a sandbox to run one
// pipeline node, or to parse a pipeline's SQL at plan time, and runs it
// for weir query (in a sandbox over SSH, as a plain process offline).
// weir finds it next to its own executable, else on PATH, and refuses one
// built from other sources (the version handshake).
//
//	weir-node node <sql|expect|python|seed> [flags]     run one node (contract.Args)
//	weir-node sqlrefs --sources DIR --answer FILE [--gate]  parse a plan's SQL (contract.SQLRefsArgs)
//	weir-node query --request FILE [--result-fd FD]     weir query (contract.QueryArgs)
//	weir-node version                                   print the handshake (contract.Handshake)
//
// Build it next to weir: go build -o bin/ ./cmd/weir ./cmd/weir-node
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/weir-dev/weir"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/node"
)

// command is one of weir-node's commands: its arguments after the
// command's name, and its exit status.
type command struct {
	name    string
	syntax  string // the arguments
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands are weir-node's commands, in the order its usage lists them.
var commands = []command{
	{contract.Command, "<sql|expect|python|seed> --source FILE [flags]", "run one pipeline node", node.Main},
	{contract.CommandSQLRefs, "--sources DIR --answer FILE [--gate]", "parse a plan's SQL", node.SQLRefsMain},
	{contract.CommandQuery, "--request FILE [--result-fd FD]", "run weir query", node.QueryMain},
	{contract.CommandVersion, "", "print the handshake weir checks", version},
}

// version prints the runner's handshake.
func version(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "weir-node version: unexpected argument %q\n", args[0])
		return 2
	}
	h := contract.Handshake{Contract: contract.Version, Sources: weir.RunnerSources()}
	if _, err := stdout.Write(h.Encode()); err != nil {
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) > 1 {
		for _, c := range commands {
			if c.name == os.Args[1] {
				os.Exit(c.run(os.Args[2:], os.Stdout, os.Stderr))
			}
		}
	}
	fmt.Fprintln(os.Stderr, "usage: weir-node <command> [flags] (Weir's runner: weir starts it; see docs/pipelines.md)")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  weir-node %-58s %s\n", c.name+" "+c.syntax, c.summary)
	}
	os.Exit(2)
}
