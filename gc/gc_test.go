package gc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/kv/memkv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

const repo = objects.RepoName("team/demo")

var orders = catalog.TableName{Namespace: "sales", Name: "orders"}

// fixture is a server's storage: objects and refs on one kv database, a
// local warehouse, the catalog over both.
type fixture struct {
	db   kv.DB
	objs *objects.Store
	refs *refs.DB
	cat  *catalog.Catalog
	wh   string
	dir  string
}

func newFixture(t testing.TB, db kv.DB, dir string) *fixture {
	t.Helper()
	wh, err := catalog.NewLocalWarehouse(filepath.Join(dir, "warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, db, dir, wh)
}

// newFixtureOn is newFixture on the warehouse wh.
func newFixtureOn(t testing.TB, db kv.DB, dir string, wh catalog.Warehouse) *fixture {
	t.Helper()
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	return &fixture{db: db, objs: objs, refs: rs, cat: catalog.New(objs, rs, wh), wh: filepath.Join(dir, "warehouse", "team@demo"), dir: dir}
}

// collector returns a collector whose clock is at (now + later).
func (f *fixture) collector(later time.Duration) *Collector {
	return &Collector{Objects: f.objs, Refs: f.refs, Catalog: f.cat, Now: func() time.Time { return time.Now().Add(later) }}
}

var schema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)

// parquet writes ids [from, from+n) to a new Parquet file.
func (f *fixture) parquet(t *testing.T, from, n int) string {
	t.Helper()
	p := filepath.Join(f.dir, fmt.Sprintf("in-%d-%d-%d.parquet", from, n, rand.Int()))
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, out, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecordBatch()
	b.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// dataCommit writes ids [from, from+n) to orders on top of base (mode
// replace or append) and returns the data commit; no ref moves.
func (f *fixture) dataCommit(t *testing.T, base objects.Hash, from, n int, mode, run string) objects.Hash {
	t.Helper()
	h, err := f.cat.WriteDataCommit(context.Background(), repo, base, []catalog.TableWrite{{Table: orders, Files: []string{f.parquet(t, from, n)}, Mode: mode}}, catalog.CommitInfo{RunID: run, Message: "test " + run})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// move moves a ref from old to h (publishing h's pointers when it is a
// data ref).
func (f *fixture) move(t *testing.T, name refs.Name, old, h objects.Hash) {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(string(name), refs.DataPrefix) {
		if err := f.cat.Publish(ctx, repo, old, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.refs.Update(ctx, repo, []refs.Update{{Name: name, Old: old, New: h}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) put(t *testing.T, typ plumbing.ObjectType, data string) objects.Hash {
	t.Helper()
	h, err := f.objs.Put(context.Background(), repo, typ, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// codeCommit writes a commit of one file (and parent, if any).
func (f *fixture) codeCommit(t *testing.T, content string, parent objects.Hash) objects.Hash {
	t.Helper()
	blob := f.put(t, plumbing.BlobObject, content)
	tree := f.put(t, plumbing.TreeObject, "100644 models.sql\x00"+string(blob[:]))
	return f.put(t, plumbing.CommitObject, commitText(tree, parent, "code "+content))
}

func commitText(tree, parent objects.Hash, msg string) string {
	s := "tree " + tree.String() + "\n"
	if !parent.IsZero() {
		s += "parent " + parent.String() + "\n"
	}
	return s + "author A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\n" + msg + "\n"
}

// failedRun keeps run id as a failed run does: code, partial data, log.
func (f *fixture) failedRun(t *testing.T, id string, code, data objects.Hash) {
	t.Helper()
	log := f.put(t, plumbing.BlobObject, "weir: node failed\n")
	tree := f.put(t, plumbing.TreeObject, "100644 log\x00"+string(log[:]))
	now := time.Now().Unix()
	c := fmt.Sprintf("tree %s\nauthor weir <weir@localhost> %d +0000\ncommitter weir <weir@localhost> %d +0000\n\nweir: run %s on main failed\n\nRun: %s\nCode-Commit: %s\nPusher: tester\nData-Commit: %s\n", tree, now, now, id, id, code, data)
	lh := f.put(t, plumbing.CommitObject, c)
	ups := []refs.Update{
		{Name: refs.Name(refs.RunsPrefix + id + "/code"), New: code},
		{Name: refs.Name(refs.RunsPrefix + id + "/data"), New: data},
		{Name: refs.Name(refs.RunsPrefix + id + "/log"), New: lh},
	}
	if err := f.refs.Update(context.Background(), repo, ups, nil, "run"); err != nil {
		t.Fatal(err)
	}
}

// ids reads the ids of orders at data commit h, sorted.
func (f *fixture) ids(t *testing.T, h objects.Hash) []int64 {
	t.Helper()
	return f.idsOf(t, h, orders)
}

// idsOf reads the ids of table tn at data commit h, sorted.
func (f *fixture) idsOf(t *testing.T, h objects.Hash, tn catalog.TableName) []int64 {
	t.Helper()
	files, err := f.cat.ReadTableFiles(context.Background(), repo, h, tn)
	if err != nil {
		t.Fatalf("read %s at %s: %v", tn, h, err)
	}
	var out []int64
	for _, p := range files {
		rdr, err := file.OpenParquetFile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range tbl.Column(0).Data().Chunks() {
			out = append(out, ch.(*array.Int64).Int64Values()...)
		}
		tbl.Release()
		rdr.Close()
	}
	slices.Sort(out)
	return out
}

func seq(from, n int) []int64 {
	var out []int64
	for i := from; i < from+n; i++ {
		out = append(out, int64(i))
	}
	return out
}

// closure checks that every object reachable from every ref is readable,
// and returns how many there are.
func closure(t *testing.T, objs *objects.Store, rs *refs.DB) int {
	t.Helper()
	ctx := context.Background()
	list, err := rs.List(ctx, repo, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[objects.Hash]bool{}
	var stack []objects.Hash
	for _, r := range list {
		if r.Target == "" {
			stack = append(stack, r.Hash)
		}
	}
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		o, err := objs.Get(ctx, repo, h)
		if err != nil {
			t.Fatalf("object %s reachable from a ref: %v", h, err)
		}
		if o.Type == plumbing.BlobObject {
			continue
		}
		typ, links, err := objs.Links(ctx, repo, h)
		if err != nil || typ != o.Type {
			t.Fatalf("links of %s: %v", h, err)
		}
		stack = append(stack, links...)
	}
	return len(seen)
}

// files lists the warehouse files of the repo, relative to its folder.
func (f *fixture) files(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.Walk(f.wh, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(f.wh, p)
			out[rel] = true
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func has(t *testing.T, objs *objects.Store, h objects.Hash) bool {
	t.Helper()
	ok, err := objs.Has(context.Background(), repo, h)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// world is a repo with every kind of ref, and garbage of every kind.
type world struct {
	code1, code2, tagObj, data1, data2, custom objects.Hash
	runCode, runData, garbage, oldCode         objects.Hash
	filesBefore                                map[string]bool
	runFiles                                   []string // warehouse files only the failed run names
}

// build writes: main (two code commits), a data branch with two
// versions (the second appends), an annotated tag of code1, a data tag
// of data1, a ref in a namespace of its own, a failed run with partial
// data, an unreferenced blob, and a code commit only a deleted branch
// reached.
func (f *fixture) build(t *testing.T) *world {
	t.Helper()
	w := &world{}
	w.code1 = f.codeCommit(t, "select 1", objects.ZeroHash)
	w.code2 = f.codeCommit(t, "select 2", w.code1)
	f.move(t, "refs/heads/main", objects.ZeroHash, w.code2)
	w.data1 = f.dataCommit(t, objects.ZeroHash, 0, 10, catalog.ModeReplace, "r-1")
	f.move(t, catalog.DataRef("main"), objects.ZeroHash, w.data1)
	w.data2 = f.dataCommit(t, w.data1, 10, 5, catalog.ModeAppend, "r-2")
	f.move(t, catalog.DataRef("main"), w.data1, w.data2)
	w.tagObj = f.put(t, plumbing.TagObject, fmt.Sprintf("object %s\ntype commit\ntag v1\ntagger A <a@x> 1700000000 +0000\n\nv1\n", w.code1))
	f.move(t, "refs/tags/v1", objects.ZeroHash, w.tagObj)
	f.move(t, catalog.TagRef("d1"), objects.ZeroHash, w.data1)
	w.custom = f.put(t, plumbing.BlobObject, "kept by a namespace nobody lists")
	f.move(t, "refs/notes/custom", objects.ZeroHash, w.custom)
	before := f.files(t)
	w.runCode = f.codeCommit(t, "select broken", w.code2)
	w.runData = f.dataCommit(t, w.data2, 100, 7, catalog.ModeReplace, "r-0bad")
	f.failedRun(t, "r-0bad", w.runCode, w.runData)
	for n := range f.files(t) {
		if !before[n] {
			w.runFiles = append(w.runFiles, n)
		}
	}
	w.garbage = f.put(t, plumbing.BlobObject, "pushed, never referenced")
	w.oldCode = f.codeCommit(t, "select deleted", objects.ZeroHash)
	f.move(t, "refs/heads/tmp", objects.ZeroHash, w.oldCode)
	f.move(t, "refs/heads/tmp", w.oldCode, objects.ZeroHash)
	w.filesBefore = f.files(t)
	return w
}

// The expiring options: runs and reflogs go at once.
func expiring() Options {
	return Options{Grace: time.Hour, KeepFailedRuns: time.Hour, KeepRuns: Forever, ReflogExpiry: time.Hour}
}

func TestCollectKeepsEveryRefAndFreesTheRest(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	w := f.build(t)
	ctx := context.Background()
	if len(w.runFiles) < 3 {
		t.Fatalf("the failed run wrote %v: want its metadata, manifest list, manifest and data file", w.runFiles)
	}
	// A dry run two hours later reports and changes nothing.
	dry := expiring()
	dry.DryRun = true
	before := closure(t, f.objs, f.refs)
	dres, err := f.collector(2*time.Hour).Run(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if got := closure(t, f.objs, f.refs); got != before || !has(t, f.objs, w.garbage) || len(f.files(t)) != len(w.filesBefore) {
		t.Fatalf("dry run changed something: %d -> %d objects reachable", before, got)
	}
	res, err := f.collector(2*time.Hour).Run(ctx, expiring())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dry run: %s", dres)
	t.Logf("run: %s", res)
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	// The dry run said what the run did.
	if dres.Objects != res.Objects || dres.Files != res.Files || dres.FileBytes != res.FileBytes || dres.RunsExpired != 1 || dres.ObjectBytes != res.ObjectBytes || dres.ReflogEntries != res.ReflogEntries {
		t.Errorf("dry run said %+v, the run did %+v", dres, res)
	}
	// Every ref still reaches readable objects; the tables read.
	closure(t, f.objs, f.refs)
	for _, h := range []objects.Hash{w.code1, w.code2, w.tagObj, w.data1, w.data2, w.custom} {
		if !has(t, f.objs, h) {
			t.Errorf("reachable %s was collected", h)
		}
	}
	if got := f.ids(t, f.head(t, "main")); !slices.Equal(got, seq(0, 15)) {
		t.Errorf("main reads %v", got)
	}
	if got := f.ids(t, w.data1); !slices.Equal(got, seq(0, 10)) {
		t.Errorf("data tag d1 reads %v", got)
	}
	// The failed run, its partial data and files, the garbage and the
	// deleted branch's commit are gone.
	if l, _ := f.refs.List(ctx, repo, refs.RunsPrefix); len(l) != 0 {
		t.Errorf("run refs left: %v", l)
	}
	for _, h := range []objects.Hash{w.runData, w.runCode, w.garbage, w.oldCode} {
		if has(t, f.objs, h) {
			t.Errorf("unreachable %s was kept", h)
		}
	}
	after := f.files(t)
	for _, n := range w.runFiles {
		if after[n] {
			t.Errorf("the failed run's file %s was kept", n)
		}
	}
	if len(after) != len(w.filesBefore)-len(w.runFiles) || res.Files != len(w.runFiles) {
		t.Errorf("files: %d before, %d after, %d reported freed; the run wrote %d", len(w.filesBefore), len(after), res.Files, len(w.runFiles))
	}
	if res.RunsExpired != 1 || res.RefsExpired != 3 || res.Objects < 8 {
		t.Errorf("result %+v", res)
	}
	// The pointer of the collected run is no longer known to the catalog.
	ptrs, _ := f.cat.PointerBlobs(ctx, repo)
	for _, p := range ptrs {
		if !has(t, f.objs, p) {
			t.Errorf("catalog still records collected pointer %s", p)
		}
	}
	// A second collection frees nothing more.
	again, err := f.collector(2*time.Hour).Run(ctx, expiring())
	if err != nil {
		t.Fatal(err)
	}
	if again.Objects != 0 || again.Files != 0 || again.RunsExpired != 0 {
		t.Errorf("second collection freed %+v", again)
	}
}

func (f *fixture) head(t *testing.T, b string) objects.Hash {
	t.Helper()
	h, err := f.refs.Resolve(context.Background(), repo, catalog.DataRef(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Within the grace period, and with runs and reflogs kept, nothing is
// deleted: the failed run is young, so are the garbage and the files.
func TestGracePeriodKeepsInFlightWrites(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	w := f.build(t)
	ctx := context.Background()
	// Unreferenced warehouse files written just now, as a REST client
	// writes before its commit (a metadata file naming them too).
	young := filepath.Join(f.wh, "sales", "orders", "data", "inflight.parquet")
	if err := os.WriteFile(young, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := f.collector(0).Run(ctx, expiring())
	if err != nil {
		t.Fatal(err)
	}
	if res.Objects != 0 || res.Files != 0 {
		t.Fatalf("collected within the grace period: %+v", res)
	}
	if !has(t, f.objs, w.garbage) || !has(t, f.objs, w.runData) {
		t.Fatal("young objects collected")
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatalf("young file: %v", err)
	}
	// An old file hard-linked into the warehouse now is young too.
	old := filepath.Join(f.dir, "old.parquet")
	if err := os.WriteFile(old, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(f.wh, "sales", "orders", "data", "imported.parquet")
	if err := os.Link(old, linked); err != nil {
		t.Fatal(err)
	}
	if _, err := f.collector(30*time.Minute).Run(ctx, Options{Grace: time.Hour, KeepFailedRuns: Forever, KeepRuns: Forever, ReflogExpiry: Forever}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(linked); err != nil {
		t.Fatalf("a file linked 30 minutes ago (modified 2 days ago) was collected: %v", err)
	}
	// Past the grace period both go; the run stays (kept forever).
	res, err = f.collector(2*time.Hour).Run(ctx, Options{Grace: time.Hour, KeepFailedRuns: Forever, KeepRuns: Forever, ReflogExpiry: Forever})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{young, linked} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s kept past the grace period: %v", p, err)
		}
	}
	if has(t, f.objs, w.garbage) || !has(t, f.objs, w.runData) {
		t.Errorf("past the grace period: garbage kept %v, kept run's data kept %v", has(t, f.objs, w.garbage), has(t, f.objs, w.runData))
	}
	// The deleted branch's commit is still named by its reflog.
	if !has(t, f.objs, w.oldCode) {
		t.Error("a commit an unexpired reflog entry names was collected")
	}
	if got := f.ids(t, w.runData); !slices.Equal(got, seq(100, 7)) {
		t.Errorf("the kept failed run's data reads %v", got)
	}
}

// A delta record is deleted with its object and with its base, and kept
// when both stay.
func TestDeltaRecordsNeverOutliveTheirBase(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	ctx := context.Background()
	keptA := f.put(t, plumbing.BlobObject, strings.Repeat("a", 100))
	keptB := f.put(t, plumbing.BlobObject, strings.Repeat("a", 99)+"b")
	doomed := f.put(t, plumbing.BlobObject, strings.Repeat("a", 98)+"cc")
	tree := f.put(t, plumbing.TreeObject, "100644 a\x00"+string(keptA[:])+"100644 b\x00"+string(keptB[:]))
	commit := f.put(t, plumbing.CommitObject, commitText(tree, objects.ZeroHash, "c"))
	f.move(t, "refs/heads/main", objects.ZeroHash, commit)
	z := []byte{0x78, 0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01} // any bytes: records are hints
	for _, d := range [][2]objects.Hash{{keptB, keptA}, {keptA, doomed}, {doomed, keptA}} {
		if err := f.objs.PutDelta(ctx, repo, d[0], d[1], 0, z); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.collector(2*time.Hour).Run(ctx, expiring()); err != nil {
		t.Fatal(err)
	}
	if has(t, f.objs, doomed) {
		t.Fatal("unreachable blob kept")
	}
	if d, ok, err := f.objs.Delta(ctx, repo, keptB); err != nil || !ok || d.Base != keptA {
		t.Errorf("record of B against A (both kept): %v %v %v", d.Base, ok, err)
	}
	if _, ok, _ := f.objs.Delta(ctx, repo, keptA); ok {
		t.Error("record of A against a collected base kept")
	}
	if _, ok, _ := f.objs.Delta(ctx, repo, doomed); ok {
		t.Error("record of a collected object kept")
	}
	// Once a collection deleted something, a record against an object
	// that is gone is not written.
	if err := f.objs.PutDelta(ctx, repo, keptB, doomed, 0, z); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := f.objs.Delta(ctx, repo, keptB); d.Base != keptA {
		t.Errorf("record against a collected base written: base %s", d.Base)
	}
}

// A ref update that names an object a collection deleted is refused, and
// so is a push whose quarantine relied on one.
func TestMovesOntoCollectedObjectsAreRefused(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	ctx := context.Background()
	base := f.codeCommit(t, "base", objects.ZeroHash)
	f.move(t, "refs/heads/main", objects.ZeroHash, base)
	gone := f.codeCommit(t, "gone", objects.ZeroHash)
	// A push begins: its commit names gone as parent (in the repo now).
	q := f.objs.NewQuarantine(repo)
	defer q.Close()
	tree := f.put(t, plumbing.TreeObject, "")
	child, err := q.Put(plumbing.CommitObject, []byte(commitText(tree, gone, "child")))
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Check(ctx, []objects.Hash{child}); err != nil {
		t.Fatalf("connectivity before the sweep: %v", err)
	}
	res, err := f.collector(2*time.Hour).Run(ctx, expiring())
	if err != nil || res.Objects == 0 || has(t, f.objs, gone) {
		t.Fatalf("collection: %+v %v", res, err)
	}
	err = f.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/feature", New: child}}, q, "push")
	if !errors.Is(err, objects.ErrCollected) {
		t.Fatalf("push relying on a collected parent: %v", err)
	}
	err = f.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/other", New: gone}}, nil, "move")
	if !errors.Is(err, objects.ErrNotFound) {
		t.Fatalf("ref moved onto a collected commit: %v", err)
	}
	if l, _ := f.refs.List(ctx, repo, "refs/heads/"); len(l) != 1 {
		t.Fatalf("refs moved: %v", l)
	}
}

// crashDB counts synced commits once armed and, at the k-th, keeps a
// crash clone of the database as it was just before it and fails it.
type crashDB struct {
	*memkv.DB
	armed atomic.Bool
	n, k  int
	mu    sync.Mutex
	clone *memkv.DB
	rng   *rand.Rand
}

var errCrash = errors.New("crash")

func (d *crashDB) hit() error {
	if !d.armed.Load() {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if d.n == d.k {
		d.clone = d.DB.CrashClone(d.rng)
	}
	if d.n >= d.k {
		return errCrash
	}
	return nil
}

func (d *crashDB) Set(key, value []byte, dur kv.Durability) error {
	if err := d.hit(); err != nil {
		return err
	}
	return d.DB.Set(key, value, dur)
}

func (d *crashDB) Delete(key []byte, dur kv.Durability) error {
	if err := d.hit(); err != nil {
		return err
	}
	return d.DB.Delete(key, dur)
}

func (d *crashDB) NewBatch() kv.Batch { return &crashBatch{Batch: d.DB.NewBatch(), d: d} }

type crashBatch struct {
	kv.Batch
	d *crashDB
}

func (b *crashBatch) Commit(dur kv.Durability) error {
	if err := b.d.hit(); err != nil {
		return err
	}
	return b.Batch.Commit(dur)
}

// A crash at any write of a collection leaves every ref's objects
// readable and every table of every data ref readable.
func TestCrashMidCollection(t *testing.T) {
	ctx := context.Background()
	for k := 1; ; k++ {
		db := &crashDB{DB: memkv.New(), k: k, rng: rand.New(rand.NewPCG(uint64(k), 1))}
		f := newFixture(t, db, t.TempDir())
		w := f.build(t)
		db.armed.Store(true)
		_, err := f.collector(2*time.Hour).Run(ctx, expiring())
		if db.clone == nil {
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("a collection makes %d writes; a crash at each was survived", k-1)
			if k < 4 {
				t.Fatalf("only %d writes: the test crashed nothing", k-1)
			}
			return
		}
		// The process died at write k: open what the disk holds.
		after := newFixture(t, db.clone, f.dir)
		after.wh = f.wh
		closure(t, after.objs, after.refs)
		if got := after.ids(t, after.head(t, "main")); !slices.Equal(got, seq(0, 15)) {
			t.Fatalf("crash at write %d: main reads %v", k, got)
		}
		if got := after.ids(t, w.data1); !slices.Equal(got, seq(0, 10)) {
			t.Fatalf("crash at write %d: d1 reads %v", k, got)
		}
		if l, _ := after.refs.List(ctx, repo, refs.RunsPrefix+"r-0bad/"); len(l) == 3 {
			if got := after.ids(t, w.runData); !slices.Equal(got, seq(100, 7)) {
				t.Fatalf("crash at write %d: the run is still kept but its data reads %v", k, got)
			}
		}
		// The collection, run again, finishes the job.
		res, err := after.collector(2*time.Hour).Run(ctx, expiring())
		if err != nil || len(res.Errors) > 0 {
			t.Fatalf("collection after the crash at write %d: %v %v", k, err, res.Errors)
		}
		closure(t, after.objs, after.refs)
		if has(t, after.objs, w.runData) || has(t, after.objs, w.garbage) {
			t.Fatalf("after the crash at write %d and a new collection, garbage remains", k)
		}
	}
}

// Pushes, catalog writes and garbage race collections: every push and
// write that was acknowledged is readable afterwards, with everything it
// reaches; a push that lost a race was refused, never half-kept.
func TestPushRacesCollection(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	ctx := context.Background()
	base := f.codeCommit(t, "base", objects.ZeroHash)
	f.move(t, "refs/heads/main", objects.ZeroHash, base)
	stop := make(chan struct{})
	var wg, writers sync.WaitGroup
	var pushed, refused, collections atomic.Int64
	// Pushers: each pushes commits onto its own branch through a
	// quarantine; every other push names a commit that only a deleted
	// branch reached (an object in the repo that a collection may take).
	for p := range 3 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			branch := refs.Name(fmt.Sprintf("refs/heads/p%d", p))
			head := objects.ZeroHash
			for i := range 40 {
				parent := head
				if i%2 == 1 {
					// A commit reachable only through a deleted ref.
					// pushed to a branch, which is then deleted.
					oq := f.objs.NewQuarantine(repo)
					ob, _ := oq.Put(plumbing.BlobObject, []byte(fmt.Sprintf("orphan %d %d", p, i)))
					ot, _ := oq.Put(plumbing.TreeObject, []byte("100644 o\x00"+string(ob[:])))
					orphan, _ := oq.Put(plumbing.CommitObject, []byte(commitText(ot, objects.ZeroHash, "orphan")))
					tmp := refs.Name(fmt.Sprintf("refs/heads/tmp%d", p))
					if err := f.refs.Update(ctx, repo, []refs.Update{{Name: tmp, New: orphan}}, oq, "tmp"); err == nil {
						_ = f.refs.Update(ctx, repo, []refs.Update{{Name: tmp, Old: orphan}}, nil, "tmp")
					}
					oq.Close()
					parent = orphan
				}
				q := f.objs.NewQuarantine(repo)
				blob, _ := q.Put(plumbing.BlobObject, []byte(fmt.Sprintf("file %d %d", p, i)))
				tree, _ := q.Put(plumbing.TreeObject, []byte("100644 f\x00"+string(blob[:])))
				c, _ := q.Put(plumbing.CommitObject, []byte(commitText(tree, parent, fmt.Sprintf("push %d %d", p, i))))
				err := q.Check(ctx, []objects.Hash{c})
				if err == nil {
					err = f.refs.Update(ctx, repo, []refs.Update{{Name: branch, Old: head, New: c}}, q, "push")
				}
				q.Close()
				switch {
				case err == nil:
					head = c
					pushed.Add(1)
				case errors.Is(err, objects.ErrCollected), strings.Contains(err.Error(), "missing"):
					refused.Add(1)
				default:
					t.Errorf("push %d/%d: %v", p, i, err)
					return
				}
			}
		}()
	}
	// A catalog writer: Put then move a ref, as a REST commit does.
	writers.Add(1)
	go func() {
		defer writers.Done()
		head := objects.ZeroHash
		for i := range 100 {
			c := f.codeCommit(t, fmt.Sprintf("rest %d", i), head)
			if err := f.refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/rest", Old: head, New: c}}, nil, "rest"); err != nil {
				t.Errorf("catalog-style write %d: %v", i, err)
				return
			}
			head = c
		}
	}()
	// Collections, back to back, with no grace for old objects (the
	// writers' own objects are recent or touched) and reflogs expiring
	// at once.
	wg.Add(1)
	go func() {
		defer wg.Done()
		opts := Options{Grace: 0, KeepFailedRuns: Forever, KeepRuns: Forever, ReflogExpiry: 0}
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := f.collector(0).Run(ctx, opts)
			if err != nil || len(res.Errors) > 0 {
				t.Errorf("collection: %v %v", err, res.Errors)
				return
			}
			collections.Add(1)
		}
	}()
	writers.Wait()
	for collections.Load() < 3 && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d pushes landed, %d refused, %d collections, %d sweeps deleted objects", pushed.Load(), refused.Load(), collections.Load(), f.objs.Sweeps())
	closure(t, f.objs, f.refs)
	if f.objs.Sweeps() == 0 {
		t.Error("no collection deleted anything: the race was not exercised")
	}
}

// TestPeriodicDefers: while Defer gives a reason, the periodic collection
// frees nothing (a long run's files stay); once it does not, the next
// tick collects.
func TestPeriodicDefers(t *testing.T) {
	f := newFixture(t, memkv.New(), t.TempDir())
	w := f.build(t)
	var mu sync.Mutex
	why := "run r-1 of demo has been running for 40m"
	results := make(chan Result, 16)
	p := &Periodic{
		Collector: f.collector(2 * time.Hour),
		Options:   expiring(),
		Every:     20 * time.Millisecond,
		Defer: func() string {
			mu.Lock()
			defer mu.Unlock()
			return why
		},
		OnResult: func(r Result, err error) {
			if err != nil {
				t.Error(err)
			}
			results <- r
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	time.Sleep(200 * time.Millisecond) // some ten ticks, all deferred
	if _, _, n := p.Last(); n != 0 || !has(t, f.objs, w.garbage) || len(f.files(t)) != len(w.filesBefore) {
		t.Fatalf("a deferred collection ran (%d) or freed something", n)
	}
	mu.Lock()
	why = ""
	mu.Unlock()
	select {
	case r := <-results:
		if r.Objects == 0 || r.Files == 0 {
			t.Errorf("the collection after the deferral freed %+v", r)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no collection once Defer said nothing")
	}
	cancel()
	<-done
	if has(t, f.objs, w.garbage) {
		t.Error("garbage survived the collection")
	}
}
