package objects

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
)

// Check runs git fsck's object checks (as receive.fsckObjects does, with
// warnings treated as errors) on every object written into the quarantine,
// then checks the blobs those trees name .gitmodules or .gitattributes
// (CheckGitmodules, CheckGitattributes) wherever they are: in the
// quarantine, whatever their place in the pack, or already in the repo.
// Last it checks connectivity: every object reachable from tips that is
// not already in the repo must be in the quarantine. Objects already in
// the repo are trusted and not walked.
//
// It returns the first problem as a *CheckError whose Check is git fsck's
// message id (hasDotgit, treeNotSorted, badDate, gitmodulesUrl,
// missingObject, ...). Objects are checked in hash order, so the result is
// deterministic.
func (q *Quarantine) Check(ctx context.Context, tips []Hash) error {
	q.mu.RLock()
	types := make(map[Hash]Type, len(q.ingested))
	for h, t := range q.ingested {
		types[h] = t
	}
	pre := q.checked
	q.mu.RUnlock()
	// Every object but the blobs, checked in parallel; the first problem
	// in hash order wins, and the special blobs are noted in hash order
	// of the trees that name them, as a serial check would.
	var objs []Hash
	for _, h := range q.Ingested() {
		if types[h] != plumbing.BlobObject {
			objs = append(objs, h) // blobs: checked below only if a tree names them specially
		}
	}
	type noted struct {
		obj      int
		tree, id Hash
		role     blobRole
	}
	links := make([]kept, len(objs))
	var linkBytes atomic.Int64
	workers := checkWorkers(len(objs))
	errs := make([]error, workers)
	notes := make([][]noted, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(objs); i += workers {
				if i%1024 < workers {
					if err := ctx.Err(); err != nil {
						errs[w] = err
						return
					}
				}
				h := objs[i]
				if pc, ok := pre[h]; ok {
					// Checked at ingest, from the same content.
					for _, n := range pc.notes {
						notes[w] = append(notes[w], noted{i, h, n.id, n.role})
					}
					if pc.err != nil {
						errs[w] = &indexedError{i, pc.err}
						return
					}
					if linkBytes.Load() < maxKeptLinkBytes {
						links[i] = pc.links
						linkBytes.Add(int64(len(pc.links.links)) * linkSize)
					}
					continue
				}
				o, err := q.Get(ctx, h)
				if err == nil && o.Type == plumbing.TreeObject {
					err = checkTree(h, o.Data, func(tree, id Hash, role blobRole) {
						notes[w] = append(notes[w], noted{i, tree, id, role})
					})
				} else if err == nil {
					err = CheckObject(h, o.Type, o.Data)
				}
				if err == nil && linkBytes.Load() < maxKeptLinkBytes {
					// Kept for the connectivity walk, which then need not
					// read the object again.
					var l []link
					if l, err = objectLinks(h, o.Type, o.Data); err == nil {
						links[i] = kept{typ: o.Type, links: l, ok: true}
						linkBytes.Add(int64(len(l)) * linkSize)
					}
				}
				if err != nil {
					errs[w] = &indexedError{i, err}
					return
				}
			}
		}()
	}
	wg.Wait()
	var first *indexedError
	for _, err := range errs {
		var ie *indexedError
		if err != nil && !errors.As(err, &ie) {
			return err
		}
		if ie != nil && (first == nil || ie.i < first.i) {
			first = ie
		}
	}
	if first != nil {
		return first.err
	}
	var all []noted
	for _, n := range notes {
		all = append(all, n...)
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].obj < all[b].obj })
	named := make(map[Hash]namedBlob)
	for _, n := range all {
		nb, ok := named[n.id]
		if !ok {
			nb.tree = n.tree
		}
		nb.roles |= n.role
		named[n.id] = nb
	}
	ids := make([]Hash, 0, len(named))
	for id := range named {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		nb := named[id]
		// The size first: a blob over its role's limit is refused
		// without reading it.
		typ, size, err := q.Stat(ctx, id)
		var zdata []byte
		if err == nil && typ == plumbing.BlobObject && size <= nb.roles.maxBytes() {
			_, _, zdata, err = q.Raw(ctx, id)
		}
		for _, role := range []blobRole{roleGitmodules, roleGitattributes} {
			if nb.roles&role == 0 {
				continue
			}
			if err := checkNamedBlob(id, role, nb.tree, typ, size, zdata, err); err != nil {
				return err
			}
		}
	}
	pos := make(map[Hash]int32, len(objs))
	for i, h := range objs {
		if links[i].ok {
			pos[h] = int32(i)
		}
	}
	return q.checkConnected(ctx, tips, func(h Hash) (kept, bool) {
		if i, ok := pos[h]; ok {
			return links[i], true
		}
		return kept{}, false
	})
}

