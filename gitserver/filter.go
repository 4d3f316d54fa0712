package gitserver

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// Partial clone (gitprotocol-v2 "filter", v0 capability "filter"): a fetch
// may ask to leave out blobs or trees the walk finds:
//
//	blob:none          no blobs
//	blob:limit=<n>     no blobs of n bytes or more (n may end in k, m or g)
//	tree:<depth>       no tree or blob at depth or deeper below a commit's
//	                   root tree (the root tree is at 0: tree:0 sends
//	                   commits only)
//
// Objects the client names in a want are always sent (a lazy fetch of
// missing blobs asks for them by id with "filter blob:none"). Any other
// filter is refused with "filter '<name>' not supported".

// filterKind is one supported filter.
type filterKind int

const (
	filterBlobNone filterKind = iota + 1
	filterBlobLimit
	filterTreeDepth
)

// objectFilter is a parsed filter spec, plus the state of one walk.
type objectFilter struct {
	kind  filterKind
	limit int64 // blob:limit bytes; tree:<depth> depth
	// treeDepth is, for tree:<depth>, the shallowest depth each tree was
	// expanded at in this walk (a tree met again shallower is expanded
	// again).
	treeDepth map[objects.Hash]int64
}

// spec is the canonical spec, as git expands it.
func (f *objectFilter) spec() string {
	switch f.kind {
	case filterBlobNone:
		return "blob:none"
	case filterBlobLimit:
		return "blob:limit=" + strconv.FormatInt(f.limit, 10)
	case filterTreeDepth:
		return "tree:" + strconv.FormatInt(f.limit, 10)
	}
	return ""
}

// maxFilterSpec bounds a filter line.
const maxFilterSpec = 4096

// filterError refuses a filter spec; its text goes to the client as is.
type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }

// parseFilter parses a filter spec.
func parseFilter(spec string) (*objectFilter, error) {
	if len(spec) > maxFilterSpec {
		return nil, &filterError{fmt.Sprintf("filter spec longer than %d bytes", maxFilterSpec)}
	}
	name, arg, hasArg := strings.Cut(spec, ":")
	switch {
	case spec == "blob:none":
		return &objectFilter{kind: filterBlobNone}, nil
	case name == "blob" && strings.HasPrefix(arg, "limit="):
		n, ok := parseSizeSuffix(arg[len("limit="):])
		if !ok {
			return nil, &filterError{fmt.Sprintf("invalid filter-spec %s: blob:limit=<n> takes a byte count, with an optional k, m or g", clip([]byte(spec)))}
		}
		return &objectFilter{kind: filterBlobLimit, limit: n}, nil
	case name == "tree" && hasArg:
		n, ok := parseSizeSuffix(arg)
		if !ok {
			return nil, &filterError{fmt.Sprintf("invalid filter-spec %s: tree:<depth> takes a number", clip([]byte(spec)))}
		}
		return &objectFilter{kind: filterTreeDepth, limit: n}, nil
	}
	if key, _, ok := strings.Cut(arg, "="); ok && hasArg {
		name += ":" + key // "object:type", "sparse:oid", as git names them
	}
	if name == "" || len(name) > 32 || strings.ContainsAny(name, " \x00\n") {
		name = clip([]byte(spec))
	}
	return nil, &filterError{fmt.Sprintf("filter '%s' not supported; this server supports blob:none, blob:limit=<n> and tree:<depth>", name)}
}

// parseSizeSuffix parses a non-negative decimal with an optional k, m or g
// (case-insensitive, powers of 1024), as git_parse_ulong does.
func parseSizeSuffix(s string) (int64, bool) {
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult, s = 1<<10, s[:n-1]
		case 'm', 'M':
			mult, s = 1<<20, s[:n-1]
		case 'g', 'G':
			mult, s = 1<<30, s[:n-1]
		}
	}
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, false
	}
	return n * mult, true
}

