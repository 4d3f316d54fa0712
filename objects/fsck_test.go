package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type treeEntry struct {
	mode string
	name string
	id   Hash
}

func treeBytes(entries ...treeEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(e.id[:])
	}
	return b.Bytes()
}

// gitIndexPackStrict feeds a pack of hashes (from g) to `git index-pack
// --strict` in a fresh repo, as receive.fsckObjects does, and returns
// whether git refused it and what it said.
func gitIndexPackStrict(t *testing.T, g *gitRepo, hashes ...Hash) (refused bool, stderr string) {
	t.Helper()
	pack := g.packObjects(hashes...)
	scratch := newGitRepo(t)
	_, err := scratch.try(pack, "index-pack", "--strict", "--stdin")
	if err == nil {
		return false, ""
	}
	return true, err.Error()
}

type fsckCase struct {
	name  string
	typ   string // tree, commit, tag
	data  []byte
	check string // our message id
	// git is what C git's `index-pack --strict` (receive.fsckObjects)
	// does with the object: "same" refuses it with the same message id;
	// "refuses" refuses it without an id (it fails to parse the object
	// before its fsck runs); "info" accepts it with only a note, where
	// Weir is stricter.
	git string
}

func TestCheckHostileObjects(t *testing.T) {
	g := newGitRepo(t)
	blob := g.hashObject("blob", []byte("x\n"))
	emptyTree := g.hashObject("tree", nil)
	file := func(name string) treeEntry { return treeEntry{"100644", name, blob} }
	dir := func(name string) treeEntry { return treeEntry{"40000", name, emptyTree} }
	okTree := g.hashObject("tree", treeBytes(file("a")))
	ident := "A U Thor <a@example.com> 1700000000 +0000"
	commit := func(header string) []byte { return []byte(header + "\nmessage\n") }
	tree := "tree " + okTree.String() + "\n"

	cases := []fsckCase{
		{"dot", "tree", treeBytes(file(".")), "hasDot", "same"},
		{"dotdot", "tree", treeBytes(file("..")), "hasDotdot", "same"},
		{"dotgit", "tree", treeBytes(dir(".git")), "hasDotgit", "same"},
		{"dotgit upper", "tree", treeBytes(file(".GIT")), "hasDotgit", "same"},
		{"dotgit hfs zwnj", "tree", treeBytes(file(".g\u200cit")), "hasDotgit", "same"},
		{"dotgit hfs bom", "tree", treeBytes(file("\ufeff.git")), "hasDotgit", "same"},
		// git's HFS+ check ends a name at bytes that are not UTF-8.
		{"dotgit hfs bad utf8", "tree", treeBytes(file(".git\xff")), "hasDotgit", "same"},
		{"dotgit hfs noncharacter", "tree", treeBytes(file(".GIT\ufffe")), "hasDotgit", "same"},
		{"dotgit ntfs short", "tree", treeBytes(file("GIT~1")), "hasDotgit", "same"},
		{"dotgit trailing space dot", "tree", treeBytes(file(".git . .")), "hasDotgit", "same"},
		{"dotgit ntfs stream", "tree", treeBytes(dir(".git::$INDEX_ALLOCATION")), "hasDotgit", "same"},
		{"dotgit backslash", "tree", treeBytes(file("a\\.git\\hooks")), "hasDotgit", "same"},
		{"slash", "tree", treeBytes(file("a/b")), "fullPathname", "same"},
		{"empty name", "tree", treeBytes(file("")), "badTree", "same"},
		{"zero padded dir", "tree", treeBytes(treeEntry{"040000", "d", emptyTree}), "zeroPaddedFilemode", "same"},
		{"zero padded file", "tree", treeBytes(treeEntry{"0100644", "f", blob}), "zeroPaddedFilemode", "same"},
		{"bad mode", "tree", treeBytes(treeEntry{"100600", "f", blob}), "badFilemode", "info"},
		{"group writable strict", "tree", treeBytes(treeEntry{"100664", "f", blob}), "badFilemode", "info"},
		{"unsorted", "tree", treeBytes(file("b"), file("a")), "treeNotSorted", "same"},
		{"dir sorts with slash", "tree", treeBytes(dir("a"), file("a.txt")), "treeNotSorted", "same"},
		{"duplicate", "tree", treeBytes(file("a"), file("a")), "duplicateEntries", "same"},
		{"file and dir same name", "tree", treeBytes(file("a"), dir("a")), "duplicateEntries", "same"},
		{"file dir same name apart", "tree", treeBytes(file("a"), file("a.b"), dir("a")), "duplicateEntries", "same"},
		{"null sha1", "tree", treeBytes(treeEntry{"100644", "z", ZeroHash}), "nullSha1", "same"},
		{"gitmodules symlink", "tree", treeBytes(treeEntry{"120000", ".gitmodules", blob}), "gitmodulesSymlink", "same"},
		{"truncated tree", "tree", treeBytes(file("a"))[:10], "badTree", "same"},

		{"commit no tree", "commit", commit("author " + ident + "\ncommitter " + ident), "missingTree", "refuses"},
		{"commit bad tree sha", "commit", commit("tree 1234\nauthor " + ident + "\ncommitter " + ident), "badTreeSha1", "refuses"},
		{"commit bad parent", "commit", commit(tree + "parent xyz\nauthor " + ident + "\ncommitter " + ident), "badParentSha1", "refuses"},
		{"commit no author", "commit", commit(tree + "committer " + ident), "missingAuthor", "same"},
		{"commit two authors", "commit", commit(tree + "author " + ident + "\nauthor " + ident + "\ncommitter " + ident), "multipleAuthors", "same"},
		{"commit no committer", "commit", commit(tree + "author " + ident), "missingCommitter", "same"},
		{"bad date", "commit", commit(tree + "author A <a@b> soon +0000\ncommitter " + ident), "badDate", "same"},
		{"zero padded date", "commit", commit(tree + "author A <a@b> 0123 +0000\ncommitter " + ident), "zeroPaddedDate", "same"},
		{"date overflow", "commit", commit(tree + "author A <a@b> 99999999999999999999 +0000\ncommitter " + ident), "badDateOverflow", "same"},
		{"bad email", "commit", commit(tree + "author A <a@b 1700000000 +0000\ncommitter " + ident), "badEmail", "same"},
		{"missing email", "commit", commit(tree + "author A 1700000000 +0000\ncommitter " + ident), "missingEmail", "same"},
		{"name before email", "commit", commit(tree + "author <a@b> 1700000000 +0000\ncommitter " + ident), "missingNameBeforeEmail", "same"},
		{"bad name", "commit", commit(tree + "author A> <a@b> 1700000000 +0000\ncommitter " + ident), "badName", "same"},
		{"space before email", "commit", commit(tree + "author A<a@b> 1700000000 +0000\ncommitter " + ident), "missingSpaceBeforeEmail", "same"},
		{"space before date", "commit", commit(tree + "author A <a@b>1700000000 +0000\ncommitter " + ident), "missingSpaceBeforeDate", "same"},
		{"bad timezone", "commit", commit(tree + "author " + ident + "\ncommitter A <a@b> 1700000000 +00"), "badTimezone", "same"},
		{"nul in message", "commit", commit(tree + "author " + ident + "\ncommitter " + ident + "\n\nhidden\x00text"), "nulInCommit", "same"},
		{"nul in header", "commit", commit(tree + "author " + ident + "\ncommitter " + ident + "\nx \x00"), "nulInHeader", "same"},

		{"tag no object", "tag", []byte("type commit\ntag v1\ntagger " + ident + "\n\nmsg\n"), "missingObject", "refuses"},
		{"tag bad object", "tag", []byte("object 12\ntype commit\ntag v1\ntagger " + ident + "\n\nmsg\n"), "badObjectSha1", "refuses"},
		{"tag no type", "tag", []byte("object " + okTree.String() + "\ntag v1\ntagger " + ident + "\n\nmsg\n"), "missingTypeEntry", "refuses"},
		{"tag bad type", "tag", []byte("object " + okTree.String() + "\ntype blurb\ntag v1\ntagger " + ident + "\n\nmsg\n"), "badType", "refuses"},
		{"tag no tag", "tag", []byte("object " + okTree.String() + "\ntype tree\ntagger " + ident + "\n\nmsg\n"), "missingTagEntry", "refuses"},
		{"tag bad tagger", "tag", []byte("object " + okTree.String() + "\ntype tree\ntag v1\ntagger A <a@b> x +0000\n\nmsg\n"), "badDate", "same"},
	}
	hashes := make([]Hash, len(cases))
	for i, tc := range cases {
		hashes[i] = g.hashObject(tc.typ, tc.data)
	}
	pack := g.packObjects(append([]Hash{blob, emptyTree, okTree}, hashes...)...)
	ctx := context.Background()
	s := memStore(t, Limits{})

	// Every hostile object alone in a quarantine, so Check reports it.
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			refused, msg := gitIndexPackStrict(t, g, blob, emptyTree, okTree, hashes[i])
			switch {
			case tc.git == "info" && refused:
				t.Errorf("C git refuses this object (%q); the test says it only notes it", msg)
			case tc.git != "info" && !refused:
				t.Errorf("C git accepts this object")
			case tc.git == "same" && !strings.Contains(msg, ": "+tc.check+": "):
				t.Errorf("C git says %q, test expects %s", msg, tc.check)
			}
			q := s.NewQuarantine("demo")
			defer q.Close()
			if _, err := q.Put(typeOf(tc.typ), tc.data); err != nil {
				t.Fatal(err)
			}
			err := q.Check(ctx, nil)
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want *CheckError %s", err, tc.check)
			}
			if ce.Check != tc.check || ce.Object != hashes[i] {
				t.Fatalf("Check = %s on %s (%s), want %s on %s", ce.Check, ce.Object, ce.Detail, tc.check, hashes[i])
			}
		})
	}

	// The same objects arriving in a real pack are caught by Check too.
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); err != nil {
		t.Fatal(err)
	}
	var ce *CheckError
	if err := q.Check(ctx, nil); !errors.As(err, &ce) {
		t.Fatalf("Check of the hostile pack = %v", err)
	}
}

