package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/objects"
)

// TestImportAndDataCommands drives weir import and weir data offline on an
// on-disk database, as a user would.
func TestImportAndDataCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "pebble"), 0o755); err != nil {
		t.Fatal(err)
	}
	csv := filepath.Join(dir, "orders.csv")
	if err := os.WriteFile(csv, []byte("id,name\n1,ana\n2,bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	imp := func(args ...string) error {
		return runImport(append([]string{"--data", data, "--repo", "team/demo"}, args...))
	}
	if err := imp("--table", "sales.orders", csv); err != nil {
		t.Fatal(err)
	}
	if err := imp("--branch", "main", "--table", "sales.orders", csv); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"--table", "Sales.orders", csv},
		{"--table", "sales/x.y", csv},
		{"--table", "sales.orders", filepath.Join(dir, "nope.txt")},
		{"--table", "sales.orders"},
		{"--table", "sales.orders", "--mode", "upsert", csv},
	} {
		if err := imp(bad...); err == nil {
			t.Errorf("weir import %v: no error", bad)
		}
	}
	off, err := openOffline(data, warehouseFlags{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repo := objects.RepoName("team/demo")
	run := func(sub, a1, a2 string) string {
		t.Helper()
		var out bytes.Buffer
		if err := dataCommand(ctx, &out, off.cat, repo, sub, a1, a2); err != nil {
			t.Fatalf("weir data %s %s %s: %v", sub, a1, a2, err)
		}
		return out.String()
	}
	if out := run("tables", "", ""); !strings.Contains(out, "sales.orders") || !strings.Contains(out, "rows 4 ") {
		t.Fatalf("weir data tables:\n%s", out)
	}
	run("branch", "feature", "")
	run("tag", "v1", "main")
	if out := run("tables", "v1", ""); !strings.Contains(out, "rows 4 ") {
		t.Fatalf("tables at tag:\n%s", out)
	}
	if out := run("merge", "feature", "main"); !strings.Contains(out, "data branch main is at") {
		t.Fatalf("merge: %s", out)
	}
	if out := run("delete", "feature", ""); !strings.Contains(out, "deleted data branch feature") {
		t.Fatalf("delete: %s", out)
	}
	off.close()
	if err := runData([]string{"--data", data, "--repo", "team/demo", "frobnicate"}); err == nil {
		t.Error("unknown subcommand: no error")
	}
}
