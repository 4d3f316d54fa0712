package catalog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
)

// FuzzParseTree: any bytes a client sends as a tree object either fail to
// parse or parse to entries that encode and parse back to themselves, in
// Git's order.
func FuzzParseTree(f *testing.F) {
	h := plumbing.NewHash("0123456789abcdef0123456789abcdef01234567")
	f.Add(encodeTree([]treeEntry{{Name: "tables", Mode: filemode.Dir, Hash: h}, {Name: "code", Mode: filemode.Submodule, Hash: h}}))
	f.Add([]byte("100644 a\x00short"))
	f.Add([]byte("040000 tables\x00" + string(h[:])))
	f.Add([]byte("99999999999 x\x00" + string(h[:])))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseTree(data)
		if err != nil {
			return
		}
		again, err := parseTree(encodeTree(append([]treeEntry(nil), entries...)))
		if err != nil {
			t.Fatalf("re-encoded tree does not parse: %v", err)
		}
		sorted := append([]treeEntry(nil), entries...)
		encodeTree(sorted) // sorts in place
		if len(again) != len(sorted) || (len(sorted) > 0 && !reflect.DeepEqual(again, sorted)) {
			t.Fatalf("round trip: %v -> %v", sorted, again)
		}
	})
}

// FuzzDataTree builds a data commit from a description a pushing client
// controls (one "mode path" line per entry, paths up to three deep) and
// checks readState: it refuses what a server-written data tree cannot hold
// with a *TreeError, and what it accepts has only valid names and writes
// back to the same state.
func FuzzDataTree(f *testing.F) {
	f.Add("160000 code\n100644 tables/sales/orders\n100644 namespaces/sales\n")
	f.Add("100644 tables/sales/orders\n100644 tables/sales/users\n100644 tables/hr/people\n")
	f.Add("100644 tables/../x\n")
	f.Add("100644 tables/sales/Orders\n")
	f.Add("120000 tables/sales/orders\n")
	f.Add("100644 tables/sales\n")
	f.Add("160000 tables/sales/orders\n")
	f.Add("100644 evil\n")
	f.Add("40000 namespaces/sales/x\n")
	f.Add("100644 tables/sales/orders\n100644 tables/sales/orders\n")
	// Nested namespaces: levels joined by '.' in one entry name.
	f.Add("100644 tables/sales.eu/orders\n100644 tables/sales/eu\n100644 namespaces/sales\n100644 namespaces/sales.eu\n")
	f.Add("100644 tables/sales..eu/orders\n")
	f.Add("100644 tables/.sales/orders\n")
	f.Add("100644 namespaces/sales.\n")
	f.Add("100644 tables/sales.eu/x/y\n")
	f.Add("100644 tables/sales.EU/orders\n")
	f.Add("100644 namespaces/a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q\n")
	f.Add("100644 namespaces/" + strings.Repeat("a", 128) + "." + strings.Repeat("b", 127) + "\n")
	f.Add("100644 tables/sales\x1feu/orders\n")
	f.Fuzz(func(t *testing.T, desc string) {
		if len(desc) > 4096 {
			return
		}
		db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		objs := objects.New(db, objects.Limits{})
		ctx := context.Background()
		w := repoObjects{objs, "fuzz"}
		commit, ok := buildDescribedTree(ctx, t, w, desc)
		if !ok {
			return
		}
		st, err := readState(ctx, w, commit)
		if err != nil {
			var te *TreeError
			if !errors.As(err, &te) && !strings.Contains(err.Error(), "not found") {
				t.Fatalf("readState: want a *TreeError, got %v", err)
			}
			return
		}
		for tn := range st.tables {
			if ValidateNamespace(tn.Namespace) != nil || ValidateName(tn.Name) != nil {
				t.Fatalf("accepted table %q", tn)
			}
		}
		for ns := range st.namespaces {
			if ValidateNamespace(ns) != nil {
				t.Fatalf("accepted namespace %q", ns)
			}
		}
		tree, err := writeTree(ctx, w, st)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := writeCommit(ctx, w, tree, nil, "again")
		if err != nil {
			t.Fatal(err)
		}
		st2, err := readState(ctx, w, c2)
		if err != nil {
			t.Fatalf("a written state does not read back: %v", err)
		}
		if !reflect.DeepEqual(st.tables, st2.tables) || !reflect.DeepEqual(st.namespaces, st2.namespaces) || st.code != st2.code {
			t.Fatalf("round trip changed the state")
		}
	})
}

// buildDescribedTree writes the trees a description names and a commit of
// the root; false when the description is not usable.
func buildDescribedTree(ctx context.Context, t *testing.T, w repoObjects, desc string) (objects.Hash, bool) {
	type node struct {
		mode     filemode.FileMode
		children map[string]*node
		order    []string
	}
	root := &node{mode: filemode.Dir, children: map[string]*node{}}
	for _, line := range strings.Split(desc, "\n") {
		if line == "" {
			continue
		}
		m, p, ok := strings.Cut(line, " ")
		mode, err := strconv.ParseUint(m, 8, 32)
		if !ok || err != nil || p == "" || strings.ContainsRune(p, 0) {
			return objects.ZeroHash, false
		}
		parts := strings.Split(p, "/")
		if len(parts) > 3 {
			return objects.ZeroHash, false
		}
		cur := root
		for j, part := range parts {
			if part == "" || cur.children == nil {
				return objects.ZeroHash, false
			}
			next := cur.children[part]
			if next == nil {
				next = &node{mode: filemode.Dir, children: map[string]*node{}}
				if j == len(parts)-1 {
					next = &node{mode: filemode.FileMode(mode)}
				}
				cur.children[part] = next
				cur.order = append(cur.order, part)
			}
			cur = next
		}
	}
	var write func(n *node) (objects.Hash, error)
	write = func(n *node) (objects.Hash, error) {
		var es []treeEntry
		for _, name := range n.order {
			c := n.children[name]
			var h objects.Hash
			var err error
			switch {
			case c.children != nil:
				h, err = write(c)
			case c.mode == filemode.Submodule:
				h = plumbing.NewHash("1111111111111111111111111111111111111111")
			default:
				h, err = w.Put(ctx, plumbing.BlobObject, []byte(fmt.Sprintf("blob %s\n", name)))
			}
			if err != nil {
				return objects.ZeroHash, err
			}
			es = append(es, treeEntry{Name: name, Mode: c.mode, Hash: h})
		}
		return w.Put(ctx, plumbing.TreeObject, encodeTree(es))
	}
	tree, err := write(root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := writeCommit(ctx, w, tree, nil, "fuzz")
	if err != nil {
		t.Fatal(err)
	}
	return c, true
}
