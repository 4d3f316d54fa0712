package gitserver

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"

	"github.com/weir-dev/weir/objects"
)

// How upload-pack chooses deltas.
//
// Every object of the pack is looked up in the repo's delta records
// (objects/delta.go): deltas kept from the packs clients pushed, and
// deltas this package computed for an earlier fetch. A record is used when
// its base is in the same pack, or, for a thin pack, among the objects the
// client has (the trees and blobs of the edge commits). Objects with no
// record, or whose record's base this pack can use neither in the pack nor
// among the client's objects, are compared, within a bounded budget, with
// their neighbours in a list sorted as git pack-objects sorts it (type,
// hash of the path's last characters, the client's objects first, size,
// largest first), window objects back, and the result, a delta or "none",
// is recorded so that no later fetch computes it again (a record is only
// replaced by a smaller delta, never by "none"). After a push lands, the
// background worker (deltabg.go) does the same for what the push brought.
//
// Records are hints from many pushes and fetches: before writing, each
// chain of records in the pack is followed, a cycle or a chain deeper than
// maxDeltaDepth is cut by sending that object whole, and bases are written
// before their deltas (an ofs-delta can only point back).
//
//	ofs-delta entry  <type 6, size of the instructions> <offset back to the base: git's offset varint> <zlib>
//	ref-delta entry  <type 7, size of the instructions> <base hash:20> <zlib>

// packOptions are the client's capabilities that shape the pack.
type packOptions struct {
	ofsDelta bool // ofs-delta: in-pack bases by offset, else by hash
	thin     bool // thin-pack: bases the client has may be left out
}

// Bounds of the delta search.
const (
	maxDeltaDepth  = 50
	deltaWindow    = 10
	minDeltaObject = 64      // smaller objects are sent whole
	maxDeltaObject = 1 << 20 // larger objects are neither bases nor deltas (ingest's records still cover them)
	// deltaSearchTime bounds the delta computation of one fetch; what is
	// left is sent whole this time, and searched by the next fetch.
	deltaSearchTime = 20 * time.Second
	// deltaMemBudget bounds the delta records one fetch holds.
	deltaMemBudget = 256 << 20
)

// searchSlot is held by the one delta search running.
var searchSlot = make(chan struct{}, 1)

// nameHash is git's pack name hash idea: the last sixteen or so
// non-space characters of a path, later ones weighing most, so files of
// the same name (and the same extension) sort next to each other.
func nameHash(name []byte) uint32 {
	var h uint32
	for _, c := range name {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		h = h>>2 + uint32(c)<<24
	}
	return h
}

// deltaPlan is what writePack sends for each object of the pack.
type deltaPlan struct {
	order  []int32 // indexes into pl.objs, bases first
	base   []int32 // in-pack base index, -1 none, -2 thin (baseID)
	baseID []objects.Hash
	rec    []objects.Delta // the record of an object sent as a delta
	deltas int
	reused int // deltas taken from records that existed before this fetch
}

