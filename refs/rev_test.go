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

// TestResolveRevisionReflog: name@{N} is the ref's value N updates ago
// (git's reading), @{date} its value then; suffixes follow; a deleted
// ref's entry, a log too short, a date before the log and a malformed
// form are refused; ResolveRevision without a LogFunc refuses the form.
func TestResolveRevisionReflog(t *testing.T) {
	ctx := context.Background()
	rs, o := newMemStore(t)
	put := func(typ objects.Type, s string) objects.Hash {
		h, err := o.Put(ctx, "r", typ, []byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tree := put(plumbing.TreeObject, "")
	h := map[string]objects.Hash{}
	prev := objects.ZeroHash
	for i, n := range []string{"c0", "c1", "c2", "c3"} {
		s := "tree " + tree.String() + "\n"
		if i > 0 {
			s += "parent " + prev.String() + "\n"
		}
		h[n] = put(plumbing.CommitObject, s+"author a <a@b> 1 +0000\ncommitter a <a@b> 1 +0000\n\n"+n+"\n")
		// main moves c0, c1, c2, then back to c1 (a rewind), then c3
		if err := rs.Update(ctx, "r", []refs.Update{{Name: "refs/heads/main", Old: prev, New: h[n]}}, nil, "move"); err != nil {
			t.Fatal(err)
		}
		prev = h[n]
		if n == "c2" {
			if err := rs.Update(ctx, "r", []refs.Update{{Name: "refs/heads/main", Old: prev, New: h["c1"]}}, nil, "rewind"); err != nil {
				t.Fatal(err)
			}
			prev = h["c1"]
		}
	}
	// Reflog of main, oldest first: c0 c1 c2 c1 c3 (c3's parent is c1).
	names := func(ctx context.Context, name string) (objects.Hash, error) {
		return rs.Resolve(ctx, "r", refs.Name("refs/heads/"+name))
	}
	logs := func(ctx context.Context, name string) ([]refs.LogEntry, error) {
		if _, err := names(ctx, name); err != nil {
			return nil, err
		}
		return rs.Reflog(ctx, "r", refs.Name("refs/heads/"+name))
	}
	for _, tc := range []struct{ rev, want string }{
		{"main@{0}", "c3"}, {"main@{1}", "c1"}, {"main@{2}", "c2"}, {"main@{3}", "c1"}, {"main@{4}", "c0"},
		{"main@{2}~1", "c1"}, {"main@{1}^", "c0"}, {"main@{now}", "c3"}, {"main@{0 seconds ago}", "c3"},
		{"main@{2099-01-01}", "c3"},
	} {
		got, err := refs.ResolveRevisionLog(ctx, o, "r", tc.rev, names, logs)
		if err != nil || got != h[tc.want] {
			t.Errorf("%s: got %v, %v; want %s", tc.rev, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ rev, err string }{
		{"main@{5}", "only 5 entries"}, {"main@{yesterday}", "goes back only to"}, {"main@{2.days.ago}", "goes back only to"},
		{"main@{2000-01-01T00:00:00Z}", "goes back only to"}, {"main@{tomorrow}", `want N (updates ago)`},
		{"main@{-1}", "want N"}, {"main@{1", "no '}'"}, {"main~1@{1}", "must follow a name"}, {"main@{1}x", "unexpected"},
		{"@{1}", "no name before"}, {"nope@{1}", "not found"}, {"main@{9999999}", "want N"},
	} {
		_, err := refs.ResolveRevisionLog(ctx, o, "r", tc.rev, names, logs)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want %q", tc.rev, err, tc.err)
		}
	}
	if _, err := refs.ResolveRevision(ctx, o, "r", "main@{1}", names); err == nil || !strings.Contains(err.Error(), "reflog forms") {
		t.Errorf("ResolveRevision without a LogFunc: %v", err)
	}
	// A deletion's entry names no commit.
	if err := rs.Update(ctx, "r", []refs.Update{{Name: "refs/heads/gone", New: h["c0"]}}, nil, "create"); err != nil {
		t.Fatal(err)
	}
	if err := rs.Update(ctx, "r", []refs.Update{{Name: "refs/heads/gone", Old: h["c0"], New: objects.ZeroHash}}, nil, "delete"); err != nil {
		t.Fatal(err)
	}
	goneLog := func(ctx context.Context, name string) ([]refs.LogEntry, error) {
		return rs.Reflog(ctx, "r", refs.Name("refs/heads/"+name))
	}
	if _, err := refs.ResolveRevisionLog(ctx, o, "r", "gone@{0}", names, goneLog); err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("gone@{0}: %v", err)
	}
	if got, err := refs.ResolveRevisionLog(ctx, o, "r", "gone@{1}", names, goneLog); err != nil || got != h["c0"] {
		t.Errorf("gone@{1}: %v %v", got, err)
	}
}
