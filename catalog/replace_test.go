package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/weir-dev/weir/objects"
)

func TestReplaceEdgeCases(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	orders := TableName{"sales", "orders"}
	c1, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 3)}}}, CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}

	// A replace with no files empties the table.
	c2, err := f.cat.WriteDataCommit(ctx, f.repo, c1, []TableWrite{{Table: orders}}, CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	tabs, _ := f.cat.Tables(ctx, f.repo, c2)
	files, _ := f.cat.ReadTableFiles(ctx, f.repo, c2, orders)
	if tabs[orders].Rows != 0 || len(files) != 0 {
		t.Fatalf("after empty replace: %+v, files %v", tabs[orders], files)
	}

	// A replace with a new schema starts a new table history in place.
	sc := arrow.NewSchema([]arrow.Field{{Name: "sku", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
	rec := b.NewRecordBatch()
	p := filepath.Join(f.dir, "sku.parquet")
	out, _ := os.Create(p)
	w, err := pqarrow.NewFileWriter(sc, out, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c3, err := f.cat.WriteDataCommit(ctx, f.repo, c2, []TableWrite{{Table: orders, Files: []string{p}}}, CommitInfo{})
	if err != nil {
		t.Fatal(err)
	}
	tabs, _ = f.cat.Tables(ctx, f.repo, c3)
	if tabs[orders].Schema != "sku:string" || tabs[orders].Rows != 2 {
		t.Fatalf("after schema change: %+v", tabs[orders])
	}
	// An append with the wrong schema is refused and names both schemas.
	_, err = f.cat.WriteDataCommit(ctx, f.repo, c3, []TableWrite{{Table: orders, Files: []string{f.parquetFile(t, 0, 1)}, Mode: ModeAppend}}, CommitInfo{})
	if !errors.Is(err, ErrBadWrite) {
		t.Fatalf("append with another schema: %v", err)
	}
}
