package objects

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/revlist"
)

// history makes n commits that each change one line of a 300-line file
// (so pack-objects emits deltas) and returns the commits, oldest first.
func history(g *gitRepo, n int) []Hash {
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf("line %d of a file that compresses and deltifies well", i)
	}
	var commits []Hash
	for c := 0; c < n; c++ {
		lines[c*7%300] = fmt.Sprintf("changed in commit %d", c)
		g.write("data/big.txt", strings.Join(lines, "\n")+"\n")
		g.write(fmt.Sprintf("dir%d/small.txt", c%3), fmt.Sprintf("small %d\n", c))
		commits = append(commits, g.commit(fmt.Sprintf("commit %d", c)))
	}
	return commits
}

func countKind(kinds []byte, k byte) int {
	n := 0
	for _, x := range kinds {
		if x == k {
			n++
		}
	}
	return n
}

func TestIngestPackMatchesGit(t *testing.T) {
	g := newGitRepo(t)
	commits := history(g, 8)
	t.Run("ofs-delta", func(t *testing.T) {
		pack := g.packRevs([]string{"--delta-base-offset"}, "HEAD")
		if n := countKind(packKinds(t, pack), packOfsDelta); n == 0 {
			t.Fatalf("test pack has no ofs-deltas; kinds %v", packKinds(t, pack))
		}
		testIngestMatches(t, g, commits, pack)
	})
	t.Run("ref-delta", func(t *testing.T) {
		pack := g.packRevs(nil, "HEAD")
		if n := countKind(packKinds(t, pack), packRefDelta); n == 0 {
			t.Fatalf("test pack has no ref-deltas; kinds %v", packKinds(t, pack))
		}
		testIngestMatches(t, g, commits, pack)
	})
}

func testIngestMatches(t *testing.T, g *gitRepo, commits []Hash, pack []byte) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
	if err != nil {
		t.Fatal(err)
	}
	want := g.allObjects()
	if len(hashes) != len(want) {
		t.Fatalf("ingested %d objects, git has %d", len(hashes), len(want))
	}
	for h, o := range want {
		got, err := q.Get(ctx, h)
		if err != nil {
			t.Fatalf("quarantine get %s: %v", h, err)
		}
		if got.Type != o.Type || !bytes.Equal(got.Data, o.Data) {
			t.Fatalf("object %s differs from git's", h)
		}
		if ok, _ := s.Has(ctx, "demo", h); ok {
			t.Fatalf("object %s visible in the store before commit", h)
		}
	}
	if err := q.Check(ctx, []Hash{commits[len(commits)-1]}); err != nil {
		t.Fatalf("check of a git-made pack: %v", err)
	}
	commitQuarantine(t, q)
	for h, o := range want {
		got, err := s.Get(ctx, "demo", h)
		if err != nil {
			t.Fatalf("store get %s: %v", h, err)
		}
		if got.Type != o.Type || !bytes.Equal(got.Data, o.Data) {
			t.Fatalf("object %s differs from git's after commit", h)
		}
		typ, size, z, err := s.Raw(ctx, "demo", h)
		if err != nil {
			t.Fatal(err)
		}
		data, err := inflate(z, size)
		if err != nil || typ != o.Type || !bytes.Equal(data, o.Data) {
			t.Fatalf("raw %s does not inflate to the object: %v", h, err)
		}
	}
	// Other repos do not see them.
	if _, err := s.Get(ctx, "other", commits[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("other repo sees object: %v", err)
	}
}

func TestIngestThinPack(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 6)
	base, tip := commits[2], commits[5]

	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, base.String()))); err != nil {
		t.Fatal(err)
	}
	commitQuarantine(t, q)
	q.Close()

	thin := g.packRevs([]string{"--thin"}, tip.String(), "^"+base.String())
	if n := countKind(packKinds(t, thin), packRefDelta); n == 0 {
		t.Fatalf("thin pack has no ref-deltas; kinds %v", packKinds(t, thin))
	}
	q2 := s.NewQuarantine("demo")
	defer q2.Close()
	if _, err := q2.IngestPack(ctx, bytes.NewReader(thin)); err != nil {
		t.Fatalf("thin pack with bases in the repo: %v", err)
	}
	if err := q2.Check(ctx, []Hash{tip}); err != nil {
		t.Fatal(err)
	}
	want := g.allObjects()
	for h, o := range want {
		got, err := q2.Get(ctx, h)
		if err != nil || !bytes.Equal(got.Data, o.Data) {
			t.Fatalf("object %s after thin pack: %v", h, err)
		}
	}

	// The same thin pack into a repo without the bases fails, writes nothing.
	q3 := s.NewQuarantine("empty")
	defer q3.Close()
	_, err := q3.IngestPack(ctx, bytes.NewReader(thin))
	if !errors.Is(err, ErrBadPack) || !strings.Contains(err.Error(), "neither in the pack nor in the repo") {
		t.Fatalf("thin pack without bases: %v", err)
	}
	if n := len(q3.Ingested()); n != 0 {
		t.Fatalf("failed ingest left %d objects", n)
	}
}

