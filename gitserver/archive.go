package gitserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// git-upload-archive ("git archive --remote", over SSH; C git speaks it
// over no HTTP transport):
//
//	C: argument <arg> ... 0000          (at most 64, as git's --format=tar, --prefix=p/, <tree-ish>, <path>...)
//	S: ACK 0000 | NACK <reason>
//	S: <side band: 1 archive, 2 messages, 3 error> 0000
//
// The arguments are checked before the ACK, so a refused request gets a
// NACK that git prints as "git archive: NACK <reason>". The tree-ish must
// name a ref (git's rules for a short name; "<ref>:<path>" for a subtree),
// as git's uploadArchive.allowUnreachable=false has it: only reachable
// trees are read. Options that would run something or read files on the
// server (--exec, --remote, --output, --add-file, --add-virtual-file,
// --attr-tree, --mtime) are refused. The tar output is git's, byte for
// byte: a pax global header with the commit id, ustar entries dated at the
// committer time, mode 0664/0775 (umask 002), 10240-byte blocks.
// .gitattributes (export-ignore, export-subst, eol) are not applied.
// Formats: tar only; zip, tgz and tar.gz are refused with a hint.

// UploadArchive is the git-upload-archive service (SSH only).
const UploadArchive Service = "git-upload-archive"

// maxArchiveArgs is git's bound on upload-archive arguments.
const maxArchiveArgs = 64

// archiveRequest is a parsed upload-archive request.
type archiveRequest struct {
	format  string
	prefix  string
	treeish string
	paths   []string
	list    bool
}

// readArchiveArgs reads the argument lines up to the flush.
func readArchiveArgs(pr *pktReader) ([]string, error) {
	var args []string
	for {
		line, k, err := pr.line()
		if err != nil {
			return nil, fmt.Errorf("read arguments: %w", err)
		}
		if k == pktFlush {
			return args, nil
		}
		if k != pktData {
			return nil, fmt.Errorf("%w: unexpected %v pkt in arguments", ErrProtocol, k)
		}
		if len(args) >= maxArchiveArgs {
			return nil, fmt.Errorf("%w: Too many options (>%d)", ErrProtocol, maxArchiveArgs)
		}
		arg, ok := strings.CutPrefix(line, "argument ")
		if !ok {
			return nil, fmt.Errorf("%w: 'argument' token or flush expected", ErrProtocol)
		}
		args = append(args, arg)
	}
}

// archiveArgError is an argument the server refuses; its text is the NACK.
type archiveArgError struct{ msg string }

func (e *archiveArgError) Error() string { return e.msg }

// parseArchiveArgs parses the arguments as git's archive does for a remote.
func parseArchiveArgs(args []string) (*archiveRequest, error) {
	req := &archiveRequest{format: "tar"}
	bad := func(format string, a ...any) (*archiveRequest, error) {
		return nil, &archiveArgError{fmt.Sprintf(format, a...)}
	}
	opts := true
	var level string
	for _, a := range args {
		if opts && strings.HasPrefix(a, "-") && a != "-" {
			switch {
			case a == "--":
				opts = false
			case strings.HasPrefix(a, "--format="):
				req.format = a[len("--format="):]
			case strings.HasPrefix(a, "--prefix="):
				req.prefix = a[len("--prefix="):]
			case a == "-v", a == "--verbose", a == "--worktree-attributes", a == "--no-worktree-attributes":
				// No work tree here; verbose lists nothing.
			case a == "-l", a == "--list":
				req.list = true
			case len(a) == 2 && a[1] >= '0' && a[1] <= '9':
				level = a
			case strings.HasPrefix(a, "--exec"), strings.HasPrefix(a, "--remote"), strings.HasPrefix(a, "--output"),
				strings.HasPrefix(a, "-o"):
				return bad("unexpected option %s: not allowed over the network", clipArg(a))
			case strings.HasPrefix(a, "--add-file"), strings.HasPrefix(a, "--add-virtual-file"):
				return bad("option %s is not allowed with --remote", clipArg(a))
			default:
				return bad("unsupported option %s (this server takes --format=tar, --prefix=<p>, <ref>[:<path>] and paths)", clipArg(a))
			}
			continue
		}
		if req.treeish == "" {
			req.treeish = a
			continue
		}
		if a == "" || strings.ContainsAny(a, "*?[\\") || strings.HasPrefix(a, ":") {
			return bad("pathspec %s: only literal paths are supported", clipArg(a))
		}
		req.paths = append(req.paths, strings.TrimSuffix(a, "/"))
	}
	if req.list {
		return req, nil
	}
	switch req.format {
	case "tar":
	case "zip", "tgz", "tar.gz":
		return bad("format '%s' is not served here; ask for --format=tar and compress locally (git archive --remote=... | gzip)", clipArg(req.format))
	default:
		return bad("Unknown archive format '%s'", clipArg(req.format))
	}
	if level != "" {
		return bad("Argument not supported for format '%s': %s", req.format, level)
	}
	if req.treeish == "" {
		return bad("no tree-ish given: git archive --remote=<url> <ref> [<path>...]")
	}
	return req, nil
}

func clipArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// archiveTree is what a request archives.
type archiveTree struct {
	tree   objects.Hash
	commit objects.Hash // zero for a subtree: no pax comment, mtime now
	mtime  int64
}

// resolveArchiveTree finds the tree a request names: a ref (git's rules
// for a short name), optionally followed by ":<path>".
func (s *Server) resolveArchiveTree(w *walker, rs *repoRefs, treeish string) (*archiveTree, error) {
	name, sub, hasSub := strings.Cut(treeish, ":")
	h, err := resolveRefName(rs, name)
	if err != nil {
		return nil, err
	}
	var c *commitNode
	for depth := 0; depth < 16; depth++ {
		o, err := w.get(h)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", h, err)
		}
		if o.Type == plumbing.TagObject {
			t, ok := tagTarget(o.Data)
			if !ok {
				return nil, fmt.Errorf("tag %s: no object line", h)
			}
			h = t
			continue
		}
		break
	}
	at := &archiveTree{}
	if c, err = w.commit(h); err == nil {
		at.tree, at.commit, at.mtime = c.tree, c.hash, c.time
	} else {
		typ, _, serr := w.store.Stat(w.ctx, w.repo, h)
		if serr != nil || typ != plumbing.TreeObject {
			return nil, &archiveArgError{"not a tree object: " + clipArg(name)}
		}
		at.tree, at.mtime = h, time.Now().Unix()
	}
	if hasSub && strings.Trim(sub, "/") != "" {
		t, err := w.lookupPath(at.tree, strings.Trim(sub, "/"))
		if err != nil {
			return nil, err
		}
		at.tree, at.commit, at.mtime = t, objects.Hash{}, time.Now().Unix()
	}
	return at, nil
}

// resolveRefName finds the advertised ref a short name means, by git's
// rules, and returns its value.
func resolveRefName(rs *repoRefs, name string) (objects.Hash, error) {
	var found []objects.Hash
	for _, full := range []string{name, "refs/" + name, "refs/tags/" + name, "refs/heads/" + name,
		"refs/remotes/" + name, "refs/remotes/" + name + "/HEAD"} {
		if full == "HEAD" {
			if !rs.head.IsZero() {
				found = append(found, rs.head)
			}
			continue
		}
		if h, ok := rs.byName[refs.Name(full)]; ok {
			found = append(found, h)
		}
	}
	if len(found) == 0 {
		return objects.Hash{}, &archiveArgError{"no such ref: " + clipArg(name)}
	}
	return found[0], nil
}

