package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// How C git (index-pack --strict, as receive.fsckObjects runs it) treats a
// case, next to what Weir does.
const (
	gitSame     = "same"     // git refuses it with the same message id
	gitAccepts  = "accepts"  // git accepts it, and so does Weir
	gitStricter = "stricter" // git accepts it; Weir refuses (the case says why)
)

// evilModules is a .gitmodules git refuses (gitmodulesUrl): the URL would
// reach `git clone` as an option (CVE-2018-17456).
const evilModules = "[submodule \"x\"]\n\tpath = x\n\turl = -upload-pack=touch /tmp/x\n"

// gitmodulesCase is one tree entry naming one blob (or a tree, or a
// gitlink) and what Check must say of the pair.
type gitmodulesCase struct {
	name    string
	entry   string // the tree entry's name
	mode    string // "100644" when empty
	content string // the blob
	check   string // "" when accepted
	git     string // gitSame, gitAccepts or gitStricter
}

func gitmodulesCases() []gitmodulesCase {
	good := "[submodule \"lib/a\"]\n\tpath = lib/a\n\turl = https://example.com/a.git\n" +
		"[submodule \"b\"]\n\tpath = b\n\turl = ../b.git\n\tbranch = main\n\tupdate = rebase\n" +
		"[submodule \"c\"]\n\tpath = c\n\turl = git@example.com:c.git\n\tshallow = true\n" +
		"[submodule \"d\"]\n\tpath = d\n\turl = ssh://git@example.com:2222/d.git\n" +
		"[submodule \"e\"]\n\tpath = e\n\turl = http://[::1]:8080/e.git\n\tignore = dirty\n"
	modules := func(key, value string) string {
		return "[submodule \"x\"]\n\tpath = x\n\t" + key + " = " + value + "\n"
	}
	url := func(v string) string { return modules("url", v) }
	cases := []gitmodulesCase{
		// The three examples of the issue.
		{name: "url option", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "path option", content: modules("path", "-x"), check: "gitmodulesPath", git: gitSame},
		{name: "name climbs", content: "[submodule \"../../x\"]\n\tpath = x\n\turl = https://example.com/x.git\n", check: "gitmodulesName", git: gitSame},

		// Names, URLs and update commands.
		{name: "name climbs backslash", content: "[submodule \"a\\\\..\\\\b\"]\n\turl = https://example.com/x.git\n", check: "gitmodulesName", git: gitSame},
		{name: "name is dotdot", content: "[submodule \"..\"]\n\tpath = x\n", check: "gitmodulesName", git: gitSame},
		{name: "name empty", content: "[submodule \"\"]\n\tpath = x\n", check: "gitmodulesName", git: gitSame},
		{name: "name with dots ok", content: "[submodule \"a..b/..c\"]\n\tpath = x\n", git: gitAccepts},
		{name: "update command", content: modules("update", "!rm -rf ~"), check: "gitmodulesUpdate", git: gitSame},
		{name: "url newline escape", content: url(`https://example.com/x\n.git`), check: "gitmodulesUrl", git: gitSame},
		{name: "url percent newline", content: url("https://example.com/%0a/x.git"), check: "gitmodulesUrl", git: gitSame},
		{name: "url percent newline upper", content: url("https://example.com/%0A"), check: "gitmodulesUrl", git: gitSame},
		{name: "url relative percent newline", content: url("../%0a/x.git"), check: "gitmodulesUrl", git: gitSame},
		{name: "url git percent newline", content: url("git://example.com/%0ax"), check: "gitmodulesUrl", git: gitSame},
		{name: "url curl prefix newline", content: url("http::https://example.com/%0a"), check: "gitmodulesUrl", git: gitSame},
		{name: "url climbs to slash", content: url("../../..//evil.example/x.git"), check: "gitmodulesUrl", git: gitSame},
		{name: "url climbs to colon", content: url("../:evil.example/x.git"), check: "gitmodulesUrl", git: gitSame},
		{name: "url climbs backslash", content: url(`..\\..\\/evil.example/x.git`), check: "gitmodulesUrl", git: gitSame},
		{name: "url no host", content: url("https:///x.git"), check: "gitmodulesUrl", git: gitSame},
		{name: "url user no host", content: url("https://user@/x.git"), check: "gitmodulesUrl", git: gitSame},
		// git 2.39 takes ":443" for a host here; git 2.44 and later (its
		// url_normalize check) refuse it, and so does Weir.
		{name: "url port no host", content: url("https://:443/x.git"), check: "gitmodulesUrl", git: gitStricter},
		{name: "url relative ok", content: url("../../x.git"), git: gitAccepts},
		{name: "url ssh option-looking path ok", content: url("ssh://example.com/-x"), git: gitAccepts},

		// The parser reads what git reads.
		{name: "old-style header", content: "[submodule.x]\n\turl = -x\n", check: "gitmodulesUrl", git: gitSame},
		{name: "variable on header line", content: "[submodule \"x\"] url = -x\n", check: "gitmodulesUrl", git: gitSame},
		// git fsck on x86 reads the blob with signed chars: it never sees
		// a BOM, and 0xff reads as the end of the file. A checkout reads
		// the file: BOM skipped, 0xff a byte. So these two pass git fsck
		// and give a checkout url = -x; Weir checks both readings.
		{name: "byte order mark", content: "\xef\xbb\xbf[submodule \"x\"]\n\turl = -x\n", check: "gitmodulesUrl", git: gitStricter},
		{name: "0xff hides the url", content: "[submodule \"x\"]\n\tpath = a\xff\n\turl = -upload-pack=touch /tmp/x\n", check: "gitmodulesUrl", git: gitStricter},
		// Read as the blob, the URL ends at 0xff on "/..", which climbs
		// above the root (refused by git >= 2.44, not by 2.39).
		{name: "0xff ends the blob", content: "[submodule \"x\"]\n\turl = https://example.com/..\xff\n", check: "gitmodulesUrl", git: gitStricter},
		{name: "continuation line", content: "[submodule \"x\"]\n\turl = \\\n-x\n", check: "gitmodulesUrl", git: gitSame},
		{name: "upper case", content: "[SubModule \"x\"]\n\tURL = -x\n", check: "gitmodulesUrl", git: gitSame},
		{name: "quoted", content: "[submodule \"x\"]\n\turl = \"-x\"\n", check: "gitmodulesUrl", git: gitSame},
		{name: "crlf", content: "[submodule \"x\"]\r\n\turl = -x\r\n", check: "gitmodulesUrl", git: gitSame},
		{name: "escaped subsection", content: "[submodule \"\\.\\.\"]\n\turl = x\n", check: "gitmodulesName", git: gitSame},
		{name: "bad line after", content: evilModules + "[bad\n", check: "gitmodulesUrl", git: gitSame},
		{name: "bad line before", content: "[bad\n" + evilModules, git: gitAccepts},
		{name: "not config at all", content: "\x00\x01 binary", git: gitAccepts},
		{name: "nul ends value", content: url("ok\x00-x"), git: gitAccepts},
		{name: "comment", content: url("; -x"), git: gitAccepts},
		{name: "boolean url", content: "[submodule \"x\"]\n\turl\n", git: gitAccepts},
		{name: "other section", content: "[core]\n\tsshCommand = -x\n[submodule]\n\turl = -x\n", git: gitAccepts},
		{name: "good", content: good, git: gitAccepts},
		{name: "empty", content: "", git: gitAccepts},

		// Every name a checkout may read as .gitmodules.
		{name: "alias upper", entry: ".GITMODULES", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias ntfs short", entry: "GITMOD~1", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias ntfs short 4", entry: "gitmod~4", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias ntfs hashed", entry: "gi7eba~1", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias ntfs hashed long", entry: "GI7EB~12", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias trailing space", entry: ".gitmodules ", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias trailing dots", entry: ".gitmodules..", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias stream", entry: ".gitmodules::$DATA", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias hfs zwnj", entry: ".git\u200cmodules", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias hfs bom", entry: "\ufeff.gitmodules", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias hfs bad utf8", entry: ".gitmodules\xff", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "alias backslash", entry: "a\\.gitmodules", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "not alias suffix", entry: ".gitmodulesx", content: evilModules, git: gitAccepts},
		{name: "not alias short 5", entry: "gitmod~5", content: evilModules, git: gitAccepts},
		{name: "not alias no dot", entry: "gitmodules", content: evilModules, git: gitAccepts},
		{name: "not alias backslash after", entry: ".gitmodules\\x", content: evilModules, git: gitAccepts},

		// What the entry is.
		{name: "symlink", entry: ".gitmodules", mode: "120000", content: "/etc/passwd", check: "gitmodulesSymlink", git: gitSame},
		{name: "symlink short name", entry: "GITMOD~1", mode: "120000", content: "x", check: "gitmodulesSymlink", git: gitSame},
		{name: "symlink backslash", entry: "a\\.gitmodules", mode: "120000", content: "x", check: "gitmodulesSymlink", git: gitSame},
		{name: "executable", entry: ".gitmodules", mode: "100755", content: evilModules, check: "gitmodulesUrl", git: gitSame},
		{name: "directory", entry: ".gitmodules", mode: "40000", check: "gitmodulesBlob", git: gitSame},
		// index-pack --strict (big pushes) prints a missing .gitmodules
		// for its caller to fetch and passes; git fsck and unpack-objects
		// --strict (small pushes) refuse it, as Weir does.
		{name: "gitlink", entry: ".gitmodules", mode: "160000", check: "gitmodulesMissing", git: gitStricter},
		// git refuses a .gitmodules only when it is too big to load
		// (512 MiB); Weir bounds what it inflates (MaxGitmodulesBytes).
		{name: "large", content: "[submodule \"x\"]\n\turl = https://example.com/x.git\n" + strings.Repeat("# padding\n", MaxGitmodulesBytes/10+1), check: "gitmodulesLarge", git: gitStricter},

		// .gitattributes: git's line length limit, its aliases; symlinks
		// of it and of .mailmap are only notes.
		{name: "attributes long line", entry: ".gitattributes", content: "*.c text\n" + strings.Repeat("x", 2048) + "\n", check: "gitattributesLineLength", git: gitSame},
		{name: "attributes long last line", entry: ".gitattributes", content: strings.Repeat("x", 2048), check: "gitattributesLineLength", git: gitSame},
		{name: "attributes line just short", entry: ".gitattributes", content: strings.Repeat("x", 2047) + "\n" + strings.Repeat("y", 2047), git: gitAccepts},
		{name: "attributes nul ends", entry: ".gitattributes", content: "a\x00" + strings.Repeat("x", 3000), git: gitAccepts},
		{name: "attributes alias", entry: ".GitAttributes ", content: strings.Repeat("x", 4000), check: "gitattributesLineLength", git: gitSame},
		{name: "attributes ntfs short", entry: "gitatt~1", content: strings.Repeat("x", 4000), check: "gitattributesLineLength", git: gitSame},
		{name: "attributes symlink", entry: ".gitattributes", mode: "120000", content: "x", git: gitAccepts},
		{name: "attributes directory", entry: ".gitattributes", mode: "40000", check: "gitattributesBlob", git: gitSame},
		{name: "mailmap symlink", entry: ".mailmap", mode: "120000", content: "x", git: gitAccepts},
		{name: "gitignore symlink", entry: ".gitignore", mode: "120000", content: "x", git: gitAccepts},
	}
	for i := range cases {
		if cases[i].entry == "" {
			cases[i].entry = ".gitmodules"
		}
		if cases[i].mode == "" {
			cases[i].mode = "100644"
		}
	}
	return cases
}

