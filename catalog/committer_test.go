package catalog

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// syncRecorder notes which warehouse files have been synced. Each sync
// takes delay first, so that a ref update that did not wait for a sync
// would certainly run before it ends.
type syncRecorder struct {
	delay time.Duration

	mu       sync.Mutex
	synced   map[string]bool
	atUpdate map[objects.Hash]map[string]bool // the synced set when a data ref moved to the key
}

func (r *syncRecorder) snapshot(h objects.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := make(map[string]bool, len(r.synced))
	for k := range r.synced {
		set[k] = true
	}
	if r.atUpdate == nil {
		r.atUpdate = map[objects.Hash]map[string]bool{}
	}
	r.atUpdate[h] = set
}

type recordingWarehouse struct {
	Warehouse
	rec *syncRecorder
}

func (w recordingWarehouse) Area(seg string) (Area, error) {
	a, err := w.Warehouse.Area(seg)
	if err != nil {
		return nil, err
	}
	return recordingArea{a, w.rec}, nil
}

type recordingArea struct {
	Area
	rec *syncRecorder
}

func (a recordingArea) SyncFile(ctx context.Context, loc string) error {
	time.Sleep(a.rec.delay)
	if err := a.Area.SyncFile(ctx, loc); err != nil {
		return err
	}
	a.rec.mu.Lock()
	defer a.rec.mu.Unlock()
	if a.rec.synced == nil {
		a.rec.synced = map[string]bool{}
	}
	a.rec.synced[loc] = true
	return nil
}

// spyRefs notes the synced warehouse files whenever a data ref moves, and
// calls before and after around each such update.
type spyRefs struct {
	refs.Store
	rec           *syncRecorder
	before, after func(u refs.Update)
}

func (s spyRefs) Update(ctx context.Context, repo objects.RepoName, updates []refs.Update, q refs.Quarantine, message string) error {
	var data []refs.Update
	for _, u := range updates {
		if strings.HasPrefix(string(u.Name), refs.DataPrefix) {
			data = append(data, u)
			s.rec.snapshot(u.New)
			if s.before != nil {
				s.before(u)
			}
		}
	}
	err := s.Store.Update(ctx, repo, updates, q, message)
	if err == nil && s.after != nil {
		for _, u := range data {
			s.after(u)
		}
	}
	return err
}

// batchFixture is a catalog on a crashable in-memory Pebble and a local
// warehouse whose syncs are recorded, with one table sales.orders holding
// 5 rows.
type batchFixture struct {
	fs    *vfs.MemFS
	objs  *objects.Store
	spy   *spyRefs
	rec   *syncRecorder
	wh    *LocalWarehouse
	cat   *Catalog
	ic    *IcebergCatalog
	ident table.Identifier
	repo  objects.RepoName
}

