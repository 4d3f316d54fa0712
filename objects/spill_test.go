package objects

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/kv/pebblekv"
)

// spillAll makes s spill every object and every delta, and cache no base:
// the path a large push takes, on small test packs.
func spillAll(s *Store) *Store {
	s.mem = memBudget{}
	return s
}

// Spilled objects follow the quarantine rules: readable through the
// quarantine, invisible to the store until the commit, and after it
// readable as any object, byte for byte (git-made packs with ofs- and
// ref-deltas, and a thin pack whose bases are spilled objects).
func TestSpilledIngestMatchesGit(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 8)
	for _, tc := range []struct {
		name  string
		extra []string
	}{{"ofs-delta", []string{"--delta-base-offset"}}, {"ref-delta", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			s := spillAll(memStore(t, Limits{}))
			q := s.NewQuarantine("demo")
			defer q.Close()
			if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(tc.extra, "HEAD"))); err != nil {
				t.Fatal(err)
			}
			if n := countKeys(t, s.db, 'S'); n != 1 {
				t.Fatalf("%d spill markers while the quarantine is open, want 1", n)
			}
			want := g.allObjects()
			for h, o := range want {
				got, err := q.Get(ctx, h)
				if err != nil || got.Type != o.Type || !bytes.Equal(got.Data, o.Data) {
					t.Fatalf("quarantine get %s: %v", h, err)
				}
				if typ, size, err := q.Stat(ctx, h); err != nil || typ != o.Type || size != int64(len(o.Data)) {
					t.Fatalf("stat %s: %v %d %v", h, typ, size, err)
				}
				if _, err := s.Get(ctx, "demo", h); !errors.Is(err, ErrNotFound) {
					t.Fatalf("spilled object %s visible before the commit: %v", h, err)
				}
			}
			if err := q.Check(ctx, []Hash{commits[len(commits)-1]}); err != nil {
				t.Fatal(err)
			}
			commitQuarantine(t, q)
			if n := countKeys(t, s.db, 'S'); n != 0 {
				t.Fatalf("%d spill markers after the commit, want 0", n)
			}
			for h, o := range want {
				got, err := s.Get(ctx, "demo", h)
				if err != nil || !bytes.Equal(got.Data, o.Data) {
					t.Fatalf("store get %s: %v", h, err)
				}
				typ, size, z, err := s.Raw(ctx, "demo", h)
				if err != nil {
					t.Fatal(err)
				}
				data, err := inflate(z, size)
				if err != nil || typ != o.Type || !bytes.Equal(data, o.Data) {
					t.Fatalf("raw %s does not inflate to the object: %v", h, err)
				}
			}
		})
	}
	t.Run("thin", func(t *testing.T) {
		s := spillAll(memStore(t, Limits{}))
		q := s.NewQuarantine("demo")
		if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, commits[3].String()))); err != nil {
			t.Fatal(err)
		}
		commitQuarantine(t, q)
		q.Close()
		q2 := s.NewQuarantine("demo")
		defer q2.Close()
		thin := g.packRevs([]string{"--thin"}, commits[7].String(), "^"+commits[3].String())
		if _, err := q2.IngestPack(ctx, bytes.NewReader(thin)); err != nil {
			t.Fatal(err)
		}
		if err := q2.Check(ctx, []Hash{commits[7]}); err != nil {
			t.Fatal(err)
		}
	})
}

