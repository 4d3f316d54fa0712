// Package memkv is the in-memory driver of the kv contract: an ordered map
// (a persistent treap, so an iterator's consistent view costs nothing) with
// readable batches and a model of durability good enough for crash tests.
// It exists so every storage conformance suite runs against two drivers,
// and for tests that want no files at all.
//
// Durability model: the database remembers the state as of its last synced
// write and the unsynced writes since, in commit order, as a write-ahead log
// would hold them. CrashClone returns a new database as a crash would leave
// it: the synced state plus a random prefix of the unsynced writes. The
// unsynced writes are kept until the next synced write, so a test that
// never syncs holds every write it made twice over.
//
// It must never be used for data that has to outlive the process.
package memkv

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/weir-dev/weir/kv"
)

// node is one node of a persistent treap: never modified once built, so a
// root pointer is a snapshot.
type node struct {
	key, val    []byte
	tomb        bool // a batch overlay's deletion of key
	prio        uint64
	left, right *node
}

// split returns the treaps of the keys < key and >= key.
func split(n *node, key []byte) (l, r *node) {
	if n == nil {
		return nil, nil
	}
	c := *n
	if bytes.Compare(n.key, key) < 0 {
		c.right, r = split(n.right, key)
		return &c, r
	}
	l, c.left = split(n.left, key)
	return l, &c
}

// merge joins l and r, every key of l below every key of r.
func merge(l, r *node) *node {
	if l == nil {
		return r
	}
	if r == nil {
		return l
	}
	if l.prio > r.prio {
		c := *l
		c.right = merge(l.right, r)
		return &c
	}
	c := *r
	c.left = merge(l, r.left)
	return &c
}

// succ is the smallest key greater than k.
func succ(k []byte) []byte {
	return append(append(make([]byte, 0, len(k)+1), k...), 0)
}

// removeRange returns n without the keys in [lo, hi) (hi nil: no end).
func removeRange(n *node, lo, hi []byte) *node {
	l, r := split(n, lo)
	if hi == nil {
		return l
	}
	_, r = split(r, hi)
	return merge(l, r)
}

// put returns n with key set to val (or to a tombstone).
func put(n *node, key, val []byte, tomb bool) *node {
	l, r := split(n, key)
	_, r = split(r, succ(key))
	return merge(merge(l, &node{key: key, val: val, tomb: tomb, prio: rand.Uint64()}), r)
}

func find(n *node, key []byte) *node {
	for n != nil {
		switch c := bytes.Compare(key, n.key); {
		case c == 0:
			return n
		case c < 0:
			n = n.left
		default:
			n = n.right
		}
	}
	return nil
}

// seekGE returns the node of the smallest key >= key.
func seekGE(n *node, key []byte) *node {
	var best *node
	for n != nil {
		if bytes.Compare(n.key, key) >= 0 {
			best = n
			n = n.left
		} else {
			n = n.right
		}
	}
	return best
}

// seekLT returns the node of the largest key < key (nil key: the largest).
func seekLT(n *node, key []byte) *node {
	var best *node
	for n != nil {
		if key == nil || bytes.Compare(n.key, key) < 0 {
			best = n
			n = n.right
		} else {
			n = n.left
		}
	}
	return best
}

type opKind byte

const (
	opSet opKind = iota
	opDelete
	opDeleteRange
)

// op is one write, as a batch records it.
type op struct {
	kind opKind
	key  []byte
	val  []byte // opSet
	end  []byte // opDeleteRange
}

func applyOp(root *node, o op) *node {
	switch o.kind {
	case opSet:
		return put(root, o.key, o.val, false)
	case opDelete:
		l, r := split(root, o.key)
		_, r = split(r, succ(o.key))
		return merge(l, r)
	default:
		return removeRange(root, o.key, o.end)
	}
}

// DB is an in-memory kv.DB.
type DB struct {
	mu      sync.RWMutex
	root    *node
	durable *node  // the state as of the last synced write
	pending [][]op // unsynced commits since, oldest first
	closed  bool
}

var _ kv.DB = (*DB)(nil)