// planDeltas decides the delta of every object of pl.
func planDeltas(ctx context.Context, store *objects.Store, repo objects.RepoName, pl *packList, opt packOptions, progress progressFunc) (*deltaPlan, error) {
	n := len(pl.objs)
	pos := make(map[objects.Hash]int32, n)
	for i, h := range pl.objs {
		pos[h] = int32(i)
	}
	dp := &deltaPlan{
		base:   make([]int32, n),
		baseID: make([]objects.Hash, n),
		rec:    make([]objects.Delta, n),
	}
	var missing []int32
	// recorded: objects whose record names a base this pack can use
	// neither in the pack nor (thin) among what the client has, with the
	// size of that record's delta; they are searched too, and their record
	// replaced only by a smaller delta.
	var recorded map[int32]int
	var mem int64
	for i, h := range pl.objs {
		dp.base[i] = -1
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if i < pl.commits {
			continue // commits are small and rarely delta well
		}
		d, ok, err := store.Delta(ctx, repo, h)
		if err != nil {
			return nil, err
		}
		if !ok {
			missing = append(missing, int32(i))
			continue
		}
		if d.Base.IsZero() || mem+int64(len(d.ZData)) > deltaMemBudget {
			continue
		}
		if b, in := pos[d.Base]; in {
			dp.base[i] = b
		} else if _, has := pl.has[d.Base]; has && opt.thin {
			dp.base[i] = -2
			dp.baseID[i] = d.Base
		} else {
			if recorded == nil {
				recorded = map[int32]int{}
			}
			recorded[int32(i)] = len(d.ZData)
			missing = append(missing, int32(i))
			continue
		}
		dp.rec[i] = d
		mem += int64(len(d.ZData))
		dp.reused++
	}
	if len(missing) > 0 {
		// One search at a time per server process: its memory is bounded
		// (workers x window x maxDeltaObject, 40 MiB), and a fetch that
		// finds another one running sends its missing objects whole.
		select {
		case searchSlot <- struct{}{}:
			err := searchDeltas(ctx, store, repo, pl, missing, recorded, dp, opt, &mem, progress, fetchSearch)
			<-searchSlot
			if err != nil {
				return nil, err
			}
		default:
		}
	}
	dp.order = orderDeltas(dp)
	return dp, nil
}

// orderDeltas cuts cycles and chains deeper than maxDeltaDepth (those
// objects go whole) and returns an order in which every in-pack base comes
// before its deltas, otherwise keeping the pack's order.
func orderDeltas(dp *deltaPlan) []int32 {
	n := len(dp.base)
	const (
		unseen = iota
		visiting
		placed
	)
	state := make([]uint8, n)
	depth := make([]uint8, n)
	order := make([]int32, 0, n)
	var chain []int32
	for i := range n {
		if state[i] != unseen {
			continue
		}
		// Follow the chain of bases down to something placed, whole or
		// outside the pack, then place it back up.
		chain = chain[:0]
		j := int32(i)
		for {
			state[j] = visiting
			chain = append(chain, j)
			b := dp.base[j]
			if b < 0 {
				break
			}
			if state[b] == visiting { // a cycle: j goes whole
				dp.base[j] = -1
				break
			}
			if state[b] == placed {
				break
			}
			j = b
		}
		for k := len(chain) - 1; k >= 0; k-- {
			j := chain[k]
			switch b := dp.base[j]; {
			case b >= 0 && depth[b] >= maxDeltaDepth:
				dp.base[j] = -1
			case b >= 0:
				depth[j] = depth[b] + 1
			case b == -2:
				depth[j] = 1
			}
			if dp.base[j] == -1 {
				dp.rec[j] = objects.Delta{}
			} else {
				dp.deltas++
			}
			state[j] = placed
			order = append(order, j)
		}
	}
	return order
}

// searchBounds bound one delta search.
type searchBounds struct {
	workers int           // goroutines comparing objects
	time    time.Duration // after this, the rest is left unsearched
	// yield, when not nil, reports whether clients are being served: the
	// search then waits before each object, up to yieldWait in each step
	// of 64 objects, so that the cores go to them first (the background
	// search).
	yield func() bool
}

// yieldWait bounds each wait of a yielding search: it goes on, slowly,
// under a stream of fetches that never pauses.
const yieldWait = time.Second

// fetchSearch bounds the search on a fetch's path: up to four cores, for
// deltaSearchTime.
var fetchSearch = searchBounds{workers: min(runtime.GOMAXPROCS(0), 4), time: deltaSearchTime}

// searchCand is one object of the delta search.
type searchCand struct {
	idx  int32 // in pl.objs; -1 for a base the client has (thin)
	h    objects.Hash
	typ  plumbing.ObjectType
	name uint32
	size int64
}

