package objects

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	kzlib "github.com/klauspost/compress/zlib"
	"github.com/weir-dev/weir/kv"
)

// Pack ingestion errors. Every error IngestPack returns wraps one of them
// (or is the context's, or a storage failure).
var (
	// ErrBadPack is a malformed pack: bad header, entry, zlib stream,
	// delta, or trailing checksum.
	ErrBadPack = errors.New("objects: malformed pack")
	// ErrTooLarge is a pack or an object over Limits.
	ErrTooLarge = errors.New("objects: too large")
)

// Pack entry types (Documentation/gitformat-pack.txt).
const (
	packOfsDelta = 6
	packRefDelta = 7
)

// Pack ingestion, and where its memory goes.
//
// Pass 1 reads the pack once, from the wire, entry by entry, and keeps no
// entry's content: a non-delta entry is hashed while it is inflated and its
// zlib stream goes, as it arrives, into the stored value (kept in the
// ingest's batch while the inline budget lasts, else appended to the
// objects spill); a delta entry's zlib stream is kept (in memory up to the
// delta budget, else in a deltas spill) and only its header is decoded, so
// the size it declares is checked against MaxObjectBytes and added to the
// pack's inflated total (MaxInflatedBytes) before anything is built from
// it. The pack limit, the entry count and every size are checked as the
// bytes arrive, so an oversized pack is refused at the byte that crosses a
// limit.
//
// Pass 2 resolves deltas base by base, depth first, on up to
// resolveWorkers goroutines (see resolve): the pack's bases go across the
// workers, then each level of their children. A base is read whole
// (copies may come from anywhere in it) under the Store's shared
// MaxBaseMemory budget; each of its deltas is applied as a stream and its
// result hashed. A result over inlineObject is deflated (at zlib's
// fastest level, with klauspost/compress) straight into the spill, never
// held whole; a smaller one is built in the worker's buffer, then stored
// as the delta it came as (a delta value, chain.go: no deflate at all)
// when storeDeltaValue allows, else deflated from that buffer. A result is kept only if it is itself a
// base, small enough for the per-push base cache. A base that was
// evicted, or did not fit, is read again from the batch or the spill. So
// a fan of deltas against one base, or a chain of any depth, holds per
// worker one base and one result, and the cache, not every result.
//
//	memory of one IngestPack = inline budget + delta budget + base cache
//	                           + delta records budget (16 MiB: the deltas kept
//	                             for upload-pack, in the batch; delta.go)
//	                           + ~120 bytes per entry
//	                           + the checks of commits, trees and tags made
//	                             at ingest (up to 32 MiB; precheck.go)
//	                           + per worker: one base (shared budget),
//	                             one small result (<= inlineObject) deflated
//
// The ingest's batch and spills become the quarantine's only when the whole
// pack resolved; on any error both are dropped, so a refused pack leaves no
// trace.

// packReader reads a pack stream byte-exactly (it is an io.ByteReader, so
// compress/flate never reads past the end of a zlib stream), counts bytes
// against the pack limit, hashes everything it returns for the trailing
// checksum, and can copy the bytes of one zlib stream to a capture writer.
type packReader struct {
	r       *bufio.Reader
	off     int64 // bytes consumed so far
	limit   int64
	sum     hash.Hash
	pend    []byte // consumed but not yet hashed / captured
	capture io.Writer
	err     error // a capture write failed; sticky
	// zlimit, when set, is the pack offset the current zlib stream may
	// not reach (see maxZlibLen).
	zlimit int64
}

// maxZlibLen bounds the zlib stream of an entry that inflates to n bytes.
// Deflate adds 5 bytes per stored block of up to 64 KiB, and git, libgit2,
// JGit, dulwich and go-git never flush mid-stream; only a hostile stream
// pads its data (with empty blocks, say), and stored whole it would cost
// what the padding costs, not what the object is.
func maxZlibLen(n int64) int64 { return n + n/16 + 4096 }

// errZlibTooLong is a zlib stream past maxZlibLen.
var errZlibTooLong = errors.New("zlib stream much longer than the data it inflates to")

func newPackReader(r io.Reader, limit int64) *packReader {
	return &packReader{
		r:     bufio.NewReaderSize(r, 64<<10),
		limit: limit,
		sum:   sha1.New(),
		pend:  make([]byte, 0, 8<<10),
	}
}

func (p *packReader) flush() error {
	if len(p.pend) == 0 || p.err != nil {
		p.pend = p.pend[:0]
		return p.err
	}
	p.sum.Write(p.pend)
	if p.capture != nil {
		if _, err := p.capture.Write(p.pend); err != nil {
			p.err = err
		}
	}
	p.pend = p.pend[:0]
	return p.err
}

func (p *packReader) tooLarge() error {
	return fmt.Errorf("%w: pack exceeds MaxPackBytes (%d bytes)", ErrTooLarge, p.limit)
}

// ReadByte implements io.ByteReader.
func (p *packReader) ReadByte() (byte, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.off >= p.limit {
		return 0, p.tooLarge()
	}
	if p.zlimit > 0 && p.off >= p.zlimit {
		return 0, errZlibTooLong
	}
	b, err := p.r.ReadByte()
	if err != nil {
		return 0, err
	}
	p.off++
	if len(p.pend) == cap(p.pend) {
		if err := p.flush(); err != nil {
			return 0, err
		}
	}
	p.pend = append(p.pend, b)
	return b, nil
}

// Read implements io.Reader.
func (p *packReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.off >= p.limit {
		return 0, p.tooLarge()
	}
	if int64(len(b)) > p.limit-p.off {
		b = b[:p.limit-p.off]
	}
	if p.zlimit > 0 {
		if p.off >= p.zlimit {
			return 0, errZlibTooLong
		}
		if int64(len(b)) > p.zlimit-p.off {
			b = b[:p.zlimit-p.off]
		}
	}
	n, err := p.r.Read(b)
	p.off += int64(n)
	if ferr := p.flush(); ferr != nil {
		return 0, ferr
	}
	p.sum.Write(b[:n])
	if p.capture != nil && n > 0 {
		if _, werr := p.capture.Write(b[:n]); werr != nil {
			p.err = werr
			return 0, werr
		}
	}
	return n, err
}