// TestCheckGitmodules pushes each case (the blob and a tree naming it) as
// one pack through IngestPack and Check, and the same pack through C git's
// `index-pack --strict`, and compares the verdicts.
func TestCheckGitmodules(t *testing.T) {
	g := newGitRepo(t)
	emptyTree := g.hashObject("tree", nil)
	var ghost Hash
	ghost[0] = 0x42
	ctx := context.Background()
	s := memStore(t, Limits{})
	for _, tc := range gitmodulesCases() {
		t.Run(tc.name, func(t *testing.T) {
			target, objs := ghost, []Hash{}
			switch tc.mode {
			case "40000":
				target = emptyTree
				objs = append(objs, emptyTree)
			case "160000":
			default:
				target = g.hashObject("blob", []byte(tc.content))
				objs = append(objs, target)
			}
			tree := g.hashObject("tree", treeBytes(treeEntry{tc.mode, tc.entry, target}))
			objs = append(objs, tree)

			refused, msg := gitIndexPackStrict(t, g, objs...)
			switch {
			case tc.git == gitSame && !refused:
				t.Errorf("C git accepts it; the case says it refuses with %s", tc.check)
			case tc.git == gitSame && !strings.Contains(msg, ": "+tc.check+": "):
				t.Errorf("C git says %q, the case expects %s", msg, tc.check)
			case tc.git != gitSame && refused:
				t.Errorf("C git refuses it (%q); the case says it accepts it", msg)
			}

			q := s.NewQuarantine("demo")
			defer q.Close()
			if _, err := q.IngestPack(ctx, bytes.NewReader(g.packObjects(objs...))); err != nil {
				t.Fatal(err)
			}
			err := q.Check(ctx, []Hash{tree})
			if tc.check == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var ce *CheckError
			if !errors.As(err, &ce) || ce.Check != tc.check {
				t.Fatalf("Check = %v, want %s", err, tc.check)
			}
			want := target
			if tc.check == "gitmodulesSymlink" {
				want = tree // git names the tree that holds the symlink
			}
			if ce.Object != want {
				t.Errorf("Check names %s, want %s", ce.Object, want)
			}
		})
	}
}

