package objects

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/klauspost/compress/zlib"
	"github.com/weir-dev/weir/kv"
	"golang.org/x/sync/semaphore"
)

// Errors returned by the store.
var (
	// ErrBadObject is returned when a stored value or an object's content
	// cannot be decoded.
	ErrBadObject = errors.New("objects: corrupt object")
	// ErrReadOnly is returned by the go-git adapters' write methods.
	ErrReadOnly = errors.New("objects: storer is read-only")
)

// Open returns a Store over db, after deleting the spills of pushes that
// were being received when the process last died (their quarantines never
// committed; see spill.go). Use it for every database that was used
// before. Zero fields of limits take the defaults.
func Open(db kv.DB, limits Limits) (*Store, error) {
	if err := sweepSpills(db); err != nil {
		return nil, fmt.Errorf("objects: drop spills left by a crash: %w", err)
	}
	return New(db, limits), nil
}

// New returns a Store over db. Zero fields of limits take the defaults.
// It does not look for spills a crash left behind: use Open for a
// database that was used before.
func New(db kv.DB, limits Limits) *Store {
	if limits.MaxPackBytes <= 0 {
		limits.MaxPackBytes = DefaultMaxPackBytes
	}
	if limits.MaxObjectBytes <= 0 {
		limits.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if limits.MaxInflatedBytes <= 0 {
		limits.MaxInflatedBytes = DefaultMaxInflatedBytes
	}
	if limits.MaxObjects <= 0 {
		limits.MaxObjects = DefaultMaxObjects
	}
	if limits.MaxBaseMemory <= 0 {
		limits.MaxBaseMemory = max(limits.MaxObjectBytes, DefaultMaxBaseMemory)
	}
	return &Store{
		db:     db,
		limits: limits,
		bases:  semaphore.NewWeighted(limits.MaxBaseMemory),
		cache:  newReadCache(readCacheBytes),
		mem: memBudget{
			inline:       defaultInlineBytes,
			inlineObject: defaultInlineObject,
			deltas:       defaultDeltaBytes,
			cache:        defaultBaseCacheBytes,
			records:      defaultRecordBytes,
		},
	}
}

// DB returns the underlying database (packages refs and catalog share it,
// each under its own key prefixes; see doc.go).
func (s *Store) DB() kv.DB { return s.db }

// Limits returns the limits in force (defaults filled in).
func (s *Store) Limits() Limits { return s.limits }

// ObjectKey returns the Pebble key of object h in repo:
// 'o' <repo> 0x00 <hash:20>.
func ObjectKey(repo RepoName, h Hash) []byte {
	k := make([]byte, 0, 1+len(repo)+1+20)
	k = append(k, 'o')
	k = append(k, repo...)
	k = append(k, 0)
	return append(k, h[:]...)
}

// repoBounds returns [lower, upper) covering every object key of repo.
func repoBounds(repo RepoName) (lower, upper []byte) {
	lower = append(append([]byte{'o'}, repo...), 0)
	upper = append(append([]byte{'o'}, repo...), 1)
	return lower, upper
}

// Stored values, under 'o' <repo> 0x00 <hash>:
//
//	inline   <type:1>       <size:uvarint> <zdata>
//	spilled  <0x80|type:1>  <size:uvarint> <spill:8> <off:uvarint> <zlen:uvarint>
//
// An inline value carries the object's zlib stream; a spilled one points
// at zlen bytes from off in spill number spill of the same repo (spill.go),
// where the zlib stream is. size is always the inflated size.
const spilledFlag = 0x80

// encodeValue builds an inline stored value: <type:1> <size:uvarint> <zdata>.
func encodeValue(typ Type, size int64, zdata []byte) []byte {
	v := make([]byte, 0, 1+binary.MaxVarintLen64+len(zdata))
	v = appendValueHeader(v, typ, size)
	return append(v, zdata...)
}

// appendValueHeader appends the <type:1> <size:uvarint> of an inline value.
func appendValueHeader(v []byte, typ Type, size int64) []byte {
	v = append(v, byte(typ))
	return binary.AppendUvarint(v, uint64(size))
}

// encodeSpilled builds a spilled stored value.
func encodeSpilled(typ Type, size int64, spill uint64, off, zlen int64) []byte {
	v := make([]byte, 0, 1+3*binary.MaxVarintLen64+8)
	v = append(v, spilledFlag|byte(typ))
	v = binary.AppendUvarint(v, uint64(size))
	v = binary.BigEndian.AppendUint64(v, spill)
	v = binary.AppendUvarint(v, uint64(off))
	return binary.AppendUvarint(v, uint64(zlen))
}

// storedValue is a decoded stored value.
type storedValue struct {
	typ  Type
	size int64
	// Inline: the zlib stream (it aliases the value).
	zdata []byte
	// Delta values (chain.go): the zlib stream is of the delta
	// instructions (dsize bytes inflated) against base, depth deep.
	delta bool
	depth uint8
	base  Hash
	dsize int64
	// Spilled: where the zlib stream is.
	spilled bool
	spill   uint64
	off     int64
	zlen    int64
}

// maxStoredSize bounds the sizes a stored value may claim, so a corrupt
// one cannot ask for an absurd allocation.
const maxStoredSize = 1 << 40

// parseValue decodes a stored value.
func parseValue(v []byte) (storedValue, error) {
	var sv storedValue
	if len(v) < 2 {
		return sv, ErrBadObject
	}
	sv.typ = Type(v[0] &^ (spilledFlag | deltaFlag))
	sv.spilled = v[0]&spilledFlag != 0
	sv.delta = v[0]&deltaFlag != 0
	if !validType(sv.typ) {
		return sv, ErrBadObject
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || n > maxStoredSize {
		return sv, ErrBadObject
	}
	sv.size = int64(n)
	rest := v[1+w:]
	if sv.delta {
		if len(rest) < 21 {
			return sv, ErrBadObject
		}
		sv.depth = rest[0]
		copy(sv.base[:], rest[1:21])
		dn, dw := binary.Uvarint(rest[21:])
		if dw <= 0 || dn > maxStoredSize || sv.depth == 0 || sv.base.IsZero() {
			return sv, ErrBadObject
		}
		sv.dsize = int64(dn)
		rest = rest[21+dw:]
	}
	if !sv.spilled {
		sv.zdata = rest
		return sv, nil
	}
	if len(rest) < 8 {
		return sv, ErrBadObject
	}
	sv.spill = binary.BigEndian.Uint64(rest)
	rest = rest[8:]
	off, w := binary.Uvarint(rest)
	if w <= 0 || off > maxStoredSize {
		return sv, ErrBadObject
	}
	zlen, w2 := binary.Uvarint(rest[w:])
	if w2 <= 0 || zlen > maxStoredSize || w+w2 != len(rest) {
		return sv, ErrBadObject
	}
	sv.off, sv.zlen = int64(off), int64(zlen)
	return sv, nil
}

// valueType is the object type of a stored value, 0 if it is corrupt.
func valueType(v []byte) Type {
	if len(v) == 0 || !validType(Type(v[0]&^(spilledFlag|deltaFlag))) {
		return 0
	}
	return Type(v[0] &^ (spilledFlag | deltaFlag))
}

// zstream returns a reader of the value's zlib stream: the inline bytes, or
// the spill read through r.
func (sv *storedValue) zstream(r reader, repo RepoName) io.Reader {
	if !sv.spilled {
		return bytes.NewReader(sv.zdata)
	}
	return newSpillReader(r, repo, sv.spill, sv.off, sv.zlen)
}

func validType(t Type) bool {
	switch t {
	case plumbing.CommitObject, plumbing.TreeObject, plumbing.BlobObject, plumbing.TagObject:
		return true
	}
	return false
}

// zlibWriters pools zlib writers: each carries about 1 MiB of deflate
// state, far more than a typical object.
var zlibWriters = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
	return zw
}}