// searchDeltas looks for deltas of the objects in missing among each
// other, records what it finds (or that it found nothing) and puts the
// deltas it may use into dp. An object in recorded already has a record
// (of the delta size given): it is replaced only by a smaller delta, and
// never by "none". With dp nil (the background search,
// deltabg.go) it only records.
//
// For a thin pack, the objects the client has under the same names (the
// earlier versions of the same files, at the edge commits) join the search
// as bases only.
func searchDeltas(ctx context.Context, store *objects.Store, repo objects.RepoName, pl *packList, missing []int32, recorded map[int32]int, dp *deltaPlan, opt packOptions, mem *int64, progress progressFunc, bounds searchBounds) error {
	cands := make([]searchCand, 0, len(missing))
	for _, i := range missing {
		h := pl.objs[i]
		typ, size, err := store.Stat(ctx, repo, h)
		if err != nil {
			return err
		}
		if (typ != plumbing.BlobObject && typ != plumbing.TreeObject) || size < minDeltaObject || size > maxDeltaObject {
			continue
		}
		cands = append(cands, searchCand{idx: i, h: h, typ: typ, name: pl.names[h], size: size})
	}
	targets := len(cands)
	if opt.thin && len(pl.has) > len(pl.objs) && targets > 0 {
		inPack := make(map[objects.Hash]struct{}, len(pl.objs))
		for _, h := range pl.objs {
			inPack[h] = struct{}{}
		}
		perName := make(map[uint32]int, targets)
		for _, c := range cands {
			perName[c.name] = 0
		}
		for h := range pl.has {
			name, named := pl.names[h]
			n, wanted := perName[name]
			if _, sent := inPack[h]; sent || !named || !wanted || n >= 2 {
				continue
			}
			typ, size, err := store.Stat(ctx, repo, h)
			if err != nil {
				return err
			}
			if (typ != plumbing.BlobObject && typ != plumbing.TreeObject) || size < minDeltaObject || size > maxDeltaObject {
				continue
			}
			perName[name] = n + 1
			cands = append(cands, searchCand{idx: -1, h: h, typ: typ, name: name, size: size})
		}
	}
	sort.Slice(cands, func(a, b int) bool {
		x, y := cands[a], cands[b]
		if x.typ != y.typ {
			return x.typ < y.typ
		}
		if x.name != y.name {
			return x.name < y.name
		}
		// The client's objects first (as git sorts its preferred bases):
		// the window only looks back, and a file's new version is often
		// the larger.
		if (x.idx < 0) != (y.idx < 0) {
			return x.idx < 0
		}
		if x.size != y.size {
			return x.size > y.size
		}
		return bytes.Compare(x.h[:], y.h[:]) < 0
	})
	if len(cands) == 0 {
		return nil
	}
	deadline := time.Now().Add(bounds.time)
	workers := max(bounds.workers, 1)
	chunk := (len(cands) + workers - 1) / workers
	var mu sync.Mutex
	var done, last int
	lastReport := time.Now()
	var firstErr error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		part := cands[min(w*chunk, len(cands)):min((w+1)*chunk, len(cands))]
		if len(part) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := deltaSearcher{ctx: ctx, store: store, repo: repo, yield: bounds.yield}
			err := s.run(part, deadline, func(c searchCand, d objects.Delta, found bool) {
				h := c.h
				old, had := recorded[c.idx]
				switch {
				case found && (!had || len(d.ZData) < old):
					_ = store.PutDelta(ctx, repo, h, d.Base, d.Size, d.ZData)
				case !found && !had:
					_ = store.PutNoDelta(ctx, repo, h)
				}
				mu.Lock()
				defer mu.Unlock()
				done++
				if found && dp != nil && *mem+int64(len(d.ZData)) <= deltaMemBudget {
					dp.rec[c.idx] = d // its base index is filled in below
					*mem += int64(len(d.ZData))
				}
				if progress != nil && done-last >= 256 && time.Since(lastReport) > 500*time.Millisecond {
					last, lastReport = done, time.Now()
					progress("Compressing objects: %d%% (%d/%d)\r", min(100, done*100/targets), min(done, targets), targets)
				}
			})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil || dp == nil {
		return firstErr
	}
	// Bases found by the search are in the pack, or (thin) the client has
	// them.
	pos := make(map[objects.Hash]int32, len(cands))
	for _, c := range cands {
		if c.idx >= 0 {
			pos[c.h] = c.idx
		}
	}
	for _, c := range cands {
		if c.idx < 0 {
			continue
		}
		if r := dp.rec[c.idx]; r.ZData != nil && dp.base[c.idx] == -1 {
			if b, ok := pos[r.Base]; ok {
				dp.base[c.idx] = b
			} else if _, has := pl.has[r.Base]; has && opt.thin {
				dp.base[c.idx], dp.baseID[c.idx] = -2, r.Base
			} else {
				dp.rec[c.idx] = objects.Delta{}
			}
		}
	}
	if progress != nil {
		progress("Compressing objects: 100%% (%d/%d), done.\n", targets, targets)
	}
	return nil
}

