package hooks_test

import (
	"os"
	"testing"

	"github.com/weir-dev/weir/exec"
	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/node"
)

// TestMain lets the test binary act as the sandbox init and as the runner
// ("<binary> node sql ...", "<binary> sqlrefs ..."), as weir-node does.
func TestMain(m *testing.M) {
	exec.Init()
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case contract.Command:
			os.Exit(node.Main(os.Args[2:], os.Stdout, os.Stderr))
		case contract.CommandSQLRefs:
			os.Exit(node.SQLRefsMain(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(m.Run())
}