// kept is what the object checks keep of an object for the connectivity
// walk: its type and the objects it points to.
type kept struct {
	typ   Type
	links []link
	ok    bool
}

// maxKeptLinkBytes bounds the links one Check keeps between its two
// passes; past it, the walk reads the objects again.
const maxKeptLinkBytes = 32 << 20

// linkSize is the memory of one kept link.
const linkSize = 21

// indexedError is a check's problem and the index of its object.
type indexedError struct {
	i   int
	err error
}

func (e *indexedError) Error() string { return e.err.Error() }

// checkWorkers is how many goroutines check n objects.
func checkWorkers(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), 4, n/256))
}

// namedBlob is what pushed trees named one object: .gitmodules,
// .gitattributes or both, and the first tree (in hash order) that did.
type namedBlob struct {
	roles blobRole
	tree  Hash
}

// checkConnected walks from tips through quarantined objects, a level at
// a time, each level's objects read and parsed in parallel.
func (q *Quarantine) checkConnected(ctx context.Context, tips []Hash, known func(Hash) (kept, bool)) error {
	type want struct {
		h    Hash
		typ  Type // expected type; 0 when any
		from Hash // the object that points at h (ZeroHash for a tip)
	}
	seen := make(map[Hash]bool)
	var level []want
	for _, t := range tips {
		if !t.IsZero() && !seen[t] {
			seen[t] = true
			level = append(level, want{h: t})
		}
	}
	// visit checks one object and returns what it points to.
	visit := func(w want) ([]link, error) {
		inRepo, err := q.store.Has(ctx, q.repo, w.h)
		if err != nil {
			return nil, err
		}
		if inRepo {
			return nil, nil
		}
		if k, ok := known(w.h); ok {
			if w.typ != 0 && k.typ != w.typ {
				return nil, &CheckError{Object: w.from, Check: "badType",
					Detail: fmt.Sprintf("points to %s as a %s, but it is a %s", w.h, w.typ, k.typ)}
			}
			return k.links, nil
		}
		typ, _, err := q.Stat(ctx, w.h)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if err != nil {
			obj, detail := w.h, "missing "+w.h.String()
			if !w.from.IsZero() {
				obj = w.from
				detail = fmt.Sprintf("points to %s, which is missing", w.h)
			}
			if w.typ != 0 {
				detail = fmt.Sprintf("%s (%s)", detail, w.typ)
			}
			return nil, &CheckError{Object: obj, Check: "missingObject", Detail: detail}
		}
		if w.typ != 0 && typ != w.typ {
			return nil, &CheckError{Object: w.from, Check: "badType",
				Detail: fmt.Sprintf("points to %s as a %s, but it is a %s", w.h, w.typ, typ)}
		}
		if typ == plumbing.BlobObject {
			return nil, nil
		}
		o, err := q.Get(ctx, w.h)
		if err != nil {
			return nil, err
		}
		return objectLinks(w.h, o.Type, o.Data)
	}
	for len(level) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		workers := checkWorkers(len(level))
		links := make([][]link, len(level))
		errs := make([]error, len(level))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(level); i += workers {
					links[i], errs[i] = visit(level[i])
				}
			}()
		}
		wg.Wait()
		var next []want
		for i, err := range errs {
			if err != nil {
				return err
			}
			for _, l := range links[i] {
				if !seen[l.h] {
					seen[l.h] = true
					next = append(next, want{h: l.h, typ: l.typ, from: level[i].h})
				}
			}
		}
		level = next
	}
	return nil
}

