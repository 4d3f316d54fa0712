package hooks

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/weir-dev/weir/hooks/contract"
)

// Python helpers: the repo's lib/ folder, importable by every Python model
// as the package lib ("from lib.fx import convert").
//
// A run stages lib/ once, from the pushed commit's tree (never the
// server's disk), under <run>/lib/lib/, and binds <run>/lib read-only into
// each Python node's sandbox as the input contract.LibInput, which the
// runner puts on PYTHONPATH. Every byte of the tree is the pusher's: the
// walk takes only regular files and folders (a symlink or submodule is
// refused, naming it), bounds the count, the depth and the total size
// before reading, checks each name once more, and writes through an
// os.Root confined to the staging folder.
//
// Node reuse (reuse.go) never reuses a Python node; were it to, the reuse
// key of a Python node would have to include lib/'s tree id, since any
// model may import any helper.

// Bounds of lib/.
const (
	LibDir        = "lib"
	maxLibFiles   = 1000
	maxLibBytes   = 16 << 20
	maxLibFile    = 4 << 20
	maxLibDepth   = 16
	maxLibNameLen = 255
)

// libStage is a run's staged lib/, made once by the first Python node.
type libStage struct {
	once sync.Once
	dir  string // "" when the commit has no lib/
	err  error
}

// libDir returns the folder to bind as contract.LibInput ("" for none).
func (r *run) libDir() (string, error) {
	r.lib.once.Do(func() {
		if r.push == nil || r.push.Quarantine == nil {
			return
		}
		dir := filepath.Join(r.dir, "lib")
		ok, err := stageLib(r.push.Quarantine.Storer(), r.code, dir)
		if err != nil {
			r.lib.err = err
			return
		}
		if ok {
			r.lib.dir = dir
		}
	})
	return r.lib.dir, r.lib.err
}

// stageLib writes lib/ of commit's tree under dir/lib and reports whether
// the commit has one.
func stageLib(s storer.EncodedObjectStorer, commit plumbing.Hash, dir string) (bool, error) {
	c, err := object.GetCommit(s, commit)
	if err != nil {
		return false, err
	}
	root, err := c.Tree()
	if err != nil {
		return false, err
	}
	e, err := root.FindEntry(LibDir)
	if err != nil {
		return false, nil // no lib/
	}
	if e.Mode != filemode.Dir {
		return false, fmt.Errorf("%s is not a folder (mode %s): Python helpers go in a folder lib/", LibDir, e.Mode)
	}
	tree, err := object.GetTree(s, e.Hash)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Join(dir, LibDir), 0o755); err != nil {
		return false, err
	}
	rt, err := os.OpenRoot(dir)
	if err != nil {
		return false, err
	}
	defer rt.Close()
	files, total := 0, int64(0)
	var walk func(t *object.Tree, rel string, depth int) error
	walk = func(t *object.Tree, rel string, depth int) error {
		if depth > maxLibDepth {
			return fmt.Errorf("%s: lib/ is nested deeper than %d folders", rel, maxLibDepth)
		}
		for _, e := range t.Entries {
			p := rel + "/" + e.Name
			if !libName(e.Name) {
				return fmt.Errorf("%s: a name in lib/ must be 1 to %d bytes of UTF-8, not . or .., without / or control characters", contract.OneLine(p, 120), maxLibNameLen)
			}
			switch e.Mode {
			case filemode.Dir:
				sub, err := object.GetTree(s, e.Hash)
				if err != nil {
					return err
				}
				if err := rt.Mkdir(p, 0o755); err != nil {
					return err
				}
				if err := walk(sub, p, depth+1); err != nil {
					return err
				}
			case filemode.Regular, filemode.Executable:
				files++
				if files > maxLibFiles {
					return fmt.Errorf("lib/ has more than %d files; Python models can import at most that many helpers", maxLibFiles)
				}
				b, err := object.GetBlob(s, e.Hash)
				if err != nil {
					return err
				}
				if b.Size > maxLibFile {
					return fmt.Errorf("%s is %d bytes, more than the %d a file in lib/ may have", p, b.Size, maxLibFile)
				}
				total += b.Size
				if total > maxLibBytes {
					return fmt.Errorf("lib/ holds more than %d bytes; keep data out of lib/ (seeds/ or a table)", maxLibBytes)
				}
				if err := writeLibFile(rt, p, b); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			default:
				return fmt.Errorf("%s is a symlink or submodule (mode %s); lib/ may hold only files and folders", p, e.Mode)
			}
		}
		return nil
	}
	return true, walk(tree, LibDir, 1)
}

func writeLibFile(rt *os.Root, p string, b *object.Blob) error {
	r, err := b.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := rt.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(r, b.Size)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// libName is a name the staging may write (git's fsck checked the tree
// already; this is the second look, where the name becomes a path).
func libName(n string) bool {
	if n == "" || n == "." || n == ".." || len(n) > maxLibNameLen || !utf8.ValidString(n) {
		return false
	}
	return !strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '/' || r == '\\' })
}