// TestCheckGitmodulesWherever: the blob a tree names .gitmodules is
// checked whatever the order of the objects and wherever it is: pushed
// before or after the tree, or already in the repo from an earlier push
// where it was an ordinary file.
func TestCheckGitmodulesWherever(t *testing.T) {
	ctx := context.Background()
	evil := []byte(evilModules)
	evilID := plumbing.ComputeHash(plumbing.BlobObject, evil)
	tree := treeBytes(treeEntry{"100644", ".gitmodules", evilID})
	refused := func(t *testing.T, q *Quarantine, tip Hash) {
		t.Helper()
		var ce *CheckError
		if err := q.Check(ctx, []Hash{tip}); !errors.As(err, &ce) || ce.Check != "gitmodulesUrl" || ce.Object != evilID {
			t.Fatalf("Check = %v, want gitmodulesUrl on %s", err, evilID)
		}
	}
	t.Run("blob first", func(t *testing.T) {
		q := memStore(t, Limits{}).NewQuarantine("demo")
		defer q.Close()
		q.Put(plumbing.BlobObject, evil)
		tr, _ := q.Put(plumbing.TreeObject, tree)
		refused(t, q, tr)
	})
	t.Run("tree first", func(t *testing.T) {
		q := memStore(t, Limits{}).NewQuarantine("demo")
		defer q.Close()
		tr, _ := q.Put(plumbing.TreeObject, tree)
		q.Put(plumbing.BlobObject, evil)
		refused(t, q, tr)
	})
	t.Run("blob already in repo", func(t *testing.T) {
		s := memStore(t, Limits{})
		q := s.NewQuarantine("demo")
		q.Put(plumbing.BlobObject, evil)
		ok, _ := q.Put(plumbing.TreeObject, treeBytes(treeEntry{"100644", "notes.txt", evilID}))
		if err := q.Check(ctx, []Hash{ok}); err != nil {
			t.Fatalf("an ordinary file with this content: %v", err)
		}
		commitQuarantine(t, q)
		q.Close()
		q2 := s.NewQuarantine("demo")
		defer q2.Close()
		tr, _ := q2.Put(plumbing.TreeObject, tree)
		refused(t, q2, tr)
	})
	t.Run("blob nowhere", func(t *testing.T) {
		q := memStore(t, Limits{}).NewQuarantine("demo")
		defer q.Close()
		tr, _ := q.Put(plumbing.TreeObject, tree)
		var ce *CheckError
		if err := q.Check(ctx, []Hash{tr}); !errors.As(err, &ce) || ce.Check != "gitmodulesMissing" || ce.Object != evilID {
			t.Fatalf("Check = %v, want gitmodulesMissing", err)
		}
	})
	t.Run("deep in a commit", func(t *testing.T) {
		q := memStore(t, Limits{}).NewQuarantine("demo")
		defer q.Close()
		q.Put(plumbing.BlobObject, evil)
		sub, _ := q.Put(plumbing.TreeObject, tree)
		root, _ := q.Put(plumbing.TreeObject, treeBytes(treeEntry{"40000", "vendor", sub}))
		c, _ := q.Put(plumbing.CommitObject, []byte("tree "+root.String()+"\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nm\n"))
		refused(t, q, c)
	})
	t.Run("same blob as .gitattributes too", func(t *testing.T) {
		q := memStore(t, Limits{}).NewQuarantine("demo")
		defer q.Close()
		q.Put(plumbing.BlobObject, evil)
		tr, _ := q.Put(plumbing.TreeObject, treeBytes(treeEntry{"100644", ".gitattributes", evilID}, treeEntry{"100644", ".gitmodules", evilID}))
		refused(t, q, tr)
	})
}

