package gitserver

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/objects"
)

// revisionsRepo makes g.home/src, a repo whose origin is ts's repo, with
// the history of revisionsStream(files, 0, commits), and returns its path.
func (g *sessGit) revisionsRepo(ts *sessServer, repo string, files, commits int) string {
	src := filepath.Join(g.home, "src")
	g.run(g.home, "init", "-q", src)
	g.run(src, "remote", "add", "origin", ts.url(repo))
	g.runIn(src, revisionsStream(files, 0, commits), "fast-import", "--quiet")
	return src
}

// revisionsStream is a git fast-import stream of commits commits on
// branch, each editing a few lines of a few of files text files: the
// history deltas are for. Commit i of a stream continues commit i-1, so a
// second stream with from > 0 extends the first.
func revisionsStream(files, from, commits int) string {
	rnd := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("select from where join orders customers sum count group by case when")
	line := func() string {
		n := 4 + rnd.IntN(8)
		w := make([]string, n)
		for i := range w {
			w[i] = words[rnd.IntN(len(words))]
		}
		return strings.Join(w, " ") + "\n"
	}
	content := make([][]string, files)
	for i := range content {
		for range 120 {
			content[i] = append(content[i], line())
		}
	}
	var b strings.Builder
	for c := 0; c < from+commits; c++ {
		touched := []int{c % files, (c * 7) % files}
		if c == 0 {
			touched = touched[:0]
			for i := range files {
				touched = append(touched, i)
			}
		} else {
			for _, i := range touched {
				k := rnd.IntN(len(content[i]))
				content[i][k] = line()
				content[i] = append(content[i][:k+1], append([]string{line()}, content[i][k+1:]...)...)
			}
		}
		if c < from {
			continue
		}
		fmt.Fprintf(&b, "commit refs/heads/main\nmark :%d\ncommitter Tess Ter <tess@example.com> %d +0000\n", c+1, 1700000000+c*60)
		msg := fmt.Sprintf("commit %d\n", c)
		fmt.Fprintf(&b, "data %d\n%s", len(msg), msg)
		if c > from {
			fmt.Fprintf(&b, "from :%d\n", c)
		} else if c > 0 {
			b.WriteString("from refs/heads/main^0\n")
		}
		for _, i := range touched {
			body := strings.Join(content[i], "")
			fmt.Fprintf(&b, "M 100644 inline src/f%02d.sql\ndata %d\n%s\n", i, len(body), body)
		}
	}
	return b.String()
}

// packBytes runs git with GIT_TRACE_PACKFILE and returns the pack it
// received.
func (g *sessGit) packBytes(dir string, args ...string) []byte {
	g.t.Helper()
	trace := filepath.Join(g.home, "trace.pack")
	os.Remove(trace)
	saved := g.env
	g.env = append(append([]string(nil), g.env...), "GIT_TRACE_PACKFILE="+trace)
	g.run(dir, args...)
	g.env = saved
	b, err := os.ReadFile(trace)
	if err != nil {
		g.t.Fatalf("git %s received no pack: %v", strings.Join(args, " "), err)
	}
	return b
}

// cgitPackSize is the size of the pack C git's pack-objects makes in dir
// for the revisions in revs (thin with thin), at its default window and
// depth.
func (g *sessGit) cgitPackSize(dir, revs string, thin bool) int {
	g.t.Helper()
	args := []string{"pack-objects", "--stdout", "--revs", "-q", "--no-reuse-delta"}
	if thin {
		args = append(args, "--thin")
	}
	return len(g.runIn(dir, revs, args...))
}

