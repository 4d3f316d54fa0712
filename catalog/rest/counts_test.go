package rest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"

	"github.com/weir-dev/weir/catalog"
)

// minimalAppend is what a minimal Iceberg client does to append the
// Parquet file src to table ns.tbl on main: it copies the file under the
// table's location, writes one manifest and a manifest list naming it
// (with iceberg-go's Avro writers, as any client library would), and
// commits with one plain HTTP POST whose snapshot summary is the JSON
// text summary. It returns the status and body of the commit.
func minimalAppend(t *testing.T, s *server, ns, tbl, src string, rows int64, snapID int64, summary string) (int, map[string]any) {
	t.Helper()
	code, body := do(t, s, "GET", prefix+"/namespaces/"+ns+"/tables/"+tbl, "")
	if code != 200 {
		t.Fatalf("load %s.%s = %d %v", ns, tbl, code, body)
	}
	meta := body["metadata"].(map[string]any)
	loc := meta["location"].(string)
	dir := strings.TrimPrefix(loc, "file://")
	var parent *int64
	var parentJSON = "null"
	var seq int64 = 1
	var inherited []iceberg.ManifestFile
	if cur, ok := meta["current-snapshot-id"].(float64); ok && cur > 0 {
		id := int64(cur)
		parent, parentJSON = &id, fmt.Sprint(id)
		seq = int64(meta["last-sequence-number"].(float64)) + 1
		for _, sn := range meta["snapshots"].([]any) {
			sm := sn.(map[string]any)
			if int64(sm["snapshot-id"].(float64)) != id {
				continue
			}
			f, err := os.Open(strings.TrimPrefix(sm["manifest-list"].(string), "file://"))
			if err != nil {
				t.Fatal(err)
			}
			if inherited, err = iceberg.ReadManifestList(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}

	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dataLoc := fmt.Sprintf("%s/data/minimal-%d.parquet", loc, snapID)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimPrefix(dataLoc, "file://"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	df, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, dataLoc, iceberg.ParquetFile, nil, nil, nil, rows, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var mbuf bytes.Buffer
	manLoc := fmt.Sprintf("%s/metadata/minimal-%d-m0.avro", loc, snapID)
	mf, err := iceberg.WriteManifest(manLoc, &mbuf, 2, *iceberg.UnpartitionedSpec, icebergSchema, snapID,
		[]iceberg.ManifestEntry{iceberg.NewManifestEntry(iceberg.EntryStatusADDED, &snapID, nil, nil, df.Build())})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimPrefix(manLoc, "file://"), mbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var lbuf bytes.Buffer
	if err := iceberg.WriteManifestList(2, &lbuf, snapID, parent, &seq, 0, append([]iceberg.ManifestFile{mf}, inherited...)); err != nil {
		t.Fatal(err)
	}
	listLoc := fmt.Sprintf("%s/metadata/snap-%d-minimal.avro", loc, snapID)
	if err := os.WriteFile(strings.TrimPrefix(listLoc, "file://"), lbuf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	parentField := ""
	if parent != nil {
		parentField = fmt.Sprintf(`"parent-snapshot-id":%d,`, *parent)
	}
	commit := fmt.Sprintf(`{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":%s}],"updates":[
		{"action":"add-snapshot","snapshot":{"snapshot-id":%d,%s"sequence-number":%d,"timestamp-ms":%d,"manifest-list":%q,"summary":%s,"schema-id":0}},
		{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":%d}]}`,
		parentJSON, snapID, parentField, seq, time.Now().UnixMilli(), listLoc, summary, snapID)
	return do(t, s, "POST", prefix+"/namespaces/"+ns+"/tables/"+tbl, commit)
}

// TestCountsFromManifests: a REST commit whose snapshot summary has only
// "operation" gets a pointer with the true rows, files and bytes and a
// data commit saying "append 3 rows"; one whose summary lies (5 rows for
// 3) is corrected: pointer, message and the summary readers see all say
// what the manifests hold.
func TestCountsFromManifests(t *testing.T) {
	ctx := context.Background()
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	src := writeParquetWithIDs(t, 0, 3)
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}

	check := func(step string, rows, files int64, wantMsg string, summary map[string]string) {
		t.Helper()
		head := s.head(t, "main")
		tabs, err := s.cat.Tables(ctx, repo, head)
		if err != nil {
			t.Fatal(err)
		}
		p := tabs[catalog.TableName{Namespace: "sales", Name: "orders"}]
		if p.Rows != rows || p.Files != files || p.Bytes != files*fi.Size() {
			t.Errorf("%s: pointer rows %d files %d bytes %d, want %d %d %d", step, p.Rows, p.Files, p.Bytes, rows, files, files*fi.Size())
		}
		obj, err := s.objs.Get(ctx, repo, head)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(obj.Data), "\nTable-Changes: "+wantMsg+"\n") {
			t.Errorf("%s: data commit message does not say %q:\n%s", step, wantMsg, obj.Data)
		}
		code, body := do(t, s, "GET", prefix+"/namespaces/sales/tables/orders", "")
		if code != 200 {
			t.Fatalf("%s: load = %d", step, code)
		}
		meta := body["metadata"].(map[string]any)
		cur := meta["current-snapshot-id"].(float64)
		for _, sn := range meta["snapshots"].([]any) {
			sm := sn.(map[string]any)
			if sm["snapshot-id"].(float64) != cur {
				continue
			}
			got := sm["summary"].(map[string]any)
			for k, v := range summary {
				if got[k] != v {
					t.Errorf("%s: summary %s = %v, want %s (summary %v)", step, k, got[k], v, got)
				}
			}
		}
	}

	if code, body := minimalAppend(t, s, "sales", "orders", src, 3, 101, `{"operation":"append"}`); code != 200 {
		t.Fatalf("minimal append = %d %v", code, body)
	}
	check("summary with only operation", 3, 1, "append 3 rows to sales.orders",
		map[string]string{"operation": "append", "total-records": "3", "total-data-files": "1", "added-records": "3", "total-files-size": fmt.Sprint(fi.Size())})

	if code, body := minimalAppend(t, s, "sales", "orders", src, 3, 102,
		`{"operation":"append","added-records":"5","total-records":"5","total-data-files":"9","added-data-files":"2"}`); code != 200 {
		t.Fatalf("lying append = %d %v", code, body)
	}
	check("summary that lies", 6, 2, "append 3 rows to sales.orders",
		map[string]string{"operation": "append", "total-records": "6", "total-data-files": "2", "added-records": "3", "added-data-files": "1"})

	// iceberg-go's own client reads the corrected table: 6 rows.
	tbl, err := s.client(t, "main", nil).LoadTable(ctx, []string{"sales", "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := scanIDs(t, tbl); len(ids) != 6 {
		t.Fatalf("scan after the minimal appends: %v", ids)
	}
}

// writeParquetWithIDs writes n rows of (id, name) from id from, with the
// Iceberg field ids of icebergSchema in the Parquet schema, as an Iceberg
// writer does.
func writeParquetWithIDs(t *testing.T, from, n int) string {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true, Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"1"})},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true, Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"2"})},
	}, nil)
	at := arrowTable(from, n)
	defer at.Release()
	rec := array.NewTableFromSlice(sc, [][]arrow.Array{at.Column(0).Data().Chunks(), at.Column(1).Data().Chunks()})
	defer rec.Release()
	p := filepath.Join(t.TempDir(), "out.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := pqarrow.WriteTable(rec, f, 1024, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	return p
}
