package objects

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Pack ingestion errors. Every error IngestPack returns wraps one of them.
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

// packReader reads a pack stream byte-exactly (it is an io.ByteReader, so
// compress/flate never reads past the end of a zlib stream), counts bytes
// against the pack limit, hashes everything it returns for the trailing
// checksum, and can capture the bytes of one zlib stream.
type packReader struct {
	r       *bufio.Reader
	off     int64 // bytes consumed so far
	limit   int64
	sum     hash.Hash
	pend    []byte // consumed but not yet hashed / captured
	capture *bytes.Buffer
}

func newPackReader(r io.Reader, limit int64) *packReader {
	return &packReader{
		r:     bufio.NewReaderSize(r, 64<<10),
		limit: limit,
		sum:   sha1.New(),
		pend:  make([]byte, 0, 8<<10),
	}
}

func (p *packReader) flush() {
	if len(p.pend) == 0 {
		return
	}
	p.sum.Write(p.pend)
	if p.capture != nil {
		p.capture.Write(p.pend)
	}
	p.pend = p.pend[:0]
}

func (p *packReader) tooLarge() error {
	return fmt.Errorf("%w: pack exceeds MaxPackBytes (%d bytes)", ErrTooLarge, p.limit)
}

// ReadByte implements io.ByteReader.
func (p *packReader) ReadByte() (byte, error) {
	if p.off >= p.limit {
		return 0, p.tooLarge()
	}
	b, err := p.r.ReadByte()
	if err != nil {
		return 0, err
	}
	p.off++
	if len(p.pend) == cap(p.pend) {
		p.flush()
	}
	p.pend = append(p.pend, b)
	return b, nil
}

// Read implements io.Reader.
func (p *packReader) Read(b []byte) (int, error) {
	if p.off >= p.limit {
		return 0, p.tooLarge()
	}
	if int64(len(b)) > p.limit-p.off {
		b = b[:p.limit-p.off]
	}
	n, err := p.r.Read(b)
	p.off += int64(n)
	p.flush()
	p.sum.Write(b[:n])
	if p.capture != nil {
		p.capture.Write(b[:n])
	}
	return n, err
}

// Allocation caps: sizes in a pack header are claims, so buffers start no
// bigger than this and grow with the data that actually arrives.
const (
	initialAlloc     = 1 << 20
	maxDeltaPrealloc = 64 << 20
)

// packEntry is one pack entry after the first pass.
type packEntry struct {
	off  int64
	typ  Type  // object type once known (deltas: after resolution)
	kind byte  // pack entry type: 1-4, 6 or 7
	size int64 // inflated size (deltas: of the delta data)
	// non-delta: zdata is the entry's zlib stream, kept for storage.
	zdata []byte
	// delta: the inflated delta and its base.
	delta    []byte
	baseOff  int64
	baseHash Hash
	hash     Hash
	done     bool
	value    []byte // stored value, once known
}

// parsedPack is the outcome of parsePack: every entry, hashes of non-delta
// entries computed, deltas not yet resolved.
type parsedPack struct {
	entries []*packEntry
	byOff   map[int64]int
}

