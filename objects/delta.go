package objects

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/weir-dev/weir/kv"
)

// Delta records: for an object, the delta against another object of the
// same repo that upload-pack may send instead of the whole object.
//
//	key                           value
//	'd' <repo> 0x00 <hash:20>     <base:20> <size:uvarint> <zlib stream of the delta instructions>
//	                              or empty: "no delta worth sending was found"
//
// size is the inflated size of the instructions (the size in the header
// of an ofs- or ref-delta pack entry), so the record is written into a
// pack as it is: header, then the zlib stream, never inflated.
//
// A record is written in two places, and is only ever a hint (an object
// stored as a delta value, chain.go, needs none: Delta returns its delta):
//   - IngestPack keeps the delta of each delta entry of a received pack
//     (it resolved to exactly this object against exactly this base, so it
//     is valid by construction) when its zlib stream is smaller than the
//     object's stored one, in the quarantine's batch: it becomes visible
//     with the push's objects or not at all;
//   - upload-pack caches the deltas it computes (PutDelta), and the
//     objects it found none for (PutNoDelta), so that a repeated clone does
//     not compute them again.
//
// Objects are immutable and named by content, so a record never goes
// stale; a later one may replace it. Records of several pushes may form a
// cycle (A against B, B against A): a reader must check that a chain of
// records ends in an object it sends whole, and bound its depth.
//
// The repo's records are the range ['d' repo 0x00, 'd' repo 0x01).

// Delta is a delta record: Base is the zero hash for a record that says no
// delta was found.
type Delta struct {
	Base  Hash
	Size  int64  // inflated size of the instructions
	ZData []byte // their zlib stream
}

// maxDeltaRecord bounds the zlib stream of a delta record, so a record
// never makes a large kv value: a delta that large is worth little next
// to its object, which is sent whole instead.
const maxDeltaRecord = 4 << 20

// DeltaKey returns the key of the delta record of h in repo:
// 'd' <repo> 0x00 <hash:20>.
func DeltaKey(repo RepoName, h Hash) []byte {
	k := make([]byte, 0, 1+len(repo)+1+20)
	k = append(k, 'd')
	k = append(k, repo...)
	k = append(k, 0)
	return append(k, h[:]...)
}

// encodeDelta builds a delta record value.
func encodeDelta(base Hash, size int64, zdata []byte) []byte {
	v := make([]byte, 0, 20+binary.MaxVarintLen64+len(zdata))
	v = append(v, base[:]...)
	v = binary.AppendUvarint(v, uint64(size))
	return append(v, zdata...)
}

// parseDelta decodes a delta record value; zdata aliases v.
func parseDelta(v []byte) (Delta, error) {
	var d Delta
	if len(v) == 0 {
		return d, nil
	}
	if len(v) < 21 {
		return d, ErrBadObject
	}
	copy(d.Base[:], v[:20])
	n, w := binary.Uvarint(v[20:])
	if w <= 0 || n > maxStoredSize || d.Base.IsZero() {
		return d, ErrBadObject
	}
	d.Size = int64(n)
	d.ZData = v[20+w:]
	return d, nil
}

// Delta returns the delta record of h or, without one, the delta of its
// delta value (chain.go): ok is false when there is neither (nothing was
// tried), and d.Base is zero when the record says no delta was found.
func (s *Store) Delta(ctx context.Context, repo RepoName, h Hash) (d Delta, ok bool, err error) {
	v, closer, err := s.db.Get(DeltaKey(repo, h))
	if errors.Is(err, kv.ErrNotFound) {
		return s.valueDelta(repo, h)
	}
	if err != nil {
		return d, false, fmt.Errorf("objects: read delta of %s: %w", h, err)
	}
	defer closer.Close()
	d, err = parseDelta(v)
	if err != nil {
		return d, false, fmt.Errorf("objects: delta record of %s: %w", h, err)
	}
	d.ZData = bytes.Clone(d.ZData)
	return d, true, nil
}

// valueDelta returns, for an object stored as a delta value (chain.go),
// that delta as its record; ok is false for any other object.
func (s *Store) valueDelta(repo RepoName, h Hash) (d Delta, ok bool, err error) {
	sv, err := getValue(s.db, repo, h)
	if errors.Is(err, ErrNotFound) {
		return d, false, nil
	}
	if err != nil || !sv.delta {
		return d, false, err
	}
	z := sv.zdata
	if sv.spilled {
		z = make([]byte, sv.zlen)
		if _, err := io.ReadFull(sv.zstream(s.db, repo), z); err != nil {
			return d, false, fmt.Errorf("objects: read delta of %s: %w", h, err)
		}
	}
	return Delta{Base: sv.base, Size: sv.dsize, ZData: z}, true, nil
}

// PutDelta records that h is base with the delta whose instructions
// inflate to size bytes from the zlib stream zdata. The caller must have
// built the delta from the two objects' contents. Like Put, the write is
// not synced.
func (s *Store) PutDelta(ctx context.Context, repo RepoName, h, base Hash, size int64, zdata []byte) error {
	if base.IsZero() || base == h {
		return fmt.Errorf("objects: delta of %s: bad base %s", h, base)
	}
	if len(zdata) > maxDeltaRecord {
		return nil
	}
	// Under the write barrier, and only while both objects are there: a
	// record never outlives its object or its base (gc.go).
	release := s.HoldWrites()
	defer release()
	if ok, err := s.bothHeld(repo, h, base); err != nil || !ok {
		return err
	}
	if err := s.db.Set(DeltaKey(repo, h), encodeDelta(base, size, zdata), kv.NoSync); err != nil {
		return fmt.Errorf("objects: put delta of %s: %w", h, err)
	}
	s.gc.note(repo, false, h, base)
	return nil
}

// bothHeld reports whether repo holds a and b (b zero: a alone), once a
// collection has deleted objects in this process; before that it need
// not look.
func (s *Store) bothHeld(repo RepoName, a, b Hash) (bool, error) {
	if s.Sweeps() == 0 {
		return true, nil
	}
	for _, h := range []Hash{a, b} {
		if h.IsZero() {
			continue
		}
		if ok, err := hasObject(s.db, repo, h); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// PutNoDelta records that no delta worth sending was found for h.
func (s *Store) PutNoDelta(ctx context.Context, repo RepoName, h Hash) error {
	release := s.HoldWrites()
	defer release()
	if ok, err := s.bothHeld(repo, h, ZeroHash); err != nil || !ok {
		return err
	}
	if err := s.db.Set(DeltaKey(repo, h), nil, kv.NoSync); err != nil {
		return fmt.Errorf("objects: put delta of %s: %w", h, err)
	}
	s.gc.note(repo, false, h)
	return nil
}
