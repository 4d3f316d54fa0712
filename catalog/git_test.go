package catalog

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/weir-dev/weir/objects"
)

func runGit(t *testing.T, dir string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Ana", "-c", "user.email=ana@example.com"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// exportToGit copies every object reachable from h (but gitlinks) from
// Weir into the C git repository at dir, byte for byte.
func exportToGit(t *testing.T, f *fixture, dir string, h objects.Hash, seen map[objects.Hash]bool) {
	t.Helper()
	if seen[h] {
		return
	}
	seen[h] = true
	o, err := f.objs.Get(context.Background(), f.repo, h)
	if err != nil {
		t.Fatal(err)
	}
	got := runGit(t, dir, o.Data, "hash-object", "-w", "--stdin", "-t", o.Type.String())
	if got != h.String() {
		t.Fatalf("git stored %s as %s", h, got)
	}
	switch o.Type {
	case plumbing.CommitObject:
		c, err := readCommit(context.Background(), repoObjects{f.objs, f.repo}, h)
		if err != nil {
			t.Fatal(err)
		}
		exportToGit(t, f, dir, c.TreeHash, seen)
		for _, p := range c.ParentHashes {
			exportToGit(t, f, dir, p, seen)
		}
	case plumbing.TreeObject:
		es, err := parseTree(o.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Mode != filemode.Submodule {
				exportToGit(t, f, dir, e.Hash, seen)
			}
		}
	}
}

// importFromGit puts every object reachable from h that Weir lacks into q.
func importFromGit(t *testing.T, f *fixture, dir string, q *objects.Quarantine, h string) {
	t.Helper()
	ctx := context.Background()
	all := runGit(t, dir, nil, "rev-list", "--objects", "--no-object-names", h)
	for _, id := range strings.Fields(all) {
		ph := plumbing.NewHash(id)
		if ok, _ := q.Has(ctx, ph); ok {
			continue
		}
		typ := runGit(t, dir, nil, "cat-file", "-t", id)
		cmd := exec.Command("git", "cat-file", typ, id)
		cmd.Dir = dir
		data, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		ot, err := plumbing.ParseObjectType(typ)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := q.Put(ot, data); err != nil || got != ph {
			t.Fatalf("put %s: %s, %v", id, got, err)
		}
	}
}

// TestCGitViewAndRevert shows the data history with a stock C git client
// (git show, git log -p) and accepts a `git revert` of a data commit made
// by C git, which restores the earlier snapshot.
func TestCGitViewAndRevert(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("C git is not installed")
	}
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{"sales", "orders"}
	code := plumbing.NewHash("2222222222222222222222222222222222222222")
	c1, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{RunID: "r-1", CodeCommit: code})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := f.cat.WriteDataCommit(ctx, f.repo, c1, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 3, 2)}, Mode: ModeAppend}}, CommitInfo{RunID: "r-2", CodeCommit: code})
	if err != nil {
		t.Fatal(err)
	}
	f.setBranch(t, "main", objects.ZeroHash, c1)
	f.setBranch(t, "main", c1, c2)

	dir := filepath.Join(t.TempDir(), "clone")
	runGit(t, filepath.Dir(dir), nil, "init", "-q", dir)
	exportToGit(t, f, dir, c2, map[objects.Hash]bool{})
	runGit(t, dir, nil, "update-ref", "refs/data/main", c2.String())

	show := runGit(t, dir, nil, "show", "refs/data/main:tables/sales/orders")
	if !strings.HasPrefix(show, "table sales.orders\nmetadata-location ") || !strings.Contains(show, "\nrows 5\n") || !strings.Contains(show, "run r-2") {
		t.Fatalf("git show pointer:\n%s", show)
	}
	logp := runGit(t, dir, nil, "log", "-p", "refs/data/main", "--", "tables/sales/orders")
	for _, want := range []string{"-rows 3", "+rows 5", "weir: append 2 rows to sales.orders", "Run: r-2", "Code-Commit: " + code.String(), "Author: Weir <weir@localhost>"} {
		if !strings.Contains(logp, want) {
			t.Errorf("git log -p lacks %q:\n%s", want, logp)
		}
	}
	if ls := runGit(t, dir, nil, "ls-tree", "refs/data/main"); !strings.Contains(ls, "160000 commit "+code.String()+"\tcode") {
		t.Errorf("no code gitlink:\n%s", ls)
	}

	// A client reverts the append with C git and pushes the result.
	runGit(t, dir, nil, "checkout", "-q", "-b", "data", "refs/data/main")
	runGit(t, dir, nil, "revert", "--no-edit", "HEAD")
	rev := runGit(t, dir, nil, "rev-parse", "HEAD")
	q := f.objs.NewQuarantine(f.repo)
	defer q.Close()
	importFromGit(t, f, dir, q, rev)
	if ids := f.pushReverted(t, q, c2, plumbing.NewHash(rev), orders); !slices.Equal(ids, []int64{0, 1, 2}) {
		t.Fatalf("after C git revert: ids %v", ids)
	}

	// A hand-edited pointer committed with C git is refused, naming the table.
	runGit(t, dir, nil, "checkout", "-q", "--", ".")
	edited := strings.Replace(runGit(t, dir, nil, "show", "HEAD:tables/sales/orders"), "rows 3", "rows 3000", 1) + "\n"
	blob := runGit(t, dir, []byte(edited), "hash-object", "-w", "--stdin")
	runGit(t, dir, nil, "update-index", "--cacheinfo", "100644,"+blob+",tables/sales/orders")
	runGit(t, dir, nil, "commit", "-q", "-m", "more rows")
	forged := runGit(t, dir, nil, "rev-parse", "HEAD")
	q2 := f.objs.NewQuarantine(f.repo)
	defer q2.Close()
	importFromGit(t, f, dir, q2, forged)
	if err := f.cat.VerifyPushedDataCommit(ctx, q2, plumbing.NewHash(forged)); err == nil || !strings.Contains(err.Error(), "table sales.orders") {
		t.Fatalf("forged pointer from C git: %v", err)
	}
}