// deltaSearcher is one worker of the delta search: a window of the
// previous objects' contents.
type deltaSearcher struct {
	ctx   context.Context
	store *objects.Store
	repo  objects.RepoName
	yield func() bool // see searchBounds
	zbuf  bytes.Buffer
	zw    *zlib.Writer
}

type windowEntry struct {
	h    objects.Hash
	typ  plumbing.ObjectType
	data []byte
}

// run searches part in order, calling found for every object it decides.
func (s *deltaSearcher) run(part []searchCand, deadline time.Time, report func(searchCand, objects.Delta, bool)) error {
	var window []windowEntry
	var waited time.Duration
	for k, c := range part {
		// Every object: one may take a window of comparisons of up to
		// maxDeltaObject each, and a server stopping waits for this.
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return nil // the rest is sent whole, and searched next time
		}
		// Yield before every object (a window of comparisons can take
		// a core for long), within yieldWait per step of 64 objects, so
		// that under fetches that never pause it still goes on.
		if k%64 == 0 {
			waited = 0
		}
		for ; s.yield != nil && waited < yieldWait && s.yield(); waited += 10 * time.Millisecond {
			select {
			case <-s.ctx.Done():
				return s.ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		h := c.h
		typ, size, zdata, err := s.store.Raw(s.ctx, s.repo, h)
		if err != nil {
			return err
		}
		var inf inflater
		data, err := inf.inflate(zdata, size)
		if err != nil {
			return fmt.Errorf("inflate %s: %w", h, err)
		}
		o := &objects.Object{Type: typ, Data: data}
		var best objects.Delta
		for j := len(window) - 1; j >= 0 && c.idx >= 0; j-- {
			b := window[j]
			if b.typ != typ {
				continue
			}
			// Sizes too far apart never make a good delta.
			if len(b.data) < len(o.Data)/4 {
				continue
			}
			// One comparison of two large objects can take a second on
			// a loaded machine, a window of them many: a server that is
			// stopping does not wait for the window.
			if err := s.ctx.Err(); err != nil {
				return err
			}
			delta := packfile.DiffDelta(b.data, o.Data)
			limit := len(o.Data)/2 - 20
			if best.ZData != nil {
				limit = min(limit, int(best.Size))
			}
			if len(delta) >= limit {
				continue
			}
			z := s.deflate(delta)
			if len(z) >= len(zdata) || (best.ZData != nil && len(z) >= len(best.ZData)) {
				continue
			}
			best = objects.Delta{Base: b.h, Size: int64(len(delta)), ZData: z}
		}
		if c.idx >= 0 {
			report(c, best, best.ZData != nil)
		}
		window = append(window, windowEntry{h: h, typ: typ, data: o.Data})
		if len(window) > deltaWindow {
			window = window[1:]
		}
	}
	return nil
}

// deflate compresses a delta at the default level: it is computed once and
// sent many times.
func (s *deltaSearcher) deflate(b []byte) []byte {
	s.zbuf.Reset()
	if s.zw == nil {
		s.zw = zlib.NewWriter(&s.zbuf)
	} else {
		s.zw.Reset(&s.zbuf)
	}
	_, _ = s.zw.Write(b)
	_ = s.zw.Close()
	return bytes.Clone(s.zbuf.Bytes())
}