func TestIngestPackRejects(t *testing.T) {
	g := newGitRepo(t)
	history(g, 3)
	pack := g.packRevs(nil, "HEAD")

	flip := bytes.Clone(pack)
	flip[len(flip)-30] ^= 0x40 // inside the last entry or the checksum
	badSum := bytes.Clone(pack)
	badSum[len(badSum)-1] ^= 1
	badVersion := bytes.Clone(pack)
	badVersion[7] = 9

	cases := []struct {
		name   string
		pack   []byte
		lim    Limits
		target error
		text   string
	}{
		{"empty", nil, Limits{}, ErrBadPack, "header"},
		{"not a pack", []byte("GARBAGE GARBAGE GARBAGE"), Limits{}, ErrBadPack, "no PACK signature"},
		{"bad version", badVersion, Limits{}, ErrBadPack, "unsupported version 9"},
		{"truncated", pack[:len(pack)/2], Limits{}, ErrBadPack, "unexpected EOF"},
		{"no checksum", pack[:len(pack)-20], Limits{}, ErrBadPack, "trailing checksum"},
		{"bad checksum", badSum, Limits{}, ErrBadPack, "trailing checksum mismatch"},
		// Depending on where git's delta choices put that byte it breaks a
		// zlib stream, a size header, or the checksum: any refusal will do.
		{"corrupt byte", flip, Limits{}, nil, ""},
		{"pack over limit", pack, Limits{MaxPackBytes: int64(len(pack)) / 2}, ErrTooLarge, "MaxPackBytes"},
		{"object over limit", pack, Limits{MaxObjectBytes: 1000}, ErrTooLarge, "MaxObjectBytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := memStore(t, tc.lim)
			q := s.NewQuarantine("demo")
			defer q.Close()
			_, err := q.IngestPack(context.Background(), bytes.NewReader(tc.pack))
			if err == nil || tc.target != nil && !errors.Is(err, tc.target) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.target, tc.text)
			}
			if n := len(q.Ingested()); n != 0 {
				t.Fatalf("failed ingest wrote %d objects", n)
			}
		})
	}
}

// The reader must stop exactly at the end of the pack: on the wire, what
// follows belongs to the protocol.
func TestIngestPackReadsExactly(t *testing.T) {
	g := newGitRepo(t)
	history(g, 3)
	pack := g.packRevs(nil, "HEAD")
	r := bytes.NewReader(append(bytes.Clone(pack), "after the pack"...))
	// A reader that is not a ByteReader and returns short reads.
	q := memStore(t, Limits{}).NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(context.Background(), io.LimitReader(r, int64(len(pack)))); err != nil {
		t.Fatal(err)
	}
	// Through an unlimited reader only the pack is consumed.
	r2 := &oneByteReader{r: bytes.NewReader(append(bytes.Clone(pack), "after the pack"...))}
	q2 := memStore(t, Limits{}).NewQuarantine("demo")
	defer q2.Close()
	if _, err := q2.IngestPack(context.Background(), r2); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r2)
	if string(rest) != "after the pack" {
		t.Fatalf("bytes after the pack: %q", rest)
	}
}

