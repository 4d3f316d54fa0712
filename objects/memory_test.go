package objects

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"hash/adler32"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/pebblekv"
)

// What these tests show: the memory IngestPack allocates does not grow
// with what a pack describes (a fan of deltas against one base, a deep
// chain, one huge blob, a pack over its limit, a delta that declares a
// huge result), and every delta whose instructions do not produce exactly
// what it declares is refused. Memory is Go's TotalAlloc across the call,
// on an on-disk database (an in-memory one would count its files).

// deltaOps builds git delta instructions.
type deltaOps struct{ b []byte }

func newDeltaOps(src, dst int) *deltaOps {
	d := &deltaOps{}
	d.b = binary.AppendUvarint(d.b, uint64(src))
	d.b = binary.AppendUvarint(d.b, uint64(dst))
	return d
}

// copyFrom copies n bytes (at most 0xffffff) from offset off of the base.
func (d *deltaOps) copyFrom(off, n int) *deltaOps {
	cmd := byte(0x80)
	var args []byte
	for i := 0; i < 4; i++ {
		if c := byte(off >> (8 * i)); c != 0 {
			cmd |= 1 << i
			args = append(args, c)
		}
	}
	for i := 0; i < 3; i++ {
		if c := byte(n >> (8 * i)); c != 0 {
			cmd |= 0x10 << i
			args = append(args, c)
		}
	}
	d.b = append(append(d.b, cmd), args...)
	return d
}

func (d *deltaOps) insert(data []byte) *deltaOps {
	for len(data) > 0 {
		n := min(len(data), 127)
		d.b = append(append(d.b, byte(n)), data[:n]...)
		data = data[n:]
	}
	return d
}

// ofsPrefix encodes the distance back to an ofs-delta's base.
func ofsPrefix(rel int) []byte {
	enc := []byte{byte(rel & 0x7f)}
	for rel >>= 7; rel > 0; rel >>= 7 {
		rel--
		enc = append([]byte{0x80 | byte(rel&0x7f)}, enc...)
	}
	return enc
}

// offset is where the next entry of p starts.
func (p *packWriter) offset() int { return 12 + p.buf.Len() }

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// diskStore opens a Store on an on-disk Pebble in a temp dir.
func diskStore(t testing.TB, lim Limits) *Store {
	t.Helper()
	db, err := pebblekv.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, lim)
}

// allocated returns the bytes the Go heap allocated while f ran.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bombPack is a pack of a 64 KiB random blob and n ofs-deltas against it,
// each declaring a result of copies of the blob, size bytes long.
func bombPack(n, size int) []byte { return bombPackOf(64<<10, n, size) }

func bombPackOf(baseLen, n, size int) []byte {
	base := randomBytes(baseLen, 7)
	d := newDeltaOps(len(base), size)
	for left := size; left > 0; left -= len(base) {
		d.copyFrom(0, min(left, len(base)))
	}
	var pw packWriter
	pw.entry(3, len(base), nil, base)
	for i := 0; i < n; i++ {
		pw.entry(packOfsDelta, len(d.b), ofsPrefix(pw.offset()-12), d.b)
	}
	return pw.bytes()
}

// A fan: 24 deltas against one 8 MiB base, each a distinct 8 MiB object.
// Resolving it used to keep every result (and its deflated copy) in
// memory; now each is streamed into its stored value.
func TestIngestFanOfDeltasBoundedMemory(t *testing.T) {
	const size, fan = 8 << 20, 24
	base := randomBytes(size, 1)
	var pw packWriter
	pw.entry(3, size, nil, base)
	want := []Hash{plumbing.ComputeHash(plumbing.BlobObject, base)}
	for i := 0; i < fan; i++ {
		tail := []byte(strings.Repeat(string(rune('a'+i)), 16))
		d := newDeltaOps(size, size).copyFrom(0, size-16).insert(tail)
		want = append(want, plumbing.ComputeHash(plumbing.BlobObject, append(bytes.Clone(base[:size-16]), tail...)))
		pw.entry(packOfsDelta, len(d.b), ofsPrefix(pw.offset()-12), d.b)
	}
	pack := pw.bytes()
	s := diskStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	var hashes []Hash
	var err error
	alloc := allocated(func() { hashes, err = q.IngestPack(context.Background(), bytes.NewReader(pack)) })
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != len(want) {
		t.Fatalf("%d hashes, want %d", len(hashes), len(want))
	}
	for i := range want {
		if hashes[i] != want[i] {
			t.Fatalf("object %d is %s, want %s", i, hashes[i], want[i])
		}
	}
	// The pack describes 200 MiB; the base (8 MiB), the inline budget
	// (16 MiB) and buffers are what may be allocated.
	t.Logf("fan of %d x %d MiB: %d MiB allocated", fan, size>>20, alloc>>20)
	if alloc > 64<<20 {
		t.Fatalf("ingesting a fan of %d deltas of %d MiB allocated %d MiB; want under 64 MiB", fan, size>>20, alloc>>20)
	}
	o, err := q.Get(context.Background(), want[fan])
	if err != nil || len(o.Data) != size || !bytes.Equal(o.Data[:size-16], base[:size-16]) {
		t.Fatalf("last result reads back wrong: %v", err)
	}
}