// packEntry is one pack entry: about 120 bytes, whatever the entry's size.
type packEntry struct {
	off  int64 // offset in the pack
	hash Hash  // once known (deltas: once resolved)
	size int64 // inflated size of the entry: the object, or the delta's instructions
	kind byte  // pack entry type: 1-4, 6 or 7
	typ  Type  // object type once known (deltas: once resolved)
	done bool
	// depth is the length of the object's chain of delta values (0: it
	// is stored whole; chain.go).
	depth uint8
	// Deltas only.
	base     int32 // ofs-delta: index of the base entry
	baseHash Hash  // ref-delta: hash of the base
	srcSize  int64 // base size the delta expects
	dstSize  int64 // result size the delta declares
	raw      []byte
	rawOff   int64 // when raw is nil: where the zlib stream is in the deltas spill
	rawLen   int64
}

// ingest is one IngestPack in progress.
type ingest struct {
	ctx    context.Context
	q      *Quarantine
	lim    Limits
	mem    memBudget
	nb     kv.Batch // readable over the database: this pack's stored values
	objs   *spill   // stored values past the inline budget
	deltas *spill   // delta instructions past the delta budget

	entries    []packEntry
	inflated   int64 // sum of the inflated sizes declared so far
	inlineUsed int64 // bytes of values in nb
	deltaUsed  int64 // bytes of delta streams in memory
	recorded   int64 // bytes of delta records in nb

	// checked holds the checks of commits, trees and tags made as they
	// were ingested (precheck.go), within checkedBytes.
	checked      map[Hash]checked
	checkedBytes int64
	scratch      []byte // pass 1: the content of the entry being checked

	// written holds every object this ingest stored, so that a delta
	// value is never written over one (a map: the batch's own lookups
	// are slow).
	written map[Hash]struct{}

	// qUsed: the quarantine held objects before this pack (earlier
	// packs, Put), so they are looked up there too.
	qUsed bool

	value []byte    // scratch: the inline value being captured
	vs    valueSink // reused per value
	ds    deltaSink // reused per delta
	cache baseCache

	// mu guards, in pass 2, whatever its workers share: nb, objs, cache,
	// inlineUsed, recorded, value and vs (see resolve).
	mu sync.Mutex
}

func newIngest(ctx context.Context, q *Quarantine) *ingest {
	s := q.store
	in := &ingest{
		ctx:    ctx,
		q:      q,
		lim:    s.limits,
		mem:    s.mem,
		nb:     s.db.NewBatch(),
		objs:   newSpill(s.db, q.repo),
		deltas: newSpill(s.db, q.repo),
	}
	in.cache = baseCache{budget: in.mem.cache, items: map[int32][]byte{}}
	in.written = make(map[Hash]struct{})
	q.mu.RLock()
	in.qUsed = len(q.ingested) > 0 || !q.batch.Empty()
	q.mu.RUnlock()
	return in
}

// close releases whatever was not handed to the quarantine.
func (in *ingest) close() {
	if in.nb != nil {
		in.nb.Close()
		in.nb = nil
	}
	if in.objs != nil {
		_ = in.objs.drop()
		in.objs = nil
	}
	_ = in.deltas.drop()
}

func (in *ingest) bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadPack}, args...)...)
}

// charge adds n declared inflated bytes to the pack's total.
func (in *ingest) charge(n int64, i uint32, off int64) error {
	in.inflated += n
	if in.inflated > in.lim.MaxInflatedBytes {
		return fmt.Errorf("%w: the pack's objects inflate to more than MaxInflatedBytes (%d bytes) by entry %d at offset %d; push fewer or smaller objects at once",
			ErrTooLarge, in.lim.MaxInflatedBytes, i, off)
	}
	return nil
}

// entryAt returns the index of the entry at pack offset off, or -1.
func (in *ingest) entryAt(off int64) int {
	i := sort.Search(len(in.entries), func(i int) bool { return in.entries[i].off >= off })
	if i < len(in.entries) && in.entries[i].off == off {
		return i
	}
	return -1
}

