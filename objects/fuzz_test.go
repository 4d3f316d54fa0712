package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// FuzzIngestPack feeds arbitrary bytes to IngestPack. Whatever it accepts
// must be internally consistent: every returned hash is readable and
// hashes to itself; whatever it refuses leaves the quarantine empty, and
// no spill behind. A store that spills everything (the path of a large
// push) gives the same outcome as one that keeps everything in memory.
func FuzzIngestPack(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("PACK"))
	f.Add([]byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00"))
	f.Add([]byte("PACK\x00\x00\x00\x02\xff\xff\xff\xff"))
	// Delta bombs: over MaxInflatedBytes, within it, and a delta that
	// declares a 1 TiB result (testdata/fuzz/FuzzIngestPack has them too).
	f.Add(bombPackOf(4<<10, 8, 1<<20))
	f.Add(bombPackOf(4<<10, 2, 256<<10))
	var pw packWriter
	pw.entry(3, 16, nil, []byte("0123456789abcdef"))
	huge := newDeltaOps(16, 1<<40).copyFrom(0, 16).b
	pw.entry(packOfsDelta, len(huge), ofsPrefix(pw.offset()-12), huge)
	f.Add(pw.bytes())
	lim := Limits{MaxPackBytes: 1 << 20, MaxObjectBytes: 1 << 20, MaxInflatedBytes: 4 << 20}
	s := memStore(f, lim)
	spilled := spillAll(memStore(f, lim))
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, pack []byte) {
		q := s.NewQuarantine("fuzz")
		defer q.Close()
		hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
		sq := spilled.NewQuarantine("fuzz")
		shashes, serr := sq.IngestPack(ctx, bytes.NewReader(pack))
		if (err == nil) != (serr == nil) || fmt.Sprint(hashes) != fmt.Sprint(shashes) {
			t.Fatalf("in memory: %v, %v\nspilled: %v, %v", hashes, err, shashes, serr)
		}
		if serr != nil {
			if n := countKeys(t, spilled.db, 'S'); n != 0 {
				t.Fatalf("refused pack left %d spills", n)
			}
		}
		sq.Close()
		if err != nil {
			if n := len(q.Ingested()); n != 0 {
				t.Fatalf("refused pack left %d objects", n)
			}
			return
		}
		for _, h := range hashes {
			o, err := q.Get(ctx, h)
			if err != nil {
				t.Fatalf("ingested %s unreadable: %v", h, err)
			}
			if got := plumbing.ComputeHash(o.Type, o.Data); got != h {
				t.Fatalf("object %s hashes to %s", h, got)
			}
		}
		_ = q.Check(ctx, hashes)
	})
}

// FuzzCheckTree: CheckTree never panics, and a tree it accepts parses,
// has sorted unique names, and no hostile names or modes.
func FuzzCheckTree(f *testing.F) {
	var id Hash
	id[0] = 1
	f.Add(treeBytes(treeEntry{"100644", "a", id}, treeEntry{"40000", "b", id}))
	f.Add(treeBytes(treeEntry{"40000", "a", id}, treeEntry{"100644", "a.txt", id}))
	f.Add(treeBytes(treeEntry{"100644", ".g\u200cit", id}))
	f.Add(treeBytes(treeEntry{"040000", "git~1", id}))
	f.Add([]byte("100644 a\x00short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckTree(id, data) != nil {
			return
		}
		var prev []byte
		var prevDir bool
		first := true
		err := walkTree(data, func(mode uint32, modeText, name []byte, h Hash) error {
			dir := mode == 0o40000
			if len(name) == 0 || bytes.IndexByte(name, '/') >= 0 || string(name) == "." || string(name) == ".." ||
				bytes.EqualFold(name, []byte(".git")) || modeText[0] == '0' {
				t.Fatalf("accepted hostile entry %q mode %s", name, modeText)
			}
			if !first && gitTreeCompare(prev, prevDir, name, dir) >= 0 {
				t.Fatalf("accepted unsorted entries %q, %q", prev, name)
			}
			prev, prevDir, first = name, dir, false
			return nil
		})
		if err != nil {
			t.Fatalf("accepted a tree that does not parse: %v", err)
		}
	})
}

// FuzzGitmodules feeds arbitrary bytes to CheckGitmodules as a .gitmodules
// blob, and to the URL check as one URL. Properties: no panic; the parser
// never hands over a name or value longer than its input (memory bounded
// by the blob); a refusal is a *CheckError on the blob naming one of the
// four gitmodules content checks; and the verdict does not change when
// every "\n" becomes "\r\n" (git reads both alike) or, read as a file, when
// a byte order mark is put in front. Agreement with C git itself is in
// TestParseGitConfigMatchesGit and TestSubmoduleURLMatchesGit (a fuzz body
// cannot start git for every input).
func FuzzGitmodules(f *testing.F) {
	for _, tc := range gitmodulesCases() {
		if tc.mode == "100644" && len(tc.content) < 4096 {
			f.Add([]byte(tc.content))
		}
	}
	var id Hash
	id[0] = 1
	checks := map[string]bool{"gitmodulesName": true, "gitmodulesUrl": true, "gitmodulesPath": true, "gitmodulesUpdate": true}
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = submoduleURLProblem(data)
		for _, source := range []configSource{configFile, configBlob} {
			_ = parseGitConfig(data, source, func(v configVar) error {
				if len(v.name) > len(data)+1 || len(v.value) > len(data) {
					t.Fatalf("variable %q = %q is longer than the %d-byte input", v.name, v.value, len(data))
				}
				return nil
			})
		}
		err := CheckGitmodules(id, data)
		if err != nil {
			var ce *CheckError
			if !errors.As(err, &ce) || !checks[ce.Check] || ce.Object != id {
				t.Fatalf("CheckGitmodules = %v", err)
			}
		}
		if !bytes.Contains(data, []byte("\r")) {
			crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
			if got := CheckGitmodules(id, crlf); (got == nil) != (err == nil) {
				t.Fatalf("with CRLF: %v; with LF: %v", got, err)
			}
		}
		if len(data) == 0 || data[0] != 0xef {
			fileErr := checkGitmodules(id, data, configFile)
			bom := append([]byte{0xef, 0xbb, 0xbf}, data...)
			if got := checkGitmodules(id, bom, configFile); (got == nil) != (fileErr == nil) {
				t.Fatalf("read as a file with a BOM: %v; without: %v", got, fileErr)
			}
		}
	})
}
