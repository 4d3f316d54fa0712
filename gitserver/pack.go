package gitserver

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"container/heap"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// Which objects a fetch sends, and how.
//
// Commits: a date-ordered walk (newest first) from the wants, with the
// client's common commits (haves) walked at the same time and marked
// uninteresting; the walk stops once only uninteresting commits remain
// queued. Shallow boundaries are grafts: a graft has no parents in the walk.
//
// Trees and blobs: every tree of every commit sent, minus what the client
// already has, approximated (cheaply, and exactly enough for a non-thin
// pack) by everything reachable from the trees of the uninteresting
// parents of sent commits ("edges").
//
// The pack: version 2. A whole entry's body is the stored value (the
// object's zlib stream, never inflated or recompressed); a delta entry's
// is the zlib stream of a delta record (delta.go chooses them); only the
// entry headers are built here:
//
//	"PACK" <version:4 BE = 2> <count:4 BE>
//	( <type:3 bits, size: 4 bits + 7 bits per continuation byte> [base] <zlib> ) * count
//	<SHA-1 of everything before it:20>
//
// where base is an ofs-delta's distance back or a ref-delta's base hash.

const (
	flagUninteresting uint8 = 1 << iota
	flagQueued
	flagSent
)

// commitNode is one parsed commit in a walk.
type commitNode struct {
	hash    objects.Hash
	tree    objects.Hash
	parents []objects.Hash
	time    int64
	flags   uint8
}

// walker walks one repo's objects for one fetch.
type walker struct {
	ctx     context.Context
	store   *objects.Store // nil when walking a quarantine
	repo    objects.RepoName
	get     func(h objects.Hash) (*objects.Object, error)
	commits map[objects.Hash]*commitNode
	inf     inflater
	// kept, when non-nil, collects the stored values getFromStore reads,
	// up to keepBudget bytes.
	kept     map[objects.Hash]rawObject
	keptSize int
	// names, when non-nil, collects the name hash of every tree entry
	// walked (the first name seen), for the delta search's sort.
	names map[objects.Hash]uint32
}

func newWalker(ctx context.Context, store *objects.Store, repo objects.RepoName) *walker {
	w := &walker{ctx: ctx, store: store, repo: repo, commits: map[objects.Hash]*commitNode{}}
	w.get = w.getFromStore
	return w
}

// getFromStore reads and inflates h with the walker's reusable inflater.
// The returned Data is only valid until the next call.
func (w *walker) getFromStore(h objects.Hash) (*objects.Object, error) {
	typ, size, zdata, err := w.store.Raw(w.ctx, w.repo, h)
	if err != nil {
		return nil, err
	}
	if w.kept != nil && w.keptSize+len(zdata) <= keepBudget {
		w.kept[h] = rawObject{typ: typ, size: size, zdata: zdata}
		w.keptSize += len(zdata)
	}
	data, err := w.inf.inflate(zdata, size)
	if err != nil {
		return nil, fmt.Errorf("inflate %s: %w", h, err)
	}
	return &objects.Object{Type: typ, Data: data}, nil
}

// inflater inflates stored objects with one reused zlib reader and output
// buffer: a fresh zlib reader allocates (and zeroes) tens of kilobytes,
// which dominated the cost of walking trees.
type inflater struct {
	br  bytes.Reader
	zr  io.ReadCloser
	buf []byte
}

