package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/weir-dev/weir/objects"
)

// nestedParquet writes rows (id, tags list<string>, addr struct<city>)
// with no field ids, as DuckDB's COPY does.
func nestedParquet(t *testing.T, dir string) string {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "addr", Type: arrow.StructOf(arrow.Field{Name: "city", Type: arrow.BinaryTypes.String, Nullable: true}), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range 3 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		lb := b.Field(1).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("t")
		sb := b.Field(2).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.StringBuilder).Append("c")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	p := filepath.Join(dir, "nested.parquet")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, out, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// storedSchemaParquet writes 3 rows (id, name, amount) with the Arrow
// schema stored in the footer (ARROW:schema): such a file is written
// again, not given a new footer.
func storedSchemaParquet(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "stored.parquet")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(testSchema, out, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	rec := testRecord(0, 3)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// parquetFieldIDs reads a Parquet file's schema back and returns each
// node's field_id by its dotted path.
func parquetFieldIDs(t *testing.T, p string) map[string]int32 {
	t.Helper()
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	out := map[string]int32{}
	var walk func(prefix string, n schema.Node)
	walk = func(prefix string, n schema.Node) {
		name := prefix + n.Name()
		out[name] = n.FieldID()
		if g, ok := n.(*schema.GroupNode); ok {
			for i := range g.NumFields() {
				walk(name+".", g.Field(i))
			}
		}
	}
	root := rdr.MetaData().Schema.Root()
	for i := range root.NumFields() {
		walk("", root.Field(i))
	}
	return out
}

// TestParquetCarriesFieldIDs: files a node writes without field ids go
// into the table with the table schema's ids on every column and nested
// field, read back with arrow-go's Parquet reader; the rows are intact.
func TestParquetCarriesFieldIDs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name   string
		file   string
		footer bool              // only the footer is rewritten (else the file is written again: it stores its Arrow schema)
		want   map[string]string // Parquet path -> Iceberg field name
	}{
		{"flat", f.parquetFile(t, 0, 3), true, map[string]string{"id": "id", "name": "name", "amount": "amount"}},
		{"stored_schema", storedSchemaParquet(t, f.dir), false, map[string]string{"id": "id", "name": "name", "amount": "amount"}},
		{"nested", nestedParquet(t, f.dir), true, map[string]string{"id": "id", "tags": "tags", "tags.list.element": "tags.element", "addr": "addr", "addr.city": "addr.city"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if ids := parquetFieldIDs(t, tc.file); ids["id"] != -1 {
				t.Fatalf("the node's file already has field ids: %v", ids)
			}
			tn := TableName{Namespace: "main", Name: tc.name}
			c, err := f.cat.WriteDataCommit(ctx, f.repo, objects.ZeroHash, []TableWrite{{Table: tn, Files: []string{tc.file}}}, CommitInfo{})
			if err != nil {
				t.Fatal(err)
			}
			files, err := f.cat.ReadTableFiles(ctx, f.repo, c, tn)
			if err != nil || len(files) != 1 {
				t.Fatalf("table files %v, %v", files, err)
			}
			st, err := f.cat.state(ctx, f.repo, c)
			if err != nil {
				t.Fatal(err)
			}
			tbl, _, err := f.cat.loadTable(ctx, f.repo, tn, st.tables[tn], nil)
			if err != nil {
				t.Fatal(err)
			}
			// Readers in sandboxes open it as another user.
			if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o644 {
				t.Fatalf("the table's file has mode %v (%v), want 0644 like the warehouse's files", fi.Mode(), err)
			}
			src, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			pages := len(src) - 8 - int(binary.LittleEndian.Uint32(src[len(src)-8:]))
			if tc.footer && !bytes.Equal(src[:pages], dst[:min(pages, len(dst))]) {
				t.Errorf("the data pages are not the node's, byte for byte: the file was written again, not given a new footer")
			}
			got := parquetFieldIDs(t, files[0])
			for path, name := range tc.want {
				nf, ok := tbl.Schema().FindFieldByName(name)
				if !ok {
					t.Fatalf("table schema has no %s: %s", name, tbl.Schema())
				}
				if got[path] != int32(nf.ID) {
					t.Errorf("Parquet field %s has field_id %d, the table's %s has id %d (all: %v)", path, got[path], name, nf.ID, got)
				}
			}
			if ids := parquetIDs(t, files[:1]); len(ids) != 3 {
				t.Fatalf("rows in the table's file: %v", ids)
			}
			// iceberg-go's own scan reads it (by field id).
			at, err := tbl.Scan().ToArrowTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Release()
			if at.NumRows() != 3 {
				t.Fatalf("scan: %d rows", at.NumRows())
			}
		})
	}
}

// BenchmarkParquetFieldIDs is the cost of giving a node's file the
// table's field ids (a new footer, the pages copied) against copying the
// file, for a file of 1M rows (id, name, amount):
// go test -run X -bench ParquetFieldIDs -benchtime 3x ./catalog/
func BenchmarkParquetFieldIDs(b *testing.B) {
	dir := b.TempDir()
	src := writeParquet(b, dir, 0, 1_000_000)
	sc, err := parquetSchema(src)
	if err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(src)
	b.Run("ids", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if _, err := parquetWithFieldIDs(context.Background(), src, filepath.Join(dir, "ids.parquet"), sc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			if err := copyFile(src, filepath.Join(dir, "copy.parquet")); err != nil {
				b.Fatal(err)
			}
		}
	})
}
