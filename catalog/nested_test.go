package catalog

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/weir-dev/weir/objects"
)

// TestNestedNames: a nested table name splits at its last dot, and the
// levels of a namespace are checked one by one.
func TestNestedNames(t *testing.T) {
	tn, err := ParseTableName("sales.eu.de.orders")
	if err != nil || tn != (TableName{"sales.eu.de", "orders"}) || !slices.Equal(tn.Identifier(), []string{"sales", "eu", "de", "orders"}) {
		t.Fatalf("ParseTableName = %+v %v", tn, err)
	}
	if p, ok := NamespaceParent("sales.eu.de"); !ok || p != "sales.eu" {
		t.Fatalf("parent of sales.eu.de = %q %v", p, ok)
	}
	if _, ok := NamespaceParent("sales"); ok {
		t.Fatal("sales has a parent")
	}
	for _, bad := range []string{"sales..orders", ".sales.orders", "sales.EU.orders", "sales/eu.orders", "sales.eu.", strings.Repeat("a.", MaxNamespaceDepth) + "a.t"} {
		if _, err := ParseTableName(bad); err == nil {
			t.Errorf("ParseTableName(%q) accepted", bad)
		}
	}
	deepest := strings.Repeat("a.", MaxNamespaceDepth-1) + "a"
	if err := ValidateNamespace(deepest); err != nil {
		t.Errorf("%d levels refused: %v", MaxNamespaceDepth, err)
	}
	if err := ValidateNamespace(strings.Repeat("a", 127) + "." + strings.Repeat("b", 127)); err != nil {
		t.Errorf("255 bytes refused: %v", err)
	}
	if err := ValidateNamespace(strings.Repeat("a", 128) + "." + strings.Repeat("b", 127)); err == nil {
		t.Error("256 bytes accepted")
	}
}

// TestNestedTreeLayout: nested namespaces are one entry each, their
// levels joined by '.', beside single-level ones, in a tree that reads
// back to the same state; a table and a namespace of one dotted name
// (table eu in sales, namespace sales.eu) are distinct entries.
func TestNestedTreeLayout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	w := repoObjects{f.objs, f.repo}
	blob := func(s string) objects.Hash {
		h, err := w.Put(ctx, plumbing.BlobObject, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	st := newDataState()
	st.tables[TableName{"sales", "eu"}] = blob("p1")
	st.tables[TableName{"sales", "orders"}] = blob("p2")
	st.tables[TableName{"sales.eu", "orders"}] = blob("p3")
	st.tables[TableName{"sales.eu.de", "orders"}] = blob("p4")
	for _, ns := range []string{"sales", "sales.eu", "sales.eu.de"} {
		st.namespaces[ns] = blob(ns)
	}
	tree, err := writeTree(ctx, w, st)
	if err != nil {
		t.Fatal(err)
	}
	names := func(h objects.Hash, mode filemode.FileMode) []string {
		t.Helper()
		es, err := readTree(ctx, w, h)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if e.Mode != mode {
				t.Fatalf("entry %s has mode %o", e.Name, uint32(e.Mode))
			}
			out = append(out, e.Name)
		}
		return out
	}
	root, _ := readTree(ctx, w, tree)
	byName := map[string]objects.Hash{}
	for _, e := range root {
		byName[e.Name] = e.Hash
	}
	// Git's order: a folder sorts as its name and '/', after '.'.
	if got := names(byName["tables"], filemode.Dir); !slices.Equal(got, []string{"sales.eu.de", "sales.eu", "sales"}) {
		t.Fatalf("tables/ holds %v", got)
	}
	if got := names(byName["namespaces"], filemode.Regular); !slices.Equal(got, []string{"sales", "sales.eu", "sales.eu.de"}) {
		t.Fatalf("namespaces/ holds %v", got)
	}
	c, err := writeCommit(ctx, w, tree, nil, "nested")
	if err != nil {
		t.Fatal(err)
	}
	back, err := readState(ctx, w, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.tables) != 4 || back.tables[TableName{"sales.eu", "orders"}] != st.tables[TableName{"sales.eu", "orders"}] || back.tables[TableName{"sales", "eu"}] != st.tables[TableName{"sales", "eu"}] {
		t.Fatalf("read back %v", back.tables)
	}
}

// TestMergeKeepsParents: a merge of one side that dropped namespace
// sales with another that created sales.eu in it keeps sales (as it keeps
// a namespace the other side added a table to).
func TestMergeKeepsParents(t *testing.T) {
	h := func(b byte) objects.Hash { var x objects.Hash; x[0] = b; return x }
	base := newDataState()
	base.namespaces["sales"] = h(1)
	from := base.clone()
	from.namespaces["sales.eu"] = h(2)
	from.namespaces["sales.eu.de"] = h(3)
	into := base.clone()
	delete(into.namespaces, "sales")
	out, _, conflicts := mergeStates(base, from, into, "feature")
	if len(conflicts) > 0 {
		t.Fatalf("conflicts %v", conflicts)
	}
	got := slices.Sorted(maps.Keys(out.namespaces))
	if !slices.Equal(got, []string{"sales", "sales.eu", "sales.eu.de"}) || out.namespaces["sales"] != h(1) {
		t.Fatalf("merged namespaces %v", out.namespaces)
	}
}

// TestWriteNestedTable: a write to a table in a nested namespace (an
// import's or weir import's) creates the namespace and each namespace it
// is in, and the data commit says the table's dotted name.
func TestWriteNestedTable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	tn := TableName{"sales.eu.de", "orders"}
	c, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: tn, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := readState(ctx, repoObjects{f.objs, f.repo}, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(st.namespaces)); !slices.Equal(got, []string{"sales", "sales.eu", "sales.eu.de"}) {
		t.Fatalf("namespaces %v", got)
	}
	tabs, err := f.cat.Tables(ctx, f.repo, c)
	if err != nil || tabs[tn].Rows != 3 {
		t.Fatalf("tables %v %v", tabs, err)
	}
	if msg := f.commitMessage(t, c); !strings.Contains(msg, "sales.eu.de.orders") {
		t.Fatalf("message %q", msg)
	}
}