func (f *inflater) inflate(zdata []byte, size int64) ([]byte, error) {
	if size < 0 || size > 1<<31 {
		return nil, fmt.Errorf("bad object size %d", size)
	}
	f.br.Reset(zdata)
	if f.zr == nil {
		zr, err := zlib.NewReader(&f.br)
		if err != nil {
			return nil, err
		}
		f.zr = zr
	} else if err := f.zr.(zlib.Resetter).Reset(&f.br, nil); err != nil {
		return nil, err
	}
	if int64(cap(f.buf)) < size {
		f.buf = make([]byte, size)
	}
	buf := f.buf[:size]
	if _, err := io.ReadFull(f.zr, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// newQuarantineWalker walks a push's objects and the repo under them.
func newQuarantineWalker(ctx context.Context, q *objects.Quarantine) *walker {
	return &walker{ctx: ctx, repo: q.Repo(), commits: map[objects.Hash]*commitNode{},
		get: func(h objects.Hash) (*objects.Object, error) { return q.Get(ctx, h) }}
}

// errNotCommit is returned by commit for an object of another type.
var errNotCommit = errors.New("gitserver: not a commit")

// commit returns the parsed commit h.
func (w *walker) commit(h objects.Hash) (*commitNode, error) {
	if c, ok := w.commits[h]; ok {
		return c, nil
	}
	o, err := w.get(h)
	if err != nil {
		return nil, fmt.Errorf("read commit %s: %w", h, err)
	}
	if o.Type != plumbing.CommitObject {
		return nil, fmt.Errorf("%w: %s is a %s", errNotCommit, h, o.Type)
	}
	c, err := parseCommit(h, o.Data)
	if err != nil {
		return nil, err
	}
	w.commits[h] = c
	return c, nil
}

// parseCommit reads the tree, parents and committer time of a commit.
func parseCommit(h objects.Hash, data []byte) (*commitNode, error) {
	c := &commitNode{hash: h}
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			nl = len(data)
		}
		line := data[:nl]
		if nl < len(data) {
			data = data[nl+1:]
		} else {
			data = nil
		}
		if len(line) == 0 {
			break // end of headers
		}
		switch {
		case bytes.HasPrefix(line, []byte("tree ")):
			t, ok := parseHash(line[5:])
			if !ok {
				return nil, fmt.Errorf("commit %s: bad tree line", h)
			}
			c.tree = t
		case bytes.HasPrefix(line, []byte("parent ")):
			p, ok := parseHash(line[7:])
			if !ok {
				return nil, fmt.Errorf("commit %s: bad parent line", h)
			}
			c.parents = append(c.parents, p)
		case bytes.HasPrefix(line, []byte("committer ")):
			// "committer Name <email> 1700000000 +0000"
			gt := bytes.LastIndexByte(line, '>')
			if gt < 0 {
				break
			}
			f := bytes.Fields(line[gt+1:])
			if len(f) > 0 {
				if t, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
					c.time = t
				}
			}
		}
	}
	if c.tree.IsZero() {
		return nil, fmt.Errorf("commit %s: no tree", h)
	}
	return c, nil
}

// commitQueue is a max-heap of commits by committer time.
type commitQueue []*commitNode

func (q commitQueue) Len() int           { return len(q) }
func (q commitQueue) Less(i, j int) bool { return q[i].time > q[j].time }
func (q commitQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *commitQueue) Push(x any)        { *q = append(*q, x.(*commitNode)) }
func (q *commitQueue) Pop() any {
	old := *q
	c := old[len(old)-1]
	*q = old[:len(old)-1]
	return c
}

func (q commitQueue) allUninteresting() bool {
	for _, c := range q {
		if c.flags&flagUninteresting == 0 {
			return false
		}
	}
	return true
}

// fetchPlan is what one fetch asked for.
type fetchPlan struct {
	wants []objects.Hash // any object type
	haves []objects.Hash // commits the client has (common)
	// graftsWant are commits whose parents the walk of wanted commits does
	// not follow (new and kept shallow boundaries); graftsHave the same for
	// the client's side (its shallow commits before this fetch).
	graftsWant map[objects.Hash]bool
	graftsHave map[objects.Hash]bool
	// tags are annotated tags to include when their target is sent
	// (include-tag); nil when not asked for.
	tags []advRef
	// filter leaves trees or blobs out (partial clone); nil: none.
	filter *objectFilter
}

// packList is the ordered list of objects to send.
type packList struct {
	objs    []objects.Hash
	commits int
	// kept holds the stored values of trees and commits read while
	// planning (up to keepBudget bytes), so the pack does not read them
	// from the store a second time.
	kept map[objects.Hash]rawObject
	// names is the name hash (nameHash) of the trees and blobs, by the
	// path they were first seen under.
	names map[objects.Hash]uint32
	// has is every object walked: those of objs and those the client
	// has (the edges' trees), the bases a thin pack may leave out.
	has map[objects.Hash]struct{}
	// kinds, beside objs, is each object's type (a plumbing.ObjectType),
	// with kindWanted set on an object a want names (or a wanted tag
	// peels to). A filtered plan is derived from an unfiltered one by it
	// (plancache.go).
	kinds []uint8
	// objWants is true when a want names a tree or a blob (directly or
	// through tags): such a plan is never the base of another
	// (plancache.go).
	objWants bool
}

// kindWanted marks, in packList.kinds, an object named by a want.
const kindWanted uint8 = 0x80

