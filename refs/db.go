package refs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// ErrSymbolic is returned by Update for a ref that is symbolic: update its
// target instead.
var ErrSymbolic = errors.New("refs: ref is symbolic")

// numStripes is the number of ref lock stripes. Two refs share a stripe
// with probability 1/numStripes; sharing only serialises them.
const numStripes = 1024

// DB is the implementation of Store on a kv database (Pebble in the
// server, memkv in tests). It shares the objects store's database (keys
// 'r' and 'l', see doc.go).
//
// Locking: each ref maps to one of numStripes mutexes by a hash of (repo,
// name). Update locks the stripes of all its refs in ascending stripe
// order (so two updates never deadlock), reads and checks the old values,
// commits one synced batch, and unlocks. Reads take no locks: the kv
// contract gives each Get and iterator a consistent view.
type DB struct {
	objects *objects.Store
	db      kv.DB
	seed    maphash.Seed
	stripes [numStripes]sync.Mutex

	// seq caches the next reflog sequence number per ref ("repo\x00name").
	// An entry is read and written only while the ref's stripe is held.
	seqMu sync.Mutex
	seq   map[string]uint64

	now func() time.Time
}

var _ Store = (*DB)(nil)

// NewDB returns the ref store that shares store's database.
func NewDB(store *objects.Store) *DB {
	return &DB{
		objects: store,
		db:      store.DB(),
		seed:    maphash.MakeSeed(),
		seq:     make(map[string]uint64),
		now:     time.Now,
	}
}

// Key layout helpers. See doc.go.

func refPrefix(repo objects.RepoName) []byte {
	k := make([]byte, 0, 2+len(repo)+32)
	k = append(k, 'r')
	k = append(k, repo...)
	return append(k, 0)
}

func refKey(repo objects.RepoName, name Name) []byte {
	return append(refPrefix(repo), name...)
}

func logPrefix(repo objects.RepoName, name Name) []byte {
	k := make([]byte, 0, 1+len(repo)+1+len(name)+1+8)
	k = append(k, 'l')
	k = append(k, repo...)
	k = append(k, 0)
	k = append(k, name...)
	return append(k, 0)
}

func logKey(repo objects.RepoName, name Name, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(repo, name), seq)
}

const symPrefix = "ref: "

func decodeRef(name Name, v []byte) (Ref, error) {
	if bytes.HasPrefix(v, []byte(symPrefix)) {
		return Ref{Name: name, Target: Name(v[len(symPrefix):])}, nil
	}
	if len(v) != 20 {
		return Ref{}, fmt.Errorf("refs: corrupt value for %s (%d bytes)", name, len(v))
	}
	r := Ref{Name: name}
	copy(r.Hash[:], v)
	return r, nil
}

// Get returns one ref without following symbolic refs.
func (d *DB) Get(ctx context.Context, repo objects.RepoName, name Name) (Ref, error) {
	if err := CheckName(name); err != nil {
		return Ref{}, err
	}
	v, closer, err := d.db.Get(refKey(repo, name))
	if errors.Is(err, kv.ErrNotFound) {
		return Ref{}, fmt.Errorf("%w: %s in %s", ErrNotFound, name, repo)
	}
	if err != nil {
		return Ref{}, fmt.Errorf("refs: read %s: %w", name, err)
	}
	defer closer.Close()
	return decodeRef(name, v)
}

// maxSymlinkDepth bounds the chain of symbolic refs Resolve follows.
const maxSymlinkDepth = 5

// Resolve follows symbolic refs to a hash.
func (d *DB) Resolve(ctx context.Context, repo objects.RepoName, name Name) (objects.Hash, error) {
	for i := 0; i <= maxSymlinkDepth; i++ {
		r, err := d.Get(ctx, repo, name)
		if err != nil {
			return objects.ZeroHash, err
		}
		if r.Target == "" {
			return r.Hash, nil
		}
		name = r.Target
	}
	return objects.ZeroHash, fmt.Errorf("refs: symbolic ref chain longer than %d at %s", maxSymlinkDepth, name)
}

// List returns the refs of repo whose names start with prefix, sorted by
// name. Symbolic refs are listed with their Target, not resolved.
func (d *DB) List(ctx context.Context, repo objects.RepoName, prefix string) ([]Ref, error) {
	base := refPrefix(repo)
	lo := append(bytes.Clone(base), prefix...)
	it, err := d.db.NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return nil, fmt.Errorf("refs: list: %w", err)
	}
	var out []Ref
	for it.First(); it.Valid(); it.Next() {
		name := Name(it.Key()[len(base):])
		v, err := it.Value()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("refs: list: %w", err)
		}
		r, err := decodeRef(name, v)
		if err != nil {
			it.Close()
			return nil, err
		}
		out = append(out, r)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("refs: list: %w", err)
	}
	return out, nil
}

