// Package pebblekv is the Pebble driver of the kv contract: Weir's one
// on-disk database of objects and refs. It owns Pebble's options (memtable
// sizes, block cache, bloom filters) and routes Pebble's own log lines to
// the logger it is handed, so nothing logs through the global logger.
//
// It must never know a key layout: the packages built on kv own those.
package pebblekv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/weir-dev/weir/kv"
)

// CacheBytes is the size of Pebble's block cache opened by Open and OpenFS.
var CacheBytes int64 = 256 << 20

// DB is a Pebble database behind the kv contract.
type DB struct {
	db *pebble.DB
}

var _ kv.DB = (*DB)(nil)

// Open opens (creating if needed) the database under dir on the operating
// system's file system. Pebble's errors are logged to log (nil: discarded),
// its informational lines at debug level.
func Open(dir string, log *slog.Logger) (*DB, error) {
	return OpenFS(dir, vfs.Default, log)
}

// OpenFS opens (creating if needed) the database under dir on fs. Tests
// pass vfs.NewMem() or vfs.NewCrashableMem().
func OpenFS(dir string, fs vfs.FS, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &pebble.Options{
		FS: fs,
		// A push's objects arrive in one batch, of at most the inline
		// budget (16 MiB; the rest of a large push is spilled chunk by
		// chunk), so a 32 MiB memtable keeps a typical push out of the
		// flush path, and the memtables of a server writing large pushes
		// (at most MemTableStopWritesThreshold of them) stay at 128 MiB.
		MemTableSize:                32 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		Logger:                      logger{log.With("component", "pebble")},
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
		return nil, fmt.Errorf("pebblekv: open %q: %w", dir, err)
	}
	return &DB{db: db}, nil
}

// New wraps a database the caller opened with options of its own (tests
// that tune the cache). Close closes db.
func New(db *pebble.DB) *DB { return &DB{db: db} }

// logger hands Pebble's lines to slog: informational ones at debug level,
// errors at error level; fatal ones are logged and stay fatal.
type logger struct{ log *slog.Logger }

func (l logger) Infof(format string, args ...interface{}) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l logger) Errorf(format string, args ...interface{}) {
	l.log.Error(fmt.Sprintf(format, args...))
}

func (l logger) Fatalf(format string, args ...interface{}) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic("pebble: " + msg)
}

func sync(d kv.Durability) *pebble.WriteOptions {
	if d == kv.Sync {
		return pebble.Sync
	}
	return pebble.NoSync
}

func notFound(err error) error {
	if errors.Is(err, pebble.ErrNotFound) {
		return kv.ErrNotFound
	}
	return err
}

// Get implements kv.Reader.
func (d *DB) Get(key []byte) ([]byte, io.Closer, error) {
	v, c, err := d.db.Get(key)
	if err != nil {
		return nil, nil, notFound(err)
	}
	return v, c, nil
}

// NewIter implements kv.Reader.
func (d *DB) NewIter(lower, upper []byte) (kv.Iterator, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	return iter{it}, nil
}

// Set implements kv.DB.
func (d *DB) Set(key, value []byte, dur kv.Durability) error {
	return d.db.Set(key, value, sync(dur))
}

// Delete implements kv.DB.
func (d *DB) Delete(key []byte, dur kv.Durability) error {
	return d.db.Delete(key, sync(dur))
}

// NewBatch implements kv.DB: an indexed Pebble batch, readable through.
func (d *DB) NewBatch() kv.Batch {
	return &batch{b: d.db.NewIndexedBatch()}
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Metrics returns Pebble's metrics, for diagnostics.
func (d *DB) Metrics() *pebble.Metrics { return d.db.Metrics() }

// batch wraps an indexed Pebble batch. Pebble panics on a write to a
// committed batch; the kv contract answers an error instead.
type batch struct {
	b      *pebble.Batch
	done   bool // committed
	closed bool
}

var errCommitted = errors.New("pebblekv: batch already committed")

func (b *batch) usable() error {
	if b.closed {
		return kv.ErrClosed
	}
	if b.done {
		return errCommitted
	}
	return nil
}

func (b *batch) Get(key []byte) ([]byte, io.Closer, error) {
	if b.closed {
		return nil, nil, kv.ErrClosed
	}
	v, c, err := b.b.Get(key)
	if err != nil {
		return nil, nil, notFound(err)
	}
	return v, c, nil
}

func (b *batch) NewIter(lower, upper []byte) (kv.Iterator, error) {
	if b.closed {
		return nil, kv.ErrClosed
	}
	it, err := b.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	return iter{it}, nil
}

func (b *batch) Set(key, value []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	return b.b.Set(key, value, nil)
}

func (b *batch) Delete(key []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	return b.b.Delete(key, nil)
}

func (b *batch) DeleteRange(lo, hi []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	return b.b.DeleteRange(lo, hi, nil)
}

func (b *batch) Empty() bool { return b.closed || b.b.Empty() }

func (b *batch) Commit(d kv.Durability) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.b.Commit(sync(d)); err != nil {
		return err
	}
	b.done = true
	return nil
}

func (b *batch) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return b.b.Close()
}

func (b *batch) Apply(other kv.Batch) error {
	if err := b.usable(); err != nil {
		return err
	}
	o, ok := other.(*batch)
	if !ok {
		return fmt.Errorf("pebblekv: apply a %T to a Pebble batch", other)
	}
	return b.b.Apply(o.b, nil)
}

type iter struct{ it *pebble.Iterator }

func (i iter) First() bool            { return i.it.First() }
func (i iter) Last() bool             { return i.it.Last() }
func (i iter) SeekGE(k []byte) bool   { return i.it.SeekGE(k) }
func (i iter) Next() bool             { return i.it.Next() }
func (i iter) Valid() bool            { return i.it.Valid() }
func (i iter) Key() []byte            { return i.it.Key() }
func (i iter) Value() ([]byte, error) { return i.it.ValueAndErr() }
func (i iter) Close() error           { return i.it.Close() }

// Flush writes the memtables to files. Tests use it to put what is in
// memory on disk before a simulated crash.
func (d *DB) Flush() error { return d.db.Flush() }
