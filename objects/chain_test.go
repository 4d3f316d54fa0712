package objects

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv"
)

// readsBack checks that a store opened afresh on db reads each hash of
// want in repo as its content.
func readsBack(t *testing.T, db kv.DB, repo RepoName, want map[Hash][]byte) {
	t.Helper()
	for h, data := range want {
		o, err := New(db, Limits{}).Get(context.Background(), repo, h)
		if err != nil || !bytes.Equal(o.Data, data) {
			t.Fatalf("%s: %v", h, err)
		}
	}
}

// storedAs decodes the stored value of h in repo, straight from the
// database.
func storedAs(t *testing.T, db kv.Reader, repo RepoName, h Hash) storedValue {
	t.Helper()
	sv, err := getValue(db, repo, h)
	if err != nil {
		t.Fatalf("value of %s: %v", h, err)
	}
	return sv
}

// chainPack is a pack of a whole blob and n ref-deltas, each on the one
// before; it returns the pack and the contents in chain order.
func chainPack(n int) ([]byte, [][]byte) {
	var pw packWriter
	prev := []byte(strings.Repeat("the root of a long chain of versions\n", 8))
	contents := [][]byte{prev}
	pw.entry(3, len(prev), nil, prev)
	for i := 1; i <= n; i++ {
		d, next := editDelta(prev, len(prev)-4, []byte(fmt.Sprintf("v%03d\n", i)))
		hb := plumbing.ComputeHash(plumbing.BlobObject, prev)
		pw.entry(packRefDelta, len(d), hb[:], d)
		contents = append(contents, next)
		prev = next
	}
	return pw.bytes(), contents
}

// A chain of 120 deltas: each is stored as the delta it came as while the
// chain of delta values is at most maxStoredDepth deep; the next is stored
// whole and starts a new chain. Every object reads back exactly, through
// a store whose cache is empty (a restart), and gc's links name each delta
// value's base.
func TestDeltaValueChainDepth(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	pack, contents := chainPack(120)
	q := s.NewQuarantine("demo")
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	hashes := make([]Hash, len(contents))
	for i, c := range contents {
		hashes[i] = plumbing.ComputeHash(plumbing.BlobObject, c)
	}
	// Readable in the quarantine, deepest first.
	for i := len(contents) - 1; i >= 0; i-- {
		o, err := q.Get(ctx, hashes[i])
		if err != nil || !bytes.Equal(o.Data, contents[i]) {
			t.Fatalf("quarantine, object %d: %v", i, err)
		}
	}
	commitQuarantine(t, q)
	q.Close()

	fresh := New(s.DB(), Limits{})
	for i, h := range hashes {
		sv := storedAs(t, s.DB(), "demo", h)
		want := i % (maxStoredDepth + 1)
		if int(sv.depth) != want || sv.delta != (want > 0) {
			t.Fatalf("object %d: stored delta=%v depth %d, want depth %d", i, sv.delta, sv.depth, want)
		}
		if sv.delta && sv.base != hashes[i-1] {
			t.Fatalf("object %d: base %s, want %s", i, sv.base, hashes[i-1])
		}
	}
	for i := len(contents) - 1; i >= 0; i-- {
		o, err := fresh.Get(ctx, "demo", hashes[i])
		if err != nil || !bytes.Equal(o.Data, contents[i]) {
			t.Fatalf("after restart, object %d: %v", i, err)
		}
		typ, size, z, err := New(s.DB(), Limits{}).Raw(ctx, "demo", hashes[i])
		if err != nil || typ != plumbing.BlobObject || size != int64(len(contents[i])) {
			t.Fatalf("raw %d: %v %v %d", i, err, typ, size)
		}
		if data, err := inflate(z, size); err != nil || !bytes.Equal(data, contents[i]) {
			t.Fatalf("raw %d inflates to something else: %v", i, err)
		}
	}
	// A delta value's delta is its record; gc keeps its base.
	d, ok, err := fresh.Delta(ctx, "demo", hashes[7])
	if err != nil || !ok || d.Base != hashes[6] {
		t.Fatalf("delta of object 7: %+v %v %v", d.Base, ok, err)
	}
	_, links, err := fresh.Links(ctx, "demo", hashes[7])
	if err != nil || len(links) != 1 || links[0] != hashes[6] {
		t.Fatalf("links of object 7: %v %v", links, err)
	}
	if _, links, err := fresh.Links(ctx, "demo", hashes[51]); err != nil || len(links) != 0 {
		t.Fatalf("links of object 51 (whole): %v %v", links, err)
	}
}

