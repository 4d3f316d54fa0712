// Command weir is the Weir server and its admin commands.
//
// Each subcommand lives in its own file; the table commands lists them all,
// and main only dispatches. weir serve builds the server in one place,
// newServeApp (serve.go), in order, from its flags.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// command is one subcommand of the weir binary.
type command struct {
	name    string
	summary string
	hidden  bool // internal entry points (sandbox init, node runners)
	run     func(args []string) error
}

// commands are weir's subcommands, in the order usage lists them.
var commands = []command{
	{name: "serve", summary: "run the Git server (smart HTTP and SSH)", run: runServe},
	{name: "user", summary: "manage users, SSH keys, HTTP tokens and grants", run: runUser},
	{name: "rule", summary: "branch rules: protection, require-run, who may write", run: runRule},
	{name: "query", summary: "run a read-only SQL query over a repo's tables at a branch, tag or data commit", run: runQuery},
	{name: "data", summary: "data branches, tags, merges and tables (offline; over SSH for admins while the server runs)", run: runData},
	{name: "runtime", summary: "build, list and remove runtimes (root filesystems with Python packages) for pipeline nodes", run: runRuntime},
	{name: "gc", summary: "garbage collection: expire old runs and reflog entries, delete unreachable objects and unreferenced warehouse files (offline)", run: runGC},
	{name: "import", summary: "import a Parquet or CSV file (local, s3:// or stdin) as one data commit (offline; over SSH for admins)", run: runImport},
	{name: "sandbox-run", summary: "run one command in a node sandbox (debugging)", hidden: true, run: sandboxRun},
}

// lookup returns the command named name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usage() {
	var b strings.Builder
	b.WriteString("usage: weir <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
		}
	}
	b.WriteString("\nRun 'weir <command> --help' for a command's flags.\n")
	fmt.Fprint(os.Stderr, b.String())
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := lookup(os.Args[1])
	if !ok {
		fmt.Fprintf(os.Stderr, "weir: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err := c.run(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "weir %s: %v\n", c.name, err)
		os.Exit(1)
	}
}
