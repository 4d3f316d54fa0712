package catalog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"orders", true}, {"sales_2024", true}, {"a", true},
		{"", false}, {"..", false}, {"a/b", false}, {"a\x00b", false}, {"Orders", false},
		{"a.b", false}, {"a b", false}, {strings.Repeat("a", MaxNameLen+1), false},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			err := ValidateName(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadName) {
				t.Fatalf("error %v does not wrap ErrBadName", err)
			}
		})
	}
}

func TestPointerRoundTrip(t *testing.T) {
	p := Pointer{
		Table:            TableName{"sales", "orders"},
		MetadataLocation: "file:///w/team@demo/sales/orders/metadata/00003-0b7e.metadata.json",
		SnapshotID:       4837261, Schema: "id:long,name:string,amount:double",
		Rows: 1204, Files: 3, Bytes: 8821, Run: "r-7f3a",
		CodeCommit: plumbing.NewHash("1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"),
	}
	want := "table sales.orders\n" +
		"metadata-location file:///w/team@demo/sales/orders/metadata/00003-0b7e.metadata.json\n" +
		"snapshot-id 4837261\nschema id:long,name:string,amount:double\nrows 1204\nfiles 3\nbytes 8821\n" +
		"run r-7f3a\ncode-commit 1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d\n"
	if got := string(p.Marshal()); got != want {
		t.Fatalf("Marshal:\n%s\nwant:\n%s", got, want)
	}
	back, err := ParsePointer([]byte(want))
	if err != nil {
		t.Fatal(err)
	}
	if back != p {
		t.Fatalf("round trip: %+v != %+v", back, p)
	}
	for name, bad := range map[string]string{
		"reordered":  strings.Replace(want, "rows 1204\nfiles 3\n", "files 3\nrows 1204\n", 1),
		"unknown":    want + "extra 1\n",
		"missing":    strings.Replace(want, "bytes 8821\n", "", 1),
		"bad number": strings.Replace(want, "rows 1204", "rows 12x4", 1),
		"bad table":  strings.Replace(want, "table sales.orders", "table ../etc", 1),
		"no newline": strings.TrimSuffix(want, "\n"),
		"spaces":     strings.Replace(want, "rows 1204", "rows  1204", 1),
	} {
		if _, err := ParsePointer([]byte(bad)); !errors.Is(err, ErrBadPointer) {
			t.Errorf("%s: ParsePointer = %v, want ErrBadPointer", name, err)
		}
	}
}