// push appends h, of type typ, to the list.
func (pl *packList) push(h objects.Hash, typ plumbing.ObjectType) {
	pl.objs = append(pl.objs, h)
	pl.kinds = append(pl.kinds, uint8(typ))
}

// rawObject is a stored object value: type, inflated size, zlib stream.
type rawObject struct {
	typ   plumbing.ObjectType
	size  int64
	zdata []byte
}

// keepBudget bounds the bytes of stored values one fetch keeps in memory
// between planning and packing.
const keepBudget = 64 << 20

// progressFunc reports counting progress; it may be nil.
type progressFunc func(format string, args ...any)

// plan decides the objects to send.
func (w *walker) plan(fp *fetchPlan, progress progressFunc) (*packList, error) {
	pl := &packList{kept: map[objects.Hash]rawObject{}, names: map[objects.Hash]uint32{}}
	w.kept, w.names = pl.kept, pl.names
	defer func() { w.kept, w.names = nil, nil }()
	seen := make(map[objects.Hash]struct{}, 1024)
	pl.has = seen
	add := func(h objects.Hash, typ plumbing.ObjectType) bool {
		if _, ok := seen[h]; ok {
			return false
		}
		seen[h] = struct{}{}
		pl.push(h, typ)
		return true
	}
	// wanted: trees and blobs a want names, directly or through tags.
	var wanted []objects.Hash

	// Resolve the wants: tags are sent and peeled, trees and blobs sent
	// as they are, commits walked.
	var wantCommits, wantTrees []objects.Hash
	for _, h := range fp.wants {
		for depth := 0; depth < 16; depth++ {
			typ, _, err := w.store.Stat(w.ctx, w.repo, h)
			if err != nil {
				return nil, fmt.Errorf("read wanted object %s: %w", h, err)
			}
			if typ == plumbing.TagObject {
				add(h, typ)
				o, err := w.get(h)
				if err != nil {
					return nil, fmt.Errorf("read tag %s: %w", h, err)
				}
				t, ok := tagTarget(o.Data)
				if !ok {
					return nil, fmt.Errorf("tag %s: no object line", h)
				}
				h = t
				continue
			}
			switch typ {
			case plumbing.CommitObject:
				wantCommits = append(wantCommits, h)
			case plumbing.TreeObject:
				wantTrees = append(wantTrees, h)
				wanted = append(wanted, h)
			default:
				add(h, typ)
				wanted = append(wanted, h)
			}
			break
		}
	}

	send, edges, err := w.walkCommits(wantCommits, fp.haves, fp.graftsWant, fp.graftsHave)
	if err != nil {
		return nil, err
	}
	for _, c := range send {
		add(c.hash, plumbing.CommitObject)
		c.flags |= flagSent
	}
	pl.commits = len(send)

	// What the client has: the trees of the edges.
	for _, e := range edges {
		if err := w.walkTree(e.tree, seen, nil); err != nil {
			return nil, err
		}
	}
	last := time.Now()
	for i, c := range send {
		if err := w.sendTree(fp.filter, c.tree, seen, pl, false); err != nil {
			return nil, err
		}
		if progress != nil && i%256 == 0 && time.Since(last) > 500*time.Millisecond {
			last = time.Now()
			progress("Counting objects: %d\r", len(pl.objs))
		}
	}
	for _, t := range wantTrees {
		if err := w.sendTree(fp.filter, t, seen, pl, true); err != nil {
			return nil, err
		}
	}

	markWanted(pl, wanted)
	pl.objWants = len(wanted) > 0

	// include-tag: annotated tags whose target is being sent.
	sent := func(h objects.Hash) bool {
		c, ok := w.commits[h]
		return ok && c.flags&flagSent != 0
	}
	if err := w.includeTags(fp.tags, seen, sent, pl); err != nil {
		return nil, err
	}
	return pl, nil
}

// markWanted sets kindWanted on the objects of pl that wanted names.
func markWanted(pl *packList, wanted []objects.Hash) {
	if len(wanted) == 0 {
		return
	}
	set := make(map[objects.Hash]bool, len(wanted))
	for _, h := range wanted {
		set[h] = true
	}
	for i, h := range pl.objs {
		if set[h] {
			pl.kinds[i] |= kindWanted
		}
	}
}