// A chain: 24 deltas, each against the one before, 4 MiB each.
func TestIngestDeepChainBoundedMemory(t *testing.T) {
	const size, depth = 4 << 20, 24
	cur := randomBytes(size, 2)
	var pw packWriter
	prev := pw.offset()
	pw.entry(3, size, nil, cur)
	var last Hash
	for i := 0; i < depth; i++ {
		tail := randomBytes(64, uint64(100+i))
		d := newDeltaOps(size, size).copyFrom(64, size-64).insert(tail)
		cur = append(bytes.Clone(cur[64:]), tail...)
		last = plumbing.ComputeHash(plumbing.BlobObject, cur)
		off := pw.offset()
		pw.entry(packOfsDelta, len(d.b), ofsPrefix(off-prev), d.b)
		prev = off
	}
	pack := pw.bytes()
	s := diskStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	var hashes []Hash
	var err error
	alloc := allocated(func() { hashes, err = q.IngestPack(context.Background(), bytes.NewReader(pack)) })
	if err != nil {
		t.Fatal(err)
	}
	if hashes[depth] != last {
		t.Fatalf("chain ends at %s, want %s", hashes[depth], last)
	}
	t.Logf("chain of %d x %d MiB: %d MiB allocated", depth, size>>20, alloc>>20)
	if alloc > 64<<20 {
		t.Fatalf("ingesting a chain of %d deltas of %d MiB allocated %d MiB; want under 64 MiB", depth, size>>20, alloc>>20)
	}
	o, err := q.Get(context.Background(), last)
	if err != nil || !bytes.Equal(o.Data, cur) {
		t.Fatalf("end of the chain reads back wrong: %v", err)
	}
}

// One 96 MiB blob, and the same pack over a 64 MiB MaxPackBytes: neither
// is held in memory (the first is spilled as it arrives; the second is
// refused at the byte that crosses the limit, and its spill dropped).
func TestIngestLargePackBoundedMemory(t *testing.T) {
	const size = 96 << 20
	blob := randomBytes(size, 3)
	var pw packWriter
	pw.entry(3, size, nil, blob)
	pack := pw.bytes()
	for _, tc := range []struct {
		name string
		lim  Limits
		err  error
	}{
		{"accepted", Limits{}, nil},
		{"over MaxPackBytes", Limits{MaxPackBytes: 64 << 20}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := diskStore(t, tc.lim)
			q := s.NewQuarantine("demo")
			var err error
			alloc := allocated(func() { _, err = q.IngestPack(context.Background(), bytes.NewReader(pack)) })
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			t.Logf("%d MiB pack: %d MiB allocated", len(pack)>>20, alloc>>20)
			if alloc > 40<<20 {
				t.Fatalf("ingesting a %d MiB pack allocated %d MiB; want under 40 MiB", len(pack)>>20, alloc>>20)
			}
			if err == nil {
				o, err := q.Get(context.Background(), plumbing.ComputeHash(plumbing.BlobObject, blob))
				if err != nil || !bytes.Equal(o.Data, blob) {
					t.Fatalf("blob reads back wrong: %v", err)
				}
			}
			q.Close()
			if n := countKeys(t, s.db, 's'); n != 0 && tc.err != nil {
				t.Fatalf("refused pack left %d spill chunks", n)
			}
		})
	}
}

