package gc

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
)

// TestCollectKeepsNestedTables: a table in a nested namespace
// (sales.eu.de.orders, at tables/sales.eu.de/orders) is as live as any:
// a collection long after its files were written keeps every file main
// and a data tag name, frees a failed run's files of the same table, and
// the table reads the same rows after.
func TestCollectKeepsNestedTables(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, memkv.New(), t.TempDir())
	nested := catalog.TableName{Namespace: "sales.eu.de", Name: "orders"}
	write := func(base objects.Hash, from, n int, mode, run string) objects.Hash {
		t.Helper()
		h, err := f.cat.WriteDataCommit(ctx, repo, base, []catalog.TableWrite{{Table: nested, Files: []string{f.parquet(t, from, n)}, Mode: mode}}, catalog.CommitInfo{RunID: run, Message: "test " + run})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	code := f.codeCommit(t, "select 1", objects.ZeroHash)
	f.move(t, "refs/heads/main", objects.ZeroHash, code)
	d1 := write(objects.ZeroHash, 0, 10, catalog.ModeReplace, "r-1")
	f.move(t, catalog.DataRef("main"), objects.ZeroHash, d1)
	f.move(t, catalog.TagRef("d1"), objects.ZeroHash, d1)
	d2 := write(d1, 10, 5, catalog.ModeReplace, "r-2") // d1's file is the tag's only
	f.move(t, catalog.DataRef("main"), d1, d2)
	kept := f.files(t)
	nestedFiles := 0
	for n := range kept {
		if strings.HasPrefix(n, "sales.eu.de/orders/") {
			nestedFiles++
		}
	}
	if nestedFiles != len(kept) || nestedFiles < 6 {
		t.Fatalf("the nested table's files are %v: want them all under sales.eu.de/orders/", kept)
	}
	bad := f.codeCommit(t, "select broken", code)
	runData := write(d2, 100, 7, catalog.ModeReplace, "r-0bad")
	f.failedRun(t, "r-0bad", bad, runData)
	var runFiles []string
	for n := range f.files(t) {
		if !kept[n] {
			runFiles = append(runFiles, n)
		}
	}
	if len(runFiles) < 3 {
		t.Fatalf("the failed run wrote %v", runFiles)
	}

	res, err := f.collector(2*time.Hour).Run(ctx, expiring())
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("collect: %v %v", err, res.Errors)
	}
	after := f.files(t)
	for n := range kept {
		if !after[n] {
			t.Errorf("live file %s of the nested table was deleted", n)
		}
	}
	for _, n := range runFiles {
		if after[n] {
			t.Errorf("the failed run's file %s was kept", n)
		}
	}
	if res.Files != len(runFiles) {
		t.Errorf("freed %d files, the failed run wrote %d", res.Files, len(runFiles))
	}
	if got := f.idsOf(t, f.head(t, "main"), nested); !slices.Equal(got, seq(10, 5)) {
		t.Errorf("main's sales.eu.de.orders reads %v", got)
	}
	if got := f.idsOf(t, d1, nested); !slices.Equal(got, seq(0, 10)) {
		t.Errorf("data tag d1's sales.eu.de.orders reads %v", got)
	}
}