type link struct {
	h   Hash
	typ Type
}

// objectLinks returns the objects o points to (gitlinks excluded). o has
// passed CheckObject.
func objectLinks(h Hash, typ Type, data []byte) ([]link, error) {
	var out []link
	switch typ {
	case plumbing.TreeObject:
		err := walkTree(data, func(mode uint32, modeText, name []byte, id Hash) error {
			switch {
			case mode == 0o160000:
			case mode == 0o040000:
				out = append(out, link{id, plumbing.TreeObject})
			default:
				out = append(out, link{id, plumbing.BlobObject})
			}
			return nil
		})
		if err != nil {
			return nil, &CheckError{Object: h, Check: "badTree", Detail: err.Error()}
		}
	case plumbing.CommitObject:
		hdr := headerLines(data)
		for _, l := range hdr {
			if v, ok := bytes.CutPrefix(l, []byte("tree ")); ok {
				out = append(out, link{parseHex(v), plumbing.TreeObject})
			} else if v, ok := bytes.CutPrefix(l, []byte("parent ")); ok {
				out = append(out, link{parseHex(v), plumbing.CommitObject})
			}
		}
	case plumbing.TagObject:
		var target Hash
		var ttyp Type
		for _, l := range headerLines(data) {
			if v, ok := bytes.CutPrefix(l, []byte("object ")); ok {
				target = parseHex(v)
			} else if v, ok := bytes.CutPrefix(l, []byte("type ")); ok {
				ttyp, _ = plumbing.ParseObjectType(string(v))
			}
		}
		out = append(out, link{target, ttyp})
	}
	return out, nil
}

// headerLines returns the header lines of a commit or tag (up to the first
// blank line), without their newlines.
func headerLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		if i == 0 {
			break
		}
		out = append(out, data[:i])
		data = data[i+1:]
	}
	return out
}

func parseHex(b []byte) Hash {
	var h Hash
	if len(b) == 40 {
		_, _ = hex.Decode(h[:], b)
	}
	return h
}

// isHex40 reports whether b is exactly 40 lowercase hex digits.
func isHex40(b []byte) bool {
	_, ok := ParseHash(b)
	return ok
}

// CheckObject runs git fsck's checks for one object of the given type and
// content. It returns a *CheckError or nil.
func CheckObject(h Hash, typ Type, data []byte) error {
	switch typ {
	case plumbing.TreeObject:
		return CheckTree(h, data)
	case plumbing.CommitObject:
		return CheckCommit(h, data)
	case plumbing.TagObject:
		return CheckTag(h, data)
	case plumbing.BlobObject:
		return nil
	}
	return &CheckError{Object: h, Check: "unknownType", Detail: fmt.Sprintf("unknown object type %d", typ)}
}

// walkTree parses a tree's entries: "<mode> <name>\0<hash:20>"*. It stops at
// the first malformed entry.
func walkTree(data []byte, fn func(mode uint32, modeText, name []byte, id Hash) error) error {
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 {
			return fmt.Errorf("malformed mode in tree entry")
		}
		modeText := data[:sp]
		var mode uint32
		for _, c := range modeText {
			if c < '0' || c > '7' || mode > 0o7777777 {
				return fmt.Errorf("malformed mode %q in tree entry", modeText)
			}
			mode = mode<<3 | uint32(c-'0')
		}
		rest := data[sp+1:]
		nul := bytes.IndexByte(rest, 0)
		if nul < 0 || len(rest) < nul+1+20 {
			return fmt.Errorf("truncated tree entry")
		}
		name := rest[:nul]
		var id Hash
		copy(id[:], rest[nul+1:nul+21])
		if err := fn(mode, modeText, name, id); err != nil {
			return err
		}
		data = rest[nul+21:]
	}
	return nil
}