// TestSessionDeltaClone: a history pushed by C git (whose pack carries
// deltas) is cloned and fetched back with deltas, the clone's pack within
// 1.15x of the pack C git makes of the same objects and the fetch's within
// 1.15x of C git's thin pack, under both protocols; C git's fsck is clean
// after each. Without delta records the clone was about 5x the bytes.
func TestSessionDeltaClone(t *testing.T) {
	for _, proto := range []int{0, 2} {
		t.Run(fmt.Sprintf("protocol=%d", proto), func(t *testing.T) {
			ts := newSessServer(t)
			g := newSessGit(t, ts)
			g.protocol(proto)
			src := g.revisionsRepo(ts, "demo", 8, 60)
			// fast-import deltas each blob against the one written before
			// it, whatever its path: find real ones, as a user's repo has.
			g.run(src, "repack", "-q", "-a", "-d", "-f")
			g.run(src, "push", "-q", "origin", "main")

			dst := filepath.Join(g.home, "dst")
			pack := g.packBytes(g.home, "clone", "-q", "--bare", ts.url("demo"), dst)
			g.run(dst, "fsck", "--strict")
			if got, want := g.revParse(dst, "main"), g.revParse(src, "main"); got != want {
				t.Fatalf("cloned main = %s, want %s", got, want)
			}
			cg := g.cgitPackSize(src, "main\n", false)
			t.Logf("clone pack: %d bytes, C git: %d", len(pack), cg)
			if float64(len(pack)) > 1.15*float64(cg) {
				t.Errorf("clone pack is %d bytes, C git's pack of the same objects %d: want <= 1.15x", len(pack), cg)
			}
			if n := packDeltaCount(t, pack); n == 0 {
				t.Errorf("clone pack has no deltas")
			}

			old := g.revParse(src, "main")
			g.runIn(src, revisionsStream(8, 60, 10), "fast-import", "--quiet")
			g.run(src, "push", "-q", "origin", "main")
			work := filepath.Join(g.home, "work")
			g.run(g.home, "clone", "-q", dst, work) // a non-bare clone at old
			g.run(work, "remote", "set-url", "origin", ts.url("demo"))
			fpack := g.packBytes(work, "fetch", "-q", "origin")
			g.run(work, "fsck", "--strict")
			if got, want := g.revParse(work, "origin/main"), g.revParse(src, "main"); got != want {
				t.Fatalf("fetched origin/main = %s, want %s", got, want)
			}
			cgThin := g.cgitPackSize(src, "main\n^"+old+"\n", true)
			t.Logf("fetch pack: %d bytes, C git thin: %d", len(fpack), cgThin)
			if float64(len(fpack)) > 1.15*float64(cgThin) {
				t.Errorf("fetch pack is %d bytes, C git's thin pack %d: want <= 1.15x", len(fpack), cgThin)
			}
			if thin := packRefDeltaOutside(t, fpack); thin == 0 {
				t.Errorf("fetch pack has no delta against an object the client has (thin-pack)")
			}
		})
	}
}

// TestSessionDeltaComputed: a history pushed without any delta (as
// go-git, dulwich and JGit's small pushes send it) is cloned with deltas
// the server computed, recorded so that a second clone gets the same pack
// without computing them again.
func TestSessionDeltaComputed(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.revisionsRepo(ts, "demo", 6, 40)
	g.run(src, "-c", "pack.window=0", "repack", "-q", "-a", "-d", "-F")
	g.run(src, "-c", "pack.window=0", "push", "-q", "origin", "main")
	if n := countRecords(t, ts.store, "demo", true); n != 0 {
		t.Fatalf("a push without deltas left %d delta records", n)
	}

	dst := filepath.Join(g.home, "dst")
	pack := g.packBytes(g.home, "clone", "-q", "--bare", ts.url("demo"), dst)
	g.run(dst, "fsck", "--strict")
	if n := packDeltaCount(t, pack); n == 0 {
		t.Fatalf("clone pack has no deltas")
	}
	cg := g.cgitPackSize(src, "main\n", false)
	t.Logf("clone pack: %d bytes, C git: %d", len(pack), cg)
	if float64(len(pack)) > 1.5*float64(cg) {
		t.Errorf("clone pack is %d bytes, C git's %d: want <= 1.5x", len(pack), cg)
	}
	if n := countRecords(t, ts.store, "demo", true); n == 0 {
		t.Errorf("the clone recorded no delta")
	}

	dst2 := filepath.Join(g.home, "dst2")
	pack2 := g.packBytes(g.home, "clone", "-q", "--bare", ts.url("demo"), dst2)
	if !bytes.Equal(pack, pack2) {
		t.Errorf("a second clone sent another pack (%d bytes, first %d)", len(pack2), len(pack))
	}
}

// countRecords counts the delta records of repo (with deltas: only those
// naming a base).
func countRecords(t *testing.T, store *objects.Store, repo string, withDeltas bool) int {
	t.Helper()
	lo := append(append([]byte{'d'}, repo...), 0)
	hi := append(append([]byte{'d'}, repo...), 1)
	it, err := store.DB().NewIter(lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			t.Fatal(err)
		}
		if !withDeltas || len(v) > 0 {
			n++
		}
	}
	return n
}