// A thin pack's delta on an object the repo holds whole is stored as a
// delta value on it, and one on that on it again (depth 2); both read
// back through a fresh store, from the whole base.
func TestDeltaValueOnWholeRepoBase(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	a := []byte(strings.Repeat("a base the repo holds whole\n", 10))
	ha, err := s.Put(ctx, "demo", plumbing.BlobObject, a)
	if err != nil {
		t.Fatal(err)
	}
	push := func(base []byte, tail string) ([]byte, Hash) {
		t.Helper()
		d, next := editDelta(base, len(base)-1, []byte(tail))
		hb := plumbing.ComputeHash(plumbing.BlobObject, base)
		var pw packWriter
		pw.entry(packRefDelta, len(d), hb[:], d)
		q := s.NewQuarantine("demo")
		defer q.Close()
		if _, err := q.IngestPack(ctx, bytes.NewReader(pw.bytes())); err != nil {
			t.Fatal(err)
		}
		commitQuarantine(t, q)
		return next, plumbing.ComputeHash(plumbing.BlobObject, next)
	}
	b, hb := push(a, "B\n")
	c, hc := push(b, "C\n")
	if sv := storedAs(t, s.DB(), "demo", hb); !sv.delta || sv.depth != 1 || sv.base != ha {
		t.Fatalf("B stored as %+v", sv)
	}
	if sv := storedAs(t, s.DB(), "demo", hc); !sv.delta || sv.depth != 2 || sv.base != hb {
		t.Fatalf("C stored as %+v", sv)
	}
	readsBack(t, s.DB(), "demo", map[Hash][]byte{hc: c, hb: b, ha: a})
}

// A delta value is never written over an object the pack, the quarantine
// or the repo already holds: a pack whose last delta resolves back to its
// own base's base (A, B on A, A again on B) leaves A whole, and a delta
// resolving to an object the repo holds leaves that one whole. Otherwise
// A and B would each be a delta on the other, and neither readable.
func TestDeltaValueNeverOverAnObject(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	a := []byte(strings.Repeat("object A\n", 12))
	x := []byte(strings.Repeat("object X, in the repo\n", 6))
	hx, err := s.Put(ctx, "demo", plumbing.BlobObject, x)
	if err != nil {
		t.Fatal(err)
	}
	ha := plumbing.ComputeHash(plumbing.BlobObject, a)
	dab, b := editDelta(a, len(a)-2, []byte("B\n"))
	hb := plumbing.ComputeHash(plumbing.BlobObject, b)
	dba := insertDelta(len(b), a) // B -> A again
	dbx := insertDelta(len(b), x) // B -> X, which the repo has
	var pw packWriter
	pw.entry(3, len(a), nil, a)
	pw.entry(packRefDelta, len(dab), ha[:], dab)
	pw.entry(packRefDelta, len(dba), hb[:], dba)
	pw.entry(packRefDelta, len(dbx), hb[:], dbx)
	q := s.NewQuarantine("demo")
	if _, err := q.IngestPack(ctx, bytes.NewReader(pw.bytes())); err != nil {
		t.Fatal(err)
	}
	commitQuarantine(t, q)
	q.Close()
	if sv := storedAs(t, s.DB(), "demo", ha); sv.delta {
		t.Fatalf("A was overwritten with a delta value on %s", sv.base)
	}
	if sv := storedAs(t, s.DB(), "demo", hx); sv.delta {
		t.Fatalf("X (in the repo) was overwritten with a delta value on %s", sv.base)
	}
	if sv := storedAs(t, s.DB(), "demo", hb); !sv.delta || sv.base != ha {
		t.Fatalf("B stored as %+v", sv)
	}
	readsBack(t, s.DB(), "demo", map[Hash][]byte{ha: a, hb: b, hx: x})
}