// gitTreeLess compares tree entries in git's order: a directory sorts as
// if its name ended in '/'. It returns -1, 0 (same name) or 1.
func gitTreeCompare(n1 []byte, dir1 bool, n2 []byte, dir2 bool) int {
	l := min(len(n1), len(n2))
	if c := bytes.Compare(n1[:l], n2[:l]); c != 0 {
		return c
	}
	if len(n1) == len(n2) {
		return 0 // same name: duplicate whatever the modes
	}
	var c1, c2 byte
	if len(n1) > l {
		c1 = n1[l]
	} else if dir1 {
		c1 = '/'
	}
	if len(n2) > l {
		c2 = n2[l]
	} else if dir2 {
		c2 = '/'
	}
	switch {
	case c1 < c2:
		return -1
	case c1 > c2:
		return 1
	}
	return 0
}

// CheckTree runs git fsck's tree checks (fsck_tree, strict). The blobs
// it names .gitmodules or .gitattributes are not at hand here: Check
// checks them.
func CheckTree(h Hash, data []byte) error {
	return checkTree(h, data, func(tree, id Hash, role blobRole) {})
}

// checkTree is CheckTree that also calls note for every entry git would
// check as a .gitmodules or .gitattributes blob: any name those files have
// on a case-insensitive, HFS+ or NTFS file system (".GITMODULES",
// ".gitmodules ", "GITMOD~1", ".git\u200cmodules", "a\\.gitmodules"...),
// whatever the entry's mode except a symlink (a tree or a gitlink there is
// refused later as gitmodulesBlob or gitmodulesMissing, as git does).
func checkTree(h Hash, data []byte, note func(tree, id Hash, role blobRole)) error {
	fail := func(check, format string, args ...any) error {
		return &CheckError{Object: h, Check: check, Detail: fmt.Sprintf(format, args...)}
	}
	var prevName []byte
	var prevDir, first = false, true
	names := make(map[string]bool)
	var problem error
	err := walkTree(data, func(mode uint32, modeText, name []byte, id Hash) error {
		sname := string(name)
		switch {
		case len(name) == 0:
			// git refuses to decode such a tree at all.
			return fail("badTree", "cannot be parsed as a tree: empty filename in tree entry")
		case bytes.IndexByte(name, '/') >= 0:
			return fail("fullPathname", "contains full pathnames: %q", name)
		case sname == ".":
			return fail("hasDot", "contains '.'")
		case sname == "..":
			return fail("hasDotdot", "contains '..'")
		case isHFSDotGeneric(name, "git") || isNTFSDotGit(name):
			return fail("hasDotgit", "contains '.git' (%q)", name)
		}
		// NTFS treats '\' as a separator: check every part.
		if bytes.IndexByte(name, '\\') >= 0 {
			for _, part := range bytes.Split(name, []byte{'\\'}) {
				if string(part) == "." || string(part) == ".." || isHFSDotGeneric(part, "git") || isNTFSDotGit(part) {
					return fail("hasDotgit", "contains backslash-separated '.git' or '..' (%q)", name)
				}
			}
		}
		symlink := mode&0o170000 == 0o120000
		dotGitmodules := isHFSDotGeneric(name, "gitmodules") || isNTFSDotGeneric(name, "gitmodules", "gi7eba")
		// NTFS reads '\' as a separator: like git, look at what follows
		// each one (for .gitmodules only, as git does).
		for rest := name; !dotGitmodules; {
			i := bytes.IndexByte(rest, '\\')
			if i < 0 {
				break
			}
			rest = rest[i+1:]
			dotGitmodules = isNTFSDotGeneric(rest, "gitmodules", "gi7eba")
		}
		if dotGitmodules {
			if symlink {
				return fail("gitmodulesSymlink", ".gitmodules is a symbolic link (%q): Git refuses to follow it; commit the file itself", name)
			}
			note(h, id, roleGitmodules)
		}
		// A symlinked .gitattributes (gitattributesSymlink), .gitignore
		// or .mailmap is only a note in git: accepted.
		if !symlink && (isHFSDotGeneric(name, "gitattributes") || isNTFSDotGeneric(name, "gitattributes", "gi7d29")) {
			note(h, id, roleGitattributes)
		}
		if id.IsZero() {
			return fail("nullSha1", "contains entries pointing to null sha1 (%q)", name)
		}
		if modeText[0] == '0' {
			return fail("zeroPaddedFilemode", "contains zero-padded file modes (%s %q)", modeText, name)
		}
		switch mode {
		case 0o100644, 0o100755, 0o040000, 0o120000, 0o160000:
		default:
			return fail("badFilemode", "contains bad file modes (%s %q)", modeText, name)
		}
		dir := mode == 0o040000
		if names[sname] {
			return fail("duplicateEntries", "contains duplicate file entries (%q)", name)
		}
		names[sname] = true
		if !first {
			switch gitTreeCompare(prevName, prevDir, name, dir) {
			case 1:
				return fail("treeNotSorted", "not properly sorted (%q after %q)", name, prevName)
			case 0:
				return fail("duplicateEntries", "contains duplicate file entries (%q)", name)
			}
		}
		first = false
		prevName, prevDir = name, dir
		return nil
	})
	if err != nil {
		if ce, ok := err.(*CheckError); ok {
			return ce
		}
		problem = fail("badTree", "cannot be parsed as a tree: %v", err)
	}
	return problem
}