// oneByteReader hands out one byte per Read, so a reader that buffers
// ahead would be caught.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestGoGitStorer(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 5)
	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, "HEAD"))); err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		name string
		s    func() (*object.Commit, error)
	}{
		{"quarantine", func() (*object.Commit, error) { return object.GetCommit(q.Storer(), commits[4]) }},
	} {
		c, err := st.s()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if c.Message != "commit 4\n" || c.Author.Email != "author@example.com" {
			t.Fatalf("%s: commit %q by %q", st.name, c.Message, c.Author.Email)
		}
		n := 0
		err = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(*object.Commit) error { n++; return nil })
		if err != nil || n != 5 {
			t.Fatalf("%s: walked %d commits: %v", st.name, n, err)
		}
		tree, err := c.Tree()
		if err != nil {
			t.Fatal(err)
		}
		f, err := tree.File("dir1/small.txt")
		if err != nil {
			t.Fatal(err)
		}
		if txt, _ := f.Contents(); txt != "small 4\n" {
			t.Fatalf("file contents %q", txt)
		}
	}
	// Not visible through the store's storer until committed.
	if _, err := object.GetCommit(s.Storer("demo"), commits[4]); !errors.Is(err, plumbing.ErrObjectNotFound) {
		t.Fatalf("store storer before commit: %v", err)
	}
	commitQuarantine(t, q)
	c, err := object.GetCommit(s.Storer("demo"), commits[4])
	if err != nil || c.Hash != commits[4] {
		t.Fatalf("store storer after commit: %v", err)
	}
	iter, err := s.Storer("demo").IterEncodedObjects(plumbing.CommitObject)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = iter.ForEach(func(plumbing.EncodedObject) error { n++; return nil })
	if n != 5 {
		t.Fatalf("iterated %d commits, want 5", n)
	}
	if _, err := s.Storer("demo").SetEncodedObject(&plumbing.MemoryObject{}); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("SetEncodedObject: %v", err)
	}
}

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{MaxObjectBytes: 100})
	h, err := s.Put(ctx, "demo", plumbing.BlobObject, []byte("hello\n"))
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != "ce013625030ba8dba906f756967f9e9ca394464a" {
		t.Fatalf("hash %s, want git's", h)
	}
	o, err := s.Get(ctx, "demo", h)
	if err != nil || string(o.Data) != "hello\n" || o.Type != plumbing.BlobObject {
		t.Fatalf("get: %v %+v", err, o)
	}
	if _, err := s.Put(ctx, "demo", plumbing.BlobObject, make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("put over limit: %v", err)
	}
	if err := s.DeleteRepo(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, "demo", h); ok {
		t.Fatal("object survives DeleteRepo")
	}
}

func TestParseRepoName(t *testing.T) {
	good := map[string]RepoName{
		"demo":           "demo",
		"demo.git":       "demo",
		"/team/demo.git": "team/demo",
		"a_b-c.d":        "a_b-c.d",
		"Team1/Repo_2":   "Team1/Repo_2",
	}
	for in, want := range good {
		got, err := ParseRepoName(in)
		if err != nil || got != want {
			t.Errorf("ParseRepoName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", ".git", "a/b/c", "../x", "a/..", "a..b", ".hidden", "-rf", "a//b", "a b",
		"a\x00b", "a\nb", "a\\b", "é", strings.Repeat("x", 101), "a/.b", "a/-b"}
	for _, in := range bad {
		if got, err := ParseRepoName(in); !errors.Is(err, ErrBadRepoName) {
			t.Errorf("ParseRepoName(%q) = %q, %v; want ErrBadRepoName", in, got, err)
		}
	}
}

// go-git's revlist (what an upload-pack built on go-git uses to choose the
// objects to send) walks the store and finds exactly what git finds.
func TestRevlistOverStorer(t *testing.T) {
	ctx := context.Background()
	g := newGitRepo(t)
	commits := history(g, 6)
	s := memStore(t, Limits{})
	q := s.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(g.packRevs(nil, "HEAD"))); err != nil {
		t.Fatal(err)
	}
	commitQuarantine(t, q)
	tip, have := commits[5], commits[2]
	got, err := revlist.Objects(s.Storer("demo"), []plumbing.Hash{tip}, []plumbing.Hash{have})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(g.run(nil, "rev-list", "--objects", "--no-object-names", tip.String(), "^"+have.String())))
	gotS := make([]string, len(got))
	for i, h := range got {
		gotS[i] = h.String()
	}
	slices.Sort(gotS)
	slices.Sort(want)
	if !slices.Equal(gotS, want) {
		t.Fatalf("revlist found %d objects, git rev-list %d", len(gotS), len(want))
	}
}