// A quarantine closed without committing drops its spills; so does a
// refused pack, at once.
func TestSpillDroppedUnlessCommitted(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	history(g, 4)
	pack := g.packRevs(nil, "HEAD")
	s := spillAll(memStore(t, Limits{}))
	q := s.NewQuarantine("demo")
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(3, bytes.Repeat([]byte("big "), 1<<20)); err != nil {
		t.Fatal(err)
	}
	if countKeys(t, s.db, 's') == 0 || countKeys(t, s.db, 'S') != 2 {
		t.Fatalf("expected spilled chunks and 2 markers; got %d chunks, %d markers", countKeys(t, s.db, 's'), countKeys(t, s.db, 'S'))
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if n, m := countKeys(t, s.db, 's'), countKeys(t, s.db, 'S'); n != 0 || m != 0 {
		t.Fatalf("closed quarantine left %d chunks, %d markers", n, m)
	}

	bad := bytes.Clone(pack)
	bad[len(bad)-1] ^= 1 // checksum: refused after everything was spilled
	q2 := s.NewQuarantine("demo")
	defer q2.Close()
	if _, err := q2.IngestPack(ctx, bytes.NewReader(bad)); !errors.Is(err, ErrBadPack) {
		t.Fatalf("err = %v", err)
	}
	if n, m := countKeys(t, s.db, 's'), countKeys(t, s.db, 'S'); n != 0 || m != 0 {
		t.Fatalf("refused pack left %d chunks, %d markers", n, m)
	}
}

// After a crash in the middle of a push, reopening the database drops the
// spills of every quarantine that had not committed, and keeps the
// committed ones. It runs on both kv drivers.
func TestSpillSweptAfterCrash(t *testing.T) {
	type driver struct {
		open func() kv.DB
		// flush pushes what the database holds in memory to its files
		// (the worst case for the sweep); crash returns what a crash
		// now could leave.
		flush func(kv.DB) error
		crash func(db kv.DB, rng *rand.Rand, pct int) kv.DB
	}
	fs := vfs.NewCrashableMem()
	drivers := map[string]driver{
		"pebble": {
			open: func() kv.DB {
				db, err := pebblekv.OpenFS("db", fs, nil)
				if err != nil {
					t.Fatal(err)
				}
				return db
			},
			flush: func(db kv.DB) error { return db.(*pebblekv.DB).Flush() },
			crash: func(db kv.DB, rng *rand.Rand, pct int) kv.DB {
				cdb, err := pebblekv.OpenFS("db", fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rng}), nil)
				if err != nil {
					t.Fatalf("reopen: %v", err)
				}
				return cdb
			},
		},
		"mem": {
			open:  func() kv.DB { return memkv.New() },
			flush: func(kv.DB) error { return nil },
			crash: func(db kv.DB, rng *rand.Rand, pct int) kv.DB {
				return db.(*memkv.DB).CrashClone(rng)
			},
		},
	}
	for name, d := range drivers {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			g := newGitRepo(t)
			commits := history(g, 4)
			db := d.open()
			s := spillAll(New(db, Limits{}))
			kept := s.NewQuarantine("kept")
			if _, err := kept.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, "HEAD"))); err != nil {
				t.Fatal(err)
			}
			commitQuarantine(t, kept)
			kept.Close()
			chunks := countKeys(t, db, 's')
			open := s.NewQuarantine("open")
			if _, err := open.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, "HEAD"))); err != nil {
				t.Fatal(err)
			}
			// The worst case for the sweep: the open quarantine's spill
			// reached the disk before the crash.
			if err := d.flush(db); err != nil {
				t.Fatal(err)
			}
			if n := countKeys(t, db, 'S'); n != 1 {
				t.Fatalf("%d spill markers before the crash, want 1", n)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			var crashed []kv.DB
			for _, pct := range []int{0, 50, 100} {
				crashed = append(crashed, d.crash(db, rng, pct))
			}
			db.Close()
			for i, cdb := range crashed {
				cs, err := Open(cdb, Limits{})
				if err != nil {
					t.Fatalf("crash %d: open: %v", i, err)
				}
				if n := countKeys(t, cdb, 'S'); n != 0 {
					t.Fatalf("crash %d: %d spill markers after reopening", i, n)
				}
				if n := countKeys(t, cdb, 's'); n != chunks {
					t.Fatalf("crash %d: %d spill chunks after reopening, want the committed %d", i, n, chunks)
				}
				if _, err := cs.Get(ctx, "kept", commits[3]); err != nil {
					t.Fatalf("crash %d: committed object: %v", i, err)
				}
				cdb.Close()
			}
		})
	}
}

// DeleteRepo deletes the repo's spills with its objects, and only its.
func TestDeleteRepoDropsSpills(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 3)
	s := spillAll(memStore(t, Limits{}))
	for _, repo := range []RepoName{"a", "b"} {
		q := s.NewQuarantine(repo)
		if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, "HEAD"))); err != nil {
			t.Fatal(err)
		}
		commitQuarantine(t, q)
		q.Close()
	}
	both := countKeys(t, s.db, 's')
	if err := s.DeleteRepo(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s.db, 's'); n != both/2 {
		t.Fatalf("%d chunks after deleting one of two equal repos, want %d", n, both/2)
	}
	if _, err := s.Get(ctx, "b", commits[2]); err != nil {
		t.Fatal(err)
	}
}

// spillBounds covers exactly one spill's chunks, the last id included.
func TestSpillBounds(t *testing.T) {
	for _, id := range []uint64{0, 1, 0xff, 1 << 63, ^uint64(0)} {
		lo, hi := spillBounds("r", id)
		first, last := spillChunkKey("r", id, 0), spillChunkKey("r", id, ^uint32(0))
		if bytes.Compare(lo, first) > 0 || bytes.Compare(last, hi) >= 0 {
			t.Errorf("id %x: [%x, %x) misses its chunks", id, lo, hi)
		}
		if id < ^uint64(0) {
			if next := spillChunkKey("r", id+1, 0); bytes.Compare(next, hi) < 0 {
				t.Errorf("id %x: range reaches the next spill", id)
			}
		}
		if other := spillChunkKey("r0", 0, 0); bytes.Compare(other, lo) >= 0 && bytes.Compare(other, hi) < 0 {
			t.Errorf("id %x: range reaches repo r0", id)
		}
	}
}

// Two packs into one quarantine: the second (thin, its bases in the first)
// lands in the same batch, and both commit together; inline or spilled.
func TestTwoPacksOneQuarantine(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 6)
	for _, spill := range []bool{false, true} {
		s := memStore(t, Limits{})
		if spill {
			spillAll(s)
		}
		q := s.NewQuarantine("demo")
		if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, commits[2].String()))); err != nil {
			t.Fatal(err)
		}
		thin := g.packRevs([]string{"--thin"}, commits[5].String(), "^"+commits[2].String())
		if _, err := q.IngestPack(ctx, bytes.NewReader(thin)); err != nil {
			t.Fatalf("spill %v: thin pack on the first: %v", spill, err)
		}
		if err := q.Check(ctx, []Hash{commits[5]}); err != nil {
			t.Fatal(err)
		}
		commitQuarantine(t, q)
		q.Close()
		for h, o := range g.allObjects() {
			got, err := s.Get(ctx, "demo", h)
			if err != nil || !bytes.Equal(got.Data, o.Data) {
				t.Fatalf("spill %v: %s after commit: %v", spill, h, err)
			}
		}
	}
}
