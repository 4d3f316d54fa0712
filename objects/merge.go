package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// Three-way merge of trees, for the merge queue (hooks/merge.go): the tree
// of a merge commit from the trees of the merge base (base), the branch's
// head (ours) and the pushed commit (theirs). Pure: it reads trees from a
// TreeStore and writes the merged trees there, nothing else. It merges
// whole entries, never the lines of a file:
//
//	base   ours   theirs   result
//	 x      x       y       y          (only theirs changed)
//	 x      y       x       y          (only ours changed)
//	 x      y       y       y          (both made the same change; add/add of the same blob)
//	 -      y       z       conflict   (add/add, different)
//	 x      y       z       conflict   (both changed, differently), unless
//	                                   the one changed the mode and the other the
//	                                   content: both are taken (as git does)
//	 x      -       y       conflict   (delete/modify; likewise modify/delete)
//	 dir    dir'    dir''   the entries of the directories merged the same way
//	                         (a deleted directory: its entries deleted)
//	 file   dir     file'   conflict   (a file on one side, a directory on the other)
//
// An entry is its mode and object id; "changed" compares both. A
// directory left empty by the merge is dropped, as git has no empty trees.
// Nothing is written when there is a conflict.

// TreeStore is where MergeTrees reads trees and writes the merged ones: a
// push's Quarantine.
type TreeStore interface {
	Get(ctx context.Context, h Hash) (*Object, error)
	Put(typ Type, data []byte) (Hash, error)
}

// MergeConflictError is a tree merge that cannot be done: the paths
// changed on both sides differently (a directory's path ends in "/").
type MergeConflictError struct {
	Paths []string // sorted
}

func (e *MergeConflictError) Error() string {
	const show = 10
	names := e.Paths
	more := ""
	if len(names) > show {
		more = fmt.Sprintf(" and %d more", len(names)-show)
		names = names[:show]
	}
	return "merge conflict in " + strings.Join(names, ", ") + more
}

// ErrMergeTooDeep refuses a tree nested deeper than MaxMergeDepth.
var ErrMergeTooDeep = errors.New("objects: tree nested too deep to merge")

// MaxMergeDepth bounds the nesting of directories MergeTrees follows.
const MaxMergeDepth = 512

// EmptyTree is the id of the tree with no entries.
var EmptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

// Git tree entry modes.
const (
	modeTree    = 0o040000
	modeGitlink = 0o160000
)

// mergeEntry is one tree entry; a zero mode means absent.
type mergeEntry struct {
	mode uint32
	id   Hash
}

func (e mergeEntry) present() bool { return e.mode != 0 }
func (e mergeEntry) isTree() bool  { return e.mode == modeTree }

// dirOrAbsent: a directory, or nothing (whose id is ZeroHash, the empty tree).
func dirOrAbsent(e mergeEntry) bool { return e.isTree() || !e.present() }

// MergeTrees merges theirs into ours with base as their common ancestor
// (ZeroHash: an empty tree) and returns the merged tree's id, written to s.
// A conflict is a *MergeConflictError naming every conflicting path.
func MergeTrees(ctx context.Context, s TreeStore, base, ours, theirs Hash) (Hash, error) {
	m := &treeMerge{ctx: ctx, s: s}
	h, err := m.merge(base, ours, theirs, "", 0)
	if err != nil {
		return ZeroHash, err
	}
	if len(m.conflicts) > 0 {
		slices.Sort(m.conflicts)
		return ZeroHash, &MergeConflictError{Paths: m.conflicts}
	}
	if h.IsZero() {
		return s.Put(plumbing.TreeObject, nil)
	}
	return h, nil
}

type treeMerge struct {
	ctx       context.Context
	s         TreeStore
	conflicts []string
}

