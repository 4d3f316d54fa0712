package objects

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Errors returned by the store.
var (
	// ErrBadObject is returned when a stored value or an object's content
	// cannot be decoded.
	ErrBadObject = errors.New("objects: corrupt object")
	// ErrReadOnly is returned by the go-git adapters' write methods.
	ErrReadOnly = errors.New("objects: storer is read-only")
)

// Open opens (creating if needed) the Pebble database under dir on the
// operating system's file system.
func Open(dir string) (*pebble.DB, error) {
	return OpenFS(dir, vfs.Default)
}

// CacheBytes is the size of Pebble's block cache opened by Open and OpenFS.
var CacheBytes int64 = 256 << 20

// OpenFS opens (creating if needed) the Pebble database under dir on fs.
// Tests pass vfs.NewMem() or vfs.NewCrashableMem().
func OpenFS(dir string, fs vfs.FS) (*pebble.DB, error) {
	opts := &pebble.Options{
		FS: fs,
		// Objects arrive in large batches (one per push); a bigger memtable
		// keeps a typical push out of the flush path.
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      quietLogger{},
		// Upload-pack reads every object of a clone by key: a block cache
		// that holds a mid-sized repo and bloom filters on every level keep
		// those point reads off the disk.
		Cache: pebble.NewCache(CacheBytes),
	}
	defer opts.Cache.Unref()
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("objects: open pebble at %q: %w", dir, err)
	}
	return db, nil
}

// quietLogger drops Pebble's informational lines, logs its errors with
// slog, and keeps fatal ones fatal.
type quietLogger struct{}

func (quietLogger) Infof(string, ...interface{}) {}
func (quietLogger) Errorf(format string, args ...interface{}) {
	slog.Error("pebble", "err", fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...interface{}) {
	panic(fmt.Sprintf(format, args...))
}

// New returns a Store over db. Zero fields of limits take the defaults.
func New(db *pebble.DB, limits Limits) *Store {
	if limits.MaxPackBytes <= 0 {
		limits.MaxPackBytes = DefaultMaxPackBytes
	}
	if limits.MaxObjectBytes <= 0 {
		limits.MaxObjectBytes = DefaultMaxObjectBytes
	}
	return &Store{db: db, limits: limits}
}

// DB returns the underlying database (package refs shares it).
func (s *Store) DB() *pebble.DB { return s.db }

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

// encodeValue builds a stored value: <type:1> <size:uvarint> <zdata>.
func encodeValue(typ Type, size int64, zdata []byte) []byte {
	v := make([]byte, 0, 1+binary.MaxVarintLen64+len(zdata))
	v = append(v, byte(typ))
	v = binary.AppendUvarint(v, uint64(size))
	return append(v, zdata...)
}

// decodeValue splits a stored value. zdata aliases v.
func decodeValue(v []byte) (typ Type, size int64, zdata []byte, err error) {
	if len(v) < 2 {
		return 0, 0, nil, ErrBadObject
	}
	typ = Type(v[0])
	if !validType(typ) {
		return 0, 0, nil, ErrBadObject
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || n > 1<<62 {
		return 0, 0, nil, ErrBadObject
	}
	return typ, int64(n), v[1+w:], nil
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
	zr, err := zlib.NewReader(bytes.NewReader(zdata))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
	}
	defer zr.Close()
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
	}
	var one [1]byte
	if n, _ := zr.Read(one[:]); n != 0 {
		return nil, fmt.Errorf("%w: longer than its header says", ErrBadObject)
	}
	return out, nil
}

// reader is anything objects can be read from: the database or an indexed
// batch over it.
type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// getRaw copies the stored value of h out of r.
func getRaw(r reader, repo RepoName, h Hash) (typ Type, size int64, zdata []byte, err error) {
	v, closer, err := r.Get(ObjectKey(repo, h))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, 0, nil, fmt.Errorf("%w: %s in %s", ErrNotFound, h, repo)
	}
	if err != nil {
		return 0, 0, nil, fmt.Errorf("objects: read %s: %w", h, err)
	}
	defer closer.Close()
	typ, size, z, err := decodeValue(v)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read %s: %w", h, err)
	}
	return typ, size, bytes.Clone(z), nil
}

func getObject(r reader, repo RepoName, h Hash) (*Object, error) {
	typ, size, z, err := getRaw(r, repo, h)
	if err != nil {
		return nil, err
	}
	data, err := inflate(z, size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	return &Object{Type: typ, Data: data}, nil
}

func hasObject(r reader, repo RepoName, h Hash) (bool, error) {
	_, closer, err := r.Get(ObjectKey(repo, h))
	if errors.Is(err, pebble.ErrNotFound) {
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
	return getObject(s.db, repo, h)
}

// Has reports whether repo holds object h.
func (s *Store) Has(ctx context.Context, repo RepoName, h Hash) (bool, error) {
	return hasObject(s.db, repo, h)
}

// Raw returns object h as stored: its type, its inflated size and its zlib
// stream, ready to be written as the body of a non-delta pack entry.
func (s *Store) Raw(ctx context.Context, repo RepoName, h Hash) (typ Type, size int64, zdata []byte, err error) {
	return getRaw(s.db, repo, h)
}

// Put stores an object and returns its hash. The write is not synced: it
// becomes durable with the next synced write (any ref update). An object
// that no ref reaches is harmless.
func (s *Store) Put(ctx context.Context, repo RepoName, typ Type, data []byte) (Hash, error) {
	if !validType(typ) {
		return ZeroHash, fmt.Errorf("objects: put: invalid type %v", typ)
	}
	if int64(len(data)) > s.limits.MaxObjectBytes {
		return ZeroHash, fmt.Errorf("%w: object of %d bytes exceeds MaxObjectBytes (%d)", ErrTooLarge, len(data), s.limits.MaxObjectBytes)
	}
	h := plumbing.ComputeHash(typ, data)
	if err := s.db.Set(ObjectKey(repo, h), encodeValue(typ, int64(len(data)), deflate(data)), pebble.NoSync); err != nil {
		return ZeroHash, fmt.Errorf("objects: put %s: %w", h, err)
	}
	return h, nil
}

// DeleteRepo deletes every object of repo (refs are package refs' to
// delete). The deletion is synced.
func (s *Store) DeleteRepo(ctx context.Context, repo RepoName) error {
	lo, hi := repoBounds(repo)
	if err := s.db.DeleteRange(lo, hi, pebble.Sync); err != nil {
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
		batch:    s.db.NewIndexedBatch(),
		ingested: make(map[Hash]Type),
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
		t, sz, _, err := s.Raw(context.Background(), repo, h)
		return t, sz, err
	}, iter: func(fn func(key, value []byte) error) error {
		return iterRepo(s.db, repo, fn)
	}}
}

type iterSource interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// iterRepo calls fn for every object key/value of repo in r.
func iterRepo(r iterSource, repo RepoName, fn func(key, value []byte) error) error {
	lo, hi := repoBounds(repo)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
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
		if t == plumbing.AnyObject || Type(value[0]) == t {
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