// BenchmarkIngestPack and BenchmarkGitIndexPack ingest the same pack (2 MiB
// of 128 KiB text blobs, then 40 commits of a deltified 300-line file,
// ofs-deltas): Weir into a
// quarantine with full resolution, C git with `index-pack --strict`. Compare
// their MB/s.
func BenchmarkIngestPack(b *testing.B) {
	pack := benchPack(b)
	s := memStore(b, Limits{})
	b.SetBytes(int64(len(pack)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := s.NewQuarantine("bench")
		if _, err := q.IngestPack(context.Background(), bytes.NewReader(pack)); err != nil {
			b.Fatal(err)
		}
		q.Close()
	}
}

func BenchmarkGitIndexPack(b *testing.B) {
	pack := benchPack(b)
	dir := b.TempDir()
	if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	b.SetBytes(int64(len(pack)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("git", "index-pack", "--strict", "--stdin")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(pack)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		matches, _ := filepath.Glob(filepath.Join(dir, "objects/pack/*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
}

func benchPack(b *testing.B) []byte {
	b.Helper()
	g := newGitRepo(b)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 16; i++ {
		blob := make([]byte, 128<<10)
		for j := range blob {
			blob[j] = byte(rng.IntN(64) + 32)
		}
		g.write(fmt.Sprintf("blobs/b%02d", i), string(blob))
	}
	history(g, 40)
	return g.packRevs([]string{"--delta-base-offset"}, "HEAD")
}

// packWriter builds packs by hand for cases git will not produce on demand.
type packWriter struct {
	buf bytes.Buffer
	n   uint32
}

func (p *packWriter) entry(kind byte, size int, prefix []byte, body []byte) {
	c := kind<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		p.buf.WriteByte(c | 0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	p.buf.WriteByte(c)
	p.buf.Write(prefix)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(body)
	zw.Close()
	p.buf.Write(z.Bytes())
	p.n++
}

func (p *packWriter) bytes() []byte {
	var out bytes.Buffer
	out.WriteString("PACK")
	binary.Write(&out, binary.BigEndian, uint32(2))
	binary.Write(&out, binary.BigEndian, p.n)
	out.Write(p.buf.Bytes())
	sum := sha1.Sum(out.Bytes())
	out.Write(sum[:])
	return out.Bytes()
}

// insertDelta is a git delta from a base of baseLen bytes to target, made
// of insert instructions only.
func insertDelta(baseLen int, target []byte) []byte {
	var d []byte
	d = binary.AppendUvarint(d, uint64(baseLen))
	d = binary.AppendUvarint(d, uint64(len(target)))
	for len(target) > 0 {
		n := min(len(target), 127)
		d = append(d, byte(n))
		d = append(d, target[:n]...)
		target = target[n:]
	}
	return d
}

// A thin pack whose ref-delta C is based on B, itself a ref-delta on A in
// the repo, with C first: resolution must not depend on which waiting base
// it tries first (map order made this fail one run in two).
func TestIngestThinChainOrder(t *testing.T) {
	ctx := context.Background()
	s := memStore(t, Limits{})
	a := []byte("object A, already in the repo\n")
	ha, err := s.Put(ctx, "demo", plumbing.BlobObject, a)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte("object B, a delta on A\n")
	c := []byte("object C, a delta on B\n")
	hb := plumbing.ComputeHash(plumbing.BlobObject, b)
	hc := plumbing.ComputeHash(plumbing.BlobObject, c)
	var pw packWriter
	dc := insertDelta(len(b), c)
	pw.entry(packRefDelta, len(dc), hb[:], dc)
	db := insertDelta(len(a), b)
	pw.entry(packRefDelta, len(db), ha[:], db)
	pack := pw.bytes()
	for i := 0; i < 20; i++ {
		q := s.NewQuarantine("demo")
		hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if len(hashes) != 2 || hashes[0] != hc || hashes[1] != hb {
			t.Fatalf("hashes %v, want [%s %s]", hashes, hc, hb)
		}
		o, err := q.Get(ctx, hc)
		if err != nil || !bytes.Equal(o.Data, c) {
			t.Fatalf("C: %v", err)
		}
		q.Close()
	}
	// Without A the same pack is refused, naming A.
	s2 := memStore(t, Limits{})
	q := s2.NewQuarantine("demo")
	defer q.Close()
	if _, err := q.IngestPack(ctx, bytes.NewReader(pack)); !errors.Is(err, ErrBadPack) || !strings.Contains(err.Error(), ha.String()) {
		t.Fatalf("without A: %v", err)
	}
}

// packFileOf reads the pack file WEIR_BENCH_PACK names (the benchmark
// skips without one).
func packFileOf(b *testing.B) []byte {
	path := os.Getenv("WEIR_BENCH_PACK")
	if path == "" {
		b.Skip("WEIR_BENCH_PACK names no pack file")
	}
	pack, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return pack
}

// processCPU is this process's CPU time so far (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestPackFile ingests the pack file named by WEIR_BENCH_PACK
// (say, `git pack-objects --all --stdout` of a real repository) into a
// fresh quarantine each iteration and, in the same iteration, the same
// pack with C git's `index-pack --stdin` (git's own ingest, with its
// threads), and reports both, their ratio (weir/git), and the CPU time
// of each:
//
//	git -C repo.git pack-objects --all --stdout --delta-base-offset </dev/null >/tmp/r.pack
//	WEIR_BENCH_PACK=/tmp/r.pack go test ./objects -run '^$' -bench IngestPackFile -benchtime 3x
func BenchmarkIngestPackFile(b *testing.B) {
	pack := packFileOf(b)
	dir := b.TempDir()
	if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	s := memStore(b, Limits{})
	var weir, git, weirCPU, gitCPU time.Duration
	cpu := processCPU
	b.SetBytes(int64(len(pack)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0, c0 := time.Now(), cpu()
		q := s.NewQuarantine("bench")
		if _, err := q.IngestPack(context.Background(), bytes.NewReader(pack)); err != nil {
			b.Fatal(err)
		}
		q.Close()
		weir += time.Since(t0)
		weirCPU += cpu() - c0

		t0 = time.Now()
		cmd := exec.Command("git", "index-pack", "--stdin")
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(pack)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		git += time.Since(t0)
		gitCPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		matches, _ := filepath.Glob(filepath.Join(dir, "objects/pack/*"))
		for _, m := range matches {
			os.Remove(m)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(weir.Milliseconds())/float64(b.N), "weir-ms/op")
	b.ReportMetric(float64(git.Milliseconds())/float64(b.N), "git-ms/op")
	b.ReportMetric(float64(weir)/float64(git), "weir/git")
	// CPU time (user+system; weir's includes the database's background
	// work, which goes on after a pass) says more than wall time on a
	// loaded machine.
	b.ReportMetric(float64(weirCPU.Milliseconds())/float64(b.N), "weir-cpu-ms/op")
	b.ReportMetric(float64(gitCPU.Milliseconds())/float64(b.N), "git-cpu-ms/op")
}

// BenchmarkIngestCheckPackFile is BenchmarkIngestPackFile with what a push
// does next: the fsck and connectivity check (Check) of everything
// ingested, every commit a tip. It reports the CPU time of both steps.
//
//	WEIR_BENCH_PACK=/tmp/r.pack go test ./objects -run '^$' -bench IngestCheckPackFile -benchtime 3x
func BenchmarkIngestCheckPackFile(b *testing.B) {
	pack := packFileOf(b)
	s := memStore(b, Limits{})
	cpu := processCPU
	var ingestCPU, checkCPU time.Duration
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := cpu()
		q := s.NewQuarantine(RepoName(fmt.Sprintf("bench%d", i)))
		hashes, err := q.IngestPack(ctx, bytes.NewReader(pack))
		if err != nil {
			b.Fatal(err)
		}
		c1 := cpu()
		b.StopTimer()
		var tips []Hash
		for _, h := range hashes {
			if typ, _, err := q.Stat(ctx, h); err == nil && typ == plumbing.CommitObject {
				tips = append(tips, h)
			}
		}
		b.StartTimer()
		c2 := cpu()
		if err := q.Check(ctx, tips); err != nil {
			b.Fatal(err)
		}
		q.Close()
		ingestCPU += c1 - c0
		checkCPU += cpu() - c2
	}
	b.StopTimer()
	b.ReportMetric(float64(ingestCPU.Milliseconds())/float64(b.N), "ingest-cpu-ms/op")
	b.ReportMetric(float64(checkCPU.Milliseconds())/float64(b.N), "check-cpu-ms/op")
}