// includeTags adds to pl the annotated tags of tags (include-tag) whose
// target commit sent reports as sent, and the tags between each and its
// target, unless seen has them.
func (w *walker) includeTags(tags []advRef, seen map[objects.Hash]struct{}, sent func(objects.Hash) bool, pl *packList) error {
	for _, t := range tags {
		if t.peeled.IsZero() {
			continue
		}
		if _, ok := seen[t.hash]; ok {
			continue
		}
		if !sent(t.peeled) {
			continue
		}
		// The tag and any tags between it and its target.
		h := t.hash
		for depth := 0; depth < 16 && h != t.peeled; depth++ {
			if _, ok := seen[h]; ok {
				break
			}
			seen[h] = struct{}{}
			pl.push(h, plumbing.TagObject)
			o, err := w.get(h)
			if err != nil {
				return fmt.Errorf("read tag %s: %w", h, err)
			}
			next, ok := tagTarget(o.Data)
			if !ok {
				break
			}
			h = next
		}
	}
	return nil
}

// walkCommits returns the commits reachable from wants and not from haves,
// newest first, and the uninteresting parents of those commits (edges).
func (w *walker) walkCommits(wants, haves []objects.Hash, graftsWant, graftsHave map[objects.Hash]bool) (send, edges []*commitNode, err error) {
	var q commitQueue
	push := func(c *commitNode) {
		if c.flags&flagQueued == 0 {
			c.flags |= flagQueued
			heap.Push(&q, c)
		}
	}
	for _, h := range haves {
		c, err := w.commit(h)
		if err != nil {
			if errors.Is(err, objects.ErrNotFound) || errors.Is(err, errNotCommit) {
				continue
			}
			return nil, nil, err
		}
		c.flags |= flagUninteresting
		push(c)
	}
	for _, h := range wants {
		c, err := w.commit(h)
		if err != nil {
			return nil, nil, err
		}
		push(c)
	}
	var out []*commitNode
	for q.Len() > 0 {
		if q.allUninteresting() {
			break
		}
		c := heap.Pop(&q).(*commitNode)
		if err := w.ctx.Err(); err != nil {
			return nil, nil, err
		}
		if c.flags&flagUninteresting != 0 {
			if graftsHave[c.hash] {
				continue
			}
			for _, ph := range c.parents {
				p, err := w.commit(ph)
				if err != nil {
					if errors.Is(err, objects.ErrNotFound) {
						continue
					}
					return nil, nil, err
				}
				p.flags |= flagUninteresting
				push(p)
			}
			continue
		}
		out = append(out, c)
		if graftsWant[c.hash] {
			continue
		}
		for _, ph := range c.parents {
			p, err := w.commit(ph)
			if err != nil {
				return nil, nil, err
			}
			push(p)
		}
	}
	edgeSeen := map[objects.Hash]bool{}
	for _, c := range out {
		if c.flags&flagUninteresting != 0 {
			continue // reached as uninteresting after it was popped
		}
		send = append(send, c)
		if graftsWant[c.hash] {
			continue
		}
		for _, ph := range c.parents {
			if p, ok := w.commits[ph]; ok && p.flags&flagUninteresting != 0 && !edgeSeen[ph] {
				edgeSeen[ph] = true
				edges = append(edges, p)
			}
		}
	}
	return send, edges, nil
}

// walkTree adds tree h and everything under it that is not yet in seen.
// With out nil it only marks (the client has them).
func (w *walker) walkTree(h objects.Hash, seen map[objects.Hash]struct{}, out *packList) error {
	if _, ok := seen[h]; ok {
		return nil
	}
	seen[h] = struct{}{}
	if out != nil {
		out.push(h, plumbing.TreeObject)
	}
	o, err := w.get(h)
	if err != nil {
		if out == nil && errors.Is(err, objects.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	data := o.Data
	var subs []objects.Hash // recursed into after the loop: data is reused
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return fmt.Errorf("tree %s: bad entry", h)
		}
		mode := data[:sp]
		nul := bytes.IndexByte(data[sp:], 0)
		if nul < 0 || sp+nul+21 > len(data) {
			return fmt.Errorf("tree %s: bad entry", h)
		}
		var id objects.Hash
		copy(id[:], data[sp+nul+1:sp+nul+21])
		if _, ok := w.names[id]; !ok && w.names != nil {
			w.names[id] = nameHash(data[sp+1 : sp+nul])
		}
		data = data[sp+nul+21:]
		switch string(mode) {
		case "40000":
			subs = append(subs, id)
		case "160000":
			// A gitlink names a commit of another history: not ours to send.
		default:
			if _, ok := seen[id]; !ok {
				seen[id] = struct{}{}
				if out != nil {
					out.push(id, plumbing.BlobObject)
				}
			}
		}
	}
	for _, id := range subs {
		if err := w.walkTree(id, seen, out); err != nil {
			return err
		}
	}
	return nil
}