// parsePack reads a whole pack stream and verifies its trailing SHA-1. It
// reads exactly the pack and nothing after it.
func parsePack(r io.Reader, lim Limits) (*parsedPack, error) {
	pr := newPackReader(r, lim.MaxPackBytes)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadPack}, args...)...)
	}
	wrapRead := func(what string, err error) error {
		if errors.Is(err, ErrTooLarge) {
			return err
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return bad("%s: %v", what, err)
	}
	var hdr [12]byte
	if _, err := io.ReadFull(pr, hdr[:]); err != nil {
		return nil, wrapRead("header", err)
	}
	if string(hdr[:4]) != "PACK" {
		return nil, bad("no PACK signature")
	}
	if v := binary.BigEndian.Uint32(hdr[4:8]); v != 2 && v != 3 {
		return nil, bad("unsupported version %d", v)
	}
	count := binary.BigEndian.Uint32(hdr[8:12])
	// Every entry takes at least 2 bytes; refuse counts the pack limit
	// cannot hold before allocating for them.
	if int64(count) > lim.MaxPackBytes/2 {
		return nil, fmt.Errorf("%w: pack claims %d objects, more than MaxPackBytes (%d bytes) can hold", ErrTooLarge, count, lim.MaxPackBytes)
	}
	pp := &parsedPack{
		entries: make([]*packEntry, 0, min(count, 1024)),
		byOff:   make(map[int64]int, min(count, 1024)),
	}
	var zr io.ReadCloser
	buf := make([]byte, 32<<10)
	for i := uint32(0); i < count; i++ {
		e := &packEntry{off: pr.off}
		c, err := pr.ReadByte()
		if err != nil {
			return nil, wrapRead(fmt.Sprintf("entry %d header", i), err)
		}
		e.kind = (c >> 4) & 7
		size := uint64(c & 0x0f)
		shift := uint(4)
		for c&0x80 != 0 {
			if c, err = pr.ReadByte(); err != nil {
				return nil, wrapRead(fmt.Sprintf("entry %d header", i), err)
			}
			if shift > 56 {
				return nil, bad("entry %d: size overflows", i)
			}
			size |= uint64(c&0x7f) << shift
			shift += 7
		}
		if size > uint64(lim.MaxObjectBytes) {
			return nil, fmt.Errorf("%w: entry %d at offset %d is %d bytes, over MaxObjectBytes (%d)", ErrTooLarge, i, e.off, size, lim.MaxObjectBytes)
		}
		e.size = int64(size)
		switch e.kind {
		case 1, 2, 3, 4:
			e.typ = Type(e.kind)
		case packOfsDelta:
			c, err := pr.ReadByte()
			if err != nil {
				return nil, wrapRead(fmt.Sprintf("entry %d base offset", i), err)
			}
			rel := uint64(c & 0x7f)
			for c&0x80 != 0 {
				if c, err = pr.ReadByte(); err != nil {
					return nil, wrapRead(fmt.Sprintf("entry %d base offset", i), err)
				}
				if rel >= 1<<56 {
					return nil, bad("entry %d: base offset overflows", i)
				}
				rel = ((rel + 1) << 7) | uint64(c&0x7f)
			}
			if rel == 0 || rel > uint64(e.off) {
				return nil, bad("entry %d: ofs-delta base outside the pack", i)
			}
			e.baseOff = e.off - int64(rel)
			if _, ok := pp.byOff[e.baseOff]; !ok {
				return nil, bad("entry %d: ofs-delta base at %d is not an entry", i, e.baseOff)
			}
		case packRefDelta:
			if _, err := io.ReadFull(pr, e.baseHash[:]); err != nil {
				return nil, wrapRead(fmt.Sprintf("entry %d base hash", i), err)
			}
		default:
			return nil, bad("entry %d: invalid type %d", i, e.kind)
		}

		// The zlib stream. Non-delta entries keep their compressed bytes
		// (stored as is) and are hashed while inflating; deltas keep their
		// inflated instructions.
		pr.flush()
		var zbuf *bytes.Buffer
		if e.kind <= 4 {
			// The stored value is built in place: header, then the
			// captured zlib stream.
			hdr := encodeValue(e.typ, e.size, nil)
			zbuf = bytes.NewBuffer(make([]byte, 0, int64(len(hdr))+min(e.size/2, initialAlloc)+64))
			zbuf.Write(hdr)
			pr.capture = zbuf
		}
		if zr == nil {
			zr, err = zlib.NewReader(pr)
		} else {
			err = zr.(zlib.Resetter).Reset(pr, nil)
		}
		if err != nil {
			pr.capture = nil
			return nil, wrapRead(fmt.Sprintf("entry %d zlib header", i), err)
		}
		var hasher plumbing.Hasher
		var delta []byte
		if e.kind <= 4 {
			hasher = plumbing.NewHasher(e.typ, e.size)
		} else {
			delta = make([]byte, 0, min(e.size, initialAlloc))
		}
		var n int64
		for {
			m, rerr := zr.Read(buf)
			n += int64(m)
			if n > e.size {
				pr.capture = nil
				return nil, bad("entry %d: inflates to more than its declared %d bytes", i, e.size)
			}
			if e.kind <= 4 {
				hasher.Write(buf[:m])
			} else {
				delta = append(delta, buf[:m]...)
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				pr.capture = nil
				return nil, wrapRead(fmt.Sprintf("entry %d zlib data", i), rerr)
			}
		}
		pr.flush()
		pr.capture = nil
		if n != e.size {
			return nil, bad("entry %d: inflates to %d bytes, header says %d", i, n, e.size)
		}
		if e.kind <= 4 {
			e.value = zbuf.Bytes()
			_, _, e.zdata, _ = decodeValue(e.value)
			e.hash = hasher.Sum()
			e.done = true
		} else {
			e.delta = delta
		}
		pp.byOff[e.off] = len(pp.entries)
		pp.entries = append(pp.entries, e)
	}
	pr.flush()
	want := pr.sum.Sum(nil)
	var got [20]byte
	if _, err := io.ReadFull(pr.r, got[:]); err != nil {
		return nil, wrapRead("trailing checksum", err)
	}
	if !bytes.Equal(want, got[:]) {
		return nil, bad("trailing checksum mismatch: pack says %x, content hashes to %x", got, want)
	}
	return pp, nil
}

