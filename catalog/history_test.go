package catalog

import (
	"context"
	"testing"

	"github.com/weir-dev/weir/objects"
)

// TestTableHistory: the commits of a first-parent line that changed one
// table, newest first, each with the pointer (run, code commit, rows) it
// set; commits that changed only another table are skipped; a bounded
// walk says where to go on, and going on from there ends at the root.
func TestTableHistory(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders, other := TableName{"sales", "orders"}, TableName{"sales", "other"}
	code := objects.Hash{1}
	var commits []objects.Hash
	write := func(tn TableName, run string, from, n int) {
		t.Helper()
		h, err := f.cat.WriteBranch(ctx, f.repo, "main", []TableWrite{{Table: tn, Files: []string{f.parquetFile(t, from, n)}}},
			CommitInfo{RunID: run, Message: "weir: " + run, CodeCommit: code})
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, h)
	}
	write(orders, "r-01", 0, 2)
	write(other, "r-02", 10, 1)
	write(orders, "r-03", 0, 5)
	head := commits[2]

	vs, next, err := f.cat.TableHistory(ctx, f.repo, head, orders, 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || !next.IsZero() {
		t.Fatalf("history: %d versions, next %s; want 2 and the root reached", len(vs), next)
	}
	if v := vs[0]; v.Commit != commits[2] || v.Pointer.Run != "r-03" || v.Pointer.Rows != 5 || v.Pointer.CodeCommit != code || v.Subject != "weir: r-03" || v.Dropped {
		t.Errorf("newest version %+v", v)
	}
	if v := vs[1]; v.Commit != commits[0] || v.Pointer.Run != "r-01" || v.Pointer.Rows != 2 {
		t.Errorf("first version %+v", v)
	}
	// Walk one commit at a time: r-03's commit, then r-02's (no change),
	// then r-01's, then the root.
	vs, next, err = f.cat.TableHistory(ctx, f.repo, head, orders, 1, 100)
	if err != nil || len(vs) != 1 || next != commits[1] {
		t.Fatalf("walk 1: %d versions, next %s, %v; want 1 and %s", len(vs), next, err, commits[1])
	}
	vs, next, err = f.cat.TableHistory(ctx, f.repo, next, orders, 1, 100)
	if err != nil || len(vs) != 0 || next != commits[0] {
		t.Fatalf("walk 1 from r-02: %d versions, next %s, %v", len(vs), next, err)
	}
	vs, next, err = f.cat.TableHistory(ctx, f.repo, next, orders, 1, 100)
	if err != nil || len(vs) != 1 || vs[0].Pointer.Run != "r-01" || !next.IsZero() {
		t.Fatalf("walk 1 from r-01: %+v, next %s, %v", vs, next, err)
	}
	// At most max versions.
	if vs, next, _ := f.cat.TableHistory(ctx, f.repo, head, orders, 100, 1); len(vs) != 1 || next != commits[1] {
		t.Fatalf("max 1: %d versions, next %s", len(vs), next)
	}
}