// merge returns the merged tree of three trees (ZeroHash: empty), or
// ZeroHash when it is empty or when there were conflicts.
func (m *treeMerge) merge(base, ours, theirs Hash, prefix string, depth int) (Hash, error) {
	base, ours, theirs = noEmpty(base), noEmpty(ours), noEmpty(theirs)
	switch {
	case ours == theirs:
		return ours, nil
	case base == ours:
		return theirs, nil
	case base == theirs:
		return ours, nil
	}
	if depth >= MaxMergeDepth {
		return ZeroHash, fmt.Errorf("%w: %s is more than %d levels deep", ErrMergeTooDeep, prefix, MaxMergeDepth)
	}
	if err := m.ctx.Err(); err != nil {
		return ZeroHash, err
	}
	var sides [3]map[string]mergeEntry
	for i, h := range []Hash{base, ours, theirs} {
		es, err := m.read(h)
		if err != nil {
			return ZeroHash, err
		}
		sides[i] = es
	}
	names := map[string]bool{}
	for _, es := range sides {
		for n := range es {
			names[n] = true
		}
	}
	var out []treeOut
	for name := range names {
		b, o, t := sides[0][name], sides[1][name], sides[2][name]
		path := prefix + name
		var r mergeEntry
		switch {
		case o == t:
			r = o
		case b == o:
			r = t
		case b == t:
			r = o
		case dirOrAbsent(b) && dirOrAbsent(o) && dirOrAbsent(t):
			// Directories on both sides (one may be deleted: its
			// entries count as deleted), merged entry by entry.
			sub, err := m.merge(b.id, o.id, t.id, path+"/", depth+1)
			if err != nil {
				return ZeroHash, err
			}
			if !sub.IsZero() {
				r = mergeEntry{mode: modeTree, id: sub}
			}
		case b.present() && o.present() && t.present() && !b.isTree() && !o.isTree() && !t.isTree() &&
			b.mode != modeGitlink && o.mode != modeGitlink && t.mode != modeGitlink &&
			(b.mode == o.mode || b.mode == t.mode || o.mode == t.mode) &&
			(b.id == o.id || b.id == t.id || o.id == t.id):
			// One side changed the mode, the other the content.
			r = mergeEntry{mode: pick3(b.mode, o.mode, t.mode), id: pick3(b.id, o.id, t.id)}
		default:
			if o.isTree() || t.isTree() || b.isTree() {
				path += "/"
			}
			m.conflicts = append(m.conflicts, path)
			continue
		}
		if r.present() {
			out = append(out, treeOut{name: name, e: r})
		}
	}
	if len(m.conflicts) > 0 || len(out) == 0 {
		return ZeroHash, nil
	}
	slices.SortFunc(out, func(a, b treeOut) int {
		return gitTreeCompare([]byte(a.name), a.e.isTree(), []byte(b.name), b.e.isTree())
	})
	var buf bytes.Buffer
	for _, o := range out {
		buf.WriteString(strconv.FormatUint(uint64(o.e.mode), 8))
		buf.WriteByte(' ')
		buf.WriteString(o.name)
		buf.WriteByte(0)
		buf.Write(o.e.id[:])
	}
	return m.s.Put(plumbing.TreeObject, buf.Bytes())
}

type treeOut struct {
	name string
	e    mergeEntry
}

// pick3 is the three-way choice of one field: the side that changed it
// (the callers have checked that at most one did).
func pick3[T comparable](b, o, t T) T {
	if b == o {
		return t
	}
	return o
}

// noEmpty maps the empty tree to ZeroHash, so both compare equal.
func noEmpty(h Hash) Hash {
	if h == EmptyTree {
		return ZeroHash
	}
	return h
}

// read returns a tree's entries by name (ZeroHash: none).
func (m *treeMerge) read(h Hash) (map[string]mergeEntry, error) {
	es := map[string]mergeEntry{}
	if h.IsZero() {
		return es, nil
	}
	o, err := m.s.Get(m.ctx, h)
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	if o.Type != plumbing.TreeObject {
		return nil, fmt.Errorf("read tree %s: a %s, not a tree", h, o.Type)
	}
	err = walkTree(o.Data, func(mode uint32, _, name []byte, id Hash) error {
		if mode == 0 {
			return fmt.Errorf("tree %s: entry %q has mode 0", h, name)
		}
		es[string(name)] = mergeEntry{mode: normalMode(mode), id: id}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read tree %s: %w", h, err)
	}
	return es, nil
}

// normalMode maps the modes git accepts in old trees to the ones it
// writes (100664 -> 100644), so a merge never writes a mode fsck refuses.
func normalMode(mode uint32) uint32 {
	switch {
	case mode&0o170000 == modeTree:
		return modeTree
	case mode == modeGitlink, mode == 0o120000:
		return mode
	case mode&0o111 != 0:
		return 0o100755
	}
	return 0o100644
}