// lookupPath returns the tree at path under tree root.
func (w *walker) lookupPath(root objects.Hash, path string) (objects.Hash, error) {
	cur := root
	for _, part := range strings.Split(path, "/") {
		var next objects.Hash
		found := false
		if err := w.treeEntries(cur, func(mode string, id objects.Hash, name string) {
			if name == part && mode == "40000" {
				next, found = id, true
			}
		}); err != nil {
			return objects.Hash{}, err
		}
		if !found {
			return objects.Hash{}, &archiveArgError{"not a tree object: " + clipArg(path)}
		}
		cur = next
	}
	return cur, nil
}

// serveUploadArchive runs one upload-archive session.
func (s *Server) serveUploadArchive(ctx context.Context, pr *pktReader, pw *pktWriter, sess *Session) error {
	args, err := readArchiveArgs(pr)
	if err != nil {
		pw.linef("NACK %s", strings.TrimPrefix(err.Error(), ErrProtocol.Error()+": "))
		return err
	}
	nack := func(err error) error {
		pw.linef("NACK %s", err.Error())
		return err
	}
	req, err := parseArchiveArgs(args)
	if err != nil {
		return nack(err)
	}
	rs, err := s.loadRefs(ctx, sess.Repo)
	if err != nil {
		return err
	}
	w := newWalker(ctx, s.Objects, sess.Repo)
	var at *archiveTree
	if !req.list {
		if at, err = s.resolveArchiveTree(w, rs, req.treeish); err != nil {
			return nack(err)
		}
		for _, p := range req.paths {
			if ok, err := w.pathExists(at.tree, p); err != nil {
				return err
			} else if !ok {
				return nack(&archiveArgError{"pathspec '" + clipArg(p) + "' did not match any files"})
			}
		}
	}
	pw.linef("ACK")
	pw.flushPkt()
	if err := pw.send(); err != nil {
		return err
	}
	out := packBandWriter{p: pw, max: maxBandPayload}
	if req.list {
		_, err = io.WriteString(out, "tar\n")
	} else {
		bw := bufio.NewWriterSize(out, 64<<10)
		err = writeTarArchive(w, at, req.prefix, req.paths, bw)
		if err == nil {
			err = bw.Flush()
		}
	}
	if err != nil {
		ew := newBandWriter(&sync.Mutex{}, pw, bandError, false)
		fmt.Fprintf(ew, "upload-archive: %v\n", err)
		return err
	}
	s.logger().Info("upload-archive", "repo", sess.Repo, "identity", sess.Identity, "treeish", req.treeish, "format", req.format)
	return pw.flushPkt()
}

// pathExists reports whether path is a file or directory under tree.
func (w *walker) pathExists(tree objects.Hash, path string) (bool, error) {
	dir, base := "", path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		dir, base = path[:i], path[i+1:]
	}
	t := tree
	if dir != "" {
		var err error
		if t, err = w.lookupPath(tree, dir); err != nil {
			var ae *archiveArgError
			if asArchiveArgError(err, &ae) {
				return false, nil
			}
			return false, err
		}
	}
	found := false
	err := w.treeEntries(t, func(_ string, _ objects.Hash, name string) {
		if name == base {
			found = true
		}
	})
	return found, err
}

func asArchiveArgError(err error, target **archiveArgError) bool {
	e, ok := err.(*archiveArgError)
	if ok {
		*target = e
	}
	return ok
}

// tarWriter writes git's blocked tar: every piece padded to 512 bytes,
// written in 10240-byte blocks.
type tarWriter struct {
	w     io.Writer
	block [10240]byte
	off   int
	err   error
}

func (t *tarWriter) writeBlocked(data []byte) {
	for len(data) > 0 && t.err == nil {
		n := copy(t.block[t.off:], data)
		t.off += n
		data = data[n:]
		if t.off == len(t.block) {
			_, t.err = t.w.Write(t.block[:])
			t.off = 0
		}
	}
	if tail := t.off % 512; tail != 0 {
		for i := t.off; i < t.off+512-tail; i++ {
			t.block[i] = 0
		}
		t.off += 512 - tail
		if t.off == len(t.block) && t.err == nil {
			_, t.err = t.w.Write(t.block[:])
			t.off = 0
		}
	}
}

