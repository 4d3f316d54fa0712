package refs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// revRepo builds, in repo "r":
//
//	c0 ── c1 ── c2 ── m (main)        tag object v1 -> c1
//	       └── side ──┘ (m's second parent)
func revRepo(t *testing.T) (*objects.Store, map[string]objects.Hash, refs.NameFunc) {
	t.Helper()
	_, o := newMemStore(t)
	ctx := context.Background()
	put := func(typ objects.Type, s string) objects.Hash {
		h, err := o.Put(ctx, "r", typ, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tree := put(plumbing.TreeObject, "")
	commit := func(msg string, parents ...objects.Hash) objects.Hash {
		s := "tree " + tree.String() + "\n"
		for _, p := range parents {
			s += "parent " + p.String() + "\n"
		}
		return put(plumbing.CommitObject, s+"author a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\n\n"+msg+"\n")
	}
	h := map[string]objects.Hash{}
	h["c0"] = commit("c0")
	h["c1"] = commit("c1", h["c0"])
	h["c2"] = commit("c2", h["c1"])
	h["side"] = commit("side", h["c1"])
	h["m"] = commit("m", h["c2"], h["side"])
	h["v1"] = put(plumbing.TagObject, "object "+h["c1"].String()+"\ntype commit\ntag v1\ntagger a <a@b> 1 +0000\n\nv1\n")
	h["blob"] = put(plumbing.BlobObject, "not a commit")
	names := func(_ context.Context, name string) (objects.Hash, error) {
		switch name {
		case "main":
			return h["m"], nil
		case "v1":
			return h["v1"], nil
		}
		return objects.ZeroHash, refs.ErrNotFound
	}
	return o, h, names
}

// TestResolveRevision: what git rev-parse gives for these forms.
func TestResolveRevision(t *testing.T) {
	o, h, names := revRepo(t)
	ctx := context.Background()
	for _, tc := range []struct{ rev, want string }{
		{"main", "m"}, {"main^0", "m"}, {"main^", "c2"}, {"main^1", "c2"}, {"main^2", "side"},
		{"main~", "c2"}, {"main~1", "c2"}, {"main~2", "c1"}, {"main~3", "c0"}, {"main^^", "c1"},
		{"main^2~1", "c1"}, {"main^2^", "c1"}, {"main~0", "m"}, {"main^{commit}", "m"},
		{"v1", "c1"}, {"v1~1", "c0"}, {"v1^{commit}", "c1"},
		{h["c2"].String(), "c2"}, {strings.ToUpper(h["c2"].String()), "c2"},
		{h["c2"].String()[:12], "c2"}, {h["side"].String()[:12] + "~1", "c1"},
	} {
		got, err := refs.ResolveRevision(ctx, o, "r", tc.rev, names)
		if err != nil || got != h[tc.want] {
			t.Errorf("%s: got %v, %v; want %s (%s)", tc.rev, got, err, tc.want, h[tc.want])
		}
	}
	for _, tc := range []struct{ rev, err string }{
		{"", "bad revision"}, {"nope", "not a branch, tag or commit"}, {"main~4", "has no parent"},
		{"main^3", "has 2 parents, not 3"}, {"~1", "no name before"}, {"main~x", "unexpected"},
		{"main^{tree}", "unexpected"}, {"main~9999999", "too large"}, {"abc", "not a branch"},
		{h["blob"].String(), "is a blob, not a commit"}, {h["blob"].String()[:10], "no branch, tag or commit"},
		{strings.Repeat("a", 41), "not a branch"}, {strings.Repeat("^", 300), "want 1 to 256 bytes"},
		{"main" + strings.Repeat("~999999", 30), "more than 100000 parents"},
	} {
		_, err := refs.ResolveRevision(ctx, o, "r", tc.rev, names)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want %q", tc.rev, err, tc.err)
		}
	}
}

// TestResolveRevisionAmbiguous: a prefix two commits share is an error
// listing both; one digit more picks one.
func TestResolveRevisionAmbiguous(t *testing.T) {
	o, _, names := revRepo(t)
	ctx := context.Background()
	seen := map[string]objects.Hash{}
	var a, b objects.Hash
	for i := 0; ; i++ {
		c, err := o.Put(ctx, "r", plumbing.CommitObject, []byte(fmt.Sprintf("tree %s\nauthor a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\n\n%d\n", plumbing.ZeroHash, i)))
		if err != nil {
			t.Fatal(err)
		}
		p := c.String()[:4]
		if prev, ok := seen[p]; ok {
			a, b = prev, c
			break
		}
		seen[p] = c
	}
	_, err := refs.ResolveRevision(ctx, o, "r", a.String()[:4], names)
	var ae *refs.AmbiguousError
	if !errors.As(err, &ae) || !errors.Is(err, refs.ErrAmbiguous) || !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("ambiguous %s: err %v", a.String()[:4], err)
	}
	n := 5
	for a.String()[:n] == b.String()[:n] {
		n++
	}
	if got, err := refs.ResolveRevision(ctx, o, "r", a.String()[:n], names); err != nil || got != a {
		t.Fatalf("%s: %v, %v; want %s", a.String()[:n], got, err, a)
	}
	// An odd-length prefix filters on its last nibble.
	if got, err := refs.ResolveRevision(ctx, o, "r", b.String()[:n], names); err != nil || got != b {
		t.Fatalf("%s: %v, %v; want %s", b.String()[:n], got, err, b)
	}
}

// FuzzResolveRevision: no revision string panics, hangs or resolves to
// something that is not a commit.
func FuzzResolveRevision(f *testing.F) {
	for _, s := range []string{"main", "main~2", "main^2", "v1^{commit}", "abcd", "main~999999~999999", "^", "~", "main^{", "\x00", "main@{1}", "ffffffffffffffffffffffffffffffffffffffff"} {
		f.Add(s)
	}
	var t testing.T
	o, h, names := revRepo(&t)
	commits := map[objects.Hash]bool{h["c0"]: true, h["c1"]: true, h["c2"]: true, h["side"]: true, h["m"]: true}
	f.Fuzz(func(t *testing.T, rev string) {
		got, err := refs.ResolveRevision(context.Background(), o, "r", rev, names)
		if err == nil && !commits[got] {
			t.Fatalf("%q resolved to %s, not a commit", rev, got)
		}
	})
}
