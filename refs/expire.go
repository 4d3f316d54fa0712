package refs

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// Reflog expiry, for garbage collection (package gc).
//
// A reflog entry names two objects (Old, New); a collector keeps both
// until the entry expires, so main@{1} and a deleted branch stay
// readable for the expiry period. Expiry deletes entries, never moves a
// ref; it takes the ref's lock stripe, so it never races an Update of the
// same ref, and an entry's sequence number is never reused (Update
// appends after the last one it knows, and expiry keeps the newest entry
// of a ref that still exists).

// ReflogNames lists every ref of repo that has a reflog, deleted refs
// included (a deletion keeps the log), sorted.
func (d *DB) ReflogNames(ctx context.Context, repo objects.RepoName) ([]Name, error) {
	lo := append(append([]byte{'l'}, repo...), 0)
	it, err := d.db.NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return nil, fmt.Errorf("refs: reflogs: %w", err)
	}
	var out []Name
	for valid := it.First(); valid; {
		k := it.Key()
		rest := k[len(lo):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			valid = it.Next()
			continue
		}
		name := Name(rest[:i])
		out = append(out, name)
		valid = it.SeekGE(append(logPrefix(repo, name)[:len(lo)+i], 1))
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("refs: reflogs: %w", err)
	}
	return out, nil
}

// ExpireReflog deletes the reflog entries of one ref written before
// cutoff (unix nanoseconds), durably, and returns how many it deleted.
// When the ref exists its newest entry is always kept. With all set,
// every entry goes, the newest too (the ref's own log after the ref was
// deleted by a collection).
func (d *DB) ExpireReflog(ctx context.Context, repo objects.RepoName, name Name, cutoff int64, all bool) (int, error) {
	if err := CheckName(name); err != nil {
		return 0, err
	}
	unlock := d.lock(repo, []Name{name})
	defer unlock()
	exists := false
	if _, closer, err := d.db.Get(refKey(repo, name)); err == nil {
		closer.Close()
		exists = true
	}
	lo := logPrefix(repo, name)
	it, err := d.db.NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return 0, fmt.Errorf("refs: expire reflog: %w", err)
	}
	var doomed [][]byte
	var lastSeq uint64
	var any bool
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := it.Value()
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("refs: expire reflog: %w", err)
		}
		any = true
		lastSeq = binary.BigEndian.Uint64(k[len(k)-8:])
		if all || (len(v) >= 48 && int64(binary.BigEndian.Uint64(v[40:48])) < cutoff) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("refs: expire reflog: %w", err)
	}
	if exists && !all && len(doomed) > 0 && binary.BigEndian.Uint64(doomed[len(doomed)-1][len(lo):]) == lastSeq {
		doomed = doomed[:len(doomed)-1] // the ref's newest entry stays
	}
	if len(doomed) == 0 {
		return 0, nil
	}
	b := d.db.NewBatch()
	defer b.Close()
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	if err := b.Commit(kv.Sync); err != nil {
		return 0, fmt.Errorf("refs: expire reflog: %w", err)
	}
	if any {
		// Sequence numbers go on from the last one ever written, even
		// when every entry is gone.
		id := string(repo) + "\x00" + string(name)
		d.seqMu.Lock()
		if cur, ok := d.seq[id]; !ok || cur < lastSeq+1 {
			d.seq[id] = lastSeq + 1
		}
		d.seqMu.Unlock()
	}
	return len(doomed), nil
}
