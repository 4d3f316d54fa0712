package objects

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/weir-dev/weir/kv"
)

// A spill is where a push keeps what does not fit its memory budget: an
// append-only byte log cut into chunks, written straight to the database
// (not to the quarantine's batch) while the push is received.
//
//	key                                       value
//	's' <repo> 0x00 <spill:8> <chunk:4>       spillChunk bytes of the log (the last chunk may be shorter)
//	'S' <spill:8>                             <repo>: the spill's quarantine has not committed yet
//
// Spill and chunk numbers are big-endian, so a spill's chunks are one key
// range and a repo's spills are the range ['s' repo 0x00, 's' repo 0x01).
//
// Nothing reads a spill except through a stored value that points into it
// (see storedValue), and such values reach the database only in the
// quarantine's commit, so a spill is invisible until then. The 'S' marker
// is written before the first chunk, in the same write-ahead log, and is
// deleted by that same commit; a spill whose quarantine is closed without
// committing is deleted at once, and one left behind by a crash still has
// its marker and is deleted when the database is next opened (sweepSpills).
//
// A spill that holds objects (the objects spill of a push) stays after the
// commit; one that only held delta instructions while a pack was resolved
// is deleted when IngestPack returns.
type spill struct {
	db     kv.DB
	repo   RepoName
	id     uint64
	size   int64  // bytes appended so far
	tail   []byte // the last chunk, not yet full (cap spillChunk)
	dirty  bool   // tail holds bytes the database has not seen
	marked bool   // the 'S' marker is written
}

// spillChunk is the size of one chunk of a spill.
const spillChunk = 64 << 10

func newSpill(db kv.DB, repo RepoName) *spill {
	return &spill{db: db, repo: repo}
}

// spillChunkKey is 's' <repo> 0x00 <id:8> <chunk:4>.
func spillChunkKey(repo RepoName, id uint64, chunk uint32) []byte {
	k := make([]byte, 0, 1+len(repo)+1+8+4)
	k = append(k, 's')
	k = append(k, repo...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, id)
	return binary.BigEndian.AppendUint32(k, chunk)
}

// spillBounds is the key range of every chunk of spill id.
func spillBounds(repo RepoName, id uint64) (lower, upper []byte) {
	lower = spillChunkKey(repo, id, 0)
	lower = lower[:len(lower)-4]
	// The next id's prefix; past the last id the carry turns the 0x00
	// separator into 0x01, the end of the repo's spills.
	upper = bytes.Clone(lower)
	for i := len(upper) - 1; i >= 0; i-- {
		upper[i]++
		if upper[i] != 0 {
			break
		}
	}
	return lower, upper
}

// spillMarkerKey is 'S' <id:8>.
func spillMarkerKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'S'}, id)
}

// start picks an unused id and writes the marker, before the first chunk.
func (s *spill) start() error {
	for {
		s.id = rand.Uint64()
		_, closer, err := s.db.Get(spillMarkerKey(s.id))
		if err == nil {
			closer.Close()
			continue
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("objects: spill: %w", err)
		}
		_, closer, err = s.db.Get(spillChunkKey(s.repo, s.id, 0))
		if err == nil {
			closer.Close()
			continue
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("objects: spill: %w", err)
		}
		break
	}
	if err := s.db.Set(spillMarkerKey(s.id), []byte(s.repo), kv.NoSync); err != nil {
		return fmt.Errorf("objects: spill: %w", err)
	}
	s.marked = true
	s.tail = make([]byte, 0, spillChunk)
	return nil
}

// Write appends p to the log.
func (s *spill) Write(p []byte) (int, error) {
	if !s.marked {
		if err := s.start(); err != nil {
			return 0, err
		}
	}
	n := 0
	for len(p) > 0 {
		c := min(len(p), spillChunk-len(s.tail))
		s.tail = append(s.tail, p[:c]...)
		s.dirty = true
		p = p[c:]
		n += c
		s.size += int64(c)
		if len(s.tail) == spillChunk {
			if err := s.sync(); err != nil {
				return n, err
			}
			s.tail = s.tail[:0]
		}
	}
	return n, nil
}