// TestCheckGitattributesLarge: git's 100 MiB bound on .gitattributes is
// checked from the stored size, before anything is inflated.
func TestCheckGitattributesLarge(t *testing.T) {
	var id, tree Hash
	id[0], tree[0] = 1, 2
	var ce *CheckError
	err := checkNamedBlob(id, roleGitattributes, tree, plumbing.BlobObject, maxGitattributesBytes+1, []byte("not even zlib"), nil)
	if !errors.As(err, &ce) || ce.Check != "gitattributesLarge" {
		t.Fatalf("got %v, want gitattributesLarge", err)
	}
	err = checkNamedBlob(id, roleGitmodules, tree, plumbing.BlobObject, MaxGitmodulesBytes+1, []byte("not even zlib"), nil)
	if !errors.As(err, &ce) || ce.Check != "gitmodulesLarge" {
		t.Fatalf("got %v, want gitmodulesLarge", err)
	}
}

// TestSubmoduleURLMatchesGit runs each URL through C git's fsck (all at
// once: one .gitmodules blob and tree per URL in one repo, then one `git
// fsck`) and through CheckGitmodules, and compares. Where they differ the
// URL must be in stricter, with the reason.
func TestSubmoduleURLMatchesGit(t *testing.T) {
	urls := []string{
		"https://example.com/x.git", "http://example.com/x", "ftp://example.com/x", "ftps://example.com:21/x",
		"https://example.com:443/x", "http://example.com:80", "https://example.com:0/x", "https://example.com:65536/x",
		"https://example.com:65535/x", "https://example.com:00080/x", "https://example.com:/x", "https://example.com:8a/x",
		"https://[::1]:8080/x", "https://[::1]/x", "https://user:pw@example.com/x", "https://us%zzer@example.com/x",
		"https://user@example.com@evil/x", "https://exa mple.com/x", "https://example.com/a b", "https://example.com/%zz",
		"https://example.com/a/../../x", "https://example.com/..", "https://example.com/a/..", "https://example.com/%2e%2e",
		"https://example.com/./../x", "https://example.com//../x", "https://example.com/?q=%0a", "https://example.com/#%0A",
		"https://example.com/%0d", "https://example.com", "https://", "https:///", "https://?x", "https://#x",
		"http::https://example.com/x", "http::x", "https::https:///x", "ftp::example.com", "HTTPS://:443/x",
		"https://ex%41mple.com/x", "https://example.com/%", "https://example.com/%4", "https://a_b.example.com/x",
		"-x", "--upload-pack=x", "./x", "../x", "../../x", "./../x", ".././x", "..//x", "../:x", "./:x", "..:x",
		"../%0a", "./%0A", "./x/%0a", "..\\..\\x", "..\\/x", ".\\:x", "git://example.com/x", "git://example.com/%0a",
		"git://../x", "ssh://example.com/%0a", "file:///tmp/x", "x::y", "example.com:x.git", "", "%0a", "a\\nb",
		"https://example.com/\\n", "../..\\:x", "http://a:b@c:d@e/", "https://%0a@example.com/", "https://example.com:1%0a/",
	}
	// git 2.39 accepts these (it checked only for a host and a newline);
	// git 2.44 and later refuse them with url_normalize, as Weir does.
	stricter := map[string]string{
		"https://example.com:0/x":         "port 0 (git >= 2.44 refuses)",
		"https://example.com:65536/x":     "port out of range (git >= 2.44 refuses)",
		"https://example.com:8a/x":        "port not a number (git >= 2.44 refuses)",
		"https://us%zzer@example.com/x":   "bad %-escape (git >= 2.44 refuses)",
		"https://user@example.com@evil/x": "'@' in the host (git >= 2.44 refuses)",
		"https://exa mple.com/x":          "space in the host (git >= 2.44 refuses)",
		"https://example.com/%zz":         "bad %-escape (git >= 2.44 refuses)",
		"https://example.com/a/../../x":   "'..' above the root (git >= 2.44 refuses)",
		"https://example.com/..":          "'..' above the root (git >= 2.44 refuses)",
		"https://example.com/%2e%2e":      "'..' above the root (git >= 2.44 refuses)",
		"https://example.com/./../x":      "'..' above the root (git >= 2.44 refuses)",
		"https://example.com/%":           "bad %-escape (git >= 2.44 refuses)",
		"https://example.com/%4":          "bad %-escape (git >= 2.44 refuses)",
		"http://a:b@c:d@e/":               "'@' in the host (git >= 2.44 refuses)",
		"https://ex%41mple.com/x":         "%-escape in the host (git >= 2.44 refuses)",
	}
	checkAgainstGitFsck(t, urls, stricter, func(u string) string {
		return "[submodule \"x\"]\n\tpath = x\n\turl = " + strings.ReplaceAll(u, "\\", "\\\\") + "\n"
	}, "gitmodulesUrl")
}

