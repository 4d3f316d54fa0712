package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// libCommit stores a commit whose root tree holds entry "lib" built from
// files (path under lib/ -> mode and content; mode Dir is made from the
// paths) and returns its hash.
func libCommit(t *testing.T, s *memory.Storage, lib []object.TreeEntry) plumbing.Hash {
	t.Helper()
	put := func(o interface {
		Encode(plumbing.EncodedObject) error
	}) plumbing.Hash {
		obj := s.NewEncodedObject()
		if err := o.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := s.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	libTree := put(&object.Tree{Entries: lib})
	root := put(&object.Tree{Entries: []object.TreeEntry{{Name: "lib", Mode: filemode.Dir, Hash: libTree}}})
	return put(&object.Commit{TreeHash: root, Message: "x"})
}

func blob(t *testing.T, s *memory.Storage, content string) plumbing.Hash {
	t.Helper()
	obj := s.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, _ := obj.Writer()
	w.Write([]byte(content))
	w.Close()
	h, err := s.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestStageLib: lib/ is staged from the commit's tree; symlinks,
// submodules, odd names and oversized trees are refused naming the path,
// and nothing escapes the staging folder.
func TestStageLib(t *testing.T) {
	s := memory.NewStorage()
	fx := blob(t, s, "def double(x):\n    return x * 2\n")
	big := blob(t, s, strings.Repeat("x", maxLibFile+1))
	subTree := func(entries ...object.TreeEntry) plumbing.Hash {
		obj := s.NewEncodedObject()
		(&object.Tree{Entries: entries}).Encode(obj)
		h, _ := s.SetEncodedObject(obj)
		return h
	}
	dir := t.TempDir()
	ok, err := stageLib(s, libCommit(t, s, []object.TreeEntry{
		{Name: "fx.py", Mode: filemode.Regular, Hash: fx},
		{Name: "sub", Mode: filemode.Dir, Hash: subTree(object.TreeEntry{Name: "m.py", Mode: filemode.Regular, Hash: fx})},
	}), filepath.Join(dir, "good"))
	if !ok || err != nil {
		t.Fatalf("stageLib: %v %v", ok, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "good", "lib", "sub", "m.py")); err != nil || !strings.Contains(string(b), "double") {
		t.Fatalf("lib/sub/m.py: %q %v", b, err)
	}
	for _, tc := range []struct {
		name string
		lib  []object.TreeEntry
		want string
	}{
		{"symlink", []object.TreeEntry{{Name: "evil.py", Mode: filemode.Symlink, Hash: blob(t, s, "/etc/passwd")}}, "lib/evil.py is a symlink or submodule"},
		{"submodule", []object.TreeEntry{{Name: "m", Mode: filemode.Submodule, Hash: fx}}, "lib/m is a symlink or submodule"},
		{"dot dot", []object.TreeEntry{{Name: "..", Mode: filemode.Regular, Hash: fx}}, "a name in lib/"},
		{"control", []object.TreeEntry{{Name: "a\x1b.py", Mode: filemode.Regular, Hash: fx}}, "a name in lib/"},
		{"big file", []object.TreeEntry{{Name: "big.py", Mode: filemode.Regular, Hash: big}}, "more than the"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name)
			_, err := stageLib(s, libCommit(t, s, tc.lib), out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "etc")); err == nil {
				t.Fatal("staging wrote outside its folder")
			}
		})
	}
	// Too many files.
	var many []object.TreeEntry
	for i := 0; i <= maxLibFiles; i++ {
		many = append(many, object.TreeEntry{Name: fmt.Sprintf("m%04d.py", i), Mode: filemode.Regular, Hash: fx})
	}
	if _, err := stageLib(s, libCommit(t, s, many), filepath.Join(dir, "many")); err == nil || !strings.Contains(err.Error(), "more than 1000 files") {
		t.Fatalf("many files: %v", err)
	}
}