// New returns an empty database.
func New() *DB { return &DB{} }

func (d *DB) snapshot() (*node, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, kv.ErrClosed
	}
	return d.root, nil
}

// Get implements kv.Reader.
func (d *DB) Get(key []byte) ([]byte, io.Closer, error) {
	root, err := d.snapshot()
	if err != nil {
		return nil, nil, err
	}
	n := find(root, key)
	if n == nil {
		return nil, nil, kv.ErrNotFound
	}
	return n.val, kv.NopCloser, nil
}

// NewIter implements kv.Reader.
func (d *DB) NewIter(lower, upper []byte) (kv.Iterator, error) {
	root, err := d.snapshot()
	if err != nil {
		return nil, err
	}
	return &iter{base: root, lower: lower, upper: upper}, nil
}

// Set implements kv.DB.
func (d *DB) Set(key, value []byte, dur kv.Durability) error {
	return d.commit([]op{{kind: opSet, key: bytes.Clone(key), val: cloneVal(value)}}, dur)
}

// Delete implements kv.DB.
func (d *DB) Delete(key []byte, dur kv.Durability) error {
	return d.commit([]op{{kind: opDelete, key: bytes.Clone(key)}}, dur)
}

func cloneVal(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return bytes.Clone(v)
}

func (d *DB) commit(ops []op, dur kv.Durability) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return kv.ErrClosed
	}
	root := d.root
	for _, o := range ops {
		root = applyOp(root, o)
	}
	d.root = root
	if dur == kv.Sync {
		d.durable, d.pending = root, nil
	} else if len(ops) > 0 {
		d.pending = append(d.pending, ops)
	}
	return nil
}

// NewBatch implements kv.DB.
func (d *DB) NewBatch() kv.Batch { return &batch{db: d} }

// Close implements kv.DB. A closed database answers kv.ErrClosed.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// CrashClone returns a new database holding what a crash at this instant
// could leave: every synced write, and of the unsynced ones a prefix in
// commit order, its length drawn from rng. The receiver is unaffected.
func (d *DB) CrashClone(rng *rand.Rand) *DB {
	d.mu.RLock()
	defer d.mu.RUnlock()
	root := d.durable
	keep := rng.IntN(len(d.pending) + 1)
	for _, ops := range d.pending[:keep] {
		for _, o := range ops {
			root = applyOp(root, o)
		}
	}
	return &DB{root: root, durable: root}
}

// batch is a kv.Batch: its writes in order, and an overlay of them (point
// writes and deleted ranges) that reads consult before the database.
type batch struct {
	db     *DB
	ops    []op
	over   *node       // point writes; tomb for a deletion
	ranges [][2][]byte // deleted ranges, each under every later point write
	done   bool        // committed
	closed bool
}

func (b *batch) usable() error {
	if b.closed {
		return kv.ErrClosed
	}
	if b.done {
		return fmt.Errorf("memkv: batch already committed")
	}
	return nil
}

func (b *batch) add(o op) {
	b.ops = append(b.ops, o)
	switch o.kind {
	case opSet:
		b.over = put(b.over, o.key, o.val, false)
	case opDelete:
		b.over = put(b.over, o.key, nil, true)
	default:
		b.over = removeRange(b.over, o.key, o.end)
		b.ranges = append(b.ranges, [2][]byte{o.key, o.end})
	}
}

func (b *batch) Set(key, value []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	b.add(op{kind: opSet, key: bytes.Clone(key), val: cloneVal(value)})
	return nil
}

func (b *batch) Delete(key []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	b.add(op{kind: opDelete, key: bytes.Clone(key)})
	return nil
}

func (b *batch) DeleteRange(lo, hi []byte) error {
	if err := b.usable(); err != nil {
		return err
	}
	b.add(op{kind: opDeleteRange, key: bytes.Clone(lo), end: bytes.Clone(hi)})
	return nil
}

func (b *batch) Apply(other kv.Batch) error {
	if err := b.usable(); err != nil {
		return err
	}
	o, ok := other.(*batch)
	if !ok {
		return fmt.Errorf("memkv: apply a %T to a memkv batch", other)
	}
	for _, op := range o.ops {
		b.add(op)
	}
	return nil
}