// zlibReaders pools zlib readers: a fresh one allocates and zeroes tens
// of kilobytes, more than most objects it inflates.
var zlibReaders sync.Pool

// deflate compresses data with zlib at the fastest level.
func deflate(data []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(data)/2 + 64)
	zw := zlibWriters.Get().(*zlib.Writer)
	zw.Reset(&buf)
	_, _ = zw.Write(data)
	_ = zw.Close()
	zw.Reset(io.Discard)
	zlibWriters.Put(zw)
	return buf.Bytes()
}

// inflate decompresses zdata and checks it is exactly size bytes.
func inflate(zdata []byte, size int64) ([]byte, error) {
	return inflateInto(bytes.NewReader(zdata), size, nil)
}

// inflateInto inflates the zlib stream in r, which must be exactly size
// bytes, into buf (reallocated if too small) and returns the data.
func inflateInto(r io.Reader, size int64, buf []byte) ([]byte, error) {
	if size < 0 || size > maxStoredSize {
		return nil, fmt.Errorf("%w: size %d", ErrBadObject, size)
	}
	var zr io.ReadCloser
	if p, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := p.(zlib.Resetter).Reset(r, nil); err != nil {
			zlibReaders.Put(p)
			return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
		}
		zr = p
	} else {
		var err error
		if zr, err = zlib.NewReader(r); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
		}
	}
	defer zlibReaders.Put(zr)
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	out := buf[:size]
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
	}
	var one [1]byte
	if n, _ := zr.Read(one[:]); n != 0 {
		return nil, fmt.Errorf("%w: longer than its header says", ErrBadObject)
	}
	return out, nil
}