// resolveDeltas gives every delta entry its type, content hash and stored
// value. base looks up ref-delta bases that are not in the pack (thin
// packs); it returns ErrNotFound when the base is nowhere.
func (pp *parsedPack) resolveDeltas(lim Limits, base func(Hash) (*Object, error)) error {
	ofsChildren := make(map[int64][]int)
	refChildren := make(map[Hash][]int)
	nDeltas := 0
	for i, e := range pp.entries {
		switch e.kind {
		case packOfsDelta:
			ofsChildren[e.baseOff] = append(ofsChildren[e.baseOff], i)
			nDeltas++
		case packRefDelta:
			refChildren[e.baseHash] = append(refChildren[e.baseHash], i)
			nDeltas++
		}
	}
	if nDeltas == 0 {
		return nil
	}
	type item struct {
		idx  int // -1: a base from outside the pack
		h    Hash
		typ  Type
		data []byte
	}
	var stack []item
	resolved := 0
	// children returns (and forgets) the deltas waiting on base it.
	children := func(it item) []int {
		var out []int
		if it.idx >= 0 {
			out = append(out, ofsChildren[pp.entries[it.idx].off]...)
			delete(ofsChildren, pp.entries[it.idx].off)
		}
		out = append(out, refChildren[it.h]...)
		delete(refChildren, it.h)
		return out
	}
	run := func() error {
		for len(stack) > 0 {
			it := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, ci := range children(it) {
				c := pp.entries[ci]
				if c.done {
					continue
				}
				data, err := applyDelta(it.data, c.delta, lim.MaxObjectBytes)
				if err != nil {
					return fmt.Errorf("entry at offset %d: %w", c.off, err)
				}
				c.typ = it.typ
				c.hash = plumbing.ComputeHash(c.typ, data)
				c.done = true
				c.delta = nil
				c.value = encodeValue(c.typ, int64(len(data)), deflate(data))
				resolved++
				stack = append(stack, item{idx: ci, h: c.hash, typ: c.typ, data: data})
			}
		}
		return nil
	}
	// Roots: non-delta entries that some delta waits on.
	for i, e := range pp.entries {
		if e.kind > 4 {
			continue
		}
		if len(ofsChildren[e.off]) == 0 && len(refChildren[e.hash]) == 0 {
			continue
		}
		data, err := inflate(e.zdata, e.size)
		if err != nil {
			return fmt.Errorf("%w: entry at offset %d: %v", ErrBadPack, e.off, err)
		}
		stack = append(stack, item{idx: i, h: e.hash, typ: e.typ, data: data})
		if err := run(); err != nil {
			return err
		}
	}
	// Thin pack: bases the sender assumed we have. A waiting hash may also
	// be an object of this pack that only resolves once some other outside
	// base is in, so go round until nothing more resolves.
	for progress := true; progress && resolved < nDeltas; {
		progress = false
		waiting := make([]Hash, 0, len(refChildren))
		for h := range refChildren {
			waiting = append(waiting, h)
		}
		sort.Slice(waiting, func(i, j int) bool { return bytes.Compare(waiting[i][:], waiting[j][:]) < 0 })
		for _, h := range waiting {
			if _, still := refChildren[h]; !still {
				continue
			}
			o, err := base(h)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			stack = append(stack, item{idx: -1, h: h, typ: o.Type, data: o.Data})
			if err := run(); err != nil {
				return err
			}
			progress = true
		}
	}
	if resolved < nDeltas && len(refChildren) > 0 {
		var missing []Hash
		for h := range refChildren {
			missing = append(missing, h)
		}
		sort.Slice(missing, func(i, j int) bool { return bytes.Compare(missing[i][:], missing[j][:]) < 0 })
		names := make([]string, 0, 4)
		for _, h := range missing[:min(len(missing), 4)] {
			names = append(names, h.String())
		}
		return fmt.Errorf("%w: delta base %s is neither in the pack nor in the repo", ErrBadPack, strings.Join(names, ", "))
	}
	if resolved < nDeltas {
		return fmt.Errorf("%w: %d deltas have no resolvable base (cycle?)", ErrBadPack, nDeltas-resolved)
	}
	return nil
}