// parse is pass 1: it reads the whole pack stream and verifies its
// trailing SHA-1. It reads exactly the pack and nothing after it.
func (in *ingest) parse(r io.Reader) error {
	lim := in.lim
	pr := newPackReader(r, lim.MaxPackBytes)
	wrapRead := func(what string, err error) error {
		if errors.Is(err, ErrTooLarge) || pr.err != nil && errors.Is(err, pr.err) {
			return err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return in.bad("%s: %v", what, err)
	}
	var hdr [12]byte
	if _, err := io.ReadFull(pr, hdr[:]); err != nil {
		return wrapRead("header", err)
	}
	if string(hdr[:4]) != "PACK" {
		return in.bad("no PACK signature")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return in.bad("unsupported version %d", v)
	}
	count := binary.BigEndian.Uint32(hdr[8:12])
	// Every entry takes at least 2 bytes; refuse counts the limits cannot
	// hold before allocating for them.
	if int64(count) > lim.MaxObjects {
		return fmt.Errorf("%w: pack has %d objects, over MaxObjects (%d); push fewer objects at once", ErrTooLarge, count, lim.MaxObjects)
	}
	if int64(count) > lim.MaxPackBytes/2 {
		return fmt.Errorf("%w: pack claims %d objects, more than MaxPackBytes (%d bytes) can hold", ErrTooLarge, count, lim.MaxPackBytes)
	}
	in.entries = make([]packEntry, 0, min(count, 4096))
	var zr io.ReadCloser
	buf := make([]byte, 32<<10)
	for i := uint32(0); i < count; i++ {
		if i%1024 == 0 {
			if err := in.ctx.Err(); err != nil {
				return err
			}
		}
		e := packEntry{off: pr.off, base: -1}
		c, err := pr.ReadByte()
		if err != nil {
			return wrapRead(fmt.Sprintf("entry %d header", i), err)
		}
		e.kind = (c >> 4) & 7
		size := uint64(c & 0x0f)
		shift := uint(4)
		for c&0x80 != 0 {
			if c, err = pr.ReadByte(); err != nil {
				return wrapRead(fmt.Sprintf("entry %d header", i), err)
			}
			if shift > 56 {
				return in.bad("entry %d: size overflows", i)
			}
			size |= uint64(c&0x7f) << shift
			shift += 7
		}
		if size > uint64(lim.MaxObjectBytes) {
			return fmt.Errorf("%w: entry %d at offset %d is %d bytes, over MaxObjectBytes (%d)", ErrTooLarge, i, e.off, size, lim.MaxObjectBytes)
		}
		e.size = int64(size)
		switch e.kind {
		case 1, 2, 3, 4:
			e.typ = Type(e.kind)
			if err := in.charge(e.size, i, e.off); err != nil {
				return err
			}
		case packOfsDelta:
			c, err := pr.ReadByte()
			if err != nil {
				return wrapRead(fmt.Sprintf("entry %d base offset", i), err)
			}
			rel := uint64(c & 0x7f)
			for c&0x80 != 0 {
				if c, err = pr.ReadByte(); err != nil {
					return wrapRead(fmt.Sprintf("entry %d base offset", i), err)
				}
				if rel >= 1<<56 {
					return in.bad("entry %d: base offset overflows", i)
				}
				rel = ((rel + 1) << 7) | uint64(c&0x7f)
			}
			if rel == 0 || rel > uint64(e.off) {
				return in.bad("entry %d: ofs-delta base outside the pack", i)
			}
			b := in.entryAt(e.off - int64(rel))
			if b < 0 {
				return in.bad("entry %d: ofs-delta base at %d is not an entry", i, e.off-int64(rel))
			}
			e.base = int32(b)
		case packRefDelta:
			if _, err := io.ReadFull(pr, e.baseHash[:]); err != nil {
				return wrapRead(fmt.Sprintf("entry %d base hash", i), err)
			}
		default:
			return in.bad("entry %d: invalid type %d", i, e.kind)
		}

		// The zlib stream. A non-delta entry's goes into its stored value
		// as it arrives and is hashed while inflating; a delta's is kept
		// for pass 2, and only its header is decoded.
		if err := pr.flush(); err != nil {
			return err
		}
		var hasher plumbing.Hasher
		var dh deltaHeader
		keepContent := e.kind != 3 && e.kind <= 4 && e.size <= maxPrecheckObject && in.checkedBytes < maxKeptLinkBytes
		in.scratch = in.scratch[:0]
		if e.kind <= 4 {
			in.startValue(e.typ, e.size)
			pr.capture = &in.vs
			hasher = plumbing.NewHasher(e.typ, e.size)
		} else {
			in.startDelta()
			pr.capture = &in.ds
		}
		pr.zlimit = pr.off + maxZlibLen(e.size)
		if zr == nil {
			zr, err = kzlib.NewReader(pr)
		} else {
			err = zr.(kzlib.Resetter).Reset(pr, nil)
		}
		if err != nil {
			pr.capture, pr.zlimit = nil, 0
			return wrapRead(fmt.Sprintf("entry %d zlib header", i), err)
		}
		var n int64
		for {
			m, rerr := zr.Read(buf)
			n += int64(m)
			if n > e.size {
				pr.capture = nil
				return in.bad("entry %d: inflates to more than its declared %d bytes", i, e.size)
			}
			if e.kind <= 4 {
				hasher.Write(buf[:m])
				if keepContent {
					in.scratch = append(in.scratch, buf[:m]...)
				}
			} else if !dh.done {
				if err := dh.feed(buf[:m]); err != nil {
					pr.capture = nil
					return in.bad("entry %d at offset %d: %v", i, e.off, err)
				}
				if dh.done {
					if dh.dst > uint64(lim.MaxObjectBytes) {
						pr.capture = nil
						return fmt.Errorf("%w: entry %d at offset %d: delta declares a %d-byte result, over MaxObjectBytes (%d)",
							ErrTooLarge, i, e.off, dh.dst, lim.MaxObjectBytes)
					}
					if err := in.charge(int64(dh.dst), i, e.off); err != nil {
						pr.capture = nil
						return err
					}
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				pr.capture = nil
				return wrapRead(fmt.Sprintf("entry %d zlib data", i), rerr)
			}
		}
		ferr := pr.flush()
		pr.capture, pr.zlimit = nil, 0
		if ferr != nil {
			return ferr
		}
		if n != e.size {
			return in.bad("entry %d: inflates to %d bytes, header says %d", i, n, e.size)
		}
		if e.kind <= 4 {
			e.hash = hasher.Sum()
			e.done = true
			if err := in.finishValue(e.hash); err != nil {
				return err
			}
			if keepContent {
				c, n := precheck(e.hash, e.typ, in.scratch)
				in.addChecked(e.hash, c, n) // pass 1 is one goroutine
			}
		} else {
			if !dh.done {
				return in.bad("entry %d at offset %d: truncated delta header", i, e.off)
			}
			e.srcSize, e.dstSize = int64(dh.src), int64(dh.dst)
			e.raw, e.rawOff, e.rawLen = in.ds.finish()
		}
		in.entries = append(in.entries, e)
	}
	if err := pr.flush(); err != nil {
		return err
	}
	want := pr.sum.Sum(nil)
	var got [20]byte
	if _, err := io.ReadFull(pr.r, got[:]); err != nil {
		return wrapRead("trailing checksum", err)
	}
	if !bytes.Equal(want, got[:]) {
		return in.bad("trailing checksum mismatch: pack says %x, content hashes to %x", got, want)
	}
	if err := in.deltas.sync(); err != nil {
		return err
	}
	return in.objs.sync()
}

// deltaHeader decodes the two sizes at the head of a delta (little-endian
// base-128) from the inflated bytes as they come.
type deltaHeader struct {
	buf      [2 * binary.MaxVarintLen64]byte
	n        int
	src, dst uint64
	done     bool
}

func (d *deltaHeader) feed(p []byte) error {
	c := copy(d.buf[d.n:], p)
	d.n += c
	src, w1 := binary.Uvarint(d.buf[:d.n])
	if w1 < 0 {
		return errors.New("delta size overflows")
	}
	if w1 == 0 {
		if d.n == len(d.buf) {
			return errors.New("delta size overflows")
		}
		return nil
	}
	dst, w2 := binary.Uvarint(d.buf[w1:d.n])
	if w2 < 0 || w2 == 0 && d.n == len(d.buf) {
		return errors.New("delta size overflows")
	}
	if w2 == 0 {
		return nil
	}
	d.src, d.dst, d.done = src, dst, true
	return nil
}

// valueSink receives one stored value's zlib stream: in the ingest's
// scratch value while it fits the inline budget, else in the objects spill
// (what was captured so far moves there first).
type valueSink struct {
	in      *ingest
	typ     Type
	size    int64
	hdr     int   // length of the value header in in.value
	limit   int64 // most bytes of in.value
	spilled bool
	start   int64 // offset of the zlib stream in the objects spill
}

func (in *ingest) startValue(typ Type, size int64) {
	in.value = appendValueHeader(in.value[:0], typ, size)
	limit := int64(0)
	if size <= in.mem.inlineObject {
		limit = min(in.mem.inlineObject, in.mem.inline-in.inlineUsed)
	}
	in.vs = valueSink{in: in, typ: typ, size: size, hdr: len(in.value), limit: limit}
}

func (s *valueSink) Write(p []byte) (int, error) {
	in := s.in
	if !s.spilled {
		if int64(len(in.value)+len(p)) <= s.limit {
			in.value = append(in.value, p...)
			return len(p), nil
		}
		s.spilled = true
		s.start = in.objs.size
		if _, err := in.objs.Write(in.value[s.hdr:]); err != nil {
			return 0, err
		}
	}
	return in.objs.Write(p)
}

// finishValue stores the captured value as object h of the pack.
func (in *ingest) finishValue(h Hash) error {
	s := &in.vs
	key := ObjectKey(in.q.repo, h)
	in.written[h] = struct{}{}
	var err error
	if !s.spilled {
		err = in.nb.Set(key, in.value)
		in.inlineUsed += int64(len(in.value))
	} else {
		err = in.nb.Set(key, encodeSpilled(s.typ, s.size, in.objs.id, s.start, in.objs.size-s.start))
	}
	if err != nil {
		return fmt.Errorf("objects: quarantine write: %w", err)
	}
	return nil
}

// deltaSink keeps one delta's zlib stream until pass 2: in memory while
// the delta budget lasts, else in the deltas spill.
type deltaSink struct {
	in      *ingest
	buf     []byte
	spilled bool
	start   int64
}

func (in *ingest) startDelta() { in.ds = deltaSink{in: in} }

func (s *deltaSink) Write(p []byte) (int, error) {
	in := s.in
	if !s.spilled {
		if in.deltaUsed+int64(len(s.buf)+len(p)) <= in.mem.deltas {
			s.buf = append(s.buf, p...)
			return len(p), nil
		}
		s.spilled = true
		s.start = in.deltas.size
		if _, err := in.deltas.Write(s.buf); err != nil {
			return 0, err
		}
		s.buf = nil
	}
	return in.deltas.Write(p)
}

// finish returns where the stream is: in memory, or at off, n in the
// deltas spill.
func (s *deltaSink) finish() (mem []byte, off, n int64) {
	if !s.spilled {
		s.in.deltaUsed += int64(len(s.buf))
		return s.buf, 0, 0
	}
	return nil, s.start, s.in.deltas.size - s.start
}

// baseCache holds resolved objects that are bases still to be processed,
// by entry index, within a byte budget, evicting the oldest first. Freed
// buffers are kept for reuse (at most budget bytes of them).
type baseCache struct {
	budget int64
	used   int64
	items  map[int32][]byte
	order  []int32 // insertion order; stale indexes are skipped
	free   [][]byte
	freed  int64
}

// take removes and returns the cached content of entry i.
func (c *baseCache) take(i int32) ([]byte, bool) {
	b, ok := c.items[i]
	if ok {
		delete(c.items, i)
		c.used -= int64(len(b))
	}
	return b, ok
}

// put caches b as the content of entry i if it fits, evicting older items.
func (c *baseCache) put(i int32, b []byte) {
	if int64(len(b)) > c.budget {
		c.release(b)
		return
	}
	for c.used+int64(len(b)) > c.budget && len(c.order) > 0 {
		old := c.order[0]
		c.order = c.order[1:]
		if ob, ok := c.take(old); ok {
			c.release(ob)
		}
	}
	c.items[i] = b
	c.used += int64(len(b))
	c.order = append(c.order, i)
}

// buf returns a buffer of length n, reused if one is free.
func (c *baseCache) buf(n int64) []byte {
	for j, b := range c.free {
		if int64(cap(b)) >= n {
			c.free = append(c.free[:j], c.free[j+1:]...)
			c.freed -= int64(cap(b))
			return b[:n]
		}
	}
	return make([]byte, n)
}

// release hands b back for reuse; buffers past the budget go to the
// garbage collector.
func (c *baseCache) release(b []byte) {
	if b == nil || int64(cap(b)) > c.budget {
		return
	}
	for c.freed+int64(cap(b)) > c.budget && len(c.free) > 0 {
		c.freed -= int64(cap(c.free[0]))
		c.free = c.free[1:]
	}
	if c.freed+int64(cap(b)) <= c.budget {
		c.free = append(c.free, b[:0])
		c.freed += int64(cap(b))
	}
}

// baseItem is a resolved object whose deltas are still to be applied.
type baseItem struct {
	idx   int32 // entry index; -1 for a base from outside the pack
	h     Hash
	typ   Type
	depth uint8 // of its chain of delta values
}

// resolve is pass 2: it gives every delta entry its type, hash and stored
// value.
//
// Deltas are resolved base by base, by up to resolveWorkers goroutines. A
// work item is a resolved object some deltas wait on; a worker takes one,
// loads it (from the base cache, or read again from the batch, the spill
// or the repo), applies every delta against it, and pushes those results
// that are bases in turn. So the pack's roots (its non-delta bases) go
// across the workers first, then each level of their children, and a
// chain is resolved in order. The stack is last in, first out, so each
// worker goes depth first, as one did before: what is in memory at once
// is per worker one base, one result and one deflated small object, plus
// the shared base cache.
//
// Everything shared is under in.mu: the batch, the objects spill, the
// base cache, the ref-delta waiting lists, the budgets' counters and the
// stack. Each entry is written only by the worker that resolves it (ofs
// children belong to one base; a ref-delta's waiting list is taken whole,
// under the lock, by one worker), and read by the next only after the
// lock hands its item over. A result larger than inlineObject is
// deflated straight into the spill with the lock held, so a large object
// is never held whole (memory_test.go); a smaller one is deflated into
// the worker's own buffer and written under the lock.
func (in *ingest) resolve() error {
	n := len(in.entries)
	// Children: ofs-deltas by base entry (kidStart/kids), ref-deltas by
	// base hash.
	kidStart := make([]int32, n+1)
	refKids := make(map[Hash][]int32)
	nDeltas := 0
	for i := range in.entries {
		e := &in.entries[i]
		switch e.kind {
		case packOfsDelta:
			kidStart[e.base+1]++
			nDeltas++
		case packRefDelta:
			refKids[e.baseHash] = append(refKids[e.baseHash], int32(i))
			nDeltas++
		}
	}
	if nDeltas == 0 {
		return nil
	}
	for i := 1; i <= n; i++ {
		kidStart[i] += kidStart[i-1]
	}
	kids := make([]int32, kidStart[n])
	fill := append([]int32(nil), kidStart[:n]...)
	for i := range in.entries {
		if e := &in.entries[i]; e.kind == packOfsDelta {
			kids[fill[e.base]] = int32(i)
			fill[e.base]++
		}
	}
	fill = nil
	rs := &resolveState{in: in, kidStart: kidStart, kids: kids, refKids: refKids}
	rs.cond = sync.NewCond(&in.mu)

	// Roots: non-delta entries that some delta waits on.
	var roots []baseItem
	for i := range in.entries {
		e := &in.entries[i]
		if e.kind > 4 || !rs.hasKids(int32(i), e.hash) {
			continue
		}
		roots = append(roots, baseItem{idx: int32(i), h: e.hash, typ: e.typ})
	}
	if err := rs.drain(roots); err != nil {
		return err
	}
	// Thin pack: bases the sender assumed we have. A waiting hash may also
	// be an object of this pack that only resolves once some other outside
	// base is in, so go round until nothing more resolves.
	for rs.resolved < nDeltas {
		waiting := make([]Hash, 0, len(rs.refKids))
		for h := range rs.refKids {
			waiting = append(waiting, h)
		}
		sort.Slice(waiting, func(i, j int) bool { return bytes.Compare(waiting[i][:], waiting[j][:]) < 0 })
		roots = roots[:0]
		for _, h := range waiting {
			sv, err := in.q.value(h)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			roots = append(roots, baseItem{idx: -1, h: h, typ: sv.typ, depth: sv.depth})
		}
		if len(roots) == 0 {
			break
		}
		if err := rs.drain(roots); err != nil {
			return err
		}
	}
	if rs.resolved < nDeltas && len(rs.refKids) > 0 {
		var missing []Hash
		for h := range rs.refKids {
			missing = append(missing, h)
		}
		sort.Slice(missing, func(i, j int) bool { return bytes.Compare(missing[i][:], missing[j][:]) < 0 })
		names := make([]string, 0, 4)
		for _, h := range missing[:min(len(missing), 4)] {
			names = append(names, h.String())
		}
		return fmt.Errorf("%w: delta base %s is neither in the pack nor in the repo", ErrBadPack, strings.Join(names, ", "))
	}
	if rs.resolved < nDeltas {
		return fmt.Errorf("%w: %d deltas have no resolvable base (cycle?)", ErrBadPack, nDeltas-rs.resolved)
	}
	return nil
}

// resolveWorkers bounds the goroutines of pass 2 (GOMAXPROCS if fewer):
// each holds a base and a result at a time.
const resolveWorkers = 4

// resolveState is pass 2 in progress; every field but the read-only
// child index is under in.mu.
type resolveState struct {
	in       *ingest
	kidStart []int32 // read-only
	kids     []int32 // read-only
	refKids  map[Hash][]int32
	stack    []baseItem
	active   int // workers busy with an item
	resolved int
	err      error
	cond     *sync.Cond
}

// hasKids reports whether some delta waits on entry i (or, outside the
// pack, i < 0) of hash h. Hold in.mu.
func (rs *resolveState) hasKids(i int32, h Hash) bool {
	if i >= 0 && rs.kidStart[i+1] > rs.kidStart[i] {
		return true
	}
	_, ok := rs.refKids[h]
	return ok
}

// drain resolves everything that waits, directly or through a chain, on
// roots, across the workers, and returns the first error.
func (rs *resolveState) drain(roots []baseItem) error {
	in := rs.in
	in.mu.Lock()
	// Last in, first out: the first root is taken first.
	for i := len(roots) - 1; i >= 0; i-- {
		rs.stack = append(rs.stack, roots[i])
	}
	in.mu.Unlock()
	workers := min(runtime.GOMAXPROCS(0), resolveWorkers, len(roots)+1)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r resolver
			defer r.close()
			rs.work(&r)
		}()
	}
	wg.Wait()
	rs.stack = rs.stack[:0]
	return rs.err
}