// TestSubmoduleNameMatchesGit does the same for submodule names.
func TestSubmoduleNameMatchesGit(t *testing.T) {
	names := []string{"x", "", "..", "../x", "x/..", "x/../y", "..x", "x..", "...", "a\\..", "..\\a", "a\\..\\b",
		"a/./b", ".", "./x", "/..", "../", "x/...", "a/..b/c", "%2e%2e", "a..b"}
	checkAgainstGitFsck(t, names, nil, func(n string) string {
		esc := strings.NewReplacer("\\", "\\\\", "\"", "\\\"").Replace(n)
		return "[submodule \"" + esc + "\"]\n\tpath = x\n"
	}, "gitmodulesName")
}

// checkAgainstGitFsck writes one .gitmodules per input into a fresh repo,
// runs `git fsck` once, and compares git's check per blob with
// CheckGitmodules.
func checkAgainstGitFsck(t *testing.T, inputs []string, stricter map[string]string, modules func(string) string, check string) {
	t.Helper()
	g := newGitRepo(t)
	ids := make(map[Hash]string)
	for _, in := range inputs {
		id := g.hashObject("blob", []byte(modules(in)))
		ids[id] = in
		g.hashObject("tree", treeBytes(treeEntry{"100644", ".gitmodules", id}))
	}
	out, err := g.try(nil, "fsck", "--no-dangling", "--no-progress") // stderr is in err
	text := string(out)
	if err != nil {
		text += err.Error()
	}
	gitRefused := make(map[string]bool)
	for _, m := range regexp.MustCompile(`error in blob ([0-9a-f]{40}): (\w+):`).FindAllStringSubmatch(text, -1) {
		if m[2] == check {
			gitRefused[ids[plumbing.NewHash(m[1])]] = true
		}
	}
	for id, in := range ids {
		var ce *CheckError
		err := CheckGitmodules(id, []byte(modules(in)))
		weir := errors.As(err, &ce) && ce.Check == check
		if err != nil && !weir {
			t.Errorf("%q: unexpected %v", in, err)
		}
		why, isStricter := stricter[in]
		switch {
		case weir == gitRefused[in] && isStricter:
			t.Errorf("%q: listed as stricter (%s) but git agrees (refused: %v)", in, why, weir)
		case weir == gitRefused[in]:
		case weir && isStricter:
		default:
			t.Errorf("%q: git refuses: %v, Weir refuses: %v (%v)", in, gitRefused[in], weir, err)
		}
	}
}

