package gc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// BenchmarkCollect collects a repo on Pebble (on disk) holding a chain
// of commits (blob, tree, commit each) on main and as many unreachable
// ones, and reports what one collection costs per object and how long its
// sweep held the write barrier (how long a push waited).
//
//	go test -run '^$' -bench Collect -benchtime 3x ./gc/
func BenchmarkCollect(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("commits=%d", n), func(b *testing.B) {
			ctx := context.Background()
			var total time.Duration
			var sweep time.Duration
			var objs int
			for range b.N {
				b.StopTimer()
				dir := b.TempDir()
				db, err := pebblekv.Open(filepath.Join(dir, "pebble"), nil)
				if err != nil {
					b.Fatal(err)
				}
				f := newFixture(b, db, dir)
				head, junk := objects.ZeroHash, objects.ZeroHash
				for i := range n {
					head = benchCommit(b, f, fmt.Sprintf("kept %d", i), head)
					junk = benchCommit(b, f, fmt.Sprintf("junk %d", i), junk)
				}
				if err := f.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: head}}, nil, "bench"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				res, err := f.collector(2*time.Hour).Run(ctx, expiring())
				total += time.Since(start)
				b.StopTimer()
				if err != nil || res.Objects != 3*n {
					b.Fatalf("%v: freed %d objects, want %d", err, res.Objects, 3*n)
				}
				sweep += res.LongestSweep
				objs += res.Objects + res.KeptObjects
				db.Close()
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(objs), "ns/object")
			b.ReportMetric(float64(sweep.Microseconds())/float64(b.N), "sweep-µs")
		})
	}
}

func benchCommit(b *testing.B, f *fixture, content string, parent objects.Hash) objects.Hash {
	ctx := context.Background()
	blob, err := f.objs.Put(ctx, repo, plumbing.BlobObject, []byte(content))
	if err != nil {
		b.Fatal(err)
	}
	tree, _ := f.objs.Put(ctx, repo, plumbing.TreeObject, []byte("100644 f\x00"+string(blob[:])))
	c, _ := f.objs.Put(ctx, repo, plumbing.CommitObject, []byte(commitText(tree, parent, content)))
	return c
}