// hfsIgnorable reports the code points HFS+ ignores when comparing names.
func hfsIgnorable(r rune) bool {
	switch r {
	case 0x200c, 0x200d, 0x200e, 0x200f,
		0x202a, 0x202b, 0x202c, 0x202d, 0x202e,
		0x206a, 0x206b, 0x206c, 0x206d, 0x206e, 0x206f,
		0xfeff:
		return true
	}
	return false
}

// isHFSDotGeneric reports whether name is "." + needle on HFS+: case-folded
// and with ignorable code points removed (git's is_hfs_dot_generic). As in
// git, a byte sequence that is not UTF-8 (or is U+FFFE or U+FFFF) ends the
// name there, so ".git\xff" counts as ".git".
func isHFSDotGeneric(name []byte, needle string) bool {
	next := func() (rune, bool) {
		for len(name) > 0 {
			r, n := utf8.DecodeRune(name)
			name = name[n:]
			if r == utf8.RuneError && n == 1 || r == 0xfffe || r == 0xffff {
				name = nil
				return 0, false
			}
			if hfsIgnorable(r) {
				continue
			}
			return r, true
		}
		return 0, false
	}
	if r, ok := next(); !ok || r != '.' {
		return false
	}
	for i := 0; i < len(needle); i++ {
		r, ok := next()
		if !ok || r > 127 {
			return false
		}
		if lower(byte(r)) != needle[i] {
			return false
		}
	}
	r, ok := next()
	return !ok || r == '/'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// isNTFSDotGit is git's is_ntfs_dotgit: ".git" or its 8.3 short name
// "git~1", case-insensitive, followed by nothing, a separator, ':' (an
// alternate data stream such as "::$INDEX_ALLOCATION"), or only trailing
// dots and spaces.
func isNTFSDotGit(name []byte) bool {
	var rest []byte
	switch {
	case len(name) >= 4 && name[0] == '.' && eqFold(name[1:4], "git"):
		rest = name[4:]
	case len(name) >= 5 && eqFold(name[0:3], "git") && name[3] == '~' && name[4] == '1':
		rest = name[5:]
	default:
		return false
	}
	return onlyNTFSTail(rest)
}

// isNTFSDotGeneric is git's is_ntfs_dot_generic: whether NTFS may open
// name as ".<needle>". That is ".<needle>" (any case), its 8.3 short names
// "<first 6 of needle>~1" to "~4", or the hashed short name git derives
// from shortPrefix ("<up to 6 of shortPrefix>~<1-9><digits>", 8 bytes in
// all), each followed by nothing, by only spaces and dots, or by ':' (an
// alternate data stream). Unlike for ".git", a '/' or '\' after the name
// does not count: a tree entry's name ends there.
func isNTFSDotGeneric(name []byte, needle, shortPrefix string) bool {
	if len(name) > len(needle) && name[0] == '.' && eqFold(name[1:1+len(needle)], needle) {
		return onlyNTFSStreamTail(name[1+len(needle):])
	}
	if len(name) >= 8 && eqFold(name[:6], needle[:6]) && name[6] == '~' && name[7] >= '1' && name[7] <= '4' {
		return onlyNTFSStreamTail(name[8:])
	}
	if len(name) < 8 {
		return false
	}
	i, tilde := 0, false
	for ; i < 8; i++ {
		c := name[i]
		switch {
		case tilde:
			if c < '0' || c > '9' {
				return false
			}
		case c == '~':
			if i++; i >= len(name) || name[i] < '1' || name[i] > '9' {
				return false
			}
			tilde = true
		case i >= 6 || c >= 0x80 || lower(c) != shortPrefix[i]:
			return false
		}
	}
	return tilde && onlyNTFSStreamTail(name[i:])
}

// onlyNTFSStreamTail reports whether rest is only spaces and dots, up to
// its end or a ':'.
func onlyNTFSStreamTail(rest []byte) bool {
	for _, c := range rest {
		if c == ':' {
			return true
		}
		if c != '.' && c != ' ' {
			return false
		}
	}
	return true
}

func onlyNTFSTail(rest []byte) bool {
	for _, c := range rest {
		if c == '/' || c == '\\' || c == ':' {
			return true
		}
		if c != '.' && c != ' ' {
			return false
		}
	}
	return true
}

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// verifyHeaders is git's verify_headers: no NUL in the header part and the
// header is terminated by a blank line or the end of a final newline.
func verifyHeaders(h Hash, data []byte) error {
	for i, c := range data {
		if c == 0 {
			return &CheckError{Object: h, Check: "nulInHeader", Detail: fmt.Sprintf("unterminated header: NUL at offset %d", i)}
		}
		if c == '\n' && i+1 < len(data) && data[i+1] == '\n' {
			return nil
		}
	}
	if len(data) > 0 && data[len(data)-1] == '\n' {
		return nil
	}
	return &CheckError{Object: h, Check: "unterminatedHeader", Detail: "unterminated header"}
}

// checkIdent is git's fsck_ident on "Name <email> 1234567890 +0000\n".
// line excludes the newline.
func checkIdent(h Hash, line []byte) error {
	fail := func(check, detail string) error {
		return &CheckError{Object: h, Check: check, Detail: detail + ": " + strconv.Quote(string(line))}
	}
	p := line
	if len(p) > 0 && p[0] == '<' {
		return fail("missingNameBeforeEmail", "invalid author/committer line - missing space before email")
	}
	i := bytes.IndexAny(p, "<>")
	if i >= 0 && p[i] == '>' {
		return fail("badName", "invalid author/committer line - bad name")
	}
	if i < 0 {
		return fail("missingEmail", "invalid author/committer line - missing email")
	}
	if i == 0 || p[i-1] != ' ' {
		return fail("missingSpaceBeforeEmail", "invalid author/committer line - missing space before email")
	}
	p = p[i+1:]
	j := bytes.IndexAny(p, "<>")
	if j < 0 || p[j] != '>' {
		return fail("badEmail", "invalid author/committer line - bad email")
	}
	p = p[j+1:]
	if len(p) == 0 || p[0] != ' ' {
		return fail("missingSpaceBeforeDate", "invalid author/committer line - missing space before date")
	}
	p = p[1:]
	if len(p) > 1 && p[0] == '0' && p[1] != ' ' {
		return fail("zeroPaddedDate", "invalid author/committer line - zero-padded date")
	}
	k := 0
	for k < len(p) && p[k] >= '0' && p[k] <= '9' {
		k++
	}
	if k == 0 || k >= len(p) || p[k] != ' ' {
		return fail("badDate", "invalid author/committer line - bad date")
	}
	if _, err := strconv.ParseUint(string(p[:k]), 10, 63); err != nil || k > 19 {
		return fail("badDateOverflow", "invalid author/committer line - date causes integer overflow")
	}
	p = p[k+1:]
	if len(p) != 5 || (p[0] != '+' && p[0] != '-') || !isDigits(p[1:5]) {
		return fail("badTimezone", "invalid author/committer line - bad time zone")
	}
	return nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// CheckCommit runs git fsck's commit checks (fsck_commit).
func CheckCommit(h Hash, data []byte) error {
	if err := verifyHeaders(h, data); err != nil {
		return err
	}
	fail := func(check, detail string) error {
		return &CheckError{Object: h, Check: check, Detail: detail}
	}
	lines := headerLines(data)
	i := 0
	if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte("tree ")) {
		return fail("missingTree", "invalid format - expected 'tree' line")
	}
	if !isHex40(lines[i][5:]) {
		return fail("badTreeSha1", "invalid 'tree' line format - bad sha1")
	}
	i++
	for i < len(lines) && bytes.HasPrefix(lines[i], []byte("parent ")) {
		if !isHex40(lines[i][7:]) {
			return fail("badParentSha1", "invalid 'parent' line format - bad sha1")
		}
		i++
	}
	authors := 0
	for i < len(lines) && bytes.HasPrefix(lines[i], []byte("author ")) {
		authors++
		if authors > 1 {
			return fail("multipleAuthors", "invalid format - multiple 'author' lines")
		}
		if err := checkIdent(h, lines[i][7:]); err != nil {
			return err
		}
		i++
	}
	if authors == 0 {
		return fail("missingAuthor", "invalid format - expected 'author' line")
	}
	if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte("committer ")) {
		return fail("missingCommitter", "invalid format - expected 'committer' line")
	}
	if err := checkIdent(h, lines[i][10:]); err != nil {
		return err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return fail("nulInCommit", "NUL byte in the commit object body")
	}
	return nil
}

