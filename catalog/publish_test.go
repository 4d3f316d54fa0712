package catalog

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// TestPublishedIndexBackfill: data a server wrote before the published
// index existed (its data refs moved without marks) is indexed from the
// reflogs of the data refs the first time a pushed data commit is checked,
// so a revert to it is still accepted; data that never stood on a data
// ref (a failed run's) still is not.
func TestPublishedIndexBackfill(t *testing.T) {
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
	failed, err := f.cat.WriteDataCommit(ctx, f.repo, c2, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 5, 1)}, Mode: ModeAppend}}, CommitInfo{RunID: "r-3"})
	if err != nil {
		t.Fatal(err)
	}
	// The old server: refs moved, nothing marked.
	for _, u := range []refs.Update{{Name: DataRef("main"), New: c1}, {Name: DataRef("main"), Old: c1, New: c2}, {Name: runDataRef("r-3"), New: failed}} {
		if err := f.refs.Update(ctx, f.repo, []refs.Update{u}, nil, "old server"); err != nil {
			t.Fatal(err)
		}
	}
	// A new server over the same database.
	f.cat = New(f.objs, f.refs, f.cat.Warehouse())
	c1Commit, _ := readCommit(ctx, repoObjects{f.objs, f.repo}, c1)
	failedCommit, _ := readCommit(ctx, repoObjects{f.objs, f.repo}, failed)

	q := f.objs.NewQuarantine(f.repo)
	defer q.Close()
	forged := buildCommit(t, q, failedCommit.TreeHash, c2)
	if err := f.cat.VerifyPushedDataCommit(ctx, q, forged); !errors.Is(err, ErrUnpublished) {
		t.Fatalf("failed run's data after backfill: %v", err)
	}
	rev := buildCommit(t, q, c1Commit.TreeHash, c2)
	if ids := f.pushReverted(t, q, c2, rev, orders); !slices.Equal(ids, []int64{0, 1, 2}) {
		t.Fatalf("after revert ids = %v", ids)
	}
}

// runDataRef is refs/runs/<id>/data, where the hook keeps a failed run's
// partial data.
func runDataRef(id string) refs.Name { return refs.Name(refs.RunsPrefix + id + "/data") }
