package objects

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/weir-dev/weir/kv"
)

// Garbage collection: what the store does so that a collector (package
// gc) can delete unreachable objects while pushes, runs and REST commits
// write new ones.
//
// The collector marks what refs reach without any lock, then sweeps: it
// takes the write barrier exclusively, marks what changed meanwhile and
// deletes, in one synced batch, the objects it listed before that are
// still unmarked. The store keeps three promises that make this safe:
//
//  1. Every write that makes an object visible in the database (Put,
//     PutDelta, PutNoDelta, a quarantine's commit, and package refs'
//     ref updates, through HoldWrites) holds the write barrier shared
//     while it writes, so no write lands in the middle of a sweep.
//  2. While a collection is open (BeginCollection until End) every such
//     write records its hashes (Sweeper.Touched): an object written, or
//     written again, after the collector listed the candidates is marked
//     before the sweep, with everything it names.
//  3. Put records the time of every write for a while (KeepRecent,
//     DefaultRecentWindow): the catalog writes a data commit's objects
//     with Put and only later moves a ref to them (a run's data commit
//     is written when the run ends, committed with the push), so objects
//     written within the collector's grace period are roots
//     (Sweeper.Recent), and so is what they name.
//
// A sweep deletes its objects in one batch, so after any crash the store
// holds either all of them or none: every object that survives a sweep
// was marked, and marking follows every link, so every surviving object
// still has everything it names (a push's connectivity check may stop at
// any object the repo holds, reachable or not, and relies on this).
//
// What a writer decided before a sweep and commits after it is checked
// again at commit time, once any sweep has deleted objects in this
// process (Sweeps > 0): a ref update's new values must exist (refs.DB
// checks them under HoldWrites), and a quarantine made before a sweep
// checks, when it commits, that every object its own objects name is
// still there, else the push is refused with ErrCollected and nothing
// moves (the client pushes again). A pack still being received when a
// sweep deletes one of its bases fails its own ingestion or connectivity
// check the same way: refused, nothing moved.
//
// The collector runs in the server's process (weir serve's periodic
// collection) or alone (weir gc, which opens the database while the
// server is stopped: Pebble allows one process); the barrier and the
// records are in memory because only writers of the same process can
// race a sweep.

// ErrCollected is returned by a quarantine's commit when an object its
// objects name was deleted by a garbage collection after the push began.
var ErrCollected = errors.New("objects: an object this push relies on was collected while it was received; push again")

// ErrCollecting is returned by BeginCollection while another collection
// of the same store is open.
var ErrCollecting = errors.New("objects: a garbage collection is already running")

// DefaultRecentWindow is how long Put's write times are kept when
// KeepRecent was not called.
const DefaultRecentWindow = time.Hour

// recentBucket is the objects Put during one minute.
type recentBucket struct {
	start time.Time
	objs  map[RepoName]map[Hash]struct{}
}

// gcState is the store's side of garbage collection.
type gcState struct {
	barrier sync.RWMutex // shared: a visible write; exclusive: a sweep
	sweeps  atomic.Uint64

	mu         sync.Mutex
	collecting bool
	touched    map[RepoName]map[Hash]struct{}
	window     time.Duration // 0: DefaultRecentWindow
	recent     []recentBucket
	now        func() time.Time
}

func (g *gcState) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

// note records that hashes of repo were written: as touched while a
// collection is open and, when recent is set, with the time of the write.
func (g *gcState) note(repo RepoName, recent bool, hashes ...Hash) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.collecting {
		set := g.touched[repo]
		if set == nil {
			set = make(map[Hash]struct{})
			g.touched[repo] = set
		}
		for _, h := range hashes {
			set[h] = struct{}{}
		}
	}
	if !recent {
		return
	}
	now := g.clock()
	minute := now.Truncate(time.Minute)
	if n := len(g.recent); n == 0 || !g.recent[n-1].start.Equal(minute) {
		g.prune(now)
		g.recent = append(g.recent, recentBucket{start: minute, objs: make(map[RepoName]map[Hash]struct{})})
	}
	b := &g.recent[len(g.recent)-1]
	set := b.objs[repo]
	if set == nil {
		set = make(map[Hash]struct{})
		b.objs[repo] = set
	}
	for _, h := range hashes {
		set[h] = struct{}{}
	}
}

