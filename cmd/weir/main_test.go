package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-dev/weir/hooks/contract"
	"github.com/weir-dev/weir/hooks/node"
)

// TestMain lets the test binary serve as weir-node ("<binary> version",
// "query ...", "sqlrefs ...", "node ..."), so that a server a test starts
// has its runner without building one (runnerOnPath). Only the test
// binary links the runner; weir does not.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case contract.CommandVersion:
			os.Stdout.Write(runnerHandshake().Encode())
			os.Exit(0)
		case contract.CommandQuery:
			os.Exit(node.QueryMain(os.Args[2:], os.Stdout, os.Stderr))
		case contract.CommandSQLRefs:
			os.Exit(node.SQLRefsMain(os.Args[2:], os.Stdout, os.Stderr))
		case contract.Command:
			os.Exit(node.Main(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	os.Exit(m.Run())
}

// runnerOnPath puts this test binary on PATH as weir-node, for the
// servers and commands the test starts.
func runnerOnPath(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "weir-node")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}