// appendEntryHeader appends a pack entry header: type and inflated size.
func appendEntryHeader(dst []byte, typ plumbing.ObjectType, size int64) []byte {
	b := byte(typ)<<4 | byte(size&0x0f)
	size >>= 4
	for size != 0 {
		dst = append(dst, b|0x80)
		b = byte(size & 0x7f)
		size >>= 7
	}
	return append(dst, b)
}

// packStats counts what writePack sent.
type packStats struct {
	objects, deltas, reused int
}

// writePack streams the objects of pl as a version 2 pack, with the deltas
// planDeltas chose: kept values first, else from the store.
func writePack(ctx context.Context, store *objects.Store, repo objects.RepoName, pl *packList, opt packOptions, progress progressFunc, w io.Writer) (packStats, error) {
	dp, err := planDeltas(ctx, store, repo, pl, opt, progress)
	if err != nil {
		return packStats{}, err
	}
	objs := pl.objs
	st := packStats{objects: len(objs), deltas: dp.deltas, reused: dp.reused}
	h := sha1.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 64<<10)
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(objs)))
	if _, err := bw.Write(hdr[:]); err != nil {
		return st, err
	}
	// One goroutine reads the stored values ahead while this one writes,
	// so store reads overlap with the client draining the pack.
	type item struct {
		raw rawObject
		idx int32
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan item, 256)
	go func() {
		defer close(ch)
		for _, i := range dp.order {
			it := item{idx: i}
			id := objs[i]
			if dp.base[i] != -1 {
				// Sent as a delta: only its type is needed.
			} else if k, ok := pl.kept[id]; ok {
				it.raw = k
			} else {
				it.raw.typ, it.raw.size, it.raw.zdata, it.err = store.Raw(ctx, repo, id)
			}
			select {
			case ch <- it:
			case <-ctx.Done():
				return
			}
			if it.err != nil {
				return
			}
		}
	}()
	offsets := make([]int64, len(objs))
	off := int64(len(hdr))
	var eh []byte
	for range dp.order {
		it, ok := <-ch
		if !ok {
			return st, fmt.Errorf("read objects: %w", context.Cause(ctx))
		}
		if it.err != nil {
			return st, fmt.Errorf("read object %s: %w", objs[it.idx], it.err)
		}
		offsets[it.idx] = off
		body := it.raw.zdata
		switch b := dp.base[it.idx]; {
		case b == -1:
			eh = appendEntryHeader(eh[:0], it.raw.typ, it.raw.size)
		case b >= 0 && opt.ofsDelta:
			rec := dp.rec[it.idx]
			eh = appendEntryHeader(eh[:0], plumbing.OFSDeltaObject, rec.Size)
			eh = appendOfsDelta(eh, off-offsets[b])
			body = rec.ZData
		default:
			rec := dp.rec[it.idx]
			eh = appendEntryHeader(eh[:0], plumbing.REFDeltaObject, rec.Size)
			eh = append(eh, rec.Base[:]...)
			body = rec.ZData
		}
		if _, err := bw.Write(eh); err != nil {
			return st, err
		}
		if _, err := bw.Write(body); err != nil {
			return st, err
		}
		off += int64(len(eh) + len(body))
	}
	if err := bw.Flush(); err != nil {
		return st, err
	}
	_, err = w.Write(h.Sum(nil))
	return st, err
}

// appendOfsDelta appends the distance back to an ofs-delta's base in git's
// encoding: big-endian groups of 7 bits, each continued group one less
// than its value (so every distance has exactly one encoding).
func appendOfsDelta(dst []byte, rel int64) []byte {
	var buf [10]byte
	i := len(buf) - 1
	buf[i] = byte(rel & 0x7f)
	for rel >>= 7; rel != 0; rel >>= 7 {
		rel--
		i--
		buf[i] = 0x80 | byte(rel&0x7f)
	}
	return append(dst, buf[i:]...)
}
