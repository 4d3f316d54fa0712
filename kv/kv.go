// Package kv is the ordered key-value contract Weir's storage is built on:
// byte-string keys in lexicographic order, point reads and writes, range
// iteration, and atomic batches that can be read through while they are
// built. Packages objects, refs and catalog speak only this contract;
// kv/pebblekv (Pebble, on disk) and kv/memkv (in memory) implement it, and
// kv/kvtest is the conformance suite both run.
//
// It must never name a driver: no type of Pebble (or of any other engine)
// appears here, so a package that imports kv does not link Pebble.
//
// Semantics every driver keeps:
//
//   - A Batch commits all of its writes or none, and a crash at any instant
//     leaves each committed batch either fully applied or absent.
//   - Commit(Sync) returns only once the batch, and every batch committed
//     before it, is durable. Commit(NoSync) (and DB.Set/Delete with NoSync)
//     may be lost in a crash, but only as a suffix: a write survives only if
//     every write committed before it survives.
//   - A Batch is readable: Get and NewIter on it see its own writes over the
//     database, and nobody else sees them until Commit. A Batch is not safe
//     for concurrent use; the database is.
//   - An Iterator sees a consistent view as of its creation.
//   - Values returned by Get are valid until the returned io.Closer is
//     closed, and by an Iterator until it moves; callers must not modify
//     them.
package kv

import (
	"errors"
	"io"
)

// ErrNotFound is returned by Get for a key that is absent.
var ErrNotFound = errors.New("kv: key not found")

// ErrClosed is returned by a database or a batch used after Close.
var ErrClosed = errors.New("kv: closed")

// Durability says whether a write must be durable before it returns.
type Durability bool

const (
	// NoSync writes are visible at once and become durable with the next
	// synced write (or not at all, after a crash).
	NoSync Durability = false
	// Sync writes are durable, with every write before them, on return.
	Sync Durability = true
)

// Reader reads keys: a database, or a batch over it.
type Reader interface {
	// Get returns the value of key, or an error wrapping ErrNotFound. The
	// value is valid until the closer is closed.
	Get(key []byte) (value []byte, closer io.Closer, err error)
	// NewIter returns an iterator over the keys in [lower, upper); a nil
	// bound is open.
	NewIter(lower, upper []byte) (Iterator, error)
}

// Writer writes keys. A Batch is a Writer; CommitWith-style callers hand
// out only this view, so the receiver cannot commit or close the batch.
type Writer interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	// DeleteRange deletes every key in [lower, upper).
	DeleteRange(lower, upper []byte) error
}

// Iterator walks keys in order within its bounds. Positioning methods
// return whether the iterator is at a key (Valid).
type Iterator interface {
	First() bool
	Last() bool
	// SeekGE moves to the first key >= key (within the bounds).
	SeekGE(key []byte) bool
	Next() bool
	Valid() bool
	// Key and Value are valid until the next move; do not modify them.
	Key() []byte
	Value() ([]byte, error)
	Close() error
}

// Batch is an atomic group of writes, readable while it is built.
type Batch interface {
	Reader
	Writer
	// Apply adds every write of other (a batch of the same database) to
	// this one, in order. other is left as it was.
	Apply(other Batch) error
	// Empty reports whether the batch holds no writes.
	Empty() bool
	// Commit applies the batch atomically. The batch cannot be written
	// or committed again; it must still be closed.
	Commit(d Durability) error
	// Close releases the batch; uncommitted writes are dropped.
	Close() error
}

// DB is an ordered key-value database, safe for concurrent use.
type DB interface {
	Reader
	Set(key, value []byte, d Durability) error
	Delete(key []byte, d Durability) error
	// NewBatch returns an empty batch over the database.
	NewBatch() Batch
	Close() error
}

// PrefixEnd returns the smallest key greater than every key that starts
// with p (nil if there is none: p is all 0xff).
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for len(end) > 0 {
		if end[len(end)-1] != 0xff {
			end[len(end)-1]++
			return end
		}
		end = end[:len(end)-1]
	}
	return nil
}

// NopCloser is an io.Closer that does nothing, for drivers whose values
// need no release.
var NopCloser io.Closer = nopCloser{}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
