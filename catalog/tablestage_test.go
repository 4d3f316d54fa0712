package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// TestStageTables: tables staged concurrently and committed at once make
// the data commit WriteDataCommit makes: every table, one commit on base,
// lineage trailers, a replace and an append on top of base's tables.
func TestStageTables(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{"sales", "orders"}
	items := TableName{"sales", "items"}
	refunds := TableName{"finance", "refunds"}
	code := plumbing.NewHash("2222222222222222222222222222222222222222")
	base, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{
		{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}},
		{Table: items, Files: []string{f.parquetFile(t, 10, 2)}},
	}, CommitInfo{RunID: "r-0"})
	if err != nil {
		t.Fatal(err)
	}

	info := CommitInfo{RunID: "r-1", CodeCommit: code, Message: "weir: run r-1"}
	writes := []TableWrite{
		{Table: orders, Files: []string{f.parquetFile(t, 100, 4)}},                 // replace
		{Table: items, Files: []string{f.parquetFile(t, 20, 5)}, Mode: ModeAppend}, // append
		{Table: refunds, Files: []string{f.parquetFile(t, 200, 1)}},                // new, new namespace
	}
	staged := make([]*StagedTable, len(writes))
	errs := make([]error, len(writes))
	var wg sync.WaitGroup
	for i, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			staged[i], errs[i] = f.cat.StageTable(ctx, f.repo, base, w, info)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Staging made no commit and moved nothing: base is unchanged.
	if tabs, _ := f.cat.Tables(ctx, f.repo, base); len(tabs) != 2 || tabs[orders].Rows != 3 {
		t.Fatalf("base changed: %+v", tabs)
	}
	c, err := f.cat.CommitStaged(ctx, f.repo, base, staged, info)
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := f.cat.Tables(ctx, f.repo, c)
	if err != nil {
		t.Fatal(err)
	}
	for tn, rows := range map[TableName]int64{orders: 4, items: 7, refunds: 1} {
		if p := tabs[tn]; p.Rows != rows || p.Run != "r-1" || p.CodeCommit != code {
			t.Errorf("%s: %+v, want %d rows of run r-1", tn, p, rows)
		}
	}
	files, err := f.cat.ReadTableFiles(ctx, f.repo, c, items)
	if err != nil {
		t.Fatal(err)
	}
	ids := parquetIDs(t, files)
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{10, 11, 20, 21, 22, 23, 24}) {
		t.Fatalf("items after a staged append: %v", ids)
	}
	msg := f.commitMessage(t, c)
	for _, want := range []string{"weir: run r-1\n", "Run: r-1\n", "Code-Commit: " + code.String() + "\n",
		"Table-Changes: append 5 rows to sales.items", "Table-Changes: replace finance.refunds: 1 rows (was 0)", "Table-Changes: replace sales.orders: 4 rows (was 3)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message %q lacks %q", msg, want)
		}
	}
	// The commit's parent is base.
	cm, err := readCommit(ctx, repoObjects{f.objs, f.repo}, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(cm.ParentHashes) != 1 || cm.ParentHashes[0] != base {
		t.Fatalf("parents %v, want %s", cm.ParentHashes, base)
	}

	// One table twice is refused.
	if _, err := f.cat.CommitStaged(ctx, f.repo, base, []*StagedTable{staged[0], staged[0]}, info); !errors.Is(err, ErrBadWrite) {
		t.Fatalf("a table staged twice: %v", err)
	}
}