func TestWriteDataCommit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{"sales", "orders"}
	code := plumbing.NewHash("1111111111111111111111111111111111111111")

	c1, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{RunID: "r-1", CodeCommit: code})
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := f.cat.Tables(ctx, f.repo, c1)
	if err != nil {
		t.Fatal(err)
	}
	p := tabs[orders]
	if p.Rows != 3 || p.Files != 1 || p.Run != "r-1" || p.CodeCommit != code || p.Schema != "id:long,name:string,amount:double" || p.SnapshotID == 0 {
		t.Fatalf("pointer after first write: %+v", p)
	}
	msg := f.commitMessage(t, c1)
	for _, want := range []string{"weir: replace sales.orders: 3 rows (was 0)", "Run: r-1\n", "Code-Commit: " + code.String() + "\n", "Table-Changes: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message %q lacks %q", msg, want)
		}
	}

	c2, err := f.cat.WriteDataCommit(ctx, f.repo, c1, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 3, 2)}, Mode: ModeAppend}}, CommitInfo{RunID: "r-2"})
	if err != nil {
		t.Fatal(err)
	}
	if msg := f.commitMessage(t, c2); !strings.HasPrefix(msg, "weir: append 2 rows to sales.orders") {
		t.Fatalf("append message %q", msg)
	}
	files, err := f.cat.ReadTableFiles(ctx, f.repo, c2, orders)
	if err != nil {
		t.Fatal(err)
	}
	ids := parquetIDs(t, files)
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("ids after append = %v", ids)
	}
	// The first commit is untouched: its pointer still names 3 rows.
	files1, err := f.cat.ReadTableFiles(ctx, f.repo, c1, orders)
	if err != nil {
		t.Fatal(err)
	}
	if ids := parquetIDs(t, files1); len(ids) != 3 {
		t.Fatalf("c1 now has %d rows", len(ids))
	}

	c3, err := f.cat.WriteDataCommit(ctx, f.repo, c2, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 100, 4)}}}, CommitInfo{RunID: "r-3"})
	if err != nil {
		t.Fatal(err)
	}
	files3, _ := f.cat.ReadTableFiles(ctx, f.repo, c3, orders)
	ids = parquetIDs(t, files3)
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{100, 101, 102, 103}) {
		t.Fatalf("ids after replace = %v", ids)
	}
	tabs, _ = f.cat.Tables(ctx, f.repo, c3)
	if tabs[orders].Rows != 4 {
		t.Fatalf("rows after replace = %d", tabs[orders].Rows)
	}

	// The tree is tables/sales/orders + namespaces/sales + code gitlink.
	st, err := f.cat.state(ctx, f.repo, c1)
	if err != nil {
		t.Fatal(err)
	}
	if st.code != code || len(st.tables) != 1 || len(st.namespaces) != 1 {
		t.Fatalf("state %+v", st)
	}

	// Bad writes change nothing and say why.
	for name, w := range map[string]TableWrite{
		"bad name":       {Table: TableName{"sales", ".."}, Files: []string{f.parquetFile(t, 0, 1)}},
		"bad mode":       {Table: orders, Files: []string{f.parquetFile(t, 0, 1)}, Mode: "upsert"},
		"append nothing": {Table: orders, Mode: ModeAppend},
		"missing file":   {Table: orders, Files: []string{f.dir + "/nope.parquet"}},
	} {
		if _, err := f.cat.WriteDataCommit(ctx, f.repo, c3, []TableWrite{w}, CommitInfo{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBranchIsolationMergeAndConflict(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders, users, items := TableName{"sales", "orders"}, TableName{"sales", "users"}, TableName{"shop", "items"}
	write := func(base objects.Hash, tn TableName, from, n int, mode string) objects.Hash {
		t.Helper()
		h, err := f.cat.WriteDataCommit(ctx, f.repo, base, []TableWrite{{Table: tn, Files: []string{f.parquetFile(t, from, n)}, Mode: mode}}, CommitInfo{RunID: "r"})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	m1 := write(objects.ZeroHash, orders, 0, 3, "")
	f.setBranch(t, "main", objects.ZeroHash, m1)
	if _, err := f.cat.CreateBranch(ctx, f.repo, "feature", "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cat.CreateBranch(ctx, f.repo, "feature", "main"); !errors.Is(err, ErrBranchExists) {
		t.Fatalf("second CreateBranch = %v", err)
	}
	mainBefore, _ := f.cat.Tables(ctx, f.repo, m1)

	// Write on feature: main is unchanged, bit for bit.
	f1 := write(f.head(t, "feature"), orders, 3, 2, ModeAppend)
	f.setBranch(t, "feature", m1, f1)
	if got := f.head(t, "main"); got != m1 {
		t.Fatalf("main moved to %s", got)
	}
	mainAfter, _ := f.cat.Tables(ctx, f.repo, f.head(t, "main"))
	if fmt.Sprint(mainAfter) != fmt.Sprint(mainBefore) {
		t.Fatalf("main tables changed:\n%v\n%v", mainBefore, mainAfter)
	}

	// Fast-forward merge.
	got, err := f.cat.Merge(ctx, f.repo, "feature", "main")
	if err != nil || got != f1 || f.head(t, "main") != f1 {
		t.Fatalf("fast-forward merge = %s, %v (want %s)", got, err, f1)
	}

	// Diverge on different tables: a clean 3-way merge takes both.
	m2 := write(f1, users, 0, 1, "")
	f.setBranch(t, "main", f1, m2)
	f2 := write(f1, items, 0, 7, "")
	f.setBranch(t, "feature", f1, f2)
	merged, err := f.cat.Merge(ctx, f.repo, "feature", "main")
	if err != nil {
		t.Fatal(err)
	}
	tabs, _ := f.cat.Tables(ctx, f.repo, merged)
	if tabs[orders].Rows != 5 || tabs[users].Rows != 1 || tabs[items].Rows != 7 {
		t.Fatalf("merged tables %v", tabs)
	}
	mc, _ := readCommit(ctx, repoObjects{f.objs, f.repo}, merged)
	if len(mc.ParentHashes) != 2 || mc.ParentHashes[0] != m2 || mc.ParentHashes[1] != f2 {
		t.Fatalf("merge parents %v", mc.ParentHashes)
	}

	// Both change orders: conflict, nothing changes.
	m3 := write(merged, orders, 10, 1, ModeAppend)
	f.setBranch(t, "main", merged, m3)
	f3 := write(f2, orders, 20, 1, ModeAppend)
	f.setBranch(t, "feature", f2, f3)
	_, err = f.cat.Merge(ctx, f.repo, "feature", "main")
	var ce *ConflictError
	if !errors.As(err, &ce) || !slices.Equal(ce.Tables, []string{"sales.orders"}) {
		t.Fatalf("conflicting merge = %v", err)
	}
	if f.head(t, "main") != m3 || f.head(t, "feature") != f3 {
		t.Fatal("a conflicting merge moved a ref")
	}

	// Delete the branch.
	if h, err := f.cat.DeleteBranch(ctx, f.repo, "feature"); err != nil || h != f3 {
		t.Fatalf("DeleteBranch = %s, %v", h, err)
	}
	if _, err := f.refs.Resolve(ctx, f.repo, DataRef("feature")); !errors.Is(err, refs.ErrNotFound) {
		t.Fatalf("feature still there: %v", err)
	}
}

// buildCommit writes a commit with tree entries into q, as a client would.
func buildCommit(t *testing.T, q *objects.Quarantine, tree objects.Hash, parents ...objects.Hash) objects.Hash {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "tree %s\n", tree)
	for _, p := range parents {
		fmt.Fprintf(&b, "parent %s\n", p)
	}
	b.WriteString("author A U Thor <a@example.com> 1700000000 +0000\ncommitter A U Thor <a@example.com> 1700000000 +0000\n\nRevert\n")
	h, err := q.Put(plumbing.CommitObject, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestRevertAndForgedPointer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{"sales", "orders"}
	c1, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{RunID: "r-1"})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := f.cat.WriteDataCommit(ctx, f.repo, c1, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 3, 2)}, Mode: ModeAppend}}, CommitInfo{RunID: "r-2"})
	if err != nil {
		t.Fatal(err)
	}
	// Each run published its data: main stood at c1, then at c2.
	f.setBranch(t, "main", objects.ZeroHash, c1)
	f.setBranch(t, "main", c1, c2)
	c1Commit, _ := readCommit(ctx, repoObjects{f.objs, f.repo}, c1)

	t.Run("failed run", func(t *testing.T) {
		// A failed run's partial data: written by the server, never on a
		// data ref. Neither a push, nor a branch, nor a merge publishes it.
		failed, err := f.cat.WriteDataCommit(ctx, f.repo, c2, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 9, 1)}, Mode: ModeAppend}}, CommitInfo{RunID: "r-3"})
		if err != nil {
			t.Fatal(err)
		}
		fc, _ := readCommit(ctx, repoObjects{f.objs, f.repo}, failed)
		q := f.objs.NewQuarantine(f.repo)
		defer q.Close()
		pushed := buildCommit(t, q, fc.TreeHash, c2)
		if err := f.cat.VerifyPushedDataCommit(ctx, q, pushed); !errors.Is(err, ErrUnpublished) || !strings.Contains(err.Error(), "table sales.orders") {
			t.Fatalf("push of a failed run's pointer: %v", err)
		}
		if _, err := f.cat.CreateBranch(ctx, f.repo, "evidence", failed.String()); !errors.Is(err, ErrUnpublished) {
			t.Fatalf("branch from a failed run's data: %v", err)
		}
		if _, err := f.cat.Merge(ctx, f.repo, failed.String(), "main"); !errors.Is(err, ErrUnpublished) {
			t.Fatalf("merge of a failed run's data: %v", err)
		}
		if f.head(t, "main") != c2 {
			t.Fatal("main moved")
		}
		if _, err := f.refs.Resolve(ctx, f.repo, DataRef("evidence")); !errors.Is(err, refs.ErrNotFound) {
			t.Fatalf("refused branch exists: %v", err)
		}
	})

	t.Run("revert", func(t *testing.T) {
		// `git revert c2` on a client: a new commit, parent c2, with c1's tree.
		q := f.objs.NewQuarantine(f.repo)
		defer q.Close()
		rev := buildCommit(t, q, c1Commit.TreeHash, c2)
		if ids := f.pushReverted(t, q, c2, rev, orders); !slices.Equal(ids, []int64{0, 1, 2}) {
			t.Fatalf("after revert ids = %v", ids)
		}
	})

	t.Run("forged", func(t *testing.T) {
		tabs, _ := f.cat.Tables(ctx, f.repo, c1)
		p := tabs[orders]
		p.Rows = 1_000_000 // a client edits the pointer by hand
		q := f.objs.NewQuarantine(f.repo)
		defer q.Close()
		blob, _ := q.Put(plumbing.BlobObject, p.Marshal())
		tt, _ := q.Put(plumbing.TreeObject, encodeTree([]treeEntry{{Name: "orders", Mode: filemode.Regular, Hash: blob}}))
		nt, _ := q.Put(plumbing.TreeObject, encodeTree([]treeEntry{{Name: "sales", Mode: filemode.Dir, Hash: tt}}))
		root, _ := q.Put(plumbing.TreeObject, encodeTree([]treeEntry{{Name: "tables", Mode: filemode.Dir, Hash: nt}}))
		forged := buildCommit(t, q, root, c2)
		err := f.cat.VerifyPushedDataCommit(ctx, q, forged)
		if !errors.Is(err, ErrForgedPointer) || !strings.Contains(err.Error(), "table sales.orders") {
			t.Fatalf("forged pointer: %v", err)
		}
	})

	t.Run("stray entry", func(t *testing.T) {
		q := f.objs.NewQuarantine(f.repo)
		defer q.Close()
		blob, _ := q.Put(plumbing.BlobObject, []byte("hello\n"))
		root, _ := q.Put(plumbing.TreeObject, encodeTree([]treeEntry{{Name: "README", Mode: filemode.Regular, Hash: blob}}))
		c := buildCommit(t, q, root, c2)
		var te *TreeError
		if err := f.cat.VerifyPushedDataCommit(ctx, q, c); !errors.As(err, &te) {
			t.Fatalf("stray entry: %v", err)
		}
	})
}