// noteCommitted records a quarantine's objects as touched, while a
// collection is open (they are written after its candidates were listed,
// and a ref reaches them, or they are garbage for the next collection).
func (g *gcState) noteCommitted(repo RepoName, ingested map[Hash]Type) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.collecting || len(ingested) == 0 {
		return
	}
	set := g.touched[repo]
	if set == nil {
		set = make(map[Hash]struct{}, len(ingested))
		g.touched[repo] = set
	}
	for h := range ingested {
		set[h] = struct{}{}
	}
}

// prune drops the buckets older than the window. g.mu is held.
func (g *gcState) prune(now time.Time) {
	w := g.window
	if w <= 0 {
		w = DefaultRecentWindow
	}
	i := 0
	for i < len(g.recent) && g.recent[i].start.Add(time.Minute).Before(now.Add(-w)) {
		i++
	}
	g.recent = append(g.recent[:0], g.recent[i:]...)
}

// KeepRecent sets how long the store remembers the time of each Put (at
// least a collector's grace period; weir serve sets it to --gc-grace).
func (s *Store) KeepRecent(d time.Duration) {
	s.gc.mu.Lock()
	s.gc.window = d
	s.gc.mu.Unlock()
}

// HoldWrites holds the write barrier shared until the returned function
// is called: package refs holds it around each ref update, so that no
// ref moves in the middle of a sweep.
func (s *Store) HoldWrites() (release func()) {
	s.gc.barrier.RLock()
	return s.gc.barrier.RUnlock
}

// Sweeps returns how many sweeps of this process deleted objects. Once it
// is not zero, writers check that what they point at still exists.
func (s *Store) Sweeps() uint64 { return s.gc.sweeps.Load() }

// Collection is one garbage collection of the store in progress: from
// BeginCollection, every visible write is recorded, until End.
type Collection struct {
	s     *Store
	ended bool
}

// BeginCollection opens a collection. Only one may be open at a time
// (ErrCollecting). The caller must End it.
func (s *Store) BeginCollection() (*Collection, error) {
	g := &s.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.collecting {
		return nil, ErrCollecting
	}
	g.collecting = true
	g.touched = make(map[RepoName]map[Hash]struct{})
	return &Collection{s: s}, nil
}

// End closes the collection; writes are no longer recorded. Idempotent.
func (c *Collection) End() {
	g := &c.s.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	g.collecting = false
	g.touched = nil
}

// Sweep holds the write barrier exclusively while fn runs: no object is
// written and no ref moves until it returns. fn should mark what changed
// since the collection began (Sweeper.Touched, Sweeper.Recent, the refs
// again) and then Delete.
func (c *Collection) Sweep(fn func(sw *Sweeper) error) error {
	if c.ended {
		return errors.New("objects: sweep of an ended collection")
	}
	c.s.gc.barrier.Lock()
	defer c.s.gc.barrier.Unlock()
	return fn(&Sweeper{s: c.s})
}

// Sweeper is what a collector may do while it holds the write barrier.
type Sweeper struct {
	s       *Store
	deleted bool
}

// Touched returns the objects of repo written since the collection began.
func (sw *Sweeper) Touched(repo RepoName) []Hash {
	g := &sw.s.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Hash, 0, len(g.touched[repo]))
	for h := range g.touched[repo] {
		out = append(out, h)
	}
	return out
}

// Recent returns the objects of repo Put at or after since (to the
// minute, rounded down: a little more than asked), as far as the store
// remembers (KeepRecent).
func (sw *Sweeper) Recent(repo RepoName, since time.Time) []Hash {
	g := &sw.s.gc
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Hash
	for _, b := range g.recent {
		if b.start.Add(time.Minute).Before(since) {
			continue
		}
		for h := range b.objs[repo] {
			out = append(out, h)
		}
	}
	return out
}

// Freed is what one Delete removed.
type Freed struct {
	Objects      int   // object keys deleted
	ObjectBytes  int64 // their keys and values, and the spill chunks freed with them
	DeltaRecords int   // delta records deleted
	Spills       int   // spills deleted whole
}