// deltaVarint reads the little-endian base-128 sizes at the head of a delta.
func deltaVarint(d []byte) (uint64, []byte, error) {
	var v uint64
	var shift uint
	for i, c := range d {
		if shift > 56 {
			return 0, nil, fmt.Errorf("%w: delta size overflows", ErrBadPack)
		}
		v |= uint64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			return v, d[i+1:], nil
		}
	}
	return 0, nil, fmt.Errorf("%w: truncated delta header", ErrBadPack)
}

// applyDelta applies a git delta to base. Every copy and insert is
// bounds-checked; the result must be exactly the size the delta declares.
func applyDelta(base, delta []byte, maxObject int64) ([]byte, error) {
	srcSize, d, err := deltaVarint(delta)
	if err != nil {
		return nil, err
	}
	if srcSize != uint64(len(base)) {
		return nil, fmt.Errorf("%w: delta expects a %d-byte base, base has %d", ErrBadPack, srcSize, len(base))
	}
	dstSize, d, err := deltaVarint(d)
	if err != nil {
		return nil, err
	}
	if dstSize > uint64(maxObject) {
		return nil, fmt.Errorf("%w: delta result of %d bytes exceeds MaxObjectBytes (%d)", ErrTooLarge, dstSize, maxObject)
	}
	out := make([]byte, 0, min(dstSize, maxDeltaPrealloc))
	for len(d) > 0 {
		cmd := d[0]
		d = d[1:]
		switch {
		case cmd&0x80 != 0:
			var off, n uint64
			for i := uint(0); i < 4; i++ {
				if cmd&(1<<i) != 0 {
					if len(d) == 0 {
						return nil, fmt.Errorf("%w: truncated delta copy", ErrBadPack)
					}
					off |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			for i := uint(0); i < 3; i++ {
				if cmd&(0x10<<i) != 0 {
					if len(d) == 0 {
						return nil, fmt.Errorf("%w: truncated delta copy", ErrBadPack)
					}
					n |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > uint64(len(base)) || uint64(len(out))+n > dstSize {
				return nil, fmt.Errorf("%w: delta copy out of bounds", ErrBadPack)
			}
			out = append(out, base[off:off+n]...)
		case cmd != 0:
			n := uint64(cmd)
			if n > uint64(len(d)) || uint64(len(out))+n > dstSize {
				return nil, fmt.Errorf("%w: delta insert out of bounds", ErrBadPack)
			}
			out = append(out, d[:n]...)
			d = d[n:]
		default:
			return nil, fmt.Errorf("%w: delta opcode 0", ErrBadPack)
		}
	}
	if uint64(len(out)) != dstSize {
		return nil, fmt.Errorf("%w: delta produced %d bytes, declared %d", ErrBadPack, len(out), dstSize)
	}
	return out, nil
}
