package catalog

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/weir-dev/weir/hooks/node"
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

// BenchmarkParquetFieldIDs is the cost of giving a file the table's
// field ids (a new footer, the pages copied), of checking a file that has
// them (a node's output), and of copying the file, for a file of 1M rows
// (id, name, amount):
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
	// A file that already carries the ids (a node's output): only its
	// footer is read.
	withIDs, err := parquetWithFieldIDs(context.Background(), src, filepath.Join(dir, "has-ids.parquet"), sc)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("has_ids", func(b *testing.B) {
		b.SetBytes(st.Size())
		for b.Loop() {
			out, err := parquetWithFieldIDs(context.Background(), withIDs, filepath.Join(dir, "unused.parquet"), sc)
			if err != nil || out != withIDs {
				b.Fatalf("%s, %v: want the file as it is", out, err)
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

// TestNodeOutputGoesInAsIs: a SQL model's output (weir-node's COPY, with
// FIELD_IDS) already carries the ids a new table gives its columns, nested
// ones too, so it goes into the table as it is (the same file, hard
// linked: no copy); a file with wrong ids is still given the table's.
func TestNodeOutputGoesInAsIs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	cols := `SELECT i::INTEGER AS a, 'n' || i AS "We ird", ` +
		`{'x': i, 'y': [i, i], 'z': {'q': 'v'}, 'p, "(q)': 1} AS s, ['p', 'q'] AS l, ` +
		`MAP {'k': {'v': i}} AS m, (i / 3)::DECIMAL(18,2) AS d, ` +
		`TIMESTAMPTZ '2024-01-02 03:04:05+00' AS ts, i::BIGINT AS "id"` +
		` FROM range(5) t(i)`
	want := map[string]string{ // Parquet path -> Iceberg field name
		"a": "a", "We ird": "We ird", "s": "s", "s.x": "s.x", "s.y": "s.y", "s.y.list.element": "s.y.element",
		"s.z": "s.z", "s.z.q": "s.z.q", "l": "l", "l.list.element": "l.element",
		"m": "m", "m.key_value.key": "m.key", "m.key_value.value": "m.value", "m.key_value.value.v": "m.value.v",
		`s.p, "(q)`: `s.p, "(q)`, "d": "d", "ts": "ts", "id": "id",
	}
	prev := objects.ZeroHash
	for _, tc := range []struct {
		name  string
		query string
		ids   string // FIELD_IDS to write the node's rows again with, by hand
		asIs  bool
	}{
		{"node", cols, "", true},
		// Wrong ids on the columns, none on nested fields.
		{"wrong_ids", cols, `{a: 10, "We ird": 9, s: 8, l: 7, m: 6, d: 5, ts: 4, id: 3}`, false},
		// A fixed-size array: COPY gives its element no id, so the node
		// gives none, and the server does.
		{"array", `SELECT *, [a, a]::INTEGER[2] AS arr FROM (` + cols + `)`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(f.dir, tc.name)
			d := node.Dirs{In: filepath.Join(root, "in"), Out: filepath.Join(root, "out"), Tmp: filepath.Join(root, "tmp")}
			for _, p := range []string{d.In, d.Out, d.Tmp} {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			src := filepath.Join(d.In, "model.sql")
			if err := os.WriteFile(src, []byte(tc.query), 0o644); err != nil {
				t.Fatal(err)
			}
			if n, err := node.SQL(ctx, &node.Job{Dirs: d, Source: src, Namespace: "main", Outputs: []string{"main.t"}}); err != nil || n != 5 {
				t.Fatalf("node: %d rows, %v", n, err)
			}
			out := d.OutputFile("main.t")
			if ids := parquetFieldIDs(t, out); tc.asIs && (ids["a"] == -1 || ids["s.z.q"] == -1) {
				t.Fatalf("the node's file has no field ids: %v", ids)
			}
			if tc.ids != "" {
				db, err := sql.Open("duckdb", "")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				by := filepath.Join(root, "by-hand.parquet")
				if _, err := db.Exec(fmt.Sprintf("COPY (FROM '%s') TO '%s' (FORMAT parquet, FIELD_IDS %s)", out, by, tc.ids)); err != nil {
					t.Fatal(err)
				}
				if ids := parquetFieldIDs(t, by); ids["a"] != 10 {
					t.Fatalf("the file by hand has ids %v", ids)
				}
				out = by
			}
			tn := TableName{Namespace: "main", Name: "node"}
			if tc.name == "array" {
				tn.Name = "arr" // a table of its own: another schema
			}
			c, err := f.cat.WriteDataCommit(ctx, f.repo, prev, []TableWrite{{Table: tn, Files: []string{out}, Mode: ModeAppend}}, CommitInfo{})
			if err != nil {
				t.Fatal(err)
			}
			prev = c
			st, err := f.cat.state(ctx, f.repo, c)
			if err != nil {
				t.Fatal(err)
			}
			tbl, _, err := f.cat.loadTable(ctx, f.repo, tn, st.tables[tn], nil)
			if err != nil {
				t.Fatal(err)
			}
			files, err := f.cat.ReadTableFiles(ctx, f.repo, c, tn)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(out)
			if err != nil {
				t.Fatal(err)
			}
			same := false
			for _, tf := range files {
				if ti, err := os.Stat(tf); err == nil && os.SameFile(fi, ti) {
					same = true
				}
			}
			if same != tc.asIs {
				t.Errorf("the table's file is the node's own (hard link, no copy): %v, want %v (table files %v)", same, tc.asIs, files)
			}
			for _, tf := range files {
				got := parquetFieldIDs(t, tf)
				for path, name := range want {
					nf, ok := tbl.Schema().FindFieldByName(name)
					if !ok {
						t.Fatalf("table schema has no %s: %s", name, tbl.Schema())
					}
					if got[path] != int32(nf.ID) {
						t.Errorf("%s: Parquet field %s has field_id %d, the table's %s has id %d (all: %v)", filepath.Base(tf), path, got[path], name, nf.ID, got)
					}
				}
			}
			at, err := tbl.Scan().ToArrowTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer at.Release()
			if at.NumRows() != int64(5*len(files)) {
				t.Fatalf("scan: %d rows, want %d", at.NumRows(), 5*len(files))
			}
		})
	}
}