func typeOf(s string) Type {
	switch s {
	case "tree":
		return 2
	case "commit":
		return 1
	case "tag":
		return 4
	}
	return 3
}

// Objects C git makes pass, trees full of legal edge cases included.
func TestCheckAcceptsGitObjects(t *testing.T) {
	g := newGitRepo(t)
	for _, name := range []string{"a", "a.b", "a-b", "ab/c", "a0", "b/c/d", ".gitignore", ".github/x", "gitx", ".gitx", "g", "z.git"} {
		g.write(name, name+"\n")
	}
	g.run(nil, "commit", "-q", "--allow-empty", "-m", "empty")
	c1 := g.commit("files")
	g.run(nil, "tag", "-a", "-m", "annotated", "v1")
	tag := g.revParse("v1")
	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(context.Background(), bytes.NewReader(g.packRevs(nil, "main", "v1"))); err != nil {
		t.Fatal(err)
	}
	if err := q.Check(context.Background(), []Hash{c1, tag}); err != nil {
		t.Fatal(err)
	}
}

func TestCheckConnectivity(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 3)
	objs := g.allObjects()
	c1 := commits[0]
	c1tree := parseHex(bytes.TrimPrefix(headerLines(objs[c1].Data)[0], []byte("tree ")))
	c2 := commits[1]

	t.Run("missing tree", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		defer q.Close()
		q.Put(objs[c1].Type, objs[c1].Data)
		err := q.Check(ctx, []Hash{c1})
		var ce *CheckError
		if !errors.As(err, &ce) || ce.Check != "missingObject" || ce.Object != c1 || !strings.Contains(ce.Detail, c1tree.String()) {
			t.Fatalf("Check = %v", err)
		}
	})
	t.Run("missing tip", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		defer q.Close()
		err := q.Check(ctx, []Hash{c2})
		var ce *CheckError
		if !errors.As(err, &ce) || ce.Check != "missingObject" || ce.Object != c2 {
			t.Fatalf("Check = %v", err)
		}
	})
	t.Run("parent in repo", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, c1.String()))); err != nil {
			t.Fatal(err)
		}
		commitQuarantine(t, q)
		q.Close()
		q2 := s.NewQuarantine("demo")
		defer q2.Close()
		if _, err := q2.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, c2.String(), "^"+c1.String()))); err != nil {
			t.Fatal(err)
		}
		if err := q2.Check(ctx, []Hash{c2}); err != nil {
			t.Fatalf("incremental push: %v", err)
		}
		// Only part of the incremental pack: its tree is missing.
		q3 := s.NewQuarantine("demo")
		defer q3.Close()
		q3.Put(objs[c2].Type, objs[c2].Data)
		var ce *CheckError
		if err := q3.Check(ctx, []Hash{c2}); !errors.As(err, &ce) || ce.Check != "missingObject" {
			t.Fatalf("Check = %v", err)
		}
	})
	t.Run("missing blob in tree", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		defer q.Close()
		var ghost Hash
		ghost[0] = 0x42
		tr, _ := q.Put(2, treeBytes(treeEntry{"100644", "f", ghost}))
		var ce *CheckError
		if err := q.Check(ctx, []Hash{tr}); !errors.As(err, &ce) || ce.Check != "missingObject" || ce.Object != tr {
			t.Fatalf("Check = %v", err)
		}
	})
	t.Run("gitlink not followed", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		defer q.Close()
		var sub Hash
		sub[0] = 0x42
		tr, _ := q.Put(2, treeBytes(treeEntry{"160000", "code", sub}))
		if err := q.Check(ctx, []Hash{tr}); err != nil {
			t.Fatalf("gitlink: %v", err)
		}
	})
	t.Run("tree that is a blob", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		defer q.Close()
		b, _ := q.Put(3, []byte("not a tree"))
		c, _ := q.Put(1, []byte("tree "+b.String()+"\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nm\n"))
		var ce *CheckError
		if err := q.Check(ctx, []Hash{c}); !errors.As(err, &ce) || ce.Check != "badType" || ce.Object != c {
			t.Fatalf("Check = %v", err)
		}
	})
}
