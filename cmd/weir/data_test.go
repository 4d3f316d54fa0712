package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
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
	// Data only sits beside code: no import before the branch is pushed.
	if err := imp("--table", "sales.orders", csv); err == nil || !strings.Contains(err.Error(), "has no code ref") {
		t.Fatalf("import into a branch without code: %v", err)
	}
	pushCode(t, data, "team/demo", "main")
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
		if err := dataCommand(ctx, &out, off, repo, sub, a1, a2); err != nil {
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
	// weir data branch made the code ref too; the pair goes with git push.
	if err := dataCommand(ctx, &bytes.Buffer{}, off, repo, "delete", "feature", ""); err == nil || !strings.Contains(err.Error(), "git push origin :feature") {
		t.Fatalf("delete of a branch with code: %v", err)
	}
	off.close()
	// A require-run branch takes neither an import nor an offline merge.
	users := access.OpenUsers(filepath.Join(data, "users.json"))
	if err := users.SetRule(access.Rule{Repo: "team/demo", Branch: "main", RequireRun: true}); err != nil {
		t.Fatal(err)
	}
	if err := imp("--table", "sales.orders", csv); err == nil || !strings.Contains(err.Error(), "requires a run") {
		t.Fatalf("import into a require-run branch: %v", err)
	}
	if err := runData([]string{"--data", data, "--repo", "team/demo", "merge", "feature", "main"}); err == nil || !strings.Contains(err.Error(), "requires a run") {
		t.Fatalf("offline merge into a require-run branch: %v", err)
	}
	if err := runData([]string{"--data", data, "--repo", "team/demo", "frobnicate"}); err == nil {
		t.Error("unknown subcommand: no error")
	}
}

// pushCode gives branch b of repo a code commit, as a git push would.
func pushCode(t *testing.T, data string, repo objects.RepoName, b string) {
	t.Helper()
	db, err := pebblekv.Open(filepath.Join(data, "pebble"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	objs := objects.New(db, objects.Limits{})
	ctx := context.Background()
	tree, err := objs.Put(ctx, repo, plumbing.TreeObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := objs.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+tree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\ncode\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := refs.NewDB(objs).Update(ctx, repo, []refs.Update{{Name: refs.Name(refs.HeadsPrefix + b), New: c}}, nil, "push"); err != nil {
		t.Fatal(err)
	}
}