// reader is anything objects can be read from: the database or a batch
// over it.
type reader = kv.Reader

// getValue reads and decodes the stored value of h. An inline value's
// zdata is copied out of r.
func getValue(r reader, repo RepoName, h Hash) (storedValue, error) {
	v, closer, err := r.Get(ObjectKey(repo, h))
	if errors.Is(err, kv.ErrNotFound) {
		return storedValue{}, fmt.Errorf("%w: %s in %s", ErrNotFound, h, repo)
	}
	if err != nil {
		return storedValue{}, fmt.Errorf("objects: read %s: %w", h, err)
	}
	defer closer.Close()
	sv, err := parseValue(v)
	if err != nil {
		return storedValue{}, fmt.Errorf("read %s: %w", h, err)
	}
	sv.zdata = bytes.Clone(sv.zdata)
	return sv, nil
}

// getRaw returns the type, size and zlib stream of h, read through r: a
// delta value is resolved and deflated.
func getRaw(r reader, repo RepoName, h Hash, c *readCache) (typ Type, size int64, zdata []byte, err error) {
	sv, err := getValue(r, repo, h)
	if err != nil {
		return 0, 0, nil, err
	}
	if sv.delta {
		data, err := materialize(valueGetter(r, repo), r, repo, h, sv, nil, c)
		if err != nil {
			return 0, 0, nil, err
		}
		return sv.typ, sv.size, deflate(data), nil
	}
	if !sv.spilled {
		return sv.typ, sv.size, sv.zdata, nil
	}
	z := make([]byte, sv.zlen)
	if _, err := io.ReadFull(sv.zstream(r, repo), z); err != nil {
		return 0, 0, nil, fmt.Errorf("read %s: %w", h, err)
	}
	return sv.typ, sv.size, z, nil
}

// statObject returns the type and inflated size of h without reading its
// content.
func statObject(r reader, repo RepoName, h Hash) (Type, int64, error) {
	sv, err := getValue(r, repo, h)
	if err != nil {
		return 0, 0, err
	}
	return sv.typ, sv.size, nil
}

func getObject(r reader, repo RepoName, h Hash, c *readCache) (*Object, error) {
	typ, data, err := readObjectInto(r, repo, h, nil, c)
	if err != nil {
		return nil, err
	}
	return &Object{Type: typ, Data: data}, nil
}