// Delete deletes the objects of repo in doomed (with their stored sizes,
// as ForEachObject listed them), every delta record whose
// object or base is gone with them, and every spill
// of repo that no remaining object points into and no open quarantine is
// writing, in one synced batch; extra may add writes of its own to the
// batch (the catalog drops its records of deleted blobs there). The
// caller must have marked every object
// it keeps, with everything those name: doomed must hold nothing a
// surviving object names.
func (sw *Sweeper) Delete(ctx context.Context, repo RepoName, doomed map[Hash]int64, extra func(w kv.Writer) error) (Freed, error) {
	var f Freed
	db := sw.s.db
	b := db.NewBatch()
	defer b.Close()
	// Objects: the doomed go. Only a repo with spills needs every other
	// object read, to know which spills they still use.
	slo := append(append([]byte{'s'}, repo...), 0)
	shi := append(append([]byte{'s'}, repo...), 1)
	hasSpills, err := anyKey(db, slo, shi)
	if err != nil {
		return f, err
	}
	liveSpills := map[uint64]bool{}
	if hasSpills {
		err = iterRepo(db, repo, func(k, v []byte) error {
			var h Hash
			copy(h[:], k[len(k)-20:])
			if _, gone := doomed[h]; gone {
				return nil
			}
			if sv, err := parseValue(v); err == nil && sv.spilled {
				liveSpills[sv.spill] = true
			}
			return nil
		})
		if err != nil {
			return f, err
		}
	}
	for h, n := range doomed {
		// Only a sweep deletes objects and one collection runs at a
		// time: every candidate listed is still there.
		if err := b.Delete(ObjectKey(repo, h)); err != nil {
			return f, err
		}
		f.Objects++
		f.ObjectBytes += n
	}
	// Delta records whose object or base is gone with them.
	dlo := append(append([]byte{'d'}, repo...), 0)
	dhi := append(append([]byte{'d'}, repo...), 1)
	it, err := db.NewIter(dlo, dhi)
	if err != nil {
		return f, err
	}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < 20 {
			continue
		}
		var h Hash
		copy(h[:], k[len(k)-20:])
		v, err := it.Value()
		if err != nil {
			it.Close()
			return f, err
		}
		_, drop := doomed[h]
		if !drop {
			if d, err := parseDelta(v); err != nil {
				drop = true
			} else if !d.Base.IsZero() {
				_, drop = doomed[d.Base]
			}
		}
		if drop {
			if err := b.Delete(bytes.Clone(k)); err != nil {
				it.Close()
				return f, err
			}
			f.DeltaRecords++
		}
	}
	if err := it.Close(); err != nil {
		return f, err
	}
	// Spills no surviving object points into. One with its 'S' marker
	// belongs to a quarantine that has not committed: left alone.
	if hasSpills {
		if err := sw.deadSpills(repo, slo, shi, liveSpills, b, &f); err != nil {
			return f, err
		}
	}
	if extra != nil {
		if err := extra(b); err != nil {
			return f, err
		}
	}
	if err := ctx.Err(); err != nil {
		return f, err
	}
	if b.Empty() {
		return f, nil
	}
	if err := b.Commit(kv.Sync); err != nil {
		return f, fmt.Errorf("objects: sweep %s: %w", repo, err)
	}
	if f.Objects > 0 && !sw.deleted {
		sw.deleted = true
		sw.s.gc.sweeps.Add(1)
	}
	return f, nil
}

// anyKey reports whether [lo, hi) holds a key.
func anyKey(db kv.Reader, lo, hi []byte) (bool, error) {
	it, err := db.NewIter(lo, hi)
	if err != nil {
		return false, err
	}
	ok := it.First()
	return ok, it.Close()
}