// A store written before delta values existed holds whole values (inline
// and spilled) and delta records; they read as they did. The values are
// written here byte by byte as the format was.
func TestReadStoreWrittenBeforeDeltaValues(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	db := s.DB()
	zlibOf := func(b []byte) []byte {
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	base := []byte(strings.Repeat("an old object, stored inline\n", 5))
	big := []byte(strings.Repeat("an old object, spilled\n", 40))
	hbase := plumbing.ComputeHash(plumbing.BlobObject, base)
	hbig := plumbing.ComputeHash(plumbing.BlobObject, big)
	// Inline: <type:1> <size:uvarint> <zlib>.
	v := append([]byte{3}, binary.AppendUvarint(nil, uint64(len(base)))...)
	if err := db.Set(ObjectKey("demo", hbase), append(v, zlibOf(base)...), kv.NoSync); err != nil {
		t.Fatal(err)
	}
	// Spilled: <0x80|type:1> <size:uvarint> <spill:8> <off:uvarint> <zlen:uvarint>,
	// its zlib stream in chunks under 's' <repo> 0x00 <spill:8> <chunk:4>.
	sp := newSpill(db, "demo")
	zbig := zlibOf(big)
	if _, err := sp.Write([]byte("xxxx")); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write(zbig); err != nil {
		t.Fatal(err)
	}
	if err := sp.sync(); err != nil {
		t.Fatal(err)
	}
	v = append([]byte{0x80 | 3}, binary.AppendUvarint(nil, uint64(len(big)))...)
	v = binary.BigEndian.AppendUint64(v, sp.id)
	v = binary.AppendUvarint(v, 4)
	v = binary.AppendUvarint(v, uint64(len(zbig)))
	if err := db.Set(ObjectKey("demo", hbig), v, kv.NoSync); err != nil {
		t.Fatal(err)
	}
	// A delta record: <base:20> <size:uvarint> <zlib of the instructions>.
	d, _ := editDelta(base, 10, big)
	rec := append(append([]byte(nil), hbase[:]...), binary.AppendUvarint(nil, uint64(len(d)))...)
	if err := db.Set(DeltaKey("demo", hbig), append(rec, zlibOf(d)...), kv.NoSync); err != nil {
		t.Fatal(err)
	}

	for h, want := range map[Hash][]byte{hbase: base, hbig: big} {
		o, err := s.Get(ctx, "demo", h)
		if err != nil || !bytes.Equal(o.Data, want) {
			t.Fatalf("get %s: %v", h, err)
		}
		_, size, z, err := s.Raw(ctx, "demo", h)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := inflate(z, size); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("raw %s: %v", h, err)
		}
		if _, links, err := s.Links(ctx, "demo", h); err != nil || len(links) != 0 {
			t.Fatalf("links %s: %v %v", h, links, err)
		}
	}
	got, ok, err := s.Delta(ctx, "demo", hbig)
	if err != nil || !ok || got.Base != hbase || got.Size != int64(len(d)) {
		t.Fatalf("delta record: %+v %v %v", got, ok, err)
	}
	if _, ok, err := s.Delta(ctx, "demo", hbase); err != nil || ok {
		t.Fatalf("an old whole object without a record has a delta: %v %v", ok, err)
	}
	n := 0
	if err := s.ForEachObject(ctx, "demo", func(o StoredObject) error {
		if o.Type != plumbing.BlobObject {
			t.Errorf("%s listed as %v", o.Hash, o.Type)
		}
		n++
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("listed %d objects: %v", n, err)
	}
}

// A corrupt store (two delta values on each other, or one on a missing
// base) gives an error on read, never a loop.
func TestDeltaValueCorruptChain(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	db := s.DB()
	var ha, hb, hz Hash
	ha[0], hb[0], hz[0] = 0xaa, 0xbb, 0xcc
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(insertDelta(3, []byte("abc")))
	zw.Close()
	val := func(base Hash) []byte {
		v := appendDeltaValueHeader(nil, false, plumbing.BlobObject, 3, 1, base, int64(len(insertDelta(3, []byte("abc")))))
		return append(v, z.Bytes()...)
	}
	for h, base := range map[Hash]Hash{ha: hb, hb: ha, hz: {0xdd}} {
		if err := db.Set(ObjectKey("demo", h), val(base), kv.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Get(ctx, "demo", ha); !errors.Is(err, ErrBadObject) || !strings.Contains(err.Error(), "chain") {
		t.Fatalf("a cycle of delta values: %v", err)
	}
	if _, err := s.Get(ctx, "demo", hz); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a delta value on a missing base: %v", err)
	}
	if _, _, _, err := s.Raw(ctx, "demo", ha); err == nil {
		t.Fatal("raw of a cycle read")
	}
}

// A tree that arrives as a delta on a good tree, and names .git, is
// refused by Check with git fsck's id, from the check made at ingest
// (Check does not read it back); the good tree, whole in the pack, was
// checked at ingest too, and a blob never is.
func TestCheckAtIngest(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	blob := []byte("content\n")
	hblob := plumbing.ComputeHash(plumbing.BlobObject, blob)
	good := append([]byte("100644 a\x00"), hblob[:]...)
	bad := append([]byte("100644 .git\x00"), hblob[:]...)
	hgood := plumbing.ComputeHash(plumbing.TreeObject, good)
	hbad := plumbing.ComputeHash(plumbing.TreeObject, bad)
	var pw packWriter
	pw.entry(3, len(blob), nil, blob)
	pw.entry(2, len(good), nil, good)
	d := insertDelta(len(good), bad)
	pw.entry(packRefDelta, len(d), hgood[:], d)
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pw.bytes())); err != nil {
		t.Fatal(err)
	}
	if _, ok := q.checked[hgood]; !ok {
		t.Fatal("the whole tree was not checked at ingest")
	}
	if c, ok := q.checked[hbad]; !ok || c.err == nil {
		t.Fatalf("the tree resolved from a delta: checked %v, %v", ok, c.err)
	}
	if _, ok := q.checked[hblob]; ok {
		t.Fatal("a blob was checked at ingest")
	}
	var ce *CheckError
	if err := q.Check(ctx, []Hash{hbad}); !errors.As(err, &ce) || ce.Check != "hasDotgit" || ce.Object != hbad {
		t.Fatalf("check: %v", err)
	}
	if err := q.Check(ctx, []Hash{hgood}); !errors.As(err, &ce) || ce.Check != "hasDotgit" {
		t.Fatalf("check of every ingested object, tip the good tree: %v", err)
	}
}

// A delta whose zlib stream is over maxDeltaValue (here 100 KiB of random
// bytes inserted) is resolved and stored whole, so reading a chain never
// holds more than maxStoredDepth small deltas.
func TestDeltaValueLargeDeltaStoredWhole(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	base := []byte(strings.Repeat("base\n", 20))
	noise := make([]byte, 100<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	d, target := editDelta(base, len(base), noise)
	hb := plumbing.ComputeHash(plumbing.BlobObject, base)
	var pw packWriter
	pw.entry(3, len(base), nil, base)
	pw.entry(packRefDelta, len(d), hb[:], d)
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pw.bytes())); err != nil {
		t.Fatal(err)
	}
	commitQuarantine(t, q)
	h := plumbing.ComputeHash(plumbing.BlobObject, target)
	if sv := storedAs(t, s.DB(), "demo", h); sv.delta {
		t.Fatalf("a %d-byte delta stored as a delta value", len(d))
	}
	readsBack(t, s.DB(), "demo", map[Hash][]byte{h: target})
}
