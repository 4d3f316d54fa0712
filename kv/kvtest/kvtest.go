// Package kvtest is the conformance suite of the kv contract. Every driver
// runs it against itself:
//
//	func TestConformance(t *testing.T) { kvtest.Run(t, kvtest.Driver{Open: open, Crash: crash}) }
//
// It checks ordering and bounds of iteration, ErrNotFound, that values are
// copied on write, that a batch is readable through and invisible until it
// commits, all or nothing, that iterators see a consistent view, that
// concurrent writers are safe, and (when the driver can simulate one) that
// a crash keeps synced writes and loses unsynced ones only as a suffix.
package kvtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/weir-dev/weir/kv"
)

// Driver opens databases for the suite.
type Driver struct {
	// Open returns a fresh, empty database; the suite closes it.
	Open func(t *testing.T) kv.DB
	// Crash, if set, returns a database holding what a crash of db at
	// this instant could leave behind (db keeps running). The suite
	// closes it.
	Crash func(t *testing.T, db kv.DB, rng *rand.Rand) kv.DB
}

// Run runs the suite.
func Run(t *testing.T, d Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db kv.DB)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"Iterate", testIterate},
		{"IteratorSnapshot", testIteratorSnapshot},
		{"BatchReadThrough", testBatchReadThrough},
		{"BatchAtomic", testBatchAtomic},
		{"BatchApply", testBatchApply},
		{"ConcurrentWriters", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := d.Open(t)
			defer db.Close()
			tc.fn(t, db)
		})
	}
	t.Run("Crash", func(t *testing.T) {
		if d.Crash == nil {
			t.Skip("driver cannot simulate a crash")
		}
		testCrash(t, d)
	})
}

