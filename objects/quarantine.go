package objects

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/storer"
	kzlib "github.com/klauspost/compress/zlib"
	"github.com/weir-dev/weir/kv"
)

// ErrClosed is returned by a Quarantine used after Close.
var ErrClosed = errors.New("objects: quarantine closed")

// Repo returns the repo the quarantine belongs to.
func (q *Quarantine) Repo() RepoName { return q.repo }

// IngestPack reads one packfile (version 2 or 3) from r, verifies its
// trailing SHA-1, resolves its ofs- and ref-deltas (a thin pack's bases may
// be in the quarantine or the repo), and writes every object into the
// quarantine. It returns the hashes of the pack's objects in pack order.
//
// It reads exactly the pack and nothing after it. On any error (malformed
// pack: ErrBadPack; over Limits: ErrTooLarge, as soon as a limit is
// crossed) nothing is written.
//
// Its memory does not grow with the pack: objects past the quarantine's
// in-memory budget go to a spill in the database, invisible until
// CommitWith (see pack.go for the whole budget).
//
// Non-delta entries are stored with their original zlib bytes; resolved
// deltas are deflated once at the fastest level.
func (q *Quarantine) IngestPack(ctx context.Context, r io.Reader) ([]Hash, error) {
	if err := q.usable(); err != nil {
		return nil, err
	}
	in := newIngest(ctx, q)
	defer in.close()
	if err := in.parse(r); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := in.resolve(); err != nil {
		return nil, err
	}
	if err := in.objs.sync(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.committed {
		return nil, ErrClosed
	}
	if q.batch.Empty() {
		q.batch.Close()
		q.batch = in.nb
	} else if err := q.batch.Apply(in.nb); err != nil {
		return nil, fmt.Errorf("objects: quarantine write: %w", err)
	}
	in.nb = nil
	if in.objs.used() {
		q.spills = append(q.spills, in.objs)
	}
	in.objs = nil
	if len(in.checked) > 0 {
		// A new map each time: Check reads the one it found without q.mu.
		m := make(map[Hash]checked, len(q.checked)+len(in.checked))
		for h, c := range q.checked {
			m[h] = c
		}
		for h, c := range in.checked {
			m[h] = c
		}
		q.checked = m
	}
	hashes := make([]Hash, len(in.entries))
	for i, e := range in.entries {
		hashes[i] = e.hash
		q.ingested[e.hash] = e.typ
	}
	return hashes, nil
}

// Put writes one object into the quarantine and returns its hash. An
// object larger than the in-memory budget allows goes to a spill.
func (q *Quarantine) Put(typ Type, data []byte) (Hash, error) {
	if !validType(typ) {
		return ZeroHash, fmt.Errorf("objects: put: invalid type %v", typ)
	}
	if int64(len(data)) > q.store.limits.MaxObjectBytes {
		return ZeroHash, fmt.Errorf("%w: object of %d bytes exceeds MaxObjectBytes (%d)", ErrTooLarge, len(data), q.store.limits.MaxObjectBytes)
	}
	h := plumbing.ComputeHash(typ, data)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.committed {
		return ZeroHash, ErrClosed
	}
	var v []byte
	if int64(len(data)) <= q.store.mem.inlineObject {
		v = encodeValue(typ, int64(len(data)), deflate(data))
	} else {
		sp := newSpill(q.store.db, q.repo)
		zw := zlibWriters.Get().(*kzlib.Writer)
		zw.Reset(sp)
		_, err := zw.Write(data)
		if err == nil {
			err = zw.Close()
		}
		zw.Reset(io.Discard)
		zlibWriters.Put(zw)
		if err == nil {
			err = sp.sync()
		}
		if err != nil {
			_ = sp.drop()
			return ZeroHash, fmt.Errorf("objects: quarantine write: %w", err)
		}
		q.spills = append(q.spills, sp)
		v = encodeSpilled(typ, int64(len(data)), sp.id, 0, sp.size)
	}
	if err := q.batch.Set(ObjectKey(q.repo, h), v); err != nil {
		return ZeroHash, fmt.Errorf("objects: quarantine write: %w", err)
	}
	q.ingested[h] = typ
	return h, nil
}

func (q *Quarantine) usable() error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed || q.committed {
		return ErrClosed
	}
	return nil
}

// Get returns object h from the quarantine or, failing that, the repo.
func (q *Quarantine) Get(ctx context.Context, h Hash) (*Object, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return nil, ErrClosed
	}
	return getObject(q.batch, q.repo, h, q.store.cache)
}

// Has reports whether h is in the quarantine or the repo.
func (q *Quarantine) Has(ctx context.Context, h Hash) (bool, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return false, ErrClosed
	}
	return hasObject(q.batch, q.repo, h)
}

