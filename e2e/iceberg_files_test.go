package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
)

// TestRESTMinimalClientCounts is issue 15's "a REST commit without
// summary totals produces a pointer with the true row count", against the
// built binary with C git reading the result: a client that writes its
// Parquet file, manifest and manifest list into the repo's folder of the
// warehouse and commits with a summary holding only "operation" gets a
// data commit saying "append 3 rows" and a pointer saying "rows 3";
// registering the same metadata file as a second table counts 3 rows
// too; an ETag'd load answers 304 (with the S3 endpoint off); /v1/config of a missing branch is a
// 404 naming it.
func TestRESTMinimalClientCounts(t *testing.T) {
	data := t.TempDir()
	s := startWeir(t, data)
	restRepo(t, s, "sales")
	p := s.HTTP + "/iceberg/v1/sales/main"
	code, loaded := restCall(t, "GET", p+"/namespaces/ns/tables/t", "")
	if code != 200 {
		t.Fatalf("load: %d %v", code, loaded)
	}
	loc := loaded["metadata"].(map[string]any)["location"].(string)

	// The client's Parquet file: 3 rows of id (field id 1).
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true,
		Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"1"})}}, nil)
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, 3)
	var pq bytes.Buffer
	w, err := pqarrow.NewFileWriter(sc, &pq, nil, pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	write := func(loc string, b []byte) {
		t.Helper()
		p := s.LocalPath(loc)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dataLoc := loc + "/data/client-1.parquet"
	write(dataLoc, pq.Bytes())
	df, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, dataLoc, iceberg.ParquetFile, nil, nil, nil, 3, int64(pq.Len()))
	if err != nil {
		t.Fatal(err)
	}
	const snap = int64(7001)
	snapID := snap
	schema := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64})
	var mbuf, lbuf bytes.Buffer
	manLoc := loc + "/metadata/client-1-m0.avro"
	mf, err := iceberg.WriteManifest(manLoc, &mbuf, 2, *iceberg.UnpartitionedSpec, schema, snap,
		[]iceberg.ManifestEntry{iceberg.NewManifestEntry(iceberg.EntryStatusADDED, &snapID, nil, nil, df.Build())})
	if err != nil {
		t.Fatal(err)
	}
	write(manLoc, mbuf.Bytes())
	seq := int64(1)
	if err := iceberg.WriteManifestList(2, &lbuf, snap, nil, &seq, 0, []iceberg.ManifestFile{mf}); err != nil {
		t.Fatal(err)
	}
	listLoc := loc + "/metadata/snap-7001-client.avro"
	write(listLoc, lbuf.Bytes())
	commit := fmt.Sprintf(`{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":null}],"updates":[
		{"action":"add-snapshot","snapshot":{"snapshot-id":%d,"sequence-number":1,"timestamp-ms":%d,"manifest-list":%q,"summary":{"operation":"append"},"schema-id":0}},
		{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":%d}]}`, snap, time.Now().UnixMilli(), listLoc, snap)
	code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t", commit)
	if code != 200 {
		t.Fatalf("minimal commit: %d %v", code, body)
	}
	committed := body["metadata-location"].(string)

	code, body = restCall(t, "POST", p+"/namespaces/ns/register", `{"name":"copy","metadata-location":"`+committed+`"}`)
	if code != 200 {
		t.Fatalf("register: %d %v", code, body)
	}

	// What a user sees with C git.
	clone := filepath.Join(t.TempDir(), "c")
	git(t, "", "clone", "-q", s.URL("sales"), clone)
	git(t, clone, "fetch", "-q", "origin", "refs/data/main:refs/data/main")
	log := git(t, clone, "log", "--format=%s", "refs/data/main")
	if !strings.Contains(log, "weir: append 3 rows to ns.t") || !strings.Contains(log, "weir: register table ns.copy from ns/t/metadata/") {
		t.Fatalf("git log refs/data/main:\n%s", log)
	}
	for _, tbl := range []string{"t", "copy"} {
		ptr := git(t, clone, "show", "refs/data/main:tables/ns/"+tbl)
		if !strings.Contains(ptr, "\nrows 3\nfiles 1\nbytes "+fmt.Sprint(pq.Len())+"\n") {
			t.Fatalf("pointer of ns.%s:\n%s", tbl, ptr)
		}
	}

	// The load's ETag, and a 304 for it. With the S3 endpoint on, every
	// load vends fresh credentials, so its tag is new each time and no
	// load is a 304: the check runs on the same data with the endpoint
	// off.
	s.Stop()
	s = startWeir(t, data, "--s3", "")
	p = s.HTTP + "/iceberg/v1/sales/main"
	req := func(inm string) (int, string) {
		t.Helper()
		r, err := http.NewRequest("GET", p+"/namespaces/ns/tables/t", nil)
		if err != nil {
			t.Fatal(err)
		}
		if inm != "" {
			r.Header.Set("If-None-Match", inm)
		}
		rsp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		return rsp.StatusCode, rsp.Header.Get("ETag")
	}
	code, tag := req("")
	if code != 200 || tag == "" {
		t.Fatalf("load: %d, ETag %q", code, tag)
	}
	if code, _ := req(tag); code != 304 {
		t.Fatalf("load with If-None-Match of its ETag: %d", code)
	}
	code, body = restCall(t, "GET", s.HTTP+"/iceberg/v1/config?warehouse=sales@nope", "")
	if typ, msg := restError(body); code != 404 || typ != "NotFoundException" || !strings.Contains(msg, `"nope"`) {
		t.Fatalf("config of a missing branch: %d %s %q", code, typ, msg)
	}
}