func TestImportCSVAndParquet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	csvPath := f.dir + "/orders.csv"
	if err := os.WriteFile(csvPath, []byte("id,name,amount\n1,ana,2.5\n2,bob,3\n3,cy,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	pq, err := FetchSource(ctx, csvPath, tmp, nil)
	if err != nil {
		t.Fatal(err)
	}
	orders := TableName{"sales", "orders"}
	h, err := f.cat.WriteBranch(ctx, f.repo, "main", []TableWrite{{Table: orders, Files: []string{pq}, Mode: ModeAppend}}, CommitInfo{RunID: "import"})
	if err != nil {
		t.Fatal(err)
	}
	if h != f.head(t, "main") {
		t.Fatal("WriteBranch did not move refs/data/main")
	}
	tabs, _ := f.cat.Tables(ctx, f.repo, h)
	if p := tabs[orders]; p.Rows != 3 || p.Schema != "id:long,name:string,amount:double" {
		t.Fatalf("pointer %+v", p)
	}
	// A local Parquet file is copied, never linked: rewriting it later
	// cannot change the warehouse.
	src := f.parquetFile(t, 10, 2)
	local, err := FetchSource(ctx, src, tmp, nil)
	if err != nil || local == src {
		t.Fatalf("FetchSource(parquet) = %s, %v", local, err)
	}
	if _, err := f.cat.WriteBranch(ctx, f.repo, "main", []TableWrite{{Table: orders, Files: []string{local}, Mode: ModeAppend}}, CommitInfo{}); err != nil {
		t.Fatal(err)
	}
	files, _ := f.cat.ReadTableFiles(ctx, f.repo, f.head(t, "main"), orders)
	ids := parquetIDs(t, files)
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{1, 2, 3, 10, 11}) {
		t.Fatalf("ids = %v", ids)
	}
	for _, bad := range []string{f.dir + "/x.txt", "s3://bucket/key.csv", f.dir + "/missing.csv"} {
		if _, err := FetchSource(ctx, bad, tmp, nil); err == nil {
			t.Errorf("FetchSource(%s): no error", bad)
		}
	}
}
