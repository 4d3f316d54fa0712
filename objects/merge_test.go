package objects

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// file is one path of a test tree: "100644:content", "100755:content",
// "120000:target" or "160000:<hex>" (a gitlink); a bare string is 100644.
type files map[string]string

// putTree writes fs as nested trees into q and returns the root.
func putTree(t *testing.T, q *Quarantine, fs files) Hash {
	t.Helper()
	type node struct {
		files map[string]mergeEntry
		dirs  map[string]files
	}
	n := node{files: map[string]mergeEntry{}, dirs: map[string]files{}}
	for p, spec := range fs {
		if dir, rest, ok := strings.Cut(p, "/"); ok {
			if n.dirs[dir] == nil {
				n.dirs[dir] = files{}
			}
			n.dirs[dir][rest] = spec
			continue
		}
		mode, content, ok := strings.Cut(spec, ":")
		if !ok {
			mode, content = "100644", spec
		}
		m, err := strconv.ParseUint(mode, 8, 32)
		if err != nil {
			t.Fatal(err)
		}
		var id Hash
		if m == modeGitlink {
			id = plumbing.NewHash(content)
		} else if id, err = q.Put(plumbing.BlobObject, []byte(content)); err != nil {
			t.Fatal(err)
		}
		n.files[p] = mergeEntry{mode: uint32(m), id: id}
	}
	var out []treeOut
	for name, e := range n.files {
		out = append(out, treeOut{name: name, e: e})
	}
	for name, sub := range n.dirs {
		out = append(out, treeOut{name: name, e: mergeEntry{mode: modeTree, id: putTree(t, q, sub)}})
	}
	slices.SortFunc(out, func(a, b treeOut) int {
		return gitTreeCompare([]byte(a.name), a.e.isTree(), []byte(b.name), b.e.isTree())
	})
	var data []byte
	for _, o := range out {
		data = append(data, strconv.FormatUint(uint64(o.e.mode), 8)+" "+o.name+"\x00"...)
		data = append(data, o.e.id[:]...)
	}
	h, err := q.Put(plumbing.TreeObject, data)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// readTree flattens a tree back into files, checking each tree with
// fsck's rules (sorted, valid modes).
func readTree(t *testing.T, q *Quarantine, h Hash, prefix string, into files) files {
	t.Helper()
	if into == nil {
		into = files{}
	}
	o, err := q.Get(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckTree(h, o.Data); err != nil {
		t.Fatalf("merged tree %s fails fsck: %v", prefix, err)
	}
	if err := walkTree(o.Data, func(mode uint32, _, name []byte, id Hash) error {
		p := prefix + string(name)
		switch mode {
		case modeTree:
			readTree(t, q, id, p+"/", into)
		case modeGitlink:
			into[p] = "160000:" + id.String()
		default:
			b, err := q.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			into[p] = strconv.FormatUint(uint64(mode), 8) + ":" + string(b.Data)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return into
}

// norm writes every spec with its mode, as readTree returns them.
func norm(fs files) files {
	out := files{}
	for p, s := range fs {
		if !strings.Contains(s, ":") {
			s = "100644:" + s
		}
		out[p] = s
	}
	return out
}

func TestMergeTrees(t *testing.T) {
	const sub = "1111111111111111111111111111111111111111"
	const sub2 = "2222222222222222222222222222222222222222"
	base := files{"README": "hello", "models/a.sql": "select 1", "models/b.sql": "select 2", "seeds/x.csv": "x\n1\n", "run.sh": "echo"}
	with := func(fs files, changes files) files {
		out := maps.Clone(fs)
		for p, s := range changes {
			if s == "-" {
				delete(out, p)
			} else {
				out[p] = s
			}
		}
		return out
	}
	tests := []struct {
		name         string
		base         files
		ours, theirs files // changes to base ("-" deletes)
		want         files // changes to base, when it merges
		conflicts    []string
	}{
		{name: "disjoint files", base: base,
			ours: files{"models/a.sql": "select 10"}, theirs: files{"models/b.sql": "select 20"},
			want: files{"models/a.sql": "select 10", "models/b.sql": "select 20"}},
		{name: "only theirs changed", base: base,
			ours: files{}, theirs: files{"README": "hi", "new/deep/file": "n"},
			want: files{"README": "hi", "new/deep/file": "n"}},
		{name: "add/add same content", base: base,
			ours: files{"models/c.sql": "select 3"}, theirs: files{"models/c.sql": "select 3", "README": "x"},
			want: files{"models/c.sql": "select 3", "README": "x"}},
		{name: "add/add different content", base: base,
			ours: files{"models/c.sql": "select 3"}, theirs: files{"models/c.sql": "select 4"},
			conflicts: []string{"models/c.sql"}},
		{name: "modify/modify", base: base,
			ours: files{"README": "one", "seeds/x.csv": "x\n2\n"}, theirs: files{"README": "two", "seeds/y.csv": "y"},
			conflicts: []string{"README"}},
		{name: "delete/modify", base: base,
			ours: files{"models/a.sql": "-"}, theirs: files{"models/a.sql": "select 11"},
			conflicts: []string{"models/a.sql"}},
		{name: "modify/delete", base: base,
			ours: files{"models/a.sql": "select 11"}, theirs: files{"models/a.sql": "-"},
			conflicts: []string{"models/a.sql"}},
		{name: "delete/delete", base: base,
			ours: files{"models/a.sql": "-"}, theirs: files{"models/a.sql": "-", "README": "r"},
			want: files{"models/a.sql": "-", "README": "r"}},
		{name: "delete on one side, untouched on the other", base: base,
			ours: files{"seeds/x.csv": "-"}, theirs: files{"README": "r"},
			want: files{"seeds/x.csv": "-", "README": "r"}},
		{name: "mode on one side, content on the other", base: base,
			ours: files{"run.sh": "100755:echo"}, theirs: files{"run.sh": "echo hi"},
			want: files{"run.sh": "100755:echo hi"}},
		{name: "same mode change on both sides", base: base,
			ours: files{"run.sh": "100755:echo"}, theirs: files{"run.sh": "100755:echo", "README": "r"},
			want: files{"run.sh": "100755:echo", "README": "r"}},
		{name: "different mode changes", base: base,
			ours: files{"run.sh": "100755:echo"}, theirs: files{"run.sh": "120000:echo"},
			conflicts: []string{"run.sh"}},
		{name: "mode and content on one side, content on the other", base: base,
			ours: files{"run.sh": "100755:echo 1"}, theirs: files{"run.sh": "echo 2"},
			conflicts: []string{"run.sh"}},
		{name: "nested dirs merge entry by entry",
			base: files{"a/b/c.txt": "c", "a/b/d.txt": "d", "a/e.txt": "e"},
			ours: files{"a/b/c.txt": "C"}, theirs: files{"a/b/d.txt": "D", "a/b/f/g.txt": "g"},
			want: files{"a/b/c.txt": "C", "a/b/d.txt": "D", "a/b/f/g.txt": "g"}},
		{name: "nested conflict names the full path",
			base: files{"a/b/c.txt": "c", "a/b/d.txt": "d"},
			ours: files{"a/b/c.txt": "C1", "a/b/d.txt": "D"}, theirs: files{"a/b/c.txt": "C2"},
			conflicts: []string{"a/b/c.txt"}},
		{name: "file on one side, directory on the other",
			base: files{"keep": "k"},
			ours: files{"x": "file"}, theirs: files{"x/y": "in dir"},
			conflicts: []string{"x/"}},
		{name: "directory emptied on one side is dropped",
			base: files{"d/one": "1", "d/two": "2", "keep": "k"},
			ours: files{"d/one": "-"}, theirs: files{"d/two": "-"},
			want: files{"d/one": "-", "d/two": "-"}},
		{name: "directory deleted on one side, changed on the other",
			base: files{"d/one": "1", "keep": "k"},
			ours: files{"d/one": "-"}, theirs: files{"d/one": "11"},
			conflicts: []string{"d/one"}},
		{name: "git order: a dir sorts as name/",
			base: files{"a-b": "1", "a/x": "2", "a.c": "3"},
			ours: files{"a/y": "o"}, theirs: files{"a=z": "t", "a-b": "11"},
			want: files{"a/y": "o", "a=z": "t", "a-b": "11"}},
		{name: "gitlinks",
			base: files{"vendor/lib": "160000:" + sub, "k": "k"},
			ours: files{"k": "k2"}, theirs: files{"vendor/lib": "160000:" + sub2},
			want: files{"k": "k2", "vendor/lib": "160000:" + sub2}},
		{name: "several conflicts, sorted",
			base: files{"z": "z", "a": "a", "m/n": "n"},
			ours: files{"z": "z1", "a": "a1", "m/n": "n1"}, theirs: files{"z": "z2", "a": "a2", "m/n": "n2"},
			conflicts: []string{"a", "m/n", "z"}},
		{name: "no common ancestor",
			base: files{},
			ours: files{"a": "1"}, theirs: files{"b": "2"},
			want: files{"a": "1", "b": "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := memStore(t, Limits{}).NewQuarantine("r")
			defer q.Close()
			b := putTree(t, q, tc.base)
			if len(tc.base) == 0 {
				b = ZeroHash
			}
			o := putTree(t, q, with(tc.base, tc.ours))
			th := putTree(t, q, with(tc.base, tc.theirs))
			got, err := MergeTrees(context.Background(), q, b, o, th)
			if tc.conflicts != nil {
				var ce *MergeConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("MergeTrees = %v, %v; want a conflict in %v", got, err, tc.conflicts)
				}
				if !slices.Equal(ce.Paths, tc.conflicts) {
					t.Fatalf("conflicts %v, want %v", ce.Paths, tc.conflicts)
				}
				for _, p := range tc.conflicts {
					if !strings.Contains(ce.Error(), p) {
						t.Fatalf("error %q does not name %s", ce.Error(), p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotFiles := readTree(t, q, got, "", nil)
			want := norm(with(tc.base, tc.want))
			if !maps.Equal(gotFiles, want) {
				t.Fatalf("merged tree:\n got %v\nwant %v", gotFiles, want)
			}
			// The merge is symmetric in ours and theirs.
			rev, err := MergeTrees(context.Background(), q, b, th, o)
			if err != nil || rev != got {
				t.Fatalf("swapped sides: %v, %v; want %v", rev, err, got)
			}
		})
	}
}

func TestMergeTreesEmptyResult(t *testing.T) {
	q := memStore(t, Limits{}).NewQuarantine("r")
	defer q.Close()
	base := putTree(t, q, files{"a": "1", "b": "2"})
	ours := putTree(t, q, files{"b": "2"})
	theirs := putTree(t, q, files{"a": "1"})
	got, err := MergeTrees(context.Background(), q, base, ours, theirs)
	if err != nil || got != EmptyTree {
		t.Fatalf("MergeTrees = %v, %v; want the empty tree", got, err)
	}
}

func TestMergeTreesTooDeep(t *testing.T) {
	q := memStore(t, Limits{}).NewQuarantine("r")
	defer q.Close()
	deep := strings.Repeat("d/", MaxMergeDepth+1)
	base := putTree(t, q, files{deep + "f": "0"})
	ours := putTree(t, q, files{deep + "f": "1", deep + "g": "g"})
	theirs := putTree(t, q, files{deep + "f": "0", deep + "h": "h"})
	if _, err := MergeTrees(context.Background(), q, base, ours, theirs); !errors.Is(err, ErrMergeTooDeep) {
		t.Fatalf("MergeTrees of a tree %d deep = %v; want ErrMergeTooDeep", MaxMergeDepth+1, err)
	}
}

func TestMergeTreesNotATree(t *testing.T) {
	q := memStore(t, Limits{}).NewQuarantine("r")
	defer q.Close()
	blob, _ := q.Put(plumbing.BlobObject, []byte("x"))
	ours := putTree(t, q, files{"a": "1"})
	if _, err := MergeTrees(context.Background(), q, ZeroHash, ours, blob); err == nil || !strings.Contains(err.Error(), "not a tree") {
		t.Fatalf("MergeTrees with a blob = %v; want not a tree", err)
	}
}
