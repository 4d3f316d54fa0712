// Command weir-node runs one pipeline node inside a sandbox: the runner that
// exec mounts read-only at exec.RunnerPath when it sits next to the weir
// binary. It is "weir node" without the server's packages (Iceberg, S3,
// SSH), whose start-up would cost every node a few hundred milliseconds.
//
//	weir-node node <sql|expect|python|seed> [flags]
package main

import (
	"fmt"
	"os"

	"github.com/weir-dev/weir/hooks/node"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "node" {
		fmt.Fprintln(os.Stderr, "usage: weir-node node <sql|expect|python|seed> [flags] (the pipeline's in-sandbox runner; see docs/pipelines.md)")
		os.Exit(2)
	}
	os.Exit(node.Main(os.Args[2:], os.Stdout, os.Stderr))
}