func newBatchFixture(t *testing.T) *batchFixture {
	t.Helper()
	ctx := context.Background()
	f := &batchFixture{fs: vfs.NewCrashableMem(), rec: &syncRecorder{delay: 20 * time.Millisecond}, repo: "team/demo", ident: table.Identifier{"sales", "orders"}}
	db, err := pebblekv.OpenFS("db", f.fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.objs = objects.New(db, objects.Limits{})
	f.spy = &spyRefs{Store: refs.NewDB(f.objs), rec: f.rec}
	if f.wh, err = NewLocalWarehouse(filepath.Join(t.TempDir(), "warehouse")); err != nil {
		t.Fatal(err)
	}
	f.cat = New(f.objs, f.spy, recordingWarehouse{f.wh, f.rec})
	if f.ic, err = f.cat.Iceberg(ctx, f.repo, "main", "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.ic.CreateNamespace(ctx, table.Identifier{"sales"}, nil); err != nil {
		t.Fatal(err)
	}
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 3, Name: "amount", Type: iceberg.PrimitiveTypes.Float64, Required: true},
	)
	// No client-side retries: what lands, the server landed.
	tbl, err := f.ic.CreateTable(ctx, f.ident, schema, icebergcat.WithProperties(iceberg.Properties{table.CommitNumRetriesKey: "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := appendRows(t, tbl, 0, 5); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *batchFixture) head(t *testing.T) objects.Hash {
	t.Helper()
	h, err := f.spy.Resolve(context.Background(), f.repo, DataRef("main"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// batchResults are the answers of the three writes of runBatch.
type batchResults struct {
	a, b     *table.Table // the two appends' tables as committed
	aErr     error
	bErr     error
	conflict error // the stale property update's
}

// runBatch queues three writes to main on the committer while it is held,
// so they are published as one batch, in this order: an append of 10 rows
// from the table as it is (s1), a property change that requires main to
// be at s1, and an append of 20 rows also made from s1. Applied in order,
// the first lands, the second's requirement fails (main is at the first
// append's snapshot by then) and the third is rebased onto the first.
func (f *batchFixture) runBatch(t *testing.T) batchResults {
	t.Helper()
	ctx := context.Background()
	base, err := f.ic.LoadTable(ctx, f.ident)
	if err != nil {
		t.Fatal(err)
	}
	s1 := base.Metadata().CurrentSnapshot().SnapshotID
	cm := f.cat.committerFor(f.repo, DataRef("main"))
	// The fixture's own append may have had its answer before its leader
	// let go: wait for it, then lead (writers queue and wait for the
	// leader started below).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		cm.mu.Lock()
		if !cm.leading {
			cm.leading = true
			cm.mu.Unlock()
			break
		}
		cm.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("a batch is still being published after 30s")
		}
	}
	queued := func(n int) {
		for {
			cm.mu.Lock()
			l := len(cm.queue)
			cm.mu.Unlock()
			if l >= n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	var r batchResults
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); r.a, r.aErr = appendRows(t, base, 100, 10) }()
	queued(1)
	go func() {
		defer wg.Done()
		_, _, r.conflict = f.ic.CommitTable(ctx, f.ident,
			[]table.Requirement{table.AssertRefSnapshotID("main", &s1)},
			[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{"owner": "x"})})
	}()
	queued(2)
	go func() { defer wg.Done(); r.b, r.bErr = appendRows(t, base, 200, 20) }()
	queued(3)
	go f.ic.lead(context.WithoutCancel(ctx), cm)
	wg.Wait()
	return r
}

// TestBatchOneConflictOthersLand: three writes published as one batch;
// the one whose requirement fails against the state the batch applies
// before it is refused (ErrCommitFailed, a 409 over REST) and changes
// nothing; the other two land in one data commit, the stale append
// rebased; and the data ref moved only once every file the server wrote
// for the batch (the table's metadata, the rebased manifest list) was
// synced.
func TestBatchOneConflictOthersLand(t *testing.T) {
	ctx := context.Background()
	f := newBatchFixture(t)
	before := f.head(t)
	rebases := f.cat.Rebases()
	r := f.runBatch(t)
	if r.aErr != nil || r.bErr != nil {
		t.Fatalf("appends: %v, %v; want both landed", r.aErr, r.bErr)
	}
	if !errors.Is(r.conflict, table.ErrCommitFailed) {
		t.Fatalf("stale property update: %v, want ErrCommitFailed", r.conflict)
	}
	if got := f.cat.Rebases() - rebases; got != 1 {
		t.Fatalf("%d rebases, want 1 (the second append)", got)
	}
	head := f.head(t)
	c, err := readCommit(ctx, repoObjects{f.objs, f.repo}, head)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ParentHashes) != 1 || objects.Hash(c.ParentHashes[0]) != before {
		t.Fatalf("data commit %s has parents %v, want the head before the batch %s: one commit for the batch", head, c.ParentHashes, before)
	}
	if !strings.HasPrefix(c.Message, "weir: 2 catalog commits") {
		t.Fatalf("data commit message %q, want the batch's two commits", c.Message)
	}
	fresh, err := f.ic.LoadTable(ctx, f.ident)
	if err != nil {
		t.Fatal(err)
	}
	checkLinear(t, fresh, 3, 35)
	if v, ok := fresh.Properties()["owner"]; ok {
		t.Fatalf("refused write set owner=%q", v)
	}
	// Each writer's answer is its own commit as published: the second
	// append's table is the batch's end state.
	if got := r.b.Metadata().CurrentSnapshot().SnapshotID; got != fresh.Metadata().CurrentSnapshot().SnapshotID {
		t.Fatalf("second append answered snapshot %d, table is at %d", got, fresh.Metadata().CurrentSnapshot().SnapshotID)
	}
	list := fresh.Metadata().CurrentSnapshot().ManifestList
	if !strings.Contains(list, "-rebased-") {
		t.Fatalf("current manifest list %s is not the server's rebased one", list)
	}
	synced := f.rec.atUpdate[head]
	for _, loc := range []string{fresh.MetadataLocation(), list} {
		if !synced[loc] {
			t.Errorf("data ref moved to %s before %s was synced", head, loc)
		}
	}
}

// TestCrashMidBatch crashes the database while a batch of writes is being
// published: just before its data ref update (its objects are written but
// not synced; nothing of the batch was acknowledged) and just after it
// (acknowledged). Reopened, the first crash shows the branch as it was
// before the batch, whole and readable, the second every write the batch
// acknowledged.
func TestCrashMidBatch(t *testing.T) {
	ctx := context.Background()
	f := newBatchFixture(t)
	rng := rand.New(rand.NewPCG(16, 7))
	var beforeFS, afterFS *vfs.MemFS
	f.spy.before = func(refs.Update) {
		beforeFS = f.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	}
	f.spy.after = func(refs.Update) {
		afterFS = f.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	}
	prior := f.head(t)
	r := f.runBatch(t)
	if r.aErr != nil || r.bErr != nil || !errors.Is(r.conflict, table.ErrCommitFailed) {
		t.Fatalf("batch: %v, %v, %v; want two landed and one refused", r.aErr, r.bErr, r.conflict)
	}
	published := f.head(t)
	for _, tc := range []struct {
		name string
		fs   *vfs.MemFS
		head objects.Hash
		rows int64
	}{
		{"before the ref update", beforeFS, prior, 5},
		{"after the ref update", afterFS, published, 35},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fs == nil {
				t.Fatal("no crash taken: the batch's data ref update never ran")
			}
			db, err := pebblekv.OpenFS("db", tc.fs, nil)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer db.Close()
			objs := objects.New(db, objects.Limits{})
			rs := refs.NewDB(objs)
			h, err := rs.Resolve(ctx, f.repo, DataRef("main"))
			if err != nil {
				t.Fatal(err)
			}
			if h != tc.head {
				t.Fatalf("after the crash refs/data/main is %s, want %s", h, tc.head)
			}
			ic, err := New(objs, rs, f.wh).Iceberg(ctx, f.repo, "main", "test")
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := ic.LoadTable(ctx, f.ident)
			if err != nil {
				t.Fatal(err)
			}
			if got := rowCount(t, tbl); got != tc.rows {
				t.Fatalf("after the crash the table has %d rows, want %d", got, tc.rows)
			}
		})
	}
}