// trailer ends the archive as git does: the rest of the block zeroed,
// and one more zero block when fewer than two records were left.
func (t *tarWriter) trailer() {
	tail := len(t.block) - t.off
	for i := t.off; i < len(t.block); i++ {
		t.block[i] = 0
	}
	if t.err == nil {
		_, t.err = t.w.Write(t.block[:])
	}
	if tail < 2*512 && t.err == nil {
		for i := range t.block {
			t.block[i] = 0
		}
		_, t.err = t.w.Write(t.block[:])
	}
	t.off = 0
}

const ustarMax = 077777777777

// paxRecord is one "<len> <key>=<value>\n" record.
func paxRecord(key, value string) string {
	n := 1 + 1 + len(key) + 1 + len(value) + 1
	for tmp := 1; n/10 >= tmp; tmp *= 10 {
		n++
	}
	return strconv.Itoa(n) + " " + key + "=" + value + "\n"
}

// ustarHeader builds one 512-byte header as git's prepare_header does.
func ustarHeader(name, prefix, linkname string, typeflag byte, mode uint32, size uint64, mtime int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], fmt.Sprintf("%07o", mode&07777))
	copy(h[108:116], fmt.Sprintf("%07o", 0))
	copy(h[116:124], fmt.Sprintf("%07o", 0))
	copy(h[124:136], fmt.Sprintf("%011o", size))
	copy(h[136:148], fmt.Sprintf("%011o", mtime))
	h[156] = typeflag
	copy(h[157:257], linkname)
	copy(h[257:263], "ustar\x00")
	copy(h[263:265], "00")
	copy(h[265:297], "root")
	copy(h[297:329], "root")
	copy(h[329:337], fmt.Sprintf("%07o", 0))
	copy(h[337:345], fmt.Sprintf("%07o", 0))
	copy(h[345:500], prefix)
	sum := 0
	for i, b := range h {
		if i >= 148 && i < 156 {
			sum += ' '
		} else {
			sum += int(b)
		}
	}
	copy(h[148:156], fmt.Sprintf("%07o", sum))
	return h
}

// pathPrefix is git's get_path_prefix: where to split a long path
// between the ustar prefix and name fields.
func pathPrefix(path string, maxlen int) int {
	i := len(path)
	if i > 1 && path[i-1] == '/' {
		i--
	}
	if i > maxlen {
		i = maxlen
	}
	for {
		i--
		if !(i > 0 && path[i] != '/') {
			break
		}
	}
	return i
}

// tarEntry writes one entry. mode is the git mode; data the content
// (blob) or link target.
func (t *tarWriter) tarEntry(oid objects.Hash, path string, mode uint32, data []byte, mtime int64) {
	var typeflag byte
	var ext string
	switch {
	case mode == 040000 || mode == 0160000 || mode == 040777:
		typeflag = '5'
		mode = (mode | 0777) &^ 002
	case mode == 0120000:
		typeflag = '2'
		mode |= 0777
	default:
		typeflag = '0'
		if mode&0100 != 0 {
			mode |= 0777
		} else {
			mode |= 0666
		}
		mode &^= 002
	}
	name, prefix := path, ""
	if len(path) > 100 {
		plen := pathPrefix(path, 155)
		rest := len(path) - plen - 1
		if plen > 0 && rest <= 100 {
			prefix, name = path[:plen], path[plen+1:]
		} else {
			name = oid.String() + ".data"
			ext += paxRecord("path", path)
		}
	}
	link := ""
	if typeflag == '2' {
		if len(data) > 100 {
			link = "see " + oid.String() + ".paxheader"
			ext += paxRecord("linkpath", string(data))
		} else {
			link = string(data)
		}
	}
	size := uint64(0)
	if typeflag == '0' {
		size = uint64(len(data))
		if size > ustarMax {
			ext += paxRecord("size", strconv.FormatUint(size, 10))
			size = 0
		}
	}
	if ext != "" {
		t.writeBlocked(ustarHeader(oid.String()+".paxheader", "", "", 'x', 0100666, uint64(len(ext)), mtime))
		t.writeBlocked([]byte(ext))
	}
	t.writeBlocked(ustarHeader(name, prefix, link, typeflag, mode, size, mtime))
	if typeflag == '0' && len(data) > 0 {
		t.writeBlocked(data)
	}
}