// readObjectInto inflates object h into buf (reallocated if too small),
// streaming a spilled object from its spill, or resolves its delta chain
// (chain.go).
func readObjectInto(r reader, repo RepoName, h Hash, buf []byte, c *readCache) (Type, []byte, error) {
	sv, err := getValue(r, repo, h)
	if err != nil {
		return 0, nil, err
	}
	data, err := materialize(valueGetter(r, repo), r, repo, h, sv, buf, c)
	if err != nil {
		return 0, nil, err
	}
	return sv.typ, data, nil
}

// valueGetter reads stored values of repo through r.
func valueGetter(r reader, repo RepoName) func(Hash) (storedValue, error) {
	return func(h Hash) (storedValue, error) { return getValue(r, repo, h) }
}

func hasObject(r reader, repo RepoName, h Hash) (bool, error) {
	_, closer, err := r.Get(ObjectKey(repo, h))
	if errors.Is(err, kv.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("objects: read %s: %w", h, err)
	}
	closer.Close()
	return true, nil
}

// Get returns the inflated object h of repo, or an error wrapping
// ErrNotFound.
func (s *Store) Get(ctx context.Context, repo RepoName, h Hash) (*Object, error) {
	return getObject(s.db, repo, h, s.cache)
}

// Has reports whether repo holds object h.
func (s *Store) Has(ctx context.Context, repo RepoName, h Hash) (bool, error) {
	return hasObject(s.db, repo, h)
}

// Raw returns object h as stored: its type, its inflated size and its zlib
// stream, ready to be written as the body of a non-delta pack entry.
func (s *Store) Raw(ctx context.Context, repo RepoName, h Hash) (typ Type, size int64, zdata []byte, err error) {
	return getRaw(s.db, repo, h, s.cache)
}

// Stat returns the type and inflated size of h without reading its
// content: use it rather than Raw when the content is not needed (a
// spilled object's zlib stream may be hundreds of megabytes).
func (s *Store) Stat(ctx context.Context, repo RepoName, h Hash) (Type, int64, error) {
	return statObject(s.db, repo, h)
}

// Put stores an object and returns its hash. The write is not synced: it
// becomes durable with the next synced write (any ref update). An object
// that no ref reaches is harmless, and a garbage collection leaves it
// alone for its grace period (gc.go).
func (s *Store) Put(ctx context.Context, repo RepoName, typ Type, data []byte) (Hash, error) {
	if !validType(typ) {
		return ZeroHash, fmt.Errorf("objects: put: invalid type %v", typ)
	}
	if int64(len(data)) > s.limits.MaxObjectBytes {
		return ZeroHash, fmt.Errorf("%w: object of %d bytes exceeds MaxObjectBytes (%d)", ErrTooLarge, len(data), s.limits.MaxObjectBytes)
	}
	h := plumbing.ComputeHash(typ, data)
	v := encodeValue(typ, int64(len(data)), deflate(data))
	// Under the write barrier, and noted with its time: a collection
	// keeps an object Put within its grace period, and what it names,
	// until a ref reaches it (gc.go).
	release := s.HoldWrites()
	defer release()
	if err := s.db.Set(ObjectKey(repo, h), v, kv.NoSync); err != nil {
		return ZeroHash, fmt.Errorf("objects: put %s: %w", h, err)
	}
	s.gc.note(repo, true, h)
	return h, nil
}

// DeleteRepo deletes every object of repo, its delta records and the
// spills its objects point into (refs are package refs' to delete). The deletion is synced.
func (s *Store) DeleteRepo(ctx context.Context, repo RepoName) error {
	lo, hi := repoBounds(repo)
	slo := append(append([]byte{'s'}, repo...), 0)
	shi := append(append([]byte{'s'}, repo...), 1)
	dlo := append(append([]byte{'d'}, repo...), 0)
	dhi := append(append([]byte{'d'}, repo...), 1)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lo, hi); err != nil {
		return fmt.Errorf("objects: delete repo %s: %w", repo, err)
	}
	if err := b.DeleteRange(slo, shi); err != nil {
		return fmt.Errorf("objects: delete repo %s: %w", repo, err)
	}
	if err := b.DeleteRange(dlo, dhi); err != nil {
		return fmt.Errorf("objects: delete repo %s: %w", repo, err)
	}
	if err := b.Commit(kv.Sync); err != nil {
		return fmt.Errorf("objects: delete repo %s: %w", repo, err)
	}
	return nil
}