// Repos lists every repo that has at least one ref, sorted.
func (d *DB) Repos(ctx context.Context) ([]objects.RepoName, error) {
	it, err := d.db.NewIter([]byte{'r'}, []byte{'s'})
	if err != nil {
		return nil, fmt.Errorf("refs: repos: %w", err)
	}
	var out []objects.RepoName
	for valid := it.First(); valid; {
		k := it.Key()
		i := bytes.IndexByte(k, 0)
		if i < 0 {
			valid = it.Next()
			continue
		}
		repo := objects.RepoName(k[1:i])
		out = append(out, repo)
		next := append(append([]byte{'r'}, repo...), 1)
		valid = it.SeekGE(next)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("refs: repos: %w", err)
	}
	return out, nil
}

// Reflog returns the history of one ref, oldest first.
func (d *DB) Reflog(ctx context.Context, repo objects.RepoName, name Name) ([]LogEntry, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	lo := logPrefix(repo, name)
	it, err := d.db.NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return nil, fmt.Errorf("refs: reflog: %w", err)
	}
	var out []LogEntry
	for it.First(); it.Valid(); it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("refs: reflog: %w", err)
		}
		if len(v) < 48 {
			it.Close()
			return nil, fmt.Errorf("refs: corrupt reflog entry for %s", name)
		}
		var e LogEntry
		copy(e.Old[:], v[0:20])
		copy(e.New[:], v[20:40])
		e.UnixNano = int64(binary.BigEndian.Uint64(v[40:48]))
		e.Message = string(v[48:])
		out = append(out, e)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("refs: reflog: %w", err)
	}
	return out, nil
}

func (d *DB) stripe(repo objects.RepoName, name Name) int {
	var h maphash.Hash
	h.SetSeed(d.seed)
	h.WriteString(string(repo))
	h.WriteByte(0)
	h.WriteString(string(name))
	return int(h.Sum64() % numStripes)
}

// lock locks the stripes of names in ascending order and returns the
// unlock function.
func (d *DB) lock(repo objects.RepoName, names []Name) func() {
	idx := make([]int, 0, len(names))
	for _, n := range names {
		idx = append(idx, d.stripe(repo, n))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		d.stripes[i].Lock()
	}
	return func() {
		for j := len(idx) - 1; j >= 0; j-- {
			d.stripes[idx[j]].Unlock()
		}
	}
}

// nextSeq returns the next reflog sequence number of a ref. The caller
// holds the ref's stripe.
func (d *DB) nextSeq(repo objects.RepoName, name Name) (uint64, error) {
	id := string(repo) + "\x00" + string(name)
	d.seqMu.Lock()
	s, ok := d.seq[id]
	d.seqMu.Unlock()
	if ok {
		return s, nil
	}
	lo := logPrefix(repo, name)
	it, err := d.db.NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return 0, err
	}
	s = 0
	if it.Last() {
		k := it.Key()
		s = binary.BigEndian.Uint64(k[len(k)-8:]) + 1
	}
	if err := it.Close(); err != nil {
		return 0, err
	}
	return s, nil
}

func (d *DB) setSeq(repo objects.RepoName, name Name, next uint64) {
	d.seqMu.Lock()
	d.seq[string(repo)+"\x00"+string(name)] = next
	d.seqMu.Unlock()
}

// current reads a ref's direct value; ZeroHash if absent.
func (d *DB) current(repo objects.RepoName, name Name) (objects.Hash, error) {
	v, closer, err := d.db.Get(refKey(repo, name))
	if errors.Is(err, kv.ErrNotFound) {
		return objects.ZeroHash, nil
	}
	if err != nil {
		return objects.ZeroHash, fmt.Errorf("refs: read %s: %w", name, err)
	}
	defer closer.Close()
	r, err := decodeRef(name, v)
	if err != nil {
		return objects.ZeroHash, err
	}
	if r.Target != "" {
		return objects.ZeroHash, fmt.Errorf("update ref %s: %w (points to %s)", name, ErrSymbolic, r.Target)
	}
	return r.Hash, nil
}