// packEntries walks the entries of a pack and calls f with each entry's
// kind (1-4 whole, 6 ofs-delta, 7 ref-delta).
func packEntries(t *testing.T, pack []byte, f func(kind byte)) {
	t.Helper()
	if len(pack) < 32 || string(pack[:4]) != "PACK" {
		t.Fatalf("not a pack: %q", pack[:min(len(pack), 8)])
	}
	count := binary.BigEndian.Uint32(pack[8:12])
	r := bytes.NewReader(pack[12 : len(pack)-20])
	for i := uint32(0); i < count; i++ {
		c, err := r.ReadByte()
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		kind := (c >> 4) & 7
		for c&0x80 != 0 {
			c, _ = r.ReadByte()
		}
		switch kind {
		case 6:
			for c, _ = r.ReadByte(); c&0x80 != 0; c, _ = r.ReadByte() {
			}
		case 7:
			r.Seek(20, io.SeekCurrent)
		}
		f(kind)
		if err := skipZlib(r); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
}

// packDeltaCount is the number of delta entries of a pack.
func packDeltaCount(t *testing.T, pack []byte) int {
	n := 0
	packEntries(t, pack, func(kind byte) {
		if kind == 6 || kind == 7 {
			n++
		}
	})
	return n
}

// packRefDeltaOutside is the number of ref-deltas of a pack: C git asks
// for ofs-delta, so a ref-delta in its fetch is one against an object it
// already has.
func packRefDeltaOutside(t *testing.T, pack []byte) int {
	n := 0
	packEntries(t, pack, func(kind byte) {
		if kind == 7 {
			n++
		}
	})
	return n
}

// TestWritePackRefDeltas: without ofs-delta every delta goes by hash, and
// C git's index-pack takes the pack and fsck finds the repo complete.
func TestWritePackRefDeltas(t *testing.T) {
	ts := newSessServer(t)
	g := newSessGit(t, ts)
	src := g.revisionsRepo(ts, "demo", 4, 30)
	g.run(src, "push", "-q", "origin", "main")
	ctx := context.Background()
	tip := ts.ref("demo", "refs/heads/main")
	for _, opt := range []packOptions{{ofsDelta: false}, {ofsDelta: true}} {
		w := newWalker(ctx, ts.store, "demo")
		pl, err := w.plan(&fetchPlan{wants: []objects.Hash{tip}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		st, err := writePack(ctx, ts.store, "demo", pl, opt, nil, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if st.deltas == 0 {
			t.Fatalf("%+v: no deltas", opt)
		}
		kinds := map[byte]int{}
		packEntries(t, buf.Bytes(), func(kind byte) { kinds[kind]++ })
		if opt.ofsDelta && kinds[7] != 0 || !opt.ofsDelta && kinds[6] != 0 {
			t.Errorf("%+v: entry kinds %v", opt, kinds)
		}
		bare := filepath.Join(g.home, fmt.Sprintf("bare-%v", opt.ofsDelta))
		g.run(g.home, "init", "-q", "--bare", bare)
		g.runIn(bare, buf.String(), "index-pack", "--stdin", "--strict")
		g.run(bare, "update-ref", "refs/heads/main", tip.String())
		g.run(bare, "fsck", "--strict")
	}
}

// skipZlib reads past one zlib stream (r is an io.ByteReader, so the
// inflater reads no further).
func skipZlib(r *bytes.Reader) error {
	zr, err := zlib.NewReader(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, zr)
	return err
}

// TestOrderDeltas: records that form a cycle, or a chain deeper than
// maxDeltaDepth, are cut (the object goes whole), and every base is
// placed before its deltas.
func TestOrderDeltas(t *testing.T) {
	rec := objects.Delta{Base: objects.Hash{1}, Size: 1, ZData: []byte{1}}
	tests := []struct {
		name       string
		base       []int32
		wantWhole  []int32 // objects that must end up whole
		wantDeltas int
	}{
		{"none", []int32{-1, -1}, []int32{0, 1}, 0},
		{"backwards", []int32{1, 2, -1}, []int32{2}, 2},
		{"self", []int32{0}, []int32{0}, 0},
		{"cycle of two", []int32{1, 0}, nil, 1},
		{"cycle of three with a tail", []int32{1, 2, 0, 0}, nil, 3},
		{"thin", []int32{-2, 0}, nil, 2},
	}
	// A chain 0 <- 1 <- ... <- 119: 0 whole, every 51st object cut.
	chain := make([]int32, 120)
	chain[0] = -1
	for i := 1; i < len(chain); i++ {
		chain[i] = int32(i - 1)
	}
	tests = append(tests, struct {
		name       string
		base       []int32
		wantWhole  []int32
		wantDeltas int
	}{"deep chain", chain, []int32{0, 51, 102}, 117})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(tt.base)
			dp := &deltaPlan{base: append([]int32(nil), tt.base...), baseID: make([]objects.Hash, n), rec: make([]objects.Delta, n)}
			for i, b := range tt.base {
				if b != -1 {
					dp.rec[i] = rec
				}
			}
			order := orderDeltas(dp)
			if len(order) != n {
				t.Fatalf("order has %d objects, want %d", len(order), n)
			}
			placed := make([]bool, n)
			depth := make([]int, n)
			for _, i := range order {
				if placed[i] {
					t.Fatalf("object %d placed twice", i)
				}
				if b := dp.base[i]; b >= 0 {
					if !placed[b] {
						t.Fatalf("object %d placed before its base %d", i, b)
					}
					depth[i] = depth[b] + 1
					if depth[i] > maxDeltaDepth {
						t.Fatalf("object %d at depth %d", i, depth[i])
					}
				}
				placed[i] = true
			}
			if dp.deltas != tt.wantDeltas {
				t.Errorf("deltas = %d, want %d (bases %v)", dp.deltas, tt.wantDeltas, dp.base)
			}
			for _, i := range tt.wantWhole {
				if dp.base[i] != -1 || dp.rec[i].ZData != nil {
					t.Errorf("object %d: base %d, want whole", i, dp.base[i])
				}
			}
		})
	}
}
