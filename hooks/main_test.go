package hooks_test

import (
	"os"
	"testing"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/node"
)

// TestMain lets the test binary act as the sandbox init and as the node
// runner ("<binary> node sql ..."), as the weir binary does.
func TestMain(m *testing.M) {
	exec.Init()
	if len(os.Args) > 1 && os.Args[1] == "node" {
		os.Exit(node.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