// Update applies all updates or none, durably (one batch committed with
// kv.Sync). Each ref must hold its Old value (ZeroHash: must not
// exist); New == ZeroHash deletes. If q is non-nil its objects commit in
// the same write (q adds the ref writes to its own batch, under its own
// lock) and q is marked committed. Pass an untyped nil for no quarantine. A ref that moved yields a
// *StaleError naming it, and nothing is written.
//
// Every update appends one reflog entry to its ref (a deletion keeps the
// ref's reflog and records New == ZeroHash).
func (d *DB) Update(ctx context.Context, repo objects.RepoName, updates []Update, q Quarantine, message string) error {
	if len(updates) == 0 {
		return errors.New("refs: update: no refs to update")
	}
	if q != nil && q.Repo() != repo {
		return fmt.Errorf("refs: update: quarantine is for repo %s, not %s", q.Repo(), repo)
	}
	names := make([]Name, len(updates))
	seen := make(map[Name]bool, len(updates))
	for i, u := range updates {
		if err := CheckName(u.Name); err != nil {
			return err
		}
		if seen[u.Name] {
			return fmt.Errorf("refs: update: %s named twice", u.Name)
		}
		seen[u.Name] = true
		names[i] = u.Name
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	unlock := d.lock(repo, names)
	defer unlock()
	// The objects' write barrier: no ref moves in the middle of a garbage
	// collection's sweep, and once a sweep has deleted objects in this
	// process, every new value must still exist (objects/gc.go).
	var tips []objects.Hash
	for _, u := range updates {
		if !u.New.IsZero() {
			tips = append(tips, u.New)
		}
	}
	var commitQ func(write func(kv.Writer) error) error
	if q != nil {
		if tq, ok := q.(tipsQuarantine); ok {
			commitQ = func(write func(kv.Writer) error) error { return tq.CommitWithTips(tips, write) }
		} else {
			commitQ = q.CommitWith
		}
	} else {
		release := d.objects.HoldWrites()
		defer release()
		if d.objects.Sweeps() > 0 {
			for _, t := range tips {
				ok, err := d.objects.Has(ctx, repo, t)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("refs: update: %w: %s (collected, or never written)", objects.ErrNotFound, t)
				}
			}
		}
	}

	seqs := make([]uint64, len(updates))
	for i, u := range updates {
		cur, err := d.current(repo, u.Name)
		if err != nil {
			return err
		}
		if cur != u.Old {
			return &StaleError{Name: u.Name, Expected: u.Old, Actual: cur}
		}
		if seqs[i], err = d.nextSeq(repo, u.Name); err != nil {
			return fmt.Errorf("refs: update %s: %w", u.Name, err)
		}
	}
	now := d.now().UnixNano()
	write := func(b kv.Writer) error {
		for i, u := range updates {
			k := refKey(repo, u.Name)
			var err error
			if u.New.IsZero() {
				err = b.Delete(k)
			} else {
				err = b.Set(k, u.New[:])
			}
			if err != nil {
				return err
			}
			v := make([]byte, 0, 48+len(message))
			v = append(v, u.Old[:]...)
			v = append(v, u.New[:]...)
			v = binary.BigEndian.AppendUint64(v, uint64(now))
			v = append(v, message...)
			if err := b.Set(logKey(repo, u.Name, seqs[i]), v); err != nil {
				return err
			}
		}
		return nil
	}
	if q != nil {
		if err := commitQ(write); err != nil {
			return fmt.Errorf("refs: update: %w", err)
		}
	} else {
		b := d.db.NewBatch()
		if err := write(b); err != nil {
			b.Close()
			return fmt.Errorf("refs: update: %w", err)
		}
		if err := b.Commit(kv.Sync); err != nil {
			b.Close()
			return fmt.Errorf("refs: update: commit: %w", err)
		}
		b.Close()
	}
	for i, u := range updates {
		d.setSeq(repo, u.Name, seqs[i]+1)
	}
	return nil
}

// tipsQuarantine is a Quarantine that checks, when it commits, that the
// refs' new values survived any garbage collection since the push began
// (*objects.Quarantine).
type tipsQuarantine interface {
	CommitWithTips(tips []objects.Hash, write func(kv.Writer) error) error
}

// SetSymbolic points name (usually HEAD) at target, durably. The target
// need not exist yet (an empty repo's HEAD points at an unborn branch).
func (d *DB) SetSymbolic(ctx context.Context, repo objects.RepoName, name, target Name) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := CheckName(target); err != nil {
		return err
	}
	if target == name {
		return fmt.Errorf("refs: set symbolic %s: points to itself", name)
	}
	unlock := d.lock(repo, []Name{name})
	defer unlock()
	if err := d.db.Set(refKey(repo, name), []byte(symPrefix+string(target)), kv.Sync); err != nil {
		return fmt.Errorf("refs: set symbolic %s: %w", name, err)
	}
	return nil
}

// DeleteRepo deletes every ref and reflog entry of repo, durably. Objects
// are the objects package's to delete.
func (d *DB) DeleteRepo(ctx context.Context, repo objects.RepoName) error {
	b := d.db.NewBatch()
	defer b.Close()
	rp := refPrefix(repo)
	lp := append(append([]byte{'l'}, repo...), 0)
	if err := b.DeleteRange(rp, kv.PrefixEnd(rp)); err != nil {
		return err
	}
	if err := b.DeleteRange(lp, kv.PrefixEnd(lp)); err != nil {
		return err
	}
	if err := b.Commit(kv.Sync); err != nil {
		return fmt.Errorf("refs: delete repo %s: %w", repo, err)
	}
	d.seqMu.Lock()
	for k := range d.seq {
		if len(k) > len(repo) && k[:len(repo)] == string(repo) && k[len(repo)] == 0 {
			delete(d.seq, k)
		}
	}
	d.seqMu.Unlock()
	return nil
}