// TestParseGitConfigMatchesGit: the variables parseGitConfig reports, and
// where it finds a syntax error, are the ones `git config --list` reports,
// for hand-made edge cases and for random inputs built from config syntax.
func TestParseGitConfigMatchesGit(t *testing.T) {
	inputs := []string{
		"", "\n", "[a]", "[a]\nb", "[a]\nb=c", "[a] b = c ", "[a]\n\tb = \"c ; d\" ; e\n", "[a]\nb = c\\\nd\n",
		"[a]\nb = c\\", "[a]\nb = \"c", "[a]\nb = c\\q\n", "[a.B]\nc=d\n", "[a \"B.c\"]\nd=e\n", "[a \"b\\\"c\\\\d\\e\"]\nf=g\n",
		"[a \"b\" ]\nc=d\n", "[a  \"b\"]\nc=d\n", "[a\t\"b\"]\nc=d\n", "[a \"b\n\"]\nc=d\n", "[a \"b]\nc=d\n", "[]\nb=c\n",
		"[a]\n1b=c\n", "[a]\nb_c=d\n", "[a]\nb-C=d\n", "[a]\nb c\n", "[a]\nb\t=\tc\n", "[a]\nb==c\n", "b=c\n",
		"\xef\xbb\xbf[a]\nb=c\n", "\xef\xbb[a]\nb=c\n", "\xef[a]\n", "[a]\r\nb=c\r\n", "[a]\rb=c\n", "[a]\nb=c\r\r\n",
		"[a]\nb = c\td\t \n", "[a]\nb = \" c \"\n", "[a]\nb = c\"\"d\n", "[a]\nb = \\n\\t\\b\\\\\\\"\n", "# c\n; d\n[a] ; e\nb=c # f\n",
		"[a]#x\nb=c\n", "[a]x=y\n", "[a \"b\"]x=y\n", "[a \"b\"]]\n", "[a-1.b-2]\nc=d\n", "[a]\nb=c\x00d\n", "[a\x00]\nb=c\n",
		"[a \"\x00\"]\nb=c\n", "[a]\nb=\xff\xfe\n", "[a]\n\xff=1\n", "[a]\nb=c\n[d]\ne\n[\n", "[a]\nb = \"x\\\ny\"\n", "  [a]  \n  b  \n",
		"[a]\nb = c\xffd\ne = f\n", "[a]\nb = c\xff\n\n[d]\n", "[a]\nb = c\r\xffd\n", "\xff[a]\nb\n", "[a]\nbc\xff\nd\n", "[a \"b\xffc\"]\nd\n",
	}
	rng := rand.New(rand.NewSource(1))
	pieces := []string{"[", "]", "\"", "\\", "\n", "\r", "\t", " ", "=", ";", "#", ".", "-", "a", "B", "1", "_", "\x00", "\xef\xbb\xbf", "submodule", "url", "x", "\xff", "\r\xff"}
	for i := 0; i < 300; i++ {
		var b strings.Builder
		b.WriteString("[s \"n\"]\n")
		for n := rng.Intn(12); n > 0; n-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		inputs = append(inputs, b.String())
	}
	g := newGitRepo(t)
	file := g.dir + "/cfg"
	for _, in := range inputs {
		if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		blob := g.hashObject("blob", []byte(in))
		for _, src := range []struct {
			source configSource
			arg    string
		}{{configFile, "--file=" + file}, {configBlob, "--blob=" + blob.String()}} {
			out, err := g.try(nil, "config", src.arg, "--list", "-z")
			var gitVars []string
			for _, rec := range strings.Split(string(out), "\x00") {
				if rec != "" {
					gitVars = append(gitVars, normalizeConfigVar(rec))
				}
			}
			var ours []string
			perr := parseGitConfig([]byte(in), src.source, func(v configVar) error {
				rec := string(cString(v.name))
				if v.hasValue {
					rec += "\n" + string(cString(v.value))
				}
				ours = append(ours, normalizeConfigVar(rec))
				return nil
			})
			if (err != nil) != (perr != nil) || fmt.Sprint(gitVars) != fmt.Sprint(ours) {
				t.Errorf("%q read as %s:\n git:  %q error %v\n weir: %q error %v", in, src.arg, gitVars, err != nil, ours, perr)
			}
		}
	}
}

// normalizeConfigVar hides the one way git versions differ in a value: git
// 2.39 turns each unquoted tab or CR inside a value into a space, newer
// git keeps it.
func normalizeConfigVar(rec string) string {
	return strings.NewReplacer("\t", " ", "\r", " ").Replace(rec)
}
