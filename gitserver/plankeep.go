package gitserver

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// The plan the background worker makes after a push (warmPlan) is kept in
// the database too, so that after a restart the first clone of a repo
// extends it instead of walking the whole history:
//
//	'g' <repo> 0x00 "plan" 0x00 <chunk:4 BE>
//
//	chunk 0   <version:1 = 1> <cache key:20> <commits:uvarint>
//	          <roots:uvarint> <root:20>* <objects:uvarint>
//	chunk i   <hash:20> <kind:1> <name hash:4 BE>*   (up to planChunkObjects)
//
// One repo keeps one plan, replaced whole in one batch. It is only ever a
// base (planCache): it is used when each of its roots is still a root of
// the clone, or an ancestor of one, and it is read once per repo and
// process. A value that does not parse is ignored (the clone walks).

// planChunkObjects is the number of objects per chunk (25 bytes each:
// under 1 MiB a value).
const planChunkObjects = 40000

const planKeepVersion = 1

// planKeepPrefix is 'g' <repo> 0x00 "plan" 0x00.
func planKeepPrefix(repo objects.RepoName) []byte {
	k := make([]byte, 0, 1+len(repo)+1+len("plan")+1+4)
	k = append(k, 'g')
	k = append(k, repo...)
	k = append(k, 0)
	k = append(k, "plan"...)
	return append(k, 0)
}

func planKeepKey(repo objects.RepoName, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(planKeepPrefix(repo), chunk)
}

// keepPlan writes pe as repo's kept plan, replacing the one before.
func keepPlan(db kv.DB, repo objects.RepoName, pe *planEntry) error {
	pl := pe.pl
	b := db.NewBatch()
	defer b.Close()
	prefix := planKeepPrefix(repo)
	if err := b.DeleteRange(prefix, kv.PrefixEnd(prefix)); err != nil {
		return err
	}
	head := []byte{planKeepVersion}
	head = append(head, pe.key[:]...)
	head = binary.AppendUvarint(head, uint64(pl.commits))
	head = binary.AppendUvarint(head, uint64(len(pe.roots)))
	for _, r := range pe.roots {
		head = append(head, r[:]...)
	}
	head = binary.AppendUvarint(head, uint64(len(pl.objs)))
	if err := b.Set(planKeepKey(repo, 0), head); err != nil {
		return err
	}
	for c := 0; c*planChunkObjects < len(pl.objs); c++ {
		objs := pl.objs[c*planChunkObjects : min((c+1)*planChunkObjects, len(pl.objs))]
		v := make([]byte, 0, 25*len(objs))
		for i, h := range objs {
			v = append(v, h[:]...)
			v = append(v, pl.kinds[c*planChunkObjects+i])
			v = binary.BigEndian.AppendUint32(v, pl.names[h])
		}
		if err := b.Set(planKeepKey(repo, uint32(c+1)), v); err != nil {
			return err
		}
	}
	if err := b.Commit(kv.NoSync); err != nil {
		return fmt.Errorf("gitserver: keep the plan of %s: %w", repo, err)
	}
	return nil
}

// loadPlan reads repo's kept plan; nil when there is none or it does not
// parse.
func loadPlan(db kv.Reader, repo objects.RepoName) *planEntry {
	v, closer, err := db.Get(planKeepKey(repo, 0))
	if err != nil {
		return nil
	}
	head := append([]byte(nil), v...)
	closer.Close()
	if len(head) < 1+sha1.Size || head[0] != planKeepVersion {
		return nil
	}
	pe := &planEntry{repo: repo}
	copy(pe.key[:], head[1:])
	rest := head[1+sha1.Size:]
	uv := func() (uint64, bool) {
		n, w := binary.Uvarint(rest)
		if w <= 0 {
			return 0, false
		}
		rest = rest[w:]
		return n, true
	}
	commits, ok1 := uv()
	nroots, ok2 := uv()
	if !ok1 || !ok2 || nroots > uint64(len(rest))/sha1.Size {
		return nil
	}
	pe.roots = make([]objects.Hash, nroots)
	for i := range pe.roots {
		copy(pe.roots[i][:], rest[i*sha1.Size:])
	}
	rest = rest[nroots*sha1.Size:]
	nobjs, ok := uv()
	if !ok || len(rest) != 0 || nobjs > planCacheMaxHashes || commits > nobjs || len(pe.roots) == 0 {
		return nil
	}
	pl := &packList{
		objs:    make([]objects.Hash, 0, nobjs),
		kinds:   make([]uint8, 0, nobjs),
		commits: int(commits),
		names:   make(map[objects.Hash]uint32, nobjs),
	}
	for c := uint32(1); uint64(len(pl.objs)) < nobjs; c++ {
		v, closer, err := db.Get(planKeepKey(repo, c))
		if err != nil {
			return nil
		}
		good := len(v)%25 == 0 && len(v) > 0 && uint64(len(pl.objs)+len(v)/25) <= nobjs
		for ; good && len(v) > 0; v = v[25:] {
			var h objects.Hash
			copy(h[:], v)
			k := v[20]
			if t := plumbing.ObjectType(k &^ kindWanted); t < plumbing.CommitObject || t > plumbing.TagObject {
				good = false
				break
			}
			pl.objs = append(pl.objs, h)
			pl.kinds = append(pl.kinds, k)
			if name := binary.BigEndian.Uint32(v[21:]); name != 0 {
				pl.names[h] = name
			}
		}
		closer.Close()
		if !good {
			return nil
		}
	}
	pe.pl = pl
	return pe
}