// work takes items until the stack is empty and no worker can add to it,
// or some worker failed.
func (rs *resolveState) work(r *resolver) {
	in := rs.in
	in.mu.Lock()
	defer in.mu.Unlock()
	for {
		for len(rs.stack) == 0 && rs.active > 0 && rs.err == nil {
			rs.cond.Wait()
		}
		if rs.err != nil || len(rs.stack) == 0 {
			rs.cond.Broadcast()
			return
		}
		it := rs.stack[len(rs.stack)-1]
		rs.stack = rs.stack[:len(rs.stack)-1]
		var list []int32
		if it.idx >= 0 {
			list = append(list, rs.kids[rs.kidStart[it.idx]:rs.kidStart[it.idx+1]]...)
		}
		list = append(list, rs.refKids[it.h]...)
		delete(rs.refKids, it.h)
		rs.active++
		in.mu.Unlock()
		err := in.ctx.Err()
		if err == nil {
			err = rs.resolveBase(r, it, list)
		}
		in.mu.Lock()
		rs.active--
		if err != nil && rs.err == nil {
			rs.err = err
		}
		rs.cond.Broadcast()
	}
}

// resolveBase applies every delta in list to the base it. Call it without
// in.mu.
func (rs *resolveState) resolveBase(r *resolver, it baseItem, list []int32) error {
	in := rs.in
	if len(list) == 0 {
		in.mu.Lock()
		if b, ok := in.cache.take(it.idx); ok {
			in.cache.release(b)
		}
		in.mu.Unlock()
		return nil
	}
	base, release, err := in.loadBase(it)
	if err != nil {
		return err
	}
	defer release()
	for _, ci := range list {
		c := &in.entries[ci]
		if c.done {
			continue
		}
		// Only keep a result that may be a base itself.
		var keep []byte
		in.mu.Lock()
		if c.dstSize <= in.cache.budget && (rs.kidStart[ci+1] > rs.kidStart[ci] || len(rs.refKids) > 0) {
			keep = in.cache.buf(c.dstSize)[:0]
		}
		in.mu.Unlock()
		out, err := in.applyDelta(r, c, it.h, it.typ, it.depth, base, keep)
		if err != nil {
			return fmt.Errorf("entry at offset %d: %w", c.off, err)
		}
		in.mu.Lock()
		rs.resolved++
		if rs.hasKids(ci, c.hash) {
			if out != nil {
				in.cache.put(ci, out)
			}
			rs.stack = append(rs.stack, baseItem{idx: ci, h: c.hash, typ: c.typ, depth: c.depth})
			rs.cond.Signal()
		} else {
			in.cache.release(out)
		}
		in.mu.Unlock()
	}
	return nil
}