func get(t *testing.T, r kv.Reader, key string) (string, bool) {
	t.Helper()
	v, c, err := r.Get([]byte(key))
	if errors.Is(err, kv.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	s := string(v)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return s, true
}

func want(t *testing.T, r kv.Reader, key, value string) {
	t.Helper()
	got, ok := get(t, r, key)
	if value == "" && ok {
		t.Fatalf("%q = %q, want absent", key, got)
	}
	if value != "" && got != value {
		t.Fatalf("%q = %q (present %v), want %q", key, got, ok, value)
	}
}

// scan returns "k=v" for every key in [lo, hi), in iteration order.
func scan(t *testing.T, r kv.Reader, lo, hi string) []string {
	t.Helper()
	var l, h []byte
	if lo != "" {
		l = []byte(lo)
	}
	if hi != "" {
		h = []byte(hi)
	}
	it, err := r.NewIter(l, h)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(it.Key())+"="+string(v))
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func same(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

func set(t *testing.T, db kv.DB, kvs ...string) {
	t.Helper()
	for i := 0; i < len(kvs); i += 2 {
		if err := db.Set([]byte(kvs[i]), []byte(kvs[i+1]), kv.NoSync); err != nil {
			t.Fatal(err)
		}
	}
}

func testGetSetDelete(t *testing.T, db kv.DB) {
	want(t, db, "a", "")
	if _, _, err := db.Get([]byte("a")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get of an absent key: %v, want kv.ErrNotFound", err)
	}
	buf := []byte("value-1")
	if err := db.Set([]byte("a"), buf, kv.Sync); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXX") // the database keeps its own copy
	want(t, db, "a", "value-1")
	if err := db.Set([]byte("a"), []byte("value-2"), kv.NoSync); err != nil {
		t.Fatal(err)
	}
	want(t, db, "a", "value-2")
	// An empty value is a present key.
	if err := db.Set([]byte("e"), nil, kv.NoSync); err != nil {
		t.Fatal(err)
	}
	if _, ok := get(t, db, "e"); !ok {
		t.Fatal("a key set to an empty value is absent")
	}
	if err := db.Delete([]byte("a"), kv.Sync); err != nil {
		t.Fatal(err)
	}
	want(t, db, "a", "")
	// Deleting an absent key is not an error.
	if err := db.Delete([]byte("never"), kv.NoSync); err != nil {
		t.Fatal(err)
	}
}

func testIterate(t *testing.T, db kv.DB) {
	set(t, db, "b", "2", "a", "1", "c\x00", "4", "c", "3", "d\xff", "6", "d", "5")
	same(t, "all", scan(t, db, "", ""), "a=1", "b=2", "c=3", "c\x00=4", "d=5", "d\xff=6")
	same(t, "[b, d)", scan(t, db, "b", "d"), "b=2", "c=3", "c\x00=4")
	same(t, "[c, c\\x01)", scan(t, db, "c", "c\x01"), "c=3", "c\x00=4")
	same(t, "[x, y)", scan(t, db, "x", "y"))
	same(t, "prefix d", scan(t, db, "d", string(kv.PrefixEnd([]byte("d")))), "d=5", "d\xff=6")

	it, err := db.NewIter([]byte("a"), []byte("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if !it.Last() || string(it.Key()) != "c\x00" {
		t.Fatalf("Last in [a, d) = %q, want c\\x00", it.Key())
	}
	if !it.SeekGE([]byte("bb")) || string(it.Key()) != "c" {
		t.Fatalf("SeekGE(bb) = %q, want c", it.Key())
	}
	if !it.Next() || string(it.Key()) != "c\x00" {
		t.Fatalf("Next after c = %q", it.Key())
	}
	if it.Next() || it.Valid() {
		t.Fatalf("Next past the upper bound is at %q", it.Key())
	}
	if it.SeekGE([]byte("d")) {
		t.Fatal("SeekGE at the upper bound found a key")
	}
	if !it.SeekGE([]byte("")) || string(it.Key()) != "a" {
		t.Fatalf("SeekGE below the lower bound = %q, want a", it.Key())
	}
	empty, err := db.NewIter([]byte("x"), []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.First() || empty.Last() || empty.Valid() {
		t.Fatal("an empty range has a key")
	}
	empty.Close()

	if got := kv.PrefixEnd([]byte{'a', 0xff}); !bytes.Equal(got, []byte{'b'}) {
		t.Fatalf("PrefixEnd(a\\xff) = %q", got)
	}
	if got := kv.PrefixEnd([]byte{0xff}); got != nil {
		t.Fatalf("PrefixEnd(\\xff) = %q, want nil", got)
	}
}

func testIteratorSnapshot(t *testing.T, db kv.DB) {
	set(t, db, "a", "1", "b", "2")
	it, err := db.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	set(t, db, "a", "changed", "c", "3")
	if err := db.Delete([]byte("b"), kv.NoSync); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ok := it.First(); ok; ok = it.Next() {
		v, _ := it.Value()
		got = append(got, string(it.Key())+"="+string(v))
	}
	same(t, "iterator opened before the writes", got, "a=1", "b=2")
	same(t, "a new iterator", scan(t, db, "", ""), "a=changed", "c=3")
}

func testBatchReadThrough(t *testing.T, db kv.DB) {
	set(t, db, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	b := db.NewBatch()
	defer b.Close()
	if !b.Empty() {
		t.Fatal("a new batch is not empty")
	}
	must(t, b.Set([]byte("a"), []byte("1b")))
	must(t, b.Set([]byte("bb"), []byte("new")))
	must(t, b.Delete([]byte("b")))
	must(t, b.DeleteRange([]byte("c"), []byte("e")))
	must(t, b.Set([]byte("d"), []byte("4b"))) // after the range: it stands
	if b.Empty() {
		t.Fatal("a batch with writes is empty")
	}
	// The batch sees its writes over the database.
	want(t, b, "a", "1b")
	want(t, b, "b", "")
	want(t, b, "bb", "new")
	want(t, b, "c", "")
	want(t, b, "d", "4b")
	want(t, b, "e", "5")
	same(t, "batch scan", scan(t, b, "", ""), "a=1b", "bb=new", "d=4b", "e=5")
	same(t, "batch scan [b, e)", scan(t, b, "b", "e"), "bb=new", "d=4b")
	it, err := b.NewIter([]byte("a"), []byte("e"))
	if err != nil {
		t.Fatal(err)
	}
	if !it.Last() || string(it.Key()) != "d" {
		t.Fatalf("batch Last in [a, e) = %q, want d", it.Key())
	}
	it.Close()
	// And a write to the database under it.
	set(t, db, "f", "6")
	want(t, b, "f", "6")
	// Nobody else sees the batch.
	want(t, db, "a", "1")
	want(t, db, "b", "2")
	want(t, db, "bb", "")
	same(t, "database scan before commit", scan(t, db, "", ""), "a=1", "b=2", "c=3", "d=4", "e=5", "f=6")
	must(t, b.Commit(kv.Sync))
	same(t, "database scan after commit", scan(t, db, "", ""), "a=1b", "bb=new", "d=4b", "e=5", "f=6")
	if err := b.Set([]byte("late"), []byte("x")); err == nil {
		t.Fatal("a committed batch took a write")
	}
	if err := b.Commit(kv.Sync); err == nil {
		t.Fatal("a batch committed twice")
	}
	want(t, db, "late", "")
	must(t, b.Close())
	must(t, b.Close()) // Close is idempotent
	if _, _, err := b.Get([]byte("a")); !errors.Is(err, kv.ErrClosed) {
		t.Fatalf("Get on a closed batch: %v, want kv.ErrClosed", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testBatchAtomic(t *testing.T, db kv.DB) {
	set(t, db, "keep", "1")
	b := db.NewBatch()
	must(t, b.Set([]byte("dropped"), []byte("x")))
	must(t, b.Delete([]byte("keep")))
	must(t, b.Close())
	want(t, db, "dropped", "")
	want(t, db, "keep", "1")

	// Many writes of one batch appear together to a concurrent reader.
	const n = 200
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			it, err := db.NewIter([]byte("p/"), []byte("p0"))
			if err != nil {
				bad = err
				return
			}
			c := 0
			for ok := it.First(); ok; ok = it.Next() {
				c++
			}
			it.Close()
			if c != 0 && c != n {
				bad = fmt.Errorf("a reader saw %d of a batch's %d keys", c, n)
				return
			}
		}
	}()
	b = db.NewBatch()
	for i := 0; i < n; i++ {
		must(t, b.Set([]byte(fmt.Sprintf("p/%04d", i)), []byte("v")))
	}
	must(t, b.Commit(kv.NoSync))
	b.Close()
	b = db.NewBatch()
	must(t, b.DeleteRange([]byte("p/"), []byte("p0")))
	must(t, b.Commit(kv.Sync))
	b.Close()
	close(stop)
	wg.Wait()
	if bad != nil {
		t.Fatal(bad)
	}
	same(t, "after the range delete", scan(t, db, "p/", "p0"))
}

func testBatchApply(t *testing.T, db kv.DB) {
	set(t, db, "a", "1", "b", "2")
	dst, src := db.NewBatch(), db.NewBatch()
	defer dst.Close()
	defer src.Close()
	must(t, dst.Set([]byte("c"), []byte("3")))
	must(t, src.Delete([]byte("a")))
	must(t, src.Set([]byte("c"), []byte("3src")))
	must(t, src.Set([]byte("d"), []byte("4")))
	must(t, dst.Apply(src))
	same(t, "dst after Apply", scan(t, dst, "", ""), "b=2", "c=3src", "d=4")
	same(t, "src after Apply", scan(t, src, "", ""), "b=2", "c=3src", "d=4")
	same(t, "database before commit", scan(t, db, "", ""), "a=1", "b=2")
	must(t, dst.Commit(kv.Sync))
	same(t, "database after commit", scan(t, db, "", ""), "b=2", "c=3src", "d=4")
}

func testConcurrent(t *testing.T, db kv.DB) {
	const writers, rounds = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				b := db.NewBatch()
				k := []byte(fmt.Sprintf("w%d/%03d", w, r))
				if err := b.Set(k, k); err != nil {
					errs <- err
					return
				}
				d := kv.NoSync
				if r%10 == 0 {
					d = kv.Sync
				}
				if err := b.Commit(d); err != nil {
					errs <- err
					return
				}
				b.Close()
				if _, c, err := db.Get(k); err != nil {
					errs <- fmt.Errorf("own write %s not visible: %w", k, err)
					return
				} else {
					c.Close()
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(scan(t, db, "", "")); got != writers*rounds {
		t.Fatalf("%d keys after %d writes", got, writers*rounds)
	}
}

// testCrash writes numbered batches (two keys each, the same round),
// every third one synced, crashes at several points, and checks each
// survivor: both keys of a batch or neither, every synced batch there,
// and the unsynced ones only as a prefix (round r survives only if every
// round before it does).
func testCrash(t *testing.T, d Driver) {
	db := d.Open(t)
	defer db.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	type point struct {
		db     kv.DB
		synced int // the last round committed with Sync before the crash
		last   int // the last round committed before the crash
	}
	var points []point
	synced := 0
	const rounds = 60
	for r := 1; r <= rounds; r++ {
		b := db.NewBatch()
		v := []byte(fmt.Sprint(r))
		must(t, b.Set([]byte(fmt.Sprintf("x/%03d", r)), v))
		must(t, b.Set([]byte(fmt.Sprintf("y/%03d", r)), v))
		dur := kv.NoSync
		if r%3 == 0 {
			dur = kv.Sync
			synced = r
		}
		must(t, b.Commit(dur))
		b.Close()
		if r%7 == 0 || r == rounds {
			points = append(points, point{d.Crash(t, db, rng), synced, r})
		}
	}
	for i, p := range points {
		xs, ys := scan(t, p.db, "x/", "x0"), scan(t, p.db, "y/", "y0")
		if len(xs) != len(ys) {
			t.Fatalf("crash %d: %d x keys, %d y keys: a batch half applied", i, len(xs), len(ys))
		}
		for j, x := range xs {
			if wantX := fmt.Sprintf("x/%03d=%d", j+1, j+1); x != wantX {
				t.Fatalf("crash %d: key %d is %q, want %q: the survivors are not a prefix", i, j, x, wantX)
			}
		}
		if len(xs) < p.synced || len(xs) > p.last {
			t.Fatalf("crash %d: %d rounds survived; synced %d, committed %d", i, len(xs), p.synced, p.last)
		}
		t.Logf("crash %d: %d of %d rounds survived (%d synced)", i, len(xs), p.last, p.synced)
		p.db.Close()
	}
}
