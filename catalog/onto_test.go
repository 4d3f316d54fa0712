package catalog

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/objects"
)

// TestChangedTablesAndMergeOnto: ChangedTables names the tables that differ
// between a run's start and the branch head, each with the commit that last
// changed it; MergeOnto carries the run's tables onto the head (parents:
// head, run; the run's lineage) and refuses a table both changed.
func TestChangedTablesAndMergeOnto(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders, events, out := TableName{"sales", "orders"}, TableName{"ext", "events"}, TableName{"sales", "out"}
	write := func(base objects.Hash, tn TableName, from int, mode, msg string, code objects.Hash) objects.Hash {
		t.Helper()
		h, err := f.cat.WriteDataCommit(ctx, f.repo, base, []TableWrite{{Table: tn, Files: []string{f.parquetFile(t, from, 2)}, Mode: mode}}, CommitInfo{Message: msg, CodeCommit: code})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	start := write(objects.ZeroHash, orders, 0, ModeReplace, "weir: seed orders", objects.ZeroHash)
	start = write(start, events, 10, ModeReplace, "weir: seed events", objects.ZeroHash)
	// The branch moves: two appends to events, one to orders, one more to events.
	h1 := write(start, events, 20, ModeAppend, "weir: append to ext.events (by a)", objects.ZeroHash)
	h2 := write(h1, orders, 30, ModeAppend, "weir: append to sales.orders (by b)", objects.ZeroHash)
	head := write(h2, events, 40, ModeAppend, "weir: append to ext.events (by c)", objects.ZeroHash)

	changed, err := f.cat.ChangedTables(ctx, f.repo, start, head)
	if err != nil {
		t.Fatal(err)
	}
	want := []TableChange{
		{Table: events, By: head, Subject: "weir: append to ext.events (by c)"},
		{Table: orders, By: h2, Subject: "weir: append to sales.orders (by b)"},
	}
	if !reflect.DeepEqual(changed, want) {
		t.Fatalf("ChangedTables = %+v, want %+v", changed, want)
	}
	if none, err := f.cat.ChangedTables(ctx, f.repo, head, head); err != nil || len(none) != 0 {
		t.Fatalf("ChangedTables(head, head) = %v, %v", none, err)
	}

	// A run on start wrote sales.out: disjoint from what moved.
	code := objects.Hash{7}
	run := write(start, out, 50, ModeReplace, "weir: run r-1", code)
	merged, err := f.cat.MergeOnto(ctx, f.repo, start, run, head, CommitInfo{RunID: "r-1", CodeCommit: code, Message: "weir: run r-1 published onto " + head.String()[:7]})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := readCommit(ctx, repoObjects{f.objs, f.repo}, merged)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cm.ParentHashes, []objects.Hash{head, run}) {
		t.Errorf("parents %v, want [head run]", cm.ParentHashes)
	}
	for _, w := range []string{"Run: r-1\n", "Code-Commit: " + code.String() + "\n", "take sales.out from run r-1"} {
		if !strings.Contains(cm.Message, w) {
			t.Errorf("message lacks %q:\n%s", w, cm.Message)
		}
	}
	st, err := f.cat.state(ctx, f.repo, merged)
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := f.cat.state(ctx, f.repo, head)
	rs, _ := f.cat.state(ctx, f.repo, run)
	if st.tables[events] != hs.tables[events] || st.tables[orders] != hs.tables[orders] || st.tables[out] != rs.tables[out] || st.code != code {
		t.Errorf("merged tree: %+v", st)
	}

	// A run that wrote events too: both changed it, nothing is written.
	clash := write(start, events, 60, ModeAppend, "weir: run r-2", code)
	_, err = f.cat.MergeOnto(ctx, f.repo, start, clash, head, CommitInfo{RunID: "r-2", CodeCommit: code})
	var ce *ConflictError
	if !errors.As(err, &ce) || !slices.Equal(ce.Tables, []string{"ext.events"}) {
		t.Fatalf("MergeOnto of a clash: %v", err)
	}
}
