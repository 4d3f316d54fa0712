package main

import (
	"os"

	"github.com/weir-dev/weir/hooks/node"
)

func init() {
	register(command{
		name:    "node",
		summary: "run one pipeline node (inside a sandbox; internal)",
		hidden:  true,
		run:     runNode,
	})
}

// runNode is "weir node <sql|expect|python|seed> ...": see node.Main. The
// pipeline hook runs it inside a sandbox with this binary mounted read-only.
func runNode(args []string) error {
	if code := node.Main(args, os.Stdout, os.Stderr); code != 0 {
		os.Exit(code)
	}
	return nil
}