// NewQuarantine starts an empty quarantine for one push into repo. The
// caller must Close it.
func (s *Store) NewQuarantine(repo RepoName) *Quarantine {
	return &Quarantine{
		store:    s,
		repo:     repo,
		batch:    s.db.NewBatch(),
		ingested: make(map[Hash]Type),
		sweeps:   s.gc.sweeps.Load(),
	}
}

// Storer adapts repo to go-git's read-only object storer, so go-git's
// object package (object.GetCommit, commit walks) can read it.
func (s *Store) Storer(repo RepoName) storer.EncodedObjectStorer {
	return &goStorer{repo: repo, get: func(h Hash) (*Object, error) {
		return s.Get(context.Background(), repo, h)
	}, has: func(h Hash) (bool, error) {
		return s.Has(context.Background(), repo, h)
	}, raw: func(h Hash) (Type, int64, error) {
		return s.Stat(context.Background(), repo, h)
	}, iter: func(fn func(key, value []byte) error) error {
		return iterRepo(s.db, repo, fn)
	}}
}

// iterRepo calls fn for every object key/value of repo in r.
func iterRepo(r kv.Reader, repo RepoName, fn func(key, value []byte) error) error {
	lo, hi := repoBounds(repo)
	it, err := r.NewIter(lo, hi)
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// goStorer is the go-git adapter shared by Store and Quarantine.
type goStorer struct {
	repo RepoName
	get  func(Hash) (*Object, error)
	has  func(Hash) (bool, error)
	raw  func(Hash) (Type, int64, error)
	iter func(fn func(key, value []byte) error) error
}

func (g *goStorer) NewEncodedObject() plumbing.EncodedObject { return &plumbing.MemoryObject{} }

func (g *goStorer) SetEncodedObject(plumbing.EncodedObject) (plumbing.Hash, error) {
	return ZeroHash, ErrReadOnly
}

func (g *goStorer) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	o, err := g.get(h)
	if errors.Is(err, ErrNotFound) {
		return nil, plumbing.ErrObjectNotFound
	}
	if err != nil {
		return nil, err
	}
	if t != plumbing.AnyObject && t != o.Type {
		return nil, plumbing.ErrObjectNotFound
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(o.Type)
	mo.SetSize(int64(len(o.Data)))
	_, _ = mo.Write(o.Data)
	return mo, nil
}

func (g *goStorer) IterEncodedObjects(t plumbing.ObjectType) (storer.EncodedObjectIter, error) {
	var hashes []plumbing.Hash
	err := g.iter(func(key, value []byte) error {
		if len(key) < 20 || len(value) < 1 {
			return nil
		}
		if vt := valueType(value); vt != 0 && (t == plumbing.AnyObject || vt == t) {
			var h Hash
			copy(h[:], key[len(key)-20:])
			hashes = append(hashes, h)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return storer.NewEncodedObjectLookupIter(g, t, hashes), nil
}

func (g *goStorer) HasEncodedObject(h plumbing.Hash) error {
	ok, err := g.has(h)
	if err != nil {
		return err
	}
	if !ok {
		return plumbing.ErrObjectNotFound
	}
	return nil
}

func (g *goStorer) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	_, sz, err := g.raw(h)
	if errors.Is(err, ErrNotFound) {
		return 0, plumbing.ErrObjectNotFound
	}
	return sz, err
}

func (g *goStorer) AddAlternate(string) error { return ErrReadOnly }

var _ storer.EncodedObjectStorer = (*goStorer)(nil)