func (b *batch) Empty() bool { return len(b.ops) == 0 }

func (b *batch) Commit(d kv.Durability) error {
	if err := b.usable(); err != nil {
		return err
	}
	if err := b.db.commit(b.ops, d); err != nil {
		return err
	}
	b.done = true
	return nil
}

func (b *batch) Close() error {
	b.closed = true
	b.ops, b.over, b.ranges = nil, nil, nil
	return nil
}

func covered(ranges [][2][]byte, key []byte) bool {
	for _, r := range ranges {
		if bytes.Compare(key, r[0]) >= 0 && (r[1] == nil || bytes.Compare(key, r[1]) < 0) {
			return true
		}
	}
	return false
}

func (b *batch) Get(key []byte) ([]byte, io.Closer, error) {
	if b.closed {
		return nil, nil, kv.ErrClosed
	}
	if n := find(b.over, key); n != nil {
		if n.tomb {
			return nil, nil, kv.ErrNotFound
		}
		return n.val, kv.NopCloser, nil
	}
	if covered(b.ranges, key) {
		return nil, nil, kv.ErrNotFound
	}
	return b.db.Get(key)
}

func (b *batch) NewIter(lower, upper []byte) (kv.Iterator, error) {
	if b.closed {
		return nil, kv.ErrClosed
	}
	root, err := b.db.snapshot()
	if err != nil {
		return nil, err
	}
	return &iter{base: root, over: b.over, ranges: b.ranges[:len(b.ranges):len(b.ranges)], lower: lower, upper: upper}, nil
}

// iter walks a snapshot of the database (base) under a snapshot of a
// batch's overlay (over, ranges), within [lower, upper).
type iter struct {
	base, over   *node
	ranges       [][2][]byte
	lower, upper []byte
	cur          *node
	closed       bool
}

func (it *iter) inBounds(k []byte) bool {
	return it.upper == nil || bytes.Compare(k, it.upper) < 0
}

// seek moves to the first visible key >= k.
func (it *iter) seek(k []byte) bool {
	if it.lower != nil && bytes.Compare(k, it.lower) < 0 {
		k = it.lower
	}
	for {
		a, b := seekGE(it.over, k), seekGE(it.base, k)
		var pick *node
		switch {
		case a == nil && b == nil:
		case a == nil:
			pick = b
		case b == nil:
			pick = a
		case bytes.Compare(a.key, b.key) <= 0:
			pick = a // the overlay wins a tie
		default:
			pick = b
		}
		if pick == nil || !it.inBounds(pick.key) {
			it.cur = nil
			return false
		}
		if pick.tomb || (pick == b && covered(it.ranges, b.key)) {
			k = succ(pick.key)
			continue
		}
		it.cur = pick
		return true
	}
}

func (it *iter) First() bool {
	var k []byte
	if it.lower != nil {
		k = it.lower
	}
	return it.seek(k)
}

func (it *iter) Last() bool {
	if it.over == nil && len(it.ranges) == 0 {
		n := seekLT(it.base, it.upper)
		if n == nil || (it.lower != nil && bytes.Compare(n.key, it.lower) < 0) {
			it.cur = nil
			return false
		}
		it.cur = n
		return true
	}
	var last *node
	for ok := it.First(); ok; ok = it.Next() {
		last = it.cur
	}
	it.cur = last
	return last != nil
}

func (it *iter) SeekGE(k []byte) bool { return it.seek(k) }

func (it *iter) Next() bool {
	if it.cur == nil {
		return false
	}
	return it.seek(succ(it.cur.key))
}

func (it *iter) Valid() bool { return it.cur != nil }

func (it *iter) Key() []byte {
	if it.cur == nil {
		return nil
	}
	return it.cur.key
}

func (it *iter) Value() ([]byte, error) {
	if it.cur == nil {
		return nil, fmt.Errorf("memkv: iterator not positioned")
	}
	return it.cur.val, nil
}

func (it *iter) Close() error {
	it.closed = true
	it.cur = nil
	return nil
}