// countKeys counts the keys starting with prefix.
func countKeys(t testing.TB, db kv.Reader, prefix byte) int {
	t.Helper()
	it, err := db.NewIter([]byte{prefix}, []byte{prefix + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// errAfterReader returns r's bytes, then err: what follows must not be
// read.
type errAfterReader struct {
	r   io.Reader
	err error
}

func (e *errAfterReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

// A delta declaring a 1 TiB result is refused as soon as its header is
// inflated: nothing is allocated for it and the rest of the pack is not
// read.
func TestIngestDeltaDeclaringHugeResult(t *testing.T) {
	base := randomBytes(4096, 4)
	d := newDeltaOps(len(base), 1<<40).copyFrom(0, len(base))
	var pw packWriter
	pw.entry(3, len(base), nil, base)
	pw.entry(packOfsDelta, len(d.b), ofsPrefix(pw.offset()-12), d.b)
	pack := pw.bytes()
	pack = pack[:len(pack)-20] // no trailer: it must not be needed
	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	boom := errors.New("read past the delta that declares 1 TiB")
	var err error
	alloc := allocated(func() {
		_, err = q.IngestPack(context.Background(), &errAfterReader{r: bytes.NewReader(pack), err: boom})
	})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "declares a 1099511627776-byte result") {
		t.Fatalf("err = %v, want ErrTooLarge naming the declared size", err)
	}
	if alloc > 4<<20 {
		t.Fatalf("refusing it allocated %d bytes", alloc)
	}
	if n := len(q.Ingested()); n != 0 {
		t.Fatalf("refused pack left %d objects", n)
	}
}

// A delta bomb: the deltas' declared results add up past MaxInflatedBytes,
// so the pack is refused while it is read, before any result is built.
func TestIngestDeltaBombRefused(t *testing.T) {
	const size = 16 << 20
	pack := bombPack(8, size) // 64 KiB blob + 8 x 16 MiB
	s := memStore(t, Limits{MaxObjectBytes: size, MaxInflatedBytes: 64 << 20})
	q := s.NewQuarantine("demo")
	defer q.Close()
	var err error
	alloc := allocated(func() { _, err = q.IngestPack(context.Background(), bytes.NewReader(pack)) })
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxInflatedBytes") {
		t.Fatalf("%d-byte bomb: err = %v, want ErrTooLarge naming MaxInflatedBytes", len(pack), err)
	}
	t.Logf("%d-byte pack declaring %d MiB: refused with %d KiB allocated: %v", len(pack), 8*size>>20, alloc>>10, err)
	if alloc > 4<<20 {
		t.Fatalf("refusing the bomb allocated %d MiB", alloc>>20)
	}
	if n := len(q.Ingested()); n != 0 {
		t.Fatalf("refused pack left %d objects", n)
	}
}

// The same bomb under limits it fits is a valid pack: accepted, with
// memory bounded by the budget, not by the 128 MiB it expands to.
func TestIngestDeltaBombWithinLimits(t *testing.T) {
	const size = 16 << 20
	pack := bombPack(8, size)
	s := diskStore(t, Limits{MaxObjectBytes: size})
	q := s.NewQuarantine("demo")
	defer q.Close()
	var err error
	alloc := allocated(func() { _, err = q.IngestPack(context.Background(), bytes.NewReader(pack)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-byte pack expanding to %d MiB: %d MiB allocated", len(pack), 8*size>>20, alloc>>20)
	if alloc > 40<<20 {
		t.Fatalf("ingesting the bomb allocated %d MiB; want under 40 MiB", alloc>>20)
	}
}

// Every delta whose instructions do not produce exactly the result it
// declares, from exactly the base it names, is a malformed pack.
func TestIngestMalformedDeltas(t *testing.T) {
	base := []byte("0123456789abcdef0123456789abcdef")
	n := len(base)
	cases := []struct {
		name  string
		delta []byte
		text  string
	}{
		{"produces less than declared", newDeltaOps(n, 40).copyFrom(0, n).b, "delta produced 32 bytes, declared 40"},
		{"produces more than declared", newDeltaOps(n, 8).copyFrom(0, n).b, "more than its declared 8 bytes"},
		{"insert past declared", newDeltaOps(n, 2).insert([]byte("abc")).b, "more than its declared 2 bytes"},
		{"instructions after the result", newDeltaOps(n, n).copyFrom(0, n).insert([]byte("x")).b, "instructions past its declared 32 bytes"},
		{"copy past the base", newDeltaOps(n, 8).copyFrom(30, 8).b, "delta copy out of bounds"},
		{"wrong base size", newDeltaOps(n+1, n).copyFrom(0, n).b, "delta expects a 33-byte base, base has 32"},
		{"truncated insert", append(newDeltaOps(n, 10).b, 10, 'a', 'b'), "truncated delta insert"},
		{"truncated copy", append(newDeltaOps(n, 10).b, 0x91), "truncated delta copy"},
		{"opcode 0", append(newDeltaOps(n, 10).b, 0), "delta opcode 0"},
		{"truncated header", []byte{0x80}, "truncated delta header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var pw packWriter
			pw.entry(3, len(base), nil, base)
			pw.entry(packOfsDelta, len(tc.delta), ofsPrefix(pw.offset()-12), tc.delta)
			s := memStore(t, Limits{})
			q := s.NewQuarantine("demo")
			defer q.Close()
			_, err := q.IngestPack(context.Background(), bytes.NewReader(pw.bytes()))
			if !errors.Is(err, ErrBadPack) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want ErrBadPack containing %q", err, tc.text)
			}
			if n := len(q.Ingested()); n != 0 {
				t.Fatalf("refused pack left %d objects", n)
			}
		})
	}
}

// A pack claiming more objects than MaxObjects is refused from its header.
func TestIngestTooManyObjects(t *testing.T) {
	var pw packWriter
	for i := 0; i < 11; i++ {
		pw.entry(3, 1, nil, []byte{byte(i)})
	}
	s := memStore(t, Limits{MaxObjects: 10})
	q := s.NewQuarantine("demo")
	defer q.Close()
	_, err := q.IngestPack(context.Background(), bytes.NewReader(pw.bytes()))
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "pack has 11 objects, over MaxObjects (10)") {
		t.Fatalf("err = %v", err)
	}
}

// paddedZlib is a valid zlib stream of data preceded by pad empty stored
// blocks (5 bytes each): what no Git implementation writes.
func paddedZlib(data []byte, pad int) []byte {
	z := []byte{0x78, 0x01}
	for i := 0; i < pad; i++ {
		z = append(z, 0x00, 0x00, 0x00, 0xff, 0xff)
	}
	z = append(z, 0x01, byte(len(data)), byte(len(data)>>8), ^byte(len(data)), ^byte(len(data)>>8))
	z = append(z, data...)
	a := adler32.Checksum(data)
	return binary.BigEndian.AppendUint32(z, a)
}

// An object's zlib stream may not be much longer than the object: a
// 10-byte blob padded to 50 KB is refused (a stored value carries the
// stream as sent, so padding would cost memory and disk, not the object).
// A little padding, as a flushing encoder would add, is fine.
func TestIngestPaddedZlibStream(t *testing.T) {
	data := []byte("ten bytes!")
	for _, tc := range []struct {
		pad int
		err error
	}{{10, nil}, {10000, ErrBadPack}} {
		var body bytes.Buffer
		body.WriteString("PACK")
		binary.Write(&body, binary.BigEndian, uint32(2))
		binary.Write(&body, binary.BigEndian, uint32(1))
		body.WriteByte(3<<4 | byte(len(data)))
		body.Write(paddedZlib(data, tc.pad))
		sum := sha1.Sum(body.Bytes())
		body.Write(sum[:])
		q := memStore(t, Limits{}).NewQuarantine("demo")
		hashes, err := q.IngestPack(context.Background(), bytes.NewReader(body.Bytes()))
		if !errors.Is(err, tc.err) || err != nil && !strings.Contains(err.Error(), "zlib stream much longer than the data") {
			t.Fatalf("pad %d: err = %v, want %v", tc.pad, err, tc.err)
		}
		if err == nil {
			if o, err := q.Get(context.Background(), hashes[0]); err != nil || !bytes.Equal(o.Data, data) {
				t.Fatalf("pad %d: %v", tc.pad, err)
			}
		}
		q.Close()
	}
}
