// Package objectstest is the conformance suite for an objects.Store over a
// given kv driver (kv/memkv, kv/pebblekv on an in-memory file system, or on
// disk); every driver runs it:
//
//	func TestConformance(t *testing.T) { objectstest.Run(t, newStore) }
//
// It checks that objects read back byte for byte with git's hashes, that
// Raw streams inflate to the object, that repos are isolated, and the
// quarantine rules: invisible until committed, gone after Close, usable
// while open, concurrent readers safe.
package objectstest

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// Run runs the suite. newStore returns a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) *objects.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *objects.Store)
	}{
		{"PutGetHasRaw", testPutGet},
		{"RepoIsolation", testIsolation},
		{"QuarantineVisibility", testQuarantine},
		{"QuarantineConcurrentReaders", testConcurrent},
		{"QuarantineLargeObjects", testLargeObjects},
		{"DeleteRepo", testDeleteRepo},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

const repo = objects.RepoName("demo")

func testPutGet(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	cases := []struct {
		typ  objects.Type
		data []byte
		want string // git hash-object
	}{
		{plumbing.BlobObject, []byte("hello\n"), "ce013625030ba8dba906f756967f9e9ca394464a"},
		{plumbing.BlobObject, nil, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"},
		{plumbing.TreeObject, nil, "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
		{plumbing.BlobObject, bytes.Repeat([]byte("weir "), 100000), ""},
	}
	for _, c := range cases {
		h, err := s.Put(ctx, repo, c.typ, c.data)
		if err != nil {
			t.Fatal(err)
		}
		if c.want != "" && h.String() != c.want {
			t.Fatalf("Put hash %s, git says %s", h, c.want)
		}
		if h != plumbing.ComputeHash(c.typ, c.data) {
			t.Fatalf("Put hash %s is not the object's hash", h)
		}
		o, err := s.Get(ctx, repo, h)
		if err != nil || o.Type != c.typ || !bytes.Equal(o.Data, c.data) {
			t.Fatalf("Get %s: %v", h, err)
		}
		if ok, err := s.Has(ctx, repo, h); !ok || err != nil {
			t.Fatalf("Has %s = %v, %v", h, ok, err)
		}
		typ, size, z, err := s.Raw(ctx, repo, h)
		if err != nil || typ != c.typ || size != int64(len(c.data)) {
			t.Fatalf("Raw %s = %v %d: %v", h, typ, size, err)
		}
		if typ, size, err := s.Stat(ctx, repo, h); err != nil || typ != c.typ || size != int64(len(c.data)) {
			t.Fatalf("Stat %s = %v %d: %v", h, typ, size, err)
		}
		zr, err := zlib.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("Raw %s does not inflate to the object: %v", h, err)
		}
	}
	var missing objects.Hash
	missing[0] = 1
	if _, err := s.Get(ctx, repo, missing); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if _, _, _, err := s.Raw(ctx, repo, missing); !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("Raw missing: %v", err)
	}
	if ok, err := s.Has(ctx, repo, missing); ok || err != nil {
		t.Fatalf("Has missing = %v, %v", ok, err)
	}
}

func testIsolation(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	// "a" must not see "a/b" nor "ab" (key prefixes).
	h, err := s.Put(ctx, "a/b", plumbing.BlobObject, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []objects.RepoName{"a", "ab", "a/bc"} {
		if ok, _ := s.Has(ctx, r, h); ok {
			t.Fatalf("repo %s sees an object of a/b", r)
		}
	}
}

func testQuarantine(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	q := s.NewQuarantine(repo)
	h, err := q.Put(plumbing.BlobObject, []byte("quarantined"))
	if err != nil {
		t.Fatal(err)
	}
	if o, err := q.Get(ctx, h); err != nil || string(o.Data) != "quarantined" {
		t.Fatalf("quarantine Get: %v", err)
	}
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("quarantined object visible in the store")
	}
	// The quarantine sees the repo too.
	base, _ := s.Put(ctx, repo, plumbing.BlobObject, []byte("in the repo"))
	if ok, _ := q.Has(ctx, base); !ok {
		t.Fatal("quarantine does not see the repo's objects")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("closed quarantine's object visible")
	}
	if _, err := q.Get(ctx, h); !errors.Is(err, objects.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := q.Put(plumbing.BlobObject, []byte("late")); !errors.Is(err, objects.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}

	q2 := s.NewQuarantine(repo)
	defer q2.Close()
	h2, _ := q2.Put(plumbing.BlobObject, []byte("accepted"))
	if err := q2.CommitWith(func(kv.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !q2.Committed() {
		t.Fatal("not marked committed")
	}
	if ok, _ := s.Has(ctx, repo, h2); !ok {
		t.Fatal("committed object not visible")
	}
	if _, err := q2.Put(plumbing.BlobObject, []byte("after commit")); !errors.Is(err, objects.ErrClosed) {
		t.Fatalf("Put after commit: %v", err)
	}
	if err := q2.CommitWith(func(kv.Writer) error { return nil }); err == nil {
		t.Fatal("second commit succeeded")
	}

	// A failing write aborts the commit: nothing becomes visible.
	q3 := s.NewQuarantine(repo)
	defer q3.Close()
	h3, _ := q3.Put(plumbing.BlobObject, []byte("aborted"))
	boom := errors.New("boom")
	if err := q3.CommitWith(func(kv.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("CommitWith = %v", err)
	}
	if ok, _ := s.Has(ctx, repo, h3); ok {
		t.Fatal("aborted commit made an object visible")
	}
}

// testLargeObjects: objects too large for a quarantine's memory (they go
// to a spill) follow the same rules: readable through the quarantine,
// invisible until the commit, byte for byte after it, gone after Close.
func testLargeObjects(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	q := s.NewQuarantine(repo)
	h, err := q.Put(plumbing.BlobObject, big)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := q.Get(ctx, h); err != nil || !bytes.Equal(o.Data, big) {
		t.Fatalf("quarantine Get of a large object: %v", err)
	}
	if typ, size, err := q.Stat(ctx, h); err != nil || typ != plumbing.BlobObject || size != int64(len(big)) {
		t.Fatalf("quarantine Stat = %v %d: %v", typ, size, err)
	}
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("quarantined large object visible in the store")
	}
	q.Close()
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("closed quarantine's large object visible")
	}

	q2 := s.NewQuarantine(repo)
	defer q2.Close()
	h2, err := q2.Put(plumbing.BlobObject, big)
	if err != nil || h2 != h {
		t.Fatalf("Put: %s, %v", h2, err)
	}
	if err := q2.CommitWith(func(kv.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	o, err := s.Get(ctx, repo, h)
	if err != nil || !bytes.Equal(o.Data, big) {
		t.Fatalf("Get of a committed large object: %v", err)
	}
	typ, size, z, err := s.Raw(ctx, repo, h)
	if err != nil || typ != plumbing.BlobObject || size != int64(len(big)) {
		t.Fatalf("Raw = %v %d: %v", typ, size, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Raw of a large object does not inflate to it: %v", err)
	}
	if err := s.DeleteRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("large object survives DeleteRepo")
	}
}

func testConcurrent(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	q := s.NewQuarantine(repo)
	defer q.Close()
	var wg sync.WaitGroup
	hashes := make(chan objects.Hash, 400)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				h, err := q.Put(plumbing.BlobObject, []byte(fmt.Sprintf("%d-%d", w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				hashes <- h
				if _, err := q.Get(ctx, h); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(hashes)
	n := 0
	for h := range hashes {
		if ok, _ := q.Has(ctx, h); !ok {
			t.Fatalf("lost %s", h)
		}
		n++
	}
	if len(q.Ingested()) != n {
		t.Fatalf("Ingested has %d, put %d", len(q.Ingested()), n)
	}
}

func testDeleteRepo(t *testing.T, s *objects.Store) {
	ctx := context.Background()
	h, _ := s.Put(ctx, repo, plumbing.BlobObject, []byte("doomed"))
	keep, _ := s.Put(ctx, "demo2", plumbing.BlobObject, []byte("kept"))
	if err := s.DeleteRepo(ctx, repo); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, repo, h); ok {
		t.Fatal("object survives DeleteRepo")
	}
	if ok, _ := s.Has(ctx, "demo2", keep); !ok {
		t.Fatal("DeleteRepo deleted another repo's object")
	}
}