// Raw is Store.Raw over the quarantine and the repo.
func (q *Quarantine) Raw(ctx context.Context, h Hash) (typ Type, size int64, zdata []byte, err error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return 0, 0, nil, ErrClosed
	}
	return getRaw(q.batch, q.repo, h, q.store.cache)
}

// Stat is Store.Stat over the quarantine and the repo: type and size,
// content not read.
func (q *Quarantine) Stat(ctx context.Context, h Hash) (Type, int64, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return 0, 0, ErrClosed
	}
	return statObject(q.batch, q.repo, h)
}

// value reads the stored value of h from the quarantine or the repo.
func (q *Quarantine) value(h Hash) (storedValue, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return storedValue{}, ErrClosed
	}
	return getValue(q.batch, q.repo, h)
}

// readInto inflates h, from the quarantine or the repo, into buf.
func (q *Quarantine) readInto(h Hash, buf []byte) (Type, []byte, error) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return 0, nil, ErrClosed
	}
	return readObjectInto(q.batch, q.repo, h, buf, q.store.cache)
}

// Ingested returns the hashes of every object written into the quarantine,
// sorted.
func (q *Quarantine) Ingested() []Hash {
	q.mu.RLock()
	defer q.mu.RUnlock()
	out := make([]Hash, 0, len(q.ingested))
	for h := range q.ingested {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// Storer adapts the quarantine plus the repo to go-git's read-only object
// storer, for pre-receive hooks that walk the pushed commits.
func (q *Quarantine) Storer() storer.EncodedObjectStorer {
	ctx := context.Background()
	return &goStorer{repo: q.repo, get: func(h Hash) (*Object, error) {
		return q.Get(ctx, h)
	}, has: func(h Hash) (bool, error) {
		return q.Has(ctx, h)
	}, raw: func(h Hash) (Type, int64, error) {
		return q.Stat(ctx, h)
	}, iter: func(fn func(key, value []byte) error) error {
		q.mu.RLock()
		defer q.mu.RUnlock()
		if q.closed {
			return ErrClosed
		}
		return iterRepo(q.batch, q.repo, fn)
	}}
}

// Committed reports whether the quarantine's objects were committed.
func (q *Quarantine) Committed() bool {
	q.mu.RLock()
	defer q.mu.RUnlock()
	return q.committed
}

// Close releases the quarantine. Unless its batch was committed, its objects
// are dropped: nothing of them ever reached the database. Close is
// idempotent.
func (q *Quarantine) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	q.ingested = nil
	err := q.batch.Close()
	if !q.committed {
		err = errors.Join(err, q.dropSpills())
	}
	q.spills = nil
	return err
}

// dropSpills deletes the quarantine's spills: nothing points into them.
func (q *Quarantine) dropSpills() error {
	var errs []error
	for _, sp := range q.spills {
		errs = append(errs, sp.drop())
	}
	q.spills = nil
	return errors.Join(errs...)
}

// CommitWith runs write on the quarantine's batch (package refs adds its
// ref updates there), holding the quarantine's lock, and commits the batch
// with kv.Sync: the objects
// and whatever write added become durable and visible together, or not at
// all. After a successful commit the quarantine is marked committed; Close
// must still be called. If write fails nothing is committed and the
// quarantine stays usable only for Close.
func (q *Quarantine) CommitWith(write func(w kv.Writer) error) error {
	return q.CommitWithTips(nil, write)
}

// CommitWithTips is CommitWith for a commit that makes refs point at
// tips: under the store's write barrier, once a garbage collection has
// deleted objects in this process, it checks that every tip is in the
// quarantine or the repo and, if a sweep ran since the quarantine was
// made, that every object its objects name still is; else it commits
// nothing and returns an error wrapping ErrCollected (gc.go).
func (q *Quarantine) CommitWithTips(tips []Hash, write func(w kv.Writer) error) error {
	release := q.store.HoldWrites()
	defer release()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return ErrClosed
	}
	if q.committed {
		return fmt.Errorf("objects: quarantine already committed")
	}
	if q.store.Sweeps() > 0 {
		if err := q.verifyAfterSweep(tips); err != nil {
			return err
		}
	}
	// The spills' markers go with the commit: from then on the spills
	// belong to the stored values that point into them.
	for _, sp := range q.spills {
		if err := q.batch.Delete(spillMarkerKey(sp.id)); err != nil {
			return fmt.Errorf("objects: commit quarantine: %w", err)
		}
	}
	if err := write(q.batch); err != nil {
		// The batch now holds a partial write; poison it so it can never
		// be committed later.
		q.closed = true
		q.ingested = nil
		_ = q.batch.Close()
		_ = q.dropSpills()
		return err
	}
	if err := q.batch.Commit(kv.Sync); err != nil {
		return fmt.Errorf("objects: commit quarantine: %w", err)
	}
	q.committed = true
	q.store.gc.noteCommitted(q.repo, q.ingested)
	return nil
}