// resolver is one pass-2 worker's own state: the inflater of delta
// instructions, the deflater of results, and a small result's deflated
// bytes and stored value.
type resolver struct {
	zr  io.ReadCloser
	br  *bufio.Reader
	zw  *kzlib.Writer
	z   bytes.Buffer
	val []byte
	res []byte // a small result
}

func (r *resolver) close() {
	if r.zw != nil {
		r.zw.Reset(io.Discard)
		zlibWriters.Put(r.zw)
		r.zw = nil
	}
}

// loadBase returns the content of a base, from the cache or read again
// from the pack's stored values (or, for a thin pack's base, from the
// quarantine and the repo), and a function to call when done with it.
// Call it without in.mu.
func (in *ingest) loadBase(it baseItem) ([]byte, func(), error) {
	if it.idx >= 0 {
		in.mu.Lock()
		b, ok := in.cache.take(it.idx)
		in.mu.Unlock()
		if ok {
			return b, func() {
				in.mu.Lock()
				in.cache.release(b)
				in.mu.Unlock()
			}, nil
		}
	}
	var size int64
	if it.idx >= 0 {
		e := &in.entries[it.idx]
		size = e.size
		if e.kind > 4 {
			size = e.dstSize
		}
	} else {
		_, sz, err := in.q.Stat(in.ctx, it.h)
		if err != nil {
			return nil, nil, err
		}
		size = sz
	}
	weight := min(size, in.lim.MaxBaseMemory)
	if err := in.q.store.bases.Acquire(in.ctx, weight); err != nil {
		return nil, nil, err
	}
	var buf []byte
	in.mu.Lock()
	if size <= in.cache.budget {
		buf = in.cache.buf(size)
	}
	var sv storedValue
	var err error
	if it.idx >= 0 {
		// The value is copied out of the batch under the lock; a spilled
		// one is read from the database, where its chunks are (synced
		// here, so every byte appended so far is there).
		if err = in.objs.sync(); err == nil {
			sv, err = getValue(in.nb, in.q.repo, it.h)
		}
	}
	in.mu.Unlock()
	var data []byte
	if err == nil {
		if it.idx >= 0 {
			data, err = materialize(in.getValue, in.q.store.db, in.q.repo, it.h, sv, buf, in.q.store.cache)
		} else {
			_, data, err = in.q.readInto(it.h, buf)
		}
	}
	if err == nil && int64(len(data)) != size {
		err = fmt.Errorf("%w: base %s is %d bytes, expected %d", ErrBadObject, it.h, len(data), size)
	}
	if err != nil {
		in.q.store.bases.Release(weight)
		return nil, nil, err
	}
	return data, func() {
		in.q.store.bases.Release(weight)
		in.mu.Lock()
		in.cache.release(data)
		in.mu.Unlock()
	}, nil
}

