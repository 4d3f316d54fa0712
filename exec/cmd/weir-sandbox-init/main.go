// Command weir-sandbox-init is the small binary a Weir server uses as its
// sandboxes' container init and seccomp shim, instead of re-executing the
// whole weir binary for every node.
//
// libcontainer starts a container by re-executing the server's own binary
// as "init"; the weir binary links DuckDB, Arrow and Iceberg, whose package
// initialisers alone take about 200 ms of CPU (iceberg-go's table/substrait),
// paid by every node. When this binary is installed next to weir (or named
// by exec.Config.InitBinary), the weir binary's init entry hands over to it
// before anything else runs (see exec/shim_cgo.go), so a node's start costs
// what this binary's start costs.
//
// Build and install it with the server:
//
//	go build -o /usr/local/bin/weir-sandbox-init ./exec/cmd/weir-sandbox-init
//
// It is not meant to be run by hand, but for "weir-sandbox-init version",
// which prints the fingerprint of the sources it was built from (exec.New
// refuses one that does not match the server's: a stale binary).
package main

import (
	"fmt"
	"os"

	"github.com/weir-dev/weir"
	"github.com/weir-dev/weir/exec"
)

func init() { exec.Init() }

func main() {
	if len(os.Args) == 2 && os.Args[1] == exec.InitVersionArg {
		fmt.Println(exec.InitVersionLine(weir.InitSources()))
		return
	}
	fmt.Fprintln(os.Stderr, "weir-sandbox-init: internal to the weir server's sandboxes; not for direct use")
	os.Exit(2)
}
