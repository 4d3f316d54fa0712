package objects

import (
	"bufio"
	"bytes"
	"container/list"
	"encoding/binary"
	"fmt"
	"sync"
)

// Delta values: an object stored as the delta it was pushed as.
//
// A delta entry of a received pack whose result and base are small
// (inlineObject or less), whose zlib stream is at most maxDeltaValue, and
// whose base's chain is shallower than
// maxStoredDepth is stored as it came, not resolved and deflated again
// (what C git's index-pack does by keeping the pack):
//
//	inline   <0x40|type:1> <size:uvarint> <depth:1> <base:20> <dsize:uvarint> <zlib of the delta instructions>
//	spilled  <0xc0|type:1> <size:uvarint> <depth:1> <base:20> <dsize:uvarint> <spill:8> <off:uvarint> <zlen:uvarint>
//
// size is the object's inflated size, dsize the instructions' (the size
// of a delta pack entry), depth the length of the chain of delta values
// down to a whole one (1: base is stored whole). The delta resolved, at
// ingest, to exactly this object (its SHA-1 was checked) against exactly
// this base, which the same batch or the repo holds.
//
// Readers resolve the chain (materialize) through the Store's cache of
// resolved bases (readCache): a chain is read down to a cached base or a
// whole value, then applied back up, so walking versions of one tree or
// file in order resolves each delta once. A chain longer than
// maxReadDepth (which no ingest writes; only a corrupt store or a cycle)
// is ErrBadObject, never a loop. A delta value is never written over an
// object the repo, the quarantine or the pack already holds, so values
// of one ingest cannot point at each other in a cycle; the only writes
// over an existing object are whole values.
//
// Garbage collection keeps every delta value's base (Links names it), and
// upload-pack sends a delta value's delta as it is (Store.Delta returns
// it when no delta record says otherwise). Stores written before delta
// values have none of them: they read as before.
const (
	deltaFlag      = 0x40
	maxStoredDepth = 50
	maxReadDepth   = 4 * maxStoredDepth
	// maxDeltaValue bounds the zlib stream of a delta value, so that
	// reading a chain holds at most maxStoredDepth of them (3.2 MiB)
	// besides one base and one result.
	maxDeltaValue = 64 << 10
)

// appendDeltaValueHeader appends the header of a delta value, up to and
// including dsize.
func appendDeltaValueHeader(v []byte, spilled bool, typ Type, size int64, depth uint8, base Hash, dsize int64) []byte {
	f := byte(deltaFlag)
	if spilled {
		f |= spilledFlag
	}
	v = append(v, f|byte(typ))
	v = binary.AppendUvarint(v, uint64(size))
	v = append(v, depth)
	v = append(v, base[:]...)
	return binary.AppendUvarint(v, uint64(dsize))
}

// encodeSpilledDelta builds a spilled delta value.
func encodeSpilledDelta(typ Type, size int64, depth uint8, base Hash, dsize int64, spill uint64, off, zlen int64) []byte {
	v := appendDeltaValueHeader(make([]byte, 0, 48), true, typ, size, depth, base, dsize)
	v = binary.BigEndian.AppendUint64(v, spill)
	v = binary.AppendUvarint(v, uint64(off))
	return binary.AppendUvarint(v, uint64(zlen))
}

// readCacheBytes bounds the Store's cache of resolved bases; an object
// over a quarter of it is never cached.
const readCacheBytes = 32 << 20

type cacheKey struct {
	repo RepoName
	h    Hash
}

type cacheItem struct {
	key  cacheKey
	data []byte
}

// readCache holds objects resolved from delta values, least recently used
// first out, within a byte budget. Its contents are read-only.
type readCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	items  map[cacheKey]*list.Element
	lru    list.List
}

func newReadCache(budget int64) *readCache {
	return &readCache{budget: budget, items: map[cacheKey]*list.Element{}}
}

func (c *readCache) get(repo RepoName, h Hash) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[cacheKey{repo, h}]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cacheItem).data, true
}

func (c *readCache) put(repo RepoName, h Hash, data []byte) {
	if c == nil || int64(len(data)) > c.budget/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cacheKey{repo, h}
	if _, ok := c.items[k]; ok {
		return
	}
	for c.used+int64(len(data)) > c.budget && c.lru.Len() > 0 {
		old := c.lru.Remove(c.lru.Back()).(*cacheItem)
		delete(c.items, old.key)
		c.used -= int64(len(old.data))
	}
	c.items[k] = c.lru.PushFront(&cacheItem{key: k, data: data})
	c.used += int64(len(data))
}

// materialize returns the content of object h, whose stored value is sv:
// inflated, or, for a delta value, its chain resolved. get reads a stored
// value (zdata copied), sr is where spills are read from. The result is
// the caller's (buf is used when sv is whole and buf has room).
func materialize(get func(Hash) (storedValue, error), sr reader, repo RepoName, h Hash, sv storedValue, buf []byte, c *readCache) ([]byte, error) {
	if !sv.delta {
		data, err := inflateInto(sv.zstream(sr, repo), sv.size, buf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", h, err)
		}
		return data, nil
	}
	if data, ok := c.get(repo, h); ok {
		return bytes.Clone(data), nil
	}
	// Down the chain to a cached base or a whole value.
	chain := []storedValue{sv}
	hashes := []Hash{h}
	var base []byte
	for cur := sv; ; {
		if data, ok := c.get(repo, cur.base); ok {
			base = data
			break
		}
		if len(chain) > maxReadDepth {
			return nil, fmt.Errorf("%w: %s: a chain of more than %d deltas", ErrBadObject, h, maxReadDepth)
		}
		next, err := get(cur.base)
		if err != nil {
			return nil, fmt.Errorf("read %s (a base of %s): %w", cur.base, h, err)
		}
		if !next.delta {
			if base, err = inflateInto(next.zstream(sr, repo), next.size, nil); err != nil {
				return nil, fmt.Errorf("read %s: %w", cur.base, err)
			}
			c.put(repo, cur.base, base)
			break
		}
		chain = append(chain, next)
		hashes = append(hashes, cur.base)
		cur = next
	}
	// And back up: each result is the next one's base.
	for i := len(chain) - 1; i >= 0; i-- {
		out, err := applyStored(&chain[i], base, sr, repo)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", hashes[i], err)
		}
		c.put(repo, hashes[i], out)
		base = out
	}
	return bytes.Clone(base), nil
}

// applyStored applies the delta of the delta value sv to base.
func applyStored(sv *storedValue, base []byte, sr reader, repo RepoName) ([]byte, error) {
	d, err := inflateInto(sv.zstream(sr, repo), sv.dsize, nil)
	if err != nil {
		return nil, err
	}
	src, w1 := binary.Uvarint(d)
	if w1 <= 0 || src != uint64(len(base)) {
		return nil, fmt.Errorf("%w: stored delta expects a %d-byte base, base has %d", ErrBadObject, src, len(base))
	}
	dst, w2 := binary.Uvarint(d[w1:])
	if w2 <= 0 || dst != uint64(sv.size) {
		return nil, fmt.Errorf("%w: stored delta makes %d bytes, value says %d", ErrBadObject, dst, sv.size)
	}
	out := bytes.NewBuffer(make([]byte, 0, sv.size))
	if err := patchDelta(out, base, bufio.NewReader(bytes.NewReader(d[w1+w2:])), sv.size); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadObject, err)
	}
	return out.Bytes(), nil
}