// sync writes the tail chunk, full or not, so readers see every byte
// appended so far. A partial chunk is written again as it grows.
func (s *spill) sync() error {
	if !s.dirty {
		return nil
	}
	chunk := uint32((s.size - int64(len(s.tail))) / spillChunk)
	if err := s.db.Set(spillChunkKey(s.repo, s.id, chunk), s.tail, kv.NoSync); err != nil {
		return fmt.Errorf("objects: spill write: %w", err)
	}
	s.dirty = false
	return nil
}

// used reports whether anything was ever written to the spill.
func (s *spill) used() bool { return s.marked }

// drop deletes the spill: its chunks and its marker.
func (s *spill) drop() error {
	if !s.marked {
		return nil
	}
	s.marked = false
	s.tail = nil
	return dropSpill(s.db, s.repo, s.id)
}

func dropSpill(db kv.DB, repo RepoName, id uint64) error {
	lo, hi := spillBounds(repo, id)
	b := db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(lo, hi); err != nil {
		return err
	}
	if err := b.Delete(spillMarkerKey(id)); err != nil {
		return err
	}
	if err := b.Commit(kv.NoSync); err != nil {
		return fmt.Errorf("objects: drop spill: %w", err)
	}
	return nil
}

// sweepSpills deletes every spill whose quarantine never committed: after
// a crash their markers are still there.
func sweepSpills(db kv.DB) error {
	it, err := db.NewIter([]byte{'S'}, []byte{'T'})
	if err != nil {
		return err
	}
	type orphan struct {
		repo RepoName
		id   uint64
	}
	var orphans []orphan
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			continue
		}
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		orphans = append(orphans, orphan{repo: RepoName(v), id: binary.BigEndian.Uint64(k[1:])})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, o := range orphans {
		if err := dropSpill(db, o.repo, o.id); err != nil {
			return err
		}
	}
	return nil
}

// spillReader reads n bytes of a spill from off, a chunk at a time,
// through r (the database, or a batch over it).
type spillReader struct {
	r     reader
	repo  RepoName
	id    uint64
	off   int64 // next byte to read
	left  int64 // bytes still to read
	chunk []byte
	at    int64 // log offset of chunk[0]; -1 when no chunk is loaded
}

func newSpillReader(r reader, repo RepoName, id uint64, off, n int64) *spillReader {
	return &spillReader{r: r, repo: repo, id: id, off: off, left: n, at: -1}
}

func (s *spillReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if s.at < 0 || s.off < s.at || s.off >= s.at+int64(len(s.chunk)) {
		idx := s.off / spillChunk
		v, closer, err := s.r.Get(spillChunkKey(s.repo, s.id, uint32(idx)))
		if errors.Is(err, kv.ErrNotFound) {
			return 0, fmt.Errorf("%w: spill %x chunk %d missing", ErrBadObject, s.id, idx)
		}
		if err != nil {
			return 0, fmt.Errorf("objects: read spill: %w", err)
		}
		start := s.off - idx*spillChunk
		if start >= int64(len(v)) {
			closer.Close()
			return 0, fmt.Errorf("%w: spill %x chunk %d is short", ErrBadObject, s.id, idx)
		}
		if avail := v[start:]; s.left <= int64(len(p)) && s.left <= int64(len(avail)) {
			// The rest of the read is in this chunk: copy it straight
			// out (a small object costs no chunk-sized copy).
			n := copy(p, avail[:s.left])
			closer.Close()
			s.off += int64(n)
			s.left -= int64(n)
			return n, nil
		}
		s.chunk = append(s.chunk[:0], v...)
		closer.Close()
		s.at = idx * spillChunk
	}
	c := s.chunk[s.off-s.at:]
	n := copy(p, c[:min(int64(len(c)), s.left)])
	s.off += int64(n)
	s.left -= int64(n)
	return n, nil
}