// sendTree adds tree h and what it holds that is not yet in seen to out,
// leaving out what f filters (f nil: everything). A tree the client named
// in a want (wanted) is sent whatever the filter.
func (w *walker) sendTree(f *objectFilter, h objects.Hash, seen map[objects.Hash]struct{}, out *packList, wanted bool) error {
	if f == nil {
		return w.walkTree(h, seen, out)
	}
	if f.kind == filterTreeDepth {
		if f.treeDepth == nil {
			f.treeDepth = map[objects.Hash]int64{}
		}
		return w.walkTreeDepth(f, h, 0, seen, out, wanted)
	}
	return w.walkTreeBlobs(f, h, seen, out)
}

// treeEntries calls fn for each entry of tree h: its mode, id and name.
func (w *walker) treeEntries(h objects.Hash, fn func(mode string, id objects.Hash, name string)) error {
	o, err := w.get(h)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", h, err)
	}
	if o.Type != plumbing.TreeObject {
		return fmt.Errorf("read tree %s: is a %s", h, o.Type)
	}
	data := o.Data
	type entry struct {
		mode, name string
		id         objects.Hash
	}
	var ents []entry // fn runs after the loop: data is reused by the next read
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp < 0 {
			return fmt.Errorf("tree %s: bad entry", h)
		}
		nul := bytes.IndexByte(data[sp:], 0)
		if nul < 0 || sp+nul+21 > len(data) {
			return fmt.Errorf("tree %s: bad entry", h)
		}
		var id objects.Hash
		copy(id[:], data[sp+nul+1:sp+nul+21])
		ents = append(ents, entry{string(data[:sp]), string(data[sp+1 : sp+nul]), id})
		data = data[sp+nul+21:]
	}
	for _, e := range ents {
		fn(e.mode, e.id, e.name)
	}
	return nil
}

// walkTreeBlobs is walkTree for blob:none and blob:limit.
func (w *walker) walkTreeBlobs(f *objectFilter, h objects.Hash, seen map[objects.Hash]struct{}, out *packList) error {
	if _, ok := seen[h]; ok {
		return nil
	}
	seen[h] = struct{}{}
	out.push(h, plumbing.TreeObject)
	var subs, blobs []objects.Hash
	if err := w.treeEntries(h, func(mode string, id objects.Hash, _ string) {
		switch mode {
		case "40000":
			subs = append(subs, id)
		case "160000":
		default:
			blobs = append(blobs, id)
		}
	}); err != nil {
		return err
	}
	for _, id := range blobs {
		if _, ok := seen[id]; ok {
			continue
		}
		if f.kind == filterBlobLimit {
			_, size, err := w.store.Stat(w.ctx, w.repo, id)
			if err != nil {
				return fmt.Errorf("read blob %s: %w", id, err)
			}
			if size < f.limit {
				seen[id] = struct{}{}
				out.push(id, plumbing.BlobObject)
			}
		}
		// blob:none, or too large: left out. Not marked seen, so a
		// want of it elsewhere is still honoured.
	}
	for _, id := range subs {
		if err := w.walkTreeBlobs(f, id, seen, out); err != nil {
			return err
		}
	}
	return nil
}

// walkTreeDepth is walkTree for tree:<depth>: tree h is at depth d.
func (w *walker) walkTreeDepth(f *objectFilter, h objects.Hash, d int64, seen map[objects.Hash]struct{}, out *packList, wanted bool) error {
	if d >= f.limit && !wanted {
		return nil
	}
	if prev, ok := f.treeDepth[h]; ok && prev <= d {
		return nil
	}
	if _, ok := seen[h]; ok {
		if _, walked := f.treeDepth[h]; !walked {
			return nil // the client has it (an edge) or it was wanted
		}
	} else {
		seen[h] = struct{}{}
		out.push(h, plumbing.TreeObject)
	}
	f.treeDepth[h] = d
	if err := w.ctx.Err(); err != nil {
		return err
	}
	var subs []objects.Hash
	if err := w.treeEntries(h, func(mode string, id objects.Hash, _ string) {
		switch mode {
		case "40000":
			subs = append(subs, id)
		case "160000":
		default:
			if d+1 < f.limit {
				if _, ok := seen[id]; !ok {
					seen[id] = struct{}{}
					out.push(id, plumbing.BlobObject)
				}
			}
		}
	}); err != nil {
		return err
	}
	for _, id := range subs {
		if err := w.walkTreeDepth(f, id, d+1, seen, out, false); err != nil {
			return err
		}
	}
	return nil
}
