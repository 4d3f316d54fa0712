package catalog

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

type fixture struct {
	objs *objects.Store
	refs *refs.DB
	cat  *Catalog
	dir  string
	repo objects.RepoName
}

func newFixture(t *testing.T, wh Warehouse) *fixture {
	t.Helper()
	db, err := pebblekv.OpenFS("db", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	objs := objects.New(db, objects.Limits{})
	rs := refs.NewDB(objs)
	dir := t.TempDir()
	if wh == nil {
		lw, err := NewLocalWarehouse(filepath.Join(dir, "warehouse"))
		if err != nil {
			t.Fatal(err)
		}
		wh = lw
	}
	return &fixture{objs: objs, refs: rs, cat: New(objs, rs, wh), dir: dir, repo: "team/demo"}
}

// parquetFile writes n rows (id, name, amount) starting at id from.
func (f *fixture) parquetFile(t *testing.T, from, n int) string {
	t.Helper()
	return writeParquet(t, f.dir, from, n)
}

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "amount", Type: arrow.PrimitiveTypes.Float64},
}, nil)

func testRecord(from, n int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, testSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("name-%d", i))
		b.Field(2).(*array.Float64Builder).Append(float64(i) * 1.5)
	}
	return b.NewRecordBatch()
}

func writeParquet(t testing.TB, dir string, from, n int) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("out-%d-%d.parquet", from, n))
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(testSchema, out, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	rec := testRecord(from, n)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// parquetIDs reads the id column of Parquet files.
func parquetIDs(t *testing.T, paths []string) []int64 {
	t.Helper()
	var ids []int64
	for _, p := range paths {
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
		col := tbl.Column(0)
		for _, ch := range col.Data().Chunks() {
			ids = append(ids, ch.(*array.Int64).Int64Values()...)
		}
		tbl.Release()
		rdr.Close()
	}
	return ids
}

// commitMessage returns a commit's message.
func (f *fixture) commitMessage(t *testing.T, h objects.Hash) string {
	t.Helper()
	c, err := readCommit(context.Background(), repoObjects{f.objs, f.repo}, h)
	if err != nil {
		t.Fatal(err)
	}
	return c.Message
}

// setBranch points refs/data/<b> at h (creating it).
// setBranch moves refs/data/<b> from old to h as a successful run does:
// it publishes h's new pointers first.
func (f *fixture) setBranch(t *testing.T, b string, old, h objects.Hash) {
	t.Helper()
	if err := f.cat.Publish(context.Background(), f.repo, old, h); err != nil {
		t.Fatal(err)
	}
	if err := f.refs.Update(context.Background(), f.repo, []refs.Update{{Name: DataRef(b), Old: old, New: h}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) head(t *testing.T, b string) objects.Hash {
	t.Helper()
	h, err := f.refs.Resolve(context.Background(), f.repo, DataRef(b))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var _ = plumbing.ZeroHash

// pushReverted accepts a client-made data commit rev in q the way a push to
// refs/data/main is (VerifyPushedDataCommit, then the CAS from old) and
// returns the sorted ids of table's rows on main afterwards.
func (f *fixture) pushReverted(t *testing.T, q *objects.Quarantine, old, rev objects.Hash, table TableName) []int64 {
	t.Helper()
	ctx := context.Background()
	if err := f.cat.VerifyPushedDataCommit(ctx, q, rev); err != nil {
		t.Fatalf("revert refused: %v", err)
	}
	if err := f.refs.Update(ctx, f.repo, []refs.Update{{Name: DataRef("main"), Old: old, New: rev}}, q, "push"); err != nil {
		t.Fatal(err)
	}
	files, err := f.cat.ReadTableFiles(ctx, f.repo, f.head(t, "main"), table)
	if err != nil {
		t.Fatal(err)
	}
	ids := parquetIDs(t, files)
	slices.Sort(ids)
	return ids
}
