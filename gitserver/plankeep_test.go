package gitserver

import (
	"reflect"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
)

// TestKeepPlan: a kept plan reads back as it was written, over more than
// one chunk; a second one replaces it whole; a damaged one reads as none.
func TestKeepPlan(t *testing.T) {
	db := memkv.New()
	const repo = objects.RepoName("demo")
	if pe := loadPlan(db, repo); pe != nil {
		t.Fatalf("plan of an empty database: %+v", pe)
	}
	mk := func(n int, seed byte) *planEntry {
		pl := &packList{commits: 3, names: map[objects.Hash]uint32{}}
		for i := range n {
			var h objects.Hash
			h[0], h[1], h[2], h[19] = byte(i), byte(i>>8), byte(i>>16), seed
			typ := plumbing.BlobObject
			if i < 3 {
				typ = plumbing.CommitObject
			}
			pl.push(h, typ)
			pl.names[h] = uint32(i*7 + 1)
		}
		pe := &planEntry{repo: repo, pl: pl, roots: []objects.Hash{pl.objs[0]}}
		pe.key[0] = seed
		return pe
	}
	check := func(want *planEntry) {
		t.Helper()
		got := loadPlan(db, repo)
		if got == nil {
			t.Fatalf("kept plan of %d objects read back as none", len(want.pl.objs))
		}
		if got.key != want.key || !reflect.DeepEqual(got.roots, want.roots) || got.pl.commits != want.pl.commits ||
			!reflect.DeepEqual(got.pl.objs, want.pl.objs) || !reflect.DeepEqual(got.pl.kinds, want.pl.kinds) ||
			!reflect.DeepEqual(got.pl.names, want.pl.names) {
			t.Fatalf("kept plan read back differs (%d objects, want %d)", len(got.pl.objs), len(want.pl.objs))
		}
	}
	big := mk(planChunkObjects+5, 1)
	if err := keepPlan(db, repo, big); err != nil {
		t.Fatal(err)
	}
	check(big)
	small := mk(10, 2)
	if err := keepPlan(db, repo, small); err != nil {
		t.Fatal(err)
	}
	check(small)
	if _, _, err := db.Get(planKeepKey(repo, 2)); err == nil {
		t.Errorf("the second chunk of the replaced plan is still there")
	}

	for name, damage := range map[string]func(){
		"chunk cut":     func() { db.Set(planKeepKey(repo, 1), make([]byte, 24), false) },
		"chunk missing": func() { db.Delete(planKeepKey(repo, 1), false) },
		"bad kind":      func() { v := make([]byte, 250); db.Set(planKeepKey(repo, 1), v, false) },
		"other version": func() { db.Set(planKeepKey(repo, 0), []byte{9}, false) },
		"header cut":    func() { db.Set(planKeepKey(repo, 0), []byte{planKeepVersion, 1, 2}, false) },
		"too many roots": func() {
			v := append([]byte{planKeepVersion}, make([]byte, 20)...)
			db.Set(planKeepKey(repo, 0), append(v, 0, 200), false)
		},
	} {
		if err := keepPlan(db, repo, small); err != nil {
			t.Fatal(err)
		}
		damage()
		if pe := loadPlan(db, repo); pe != nil {
			t.Errorf("%s: a damaged plan read as %d objects", name, len(pe.pl.objs))
		}
	}
}