// applyDelta resolves delta entry c against base (of type typ): its
// result is hashed and deflated into its stored value as it is produced.
// With keep (an empty buffer with room for the result), it also returns
// the result, for use as a base. Call it without in.mu.
func (in *ingest) applyDelta(r *resolver, c *packEntry, baseHash Hash, typ Type, baseDepth uint8, base []byte, keep []byte) ([]byte, error) {
	if c.srcSize != int64(len(base)) {
		return nil, fmt.Errorf("%w: delta expects a %d-byte base, base has %d", ErrBadPack, c.srcSize, len(base))
	}
	// The instructions, inflated again from where pass 1 kept them.
	var src io.Reader
	if c.raw != nil {
		src = bytes.NewReader(c.raw)
	} else {
		src = newSpillReader(in.q.store.db, in.q.repo, in.deltas.id, c.rawOff, c.rawLen)
	}
	var err error
	if r.zr == nil {
		r.zr, err = kzlib.NewReader(src)
	} else {
		err = r.zr.(kzlib.Resetter).Reset(src, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: delta: %v", ErrBadPack, err)
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.zr, 32<<10)
	} else {
		r.br.Reset(r.zr)
	}
	if src, err := binary.ReadUvarint(r.br); err != nil || int64(src) != c.srcSize {
		return nil, fmt.Errorf("%w: delta header changed between reads", ErrBadPack)
	}
	if dst, err := binary.ReadUvarint(r.br); err != nil || int64(dst) != c.dstSize {
		return nil, fmt.Errorf("%w: delta header changed between reads", ErrBadPack)
	}
	if r.zw == nil {
		r.zw = zlibWriters.Get().(*kzlib.Writer)
	}

	if c.dstSize > in.mem.inlineObject {
		w := deltaOut{h: plumbing.NewHasher(typ, c.dstSize), zw: r.zw, keep: keep}
		// Large: deflated straight into the objects spill, under the
		// lock, never held whole.
		in.mu.Lock()
		defer in.mu.Unlock()
		in.startValue(typ, c.dstSize)
		r.zw.Reset(&in.vs)
		if err := patchDelta(&w, base, r.br, c.dstSize); err != nil {
			return nil, err
		}
		if err := r.zw.Close(); err != nil {
			return nil, err
		}
		c.typ, c.hash, c.done = typ, w.h.Sum(), true
		if err := in.finishValue(c.hash); err != nil {
			return nil, err
		}
		whole := in.objs.size - in.vs.start
		if !in.vs.spilled {
			whole = int64(len(in.value) - in.vs.hdr)
		}
		if err := in.recordDelta(c, baseHash, whole); err != nil {
			return nil, err
		}
		c.raw = nil
		return w.keep, nil
	}

	// Small: built in the worker's buffer and hashed, then stored as the
	// delta it came as (a delta value, chain.go) where it may be, else
	// deflated whole.
	r.res = r.res[:0]
	w := deltaOut{h: plumbing.NewHasher(typ, c.dstSize), res: &r.res}
	if err := patchDelta(&w, base, r.br, c.dstSize); err != nil {
		return nil, err
	}
	c.typ, c.hash, c.done = typ, w.h.Sum(), true
	if keep != nil {
		keep = append(keep, r.res...)
	}
	var pc checked
	var pcBytes int64
	if typ != plumbing.BlobObject {
		pc, pcBytes = precheck(c.hash, typ, r.res)
	}
	in.mu.Lock()
	if typ != plumbing.BlobObject {
		in.addChecked(c.hash, pc, pcBytes)
	}
	stored, err := in.storeDeltaValue(r, c, baseHash, baseDepth)
	in.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if !stored {
		r.z.Reset()
		r.zw.Reset(&r.z)
		_, _ = r.zw.Write(r.res)
		if err := r.zw.Close(); err != nil {
			return nil, err
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		if err := in.storeResolved(r, c); err != nil {
			return nil, err
		}
		if err := in.recordDelta(c, baseHash, int64(r.z.Len())); err != nil {
			return nil, err
		}
	}
	c.raw = nil
	return keep, nil
}

// storeDeltaValue stores the small resolved entry c as the delta it came
// as, against base (whose chain of delta values is baseDepth deep), and
// reports whether it did: not when the base or the delta is large, the chain would be
// deeper than maxStoredDepth, or the object is already in the pack, the
// quarantine or the repo (a delta value is never written over an object,
// so none can point, through others, back at itself). Hold in.mu.
func (in *ingest) storeDeltaValue(r *resolver, c *packEntry, base Hash, baseDepth uint8) (bool, error) {
	zlen := int64(len(c.raw))
	if c.raw == nil {
		zlen = c.rawLen
	}
	if c.srcSize > in.mem.inlineObject || baseDepth >= maxStoredDepth || base == c.hash || zlen > maxDeltaValue {
		return false, nil
	}
	repo := in.q.repo
	if _, ok := in.written[c.hash]; ok {
		return false, nil
	}
	if ok, err := hasObject(in.q.store.db, repo, c.hash); err != nil || ok {
		return false, err
	}
	if in.qUsed {
		if ok, err := in.q.Has(in.ctx, c.hash); err != nil || ok {
			return false, err
		}
	}
	z := c.raw
	if z == nil {
		z = make([]byte, c.rawLen)
		if _, err := io.ReadFull(newSpillReader(in.q.store.db, repo, in.deltas.id, c.rawOff, c.rawLen), z); err != nil {
			return false, fmt.Errorf("objects: read back delta: %w", err)
		}
	}
	depth := baseDepth + 1
	key := ObjectKey(repo, c.hash)
	r.val = appendDeltaValueHeader(r.val[:0], false, c.typ, c.dstSize, depth, base, c.size)
	err := in.putValue(key, &r.val, z, func(start, n int64) []byte {
		return encodeSpilledDelta(c.typ, c.dstSize, depth, base, c.size, in.objs.id, start, n)
	})
	if err != nil {
		return false, fmt.Errorf("objects: quarantine write: %w", err)
	}
	in.written[c.hash] = struct{}{}
	c.depth = depth
	return true, nil
}

// getValue reads a stored value as this ingest sees it: its own batch,
// then the quarantine's, then the repo. It takes in.mu.
func (in *ingest) getValue(h Hash) (storedValue, error) {
	in.mu.Lock()
	err := in.objs.sync()
	var sv storedValue
	if err == nil {
		sv, err = getValue(in.nb, in.q.repo, h)
	}
	in.mu.Unlock()
	if errors.Is(err, ErrNotFound) && in.qUsed {
		return in.q.value(h)
	}
	return sv, err
}

// putValue stores the value *head + z under key: whole in the batch
// while the inline budget lasts (*head, a reused buffer, grows to hold
// it), else z goes to the objects spill and key gets spilled(start, len(z)),
// the value that points at it. Hold in.mu.
func (in *ingest) putValue(key []byte, head *[]byte, z []byte, spilled func(start, n int64) []byte) error {
	if n := int64(len(*head) + len(z)); n <= in.mem.inlineObject && in.inlineUsed+n <= in.mem.inline {
		*head = append(*head, z...)
		in.inlineUsed += n
		return in.nb.Set(key, *head)
	}
	start := in.objs.size
	if _, err := in.objs.Write(z); err != nil {
		return err
	}
	return in.nb.Set(key, spilled(start, int64(len(z))))
}

// storeResolved stores the resolved entry c, whose zlib stream is r.z:
// inline while the budget lasts, else in the objects spill. Hold in.mu.
func (in *ingest) storeResolved(r *resolver, c *packEntry) error {
	z := r.z.Bytes()
	r.val = appendValueHeader(r.val[:0], c.typ, c.dstSize)
	key := ObjectKey(in.q.repo, c.hash)
	in.written[c.hash] = struct{}{}
	err := in.putValue(key, &r.val, z, func(start, n int64) []byte {
		return encodeSpilled(c.typ, c.dstSize, in.objs.id, start, n)
	})
	if err != nil {
		return fmt.Errorf("objects: quarantine write: %w", err)
	}
	return nil
}

// recordDelta keeps the delta of entry c, just resolved against base, as
// the delta record of its object (delta.go) when it is smaller than the
// object's stored zlib stream (whole bytes), within the ingest's record
// budget. Hold in.mu.
func (in *ingest) recordDelta(c *packEntry, base Hash, whole int64) error {
	zlen := int64(len(c.raw))
	if c.raw == nil {
		zlen = c.rawLen
	}
	if base == c.hash || zlen >= whole || zlen > maxDeltaRecord || in.recorded+zlen > in.mem.records {
		return nil
	}
	zdata := c.raw
	if zdata == nil {
		zdata = make([]byte, zlen)
		if _, err := io.ReadFull(newSpillReader(in.q.store.db, in.q.repo, in.deltas.id, c.rawOff, c.rawLen), zdata); err != nil {
			return fmt.Errorf("objects: read back delta: %w", err)
		}
	}
	in.recorded += zlen
	if err := in.nb.Set(DeltaKey(in.q.repo, c.hash), encodeDelta(base, c.size, zdata)); err != nil {
		return fmt.Errorf("objects: quarantine write: %w", err)
	}
	return nil
}

// deltaOut is where a delta's result goes: the hasher, the deflater of its
// stored value and, for a result that is a base itself, a copy.
type deltaOut struct {
	h    plumbing.Hasher
	zw   *kzlib.Writer // nil: not deflated
	keep []byte
	res  *[]byte // when not nil, the result is appended there
}

func (d *deltaOut) Write(p []byte) (int, error) {
	d.h.Write(p)
	if d.keep != nil {
		d.keep = append(d.keep, p...)
	}
	if d.res != nil {
		*d.res = append(*d.res, p...)
	}
	if d.zw == nil {
		return len(p), nil
	}
	return d.zw.Write(p)
}

// patchDelta writes to w the result of applying the delta instructions in
// d (its two size headers already read) to base. Every copy and insert is
// bounds-checked as it comes; the result must be exactly dstSize bytes,
// and d must end with its last instruction.
func patchDelta(w io.Writer, base []byte, d *bufio.Reader, dstSize int64) error {
	var done int64
	readByte := func(what string) (byte, error) {
		c, err := d.ReadByte()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("%w: truncated delta %s", ErrBadPack, what)
		}
		return c, err
	}
	for done < dstSize {
		cmd, err := d.ReadByte()
		if err == io.EOF {
			return fmt.Errorf("%w: delta produced %d bytes, declared %d", ErrBadPack, done, dstSize)
		}
		if err != nil {
			return err
		}
		switch {
		case cmd&0x80 != 0:
			var off, n uint64
			for i := uint(0); i < 4; i++ {
				if cmd&(1<<i) != 0 {
					c, err := readByte("copy")
					if err != nil {
						return err
					}
					off |= uint64(c) << (8 * i)
				}
			}
			for i := uint(0); i < 3; i++ {
				if cmd&(0x10<<i) != 0 {
					c, err := readByte("copy")
					if err != nil {
						return err
					}
					n |= uint64(c) << (8 * i)
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) {
				return fmt.Errorf("%w: delta copy out of bounds", ErrBadPack)
			}
			if done+int64(n) > dstSize {
				return fmt.Errorf("%w: delta produces more than its declared %d bytes", ErrBadPack, dstSize)
			}
			if _, err := w.Write(base[off : off+n]); err != nil {
				return err
			}
			done += int64(n)
		case cmd != 0:
			n := int64(cmd)
			if done+n > dstSize {
				return fmt.Errorf("%w: delta produces more than its declared %d bytes", ErrBadPack, dstSize)
			}
			if m, err := io.CopyN(w, d, n); err != nil {
				if m < n && (err == io.EOF || err == io.ErrUnexpectedEOF) {
					return fmt.Errorf("%w: truncated delta insert", ErrBadPack)
				}
				return err
			}
			done += n
		default:
			return fmt.Errorf("%w: delta opcode 0", ErrBadPack)
		}
	}
	if _, err := d.ReadByte(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: delta has instructions past its declared %d bytes", ErrBadPack, dstSize)
	}
	return nil
}