// deadSpills adds to b the deletion of every spill of repo that is not
// live and has no marker.
func (sw *Sweeper) deadSpills(repo RepoName, slo, shi []byte, live map[uint64]bool, b kv.Batch, f *Freed) error {
	db := sw.s.db
	it, err := db.NewIter(slo, shi)
	if err != nil {
		return err
	}
	type spillSize struct {
		id    uint64
		bytes int64
	}
	var dead []spillSize
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < len(slo)+12 {
			continue
		}
		id := binary.BigEndian.Uint64(k[len(slo) : len(slo)+8])
		if live[id] {
			continue
		}
		v, err := it.Value()
		if err != nil {
			it.Close()
			return err
		}
		if n := len(dead); n > 0 && dead[n-1].id == id {
			dead[n-1].bytes += int64(len(k) + len(v))
			continue
		}
		dead = append(dead, spillSize{id, int64(len(k) + len(v))})
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, sp := range dead {
		_, closer, err := db.Get(spillMarkerKey(sp.id))
		if err == nil {
			closer.Close()
			continue // still being written
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		lo, hi := spillBounds(repo, sp.id)
		if err := b.DeleteRange(lo, hi); err != nil {
			return err
		}
		f.Spills++
		f.ObjectBytes += sp.bytes
	}
	return nil
}

// StoredObject is one object as ForEachObject lists it.
type StoredObject struct {
	Hash  Hash
	Type  Type
	Bytes int64 // its key and stored value (a spilled object's zlib stream not counted)
}

// ForEachObject calls fn for every object repo holds, in hash order, from
// one consistent view of the database.
func (s *Store) ForEachObject(ctx context.Context, repo RepoName, fn func(o StoredObject) error) error {
	return iterRepo(s.db, repo, func(key, value []byte) error {
		if len(key) < 20 {
			return nil
		}
		o := StoredObject{Type: valueType(value), Bytes: int64(len(key) + len(value))}
		copy(o.Hash[:], key[len(key)-20:])
		return fn(o)
	})
}

// Links returns the type of object h and the objects it names: a
// commit's tree and parents, a tree's entries (gitlinks too: a data
// commit's "code" entry names its code commit in the same repo, which a
// collector keeps when the repo has it), a tag's target. A blob names
// nothing and is not read.
//
// An object stored as a delta value (chain.go) also names its base, which
// must outlive it whatever refs reach.
func (s *Store) Links(ctx context.Context, repo RepoName, h Hash) (Type, []Hash, error) {
	sv, err := getValue(s.db, repo, h)
	if err != nil {
		return 0, nil, err
	}
	var links []Hash
	if sv.delta {
		links = append(links, sv.base)
	}
	if sv.typ == plumbing.BlobObject {
		return sv.typ, links, nil
	}
	data, err := materialize(valueGetter(s.db, repo), s.db, repo, h, sv, nil, s.cache)
	if err != nil {
		return 0, nil, err
	}
	named, err := allLinks(h, sv.typ, data)
	return sv.typ, append(links, named...), err
}

// allLinks is objectLinks with gitlinks.
func allLinks(h Hash, typ Type, data []byte) ([]Hash, error) {
	var out []Hash
	if typ == plumbing.TreeObject {
		err := walkTree(data, func(mode uint32, modeText, name []byte, id Hash) error {
			out = append(out, id)
			return nil
		})
		if err != nil {
			return nil, &CheckError{Object: h, Check: "badTree", Detail: err.Error()}
		}
		return out, nil
	}
	ls, err := objectLinks(h, typ, data)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		out = append(out, l.h)
	}
	return out, nil
}

// verifyAfterSweep checks, for a quarantine made before a sweep that
// deleted objects, that every object its own objects name, and every tip,
// is in the quarantine or the repo. q.mu is held.
func (q *Quarantine) verifyAfterSweep(tips []Hash) error {
	for _, t := range tips {
		if t.IsZero() {
			continue
		}
		ok, err := hasObject(q.batch, q.repo, t)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w (%s)", ErrCollected, t)
		}
	}
	if q.sweeps == q.store.gc.sweeps.Load() {
		return nil
	}
	for h, typ := range q.ingested {
		sv, err := getValue(q.batch, q.repo, h)
		if err != nil {
			return err
		}
		if sv.delta {
			ok, err := hasObject(q.batch, q.repo, sv.base)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w (%s, the delta base of %s)", ErrCollected, sv.base, h)
			}
		}
		if typ == plumbing.BlobObject {
			continue
		}
		o, err := getObject(q.batch, q.repo, h, q.store.cache)
		if err != nil {
			return err
		}
		ls, err := objectLinks(h, o.Type, o.Data)
		if err != nil {
			return err
		}
		for _, l := range ls {
			ok, err := hasObject(q.batch, q.repo, l.h)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w (%s, named by %s)", ErrCollected, l.h, h)
			}
		}
	}
	return nil
}
