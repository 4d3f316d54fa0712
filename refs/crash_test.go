package refs_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

func hashOf(round int) objects.Hash {
	var h objects.Hash
	if round == 0 {
		return h
	}
	h[0] = 0xcc
	h[16], h[17], h[18], h[19] = byte(round>>24), byte(round>>16), byte(round>>8), byte(round)
	return h
}

func roundOf(h objects.Hash) int {
	if h.IsZero() {
		return 0
	}
	return int(h[16])<<24 | int(h[17])<<16 | int(h[18])<<8 | int(h[19])
}

// crashDriver opens a database and takes crash clones of it.
type crashDriver struct {
	open func(t *testing.T) kv.DB
	// crash returns what a crash of db at this instant could leave.
	crash func(t *testing.T, db kv.DB, rng *rand.Rand, i int) kv.DB
}

func crashDrivers() map[string]crashDriver {
	fs := vfs.NewCrashableMem()
	return map[string]crashDriver{
		// A crash clone of Pebble's in-memory file system, keeping a
		// random share of unsynced writes.
		"pebble": {
			open: func(t *testing.T) kv.DB {
				db, err := pebblekv.OpenFS("db", fs, nil)
				if err != nil {
					t.Fatal(err)
				}
				return db
			},
			crash: func(t *testing.T, db kv.DB, rng *rand.Rand, i int) kv.DB {
				clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(uint64(i), 7))})
				cdb, err := pebblekv.OpenFS("db", clone, nil)
				if err != nil {
					t.Fatalf("crash %d: reopen: %v", i, err)
				}
				return cdb
			},
		},
		// memkv keeps the synced state and a random prefix of the
		// unsynced writes.
		"mem": {
			open: func(t *testing.T) kv.DB { return memkv.New() },
			crash: func(t *testing.T, db kv.DB, rng *rand.Rand, i int) kv.DB {
				return db.(*memkv.DB).CrashClone(rng)
			},
		},
	}
}

// TestCrashDuringMultiRefUpdates crashes a database at random moments
// while writers move ref pairs (refs/heads/bN, refs/data/bN) together, on
// each kv driver. After reopening every clone: every update acknowledged
// before the crash is there, and no pair is half applied.
func TestCrashDuringMultiRefUpdates(t *testing.T) {
	for name, d := range crashDrivers() {
		t.Run(name, func(t *testing.T) { testCrashDuringMultiRefUpdates(t, d) })
	}
}

func testCrashDuringMultiRefUpdates(t *testing.T, d crashDriver) {
	const writers, crashes = 8, 12
	ctx := context.Background()
	db := d.open(t)
	rd := refs.NewDB(objects.New(db, objects.Limits{}))
	repo := objects.RepoName("crash")
	acked := make([]atomic.Int64, writers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			code, data := refs.Name(fmt.Sprintf("refs/heads/b%d", w)), refs.Name(fmt.Sprintf("refs/data/b%d", w))
			for r := 1; !stop.Load(); r++ {
				err := rd.Update(ctx, repo, []refs.Update{
					{Name: code, Old: hashOf(r - 1), New: hashOf(r)},
					{Name: data, Old: hashOf(r - 1), New: hashOf(r)},
				}, nil, "advance")
				if err != nil {
					errs <- err
					return
				}
				acked[w].Store(int64(r))
			}
		}(w)
	}

	type crash struct {
		db    kv.DB
		acked []int64
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var clones []crash
	for i := 0; i < crashes; i++ {
		time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
		// Acknowledged before the crash, so it must survive it.
		before := make([]int64, writers)
		for w := range before {
			before[w] = acked[w].Load()
		}
		clones = append(clones, crash{d.crash(t, db, rng, i), before})
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	db.Close()

	for i, c := range clones {
		cdb := c.db
		co, err := objects.Open(cdb, objects.Limits{})
		if err != nil {
			t.Fatalf("crash %d: open: %v", i, err)
		}
		crd := refs.NewDB(co)
		total := 0
		for w := 0; w < writers; w++ {
			var got [2]int
			for j, n := range []string{"refs/heads/b%d", "refs/data/b%d"} {
				h, err := crd.Resolve(ctx, repo, refs.Name(fmt.Sprintf(n, w)))
				if err != nil && c.acked[w] > 0 {
					t.Fatalf("crash %d: %s: %v", i, fmt.Sprintf(n, w), err)
				}
				got[j] = roundOf(h)
			}
			if got[0] != got[1] {
				t.Fatalf("crash %d: pair %d half applied: code at round %d, data at round %d", i, w, got[0], got[1])
			}
			if int64(got[0]) < c.acked[w] {
				t.Fatalf("crash %d: pair %d at round %d, but round %d was acknowledged before the crash", i, w, got[0], c.acked[w])
			}
			// The reflog agrees with the ref.
			log, err := crd.Reflog(ctx, repo, refs.Name(fmt.Sprintf("refs/heads/b%d", w)))
			if err != nil || len(log) != got[0] {
				t.Fatalf("crash %d: pair %d at round %d has %d reflog entries: %v", i, w, got[0], len(log), err)
			}
			total += got[0]
		}
		cdb.Close()
		t.Logf("crash %d: %d updates survived (acknowledged before: %v)", i, total, c.acked)
	}
}