// CheckTag runs git fsck's tag checks (fsck_tag_standalone). A missing
// tagger and a bad tag name are only informational in git and pass here.
func CheckTag(h Hash, data []byte) error {
	if err := verifyHeaders(h, data); err != nil {
		return err
	}
	fail := func(check, detail string) error {
		return &CheckError{Object: h, Check: check, Detail: detail}
	}
	lines := headerLines(data)
	i := 0
	if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte("object ")) {
		return fail("missingObject", "invalid format - expected 'object' line")
	}
	if !isHex40(lines[i][7:]) {
		return fail("badObjectSha1", "invalid 'object' line format - bad sha1")
	}
	i++
	if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte("type ")) {
		return fail("missingTypeEntry", "invalid format - expected 'type' line")
	}
	if t, err := plumbing.ParseObjectType(string(lines[i][5:])); err != nil || !validType(t) {
		return fail("badType", "invalid 'type' value")
	}
	i++
	if i >= len(lines) || !bytes.HasPrefix(lines[i], []byte("tag ")) {
		return fail("missingTagEntry", "invalid format - expected 'tag' line")
	}
	i++
	if i < len(lines) && bytes.HasPrefix(lines[i], []byte("tagger ")) {
		return checkIdent(h, lines[i][7:])
	}
	return nil
}