// writeTarArchive writes the archive of at as git archive --format=tar
// does.
func writeTarArchive(w *walker, at *archiveTree, prefix string, paths []string, out io.Writer) error {
	t := &tarWriter{w: out}
	mtime := at.mtime
	var global string
	if !at.commit.IsZero() {
		global += paxRecord("comment", at.commit.String())
	}
	if mtime > ustarMax {
		global += paxRecord("mtime", strconv.FormatInt(mtime, 10))
		mtime = ustarMax
	}
	if global != "" {
		t.writeBlocked(ustarHeader("pax_global_header", "", "", 'g', 0100666, uint64(len(global)), mtime))
		t.writeBlocked([]byte(global))
	}
	if len(prefix) > 0 && prefix[len(prefix)-1] == '/' {
		n := len(prefix)
		for n > 1 && prefix[n-2] == '/' {
			n--
		}
		t.tarEntry(at.tree, prefix[:n], 040777, nil, mtime)
	}
	// Directories are written only once something under them is, as
	// git's queue_or_write_archive_entry does.
	type dir struct {
		oid  objects.Hash
		path string
	}
	var pending []dir
	match := func(p string, isDir bool) (in, descend bool) {
		if len(paths) == 0 {
			return true, true
		}
		for _, ps := range paths {
			if p == ps || strings.HasPrefix(p, ps+"/") {
				return true, true
			}
			if isDir && strings.HasPrefix(ps, p+"/") {
				descend = true
			}
		}
		return false, descend
	}
	var walk func(tree objects.Hash, base string) error
	walk = func(tree objects.Hash, base string) error {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		type ent struct {
			mode uint32
			id   objects.Hash
			name string
		}
		var ents []ent
		var perr error
		if err := w.treeEntries(tree, func(mode string, id objects.Hash, name string) {
			m, err := strconv.ParseUint(mode, 8, 32)
			if err != nil && perr == nil {
				perr = fmt.Errorf("tree %s: bad mode %q", tree, mode)
			}
			ents = append(ents, ent{uint32(m), id, name})
		}); err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		for _, e := range ents {
			p := base + e.name
			switch e.mode {
			case 040000:
				_, descend := match(p, true)
				if !descend {
					continue
				}
				pending = append(pending, dir{e.id, p})
				n := len(pending)
				if err := walk(e.id, p+"/"); err != nil {
					return err
				}
				if len(pending) >= n {
					pending = pending[:n-1] // nothing under it was written
				}
				continue
			}
			if in, _ := match(p, false); !in {
				continue
			}
			for _, d := range pending {
				t.tarEntry(d.oid, prefix+d.path+"/", 040000, nil, mtime)
			}
			pending = pending[:0]
			if e.mode == 0160000 {
				t.tarEntry(e.id, prefix+p+"/", e.mode, nil, mtime)
				continue
			}
			o, err := w.get(e.id)
			if err != nil {
				return fmt.Errorf("read blob %s: %w", e.id, err)
			}
			t.tarEntry(e.id, prefix+p, e.mode, o.Data, mtime)
			if t.err != nil {
				return t.err
			}
		}
		return nil
	}
	if err := walk(at.tree, ""); err != nil {
		return err
	}
	t.trailer()
	return t.err
}
