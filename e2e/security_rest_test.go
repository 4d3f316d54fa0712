package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/rest" // registers the "rest" catalog type
	"github.com/apache/iceberg-go/table"
)

// Invariant 9 (confinement of the server), end to end: the Iceberg REST
// catalog of a running weir serve, driven by a client with write access to
// one repo, can make the server neither write a file outside that repo's
// part of the warehouse nor publish a commit that names one; and `weir
// query` shows table names and repo-relative locations, never the
// server's own paths.

const restSchema = `{"type":"struct","schema-id":0,"fields":[{"id":1,"name":"id","type":"long","required":false}]}`

// restCall sends one JSON request to the REST catalog and decodes the
// answer (nil for an empty body).
func restCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	data, _ := io.ReadAll(rsp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, url, rsp.StatusCode, data)
		}
	}
	return rsp.StatusCode, out
}

// restError returns the type and message of an Iceberg REST error body.
func restError(body map[string]any) (typ, msg string) {
	e, _ := body["error"].(map[string]any)
	typ, _ = e["type"].(string)
	msg, _ = e["message"].(string)
	return typ, msg
}

// restRepo creates repo with one code commit on main, namespace ns and an
// empty table ns.t, through git and the REST catalog.
func restRepo(t *testing.T, s *weirServer, repo string) {
	t.Helper()
	dir := newWorkRepo(t, 1)
	git(t, dir, "push", "-q", s.URL(repo), "main")
	p := s.HTTP + "/iceberg/v1/" + repo + "/main"
	if code, body := restCall(t, "POST", p+"/namespaces", `{"namespace":["ns"]}`); code != 200 {
		t.Fatalf("%s: create namespace: %d %v", repo, code, body)
	}
	if code, body := restCall(t, "POST", p+"/namespaces/ns/tables", `{"name":"t","schema":`+restSchema+`}`); code != 200 {
		t.Fatalf("%s: create table: %d %v", repo, code, body)
	}
}

// fileList lists every file and folder under dir (relative, sorted).
func fileList(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// dotdots returns the path from the folder from to the path to as
// '/'-separated segments whose ".." are each written as enc ("%2e%2e",
// ".%2e", ...), the form a client uses to slip past a check for "..".
func dotdots(t *testing.T, from, to, enc string) string {
	t.Helper()
	rel, err := filepath.Rel(from, to)
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(filepath.ToSlash(rel), "/")
	for i, s := range segs {
		if s == ".." {
			segs[i] = enc
		}
	}
	return strings.Join(segs, "/")
}

// TestRESTLocationsConfined sends the hostile locations of issue 9 (hole
// 1) to the REST catalog as a client that may write the repo "sales":
// every one is refused with 400 BadRequestException, the data ref does
// not move, no file appears outside sales' own folder of the warehouse
// (a sentinel folder elsewhere stays empty, the repos "other" and
// "sales2" are untouched), and the table stays readable.
func TestRESTLocationsConfined(t *testing.T) {
	data := t.TempDir()
	s := startWeir(t, data)
	for _, r := range []string{"sales", "sales2", "other"} {
		restRepo(t, s, r)
	}
	wh, err := filepath.EvalSymlinks(filepath.Join(data, "warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	sentinel := filepath.Join(t.TempDir(), "sentinel")
	if err := os.Mkdir(sentinel, 0o755); err != nil {
		t.Fatal(err)
	}
	sales := "file://" + wh + "/sales"
	otherMeta := fileList(t, filepath.Join(wh, "other", "ns", "t", "metadata"))
	if len(otherMeta) < 2 {
		t.Fatalf("repo other has no metadata file: %v", otherMeta)
	}
	otherFile := "ns/t/metadata/" + otherMeta[len(otherMeta)-1]
	toSentinel := func(enc string) string {
		return sales + "/" + dotdots(t, filepath.Join(wh, "sales"), filepath.Join(sentinel, "x"), enc)
	}
	toShadow := sales + "/" + dotdots(t, filepath.Join(wh, "sales"), "/etc/shadow", "%2e%2e")

	before := map[string][]string{"other": fileList(t, filepath.Join(wh, "other")), "sales2": fileList(t, filepath.Join(wh, "sales2"))}
	whTop := fileList(t, wh)
	p := s.HTTP + "/iceberg/v1/sales/main"
	code, loaded := restCall(t, "GET", p+"/namespaces/ns/tables/t", "")
	if code != 200 {
		t.Fatalf("load sales ns.t: %d %v", code, loaded)
	}
	metaLoc := loaded["metadata-location"]
	uuid, _ := loaded["metadata"].(map[string]any)["table-uuid"].(string)
	ref := lsRemote(t, s.URL("sales"))["refs/data/main"]
	if ref == "" {
		t.Fatal("sales has no refs/data/main")
	}

	hostile := []struct{ name, loc string }{
		{"percent-encoded dot-dot", toSentinel("%2e%2e")},
		{"upper-case percent-encoded dot-dot", toSentinel("%2E%2E")},
		{"half-encoded dot-dot", toSentinel(".%2e")},
		{"double-encoded dot-dot", toSentinel("%252e%252e")},
		{"encoded slash and dot-dot", sales + "/ns%2f" + strings.ReplaceAll(dotdots(t, filepath.Join(wh, "sales", "ns"), filepath.Join(sentinel, "x"), "%2e%2e"), "/", "%2f")},
		{"encoded slash", sales + "/ns%2ft9"},
		{"another repo", "file://" + wh + "/other/ns/t9"},
		{"a repo whose name extends this one", "file://" + wh + "/sales2/ns/t9"},
		{"host in file URL", "file://evil" + wh + "/sales/ns/t9"},
		{"no authority", "file:" + wh + "/sales/ns/t9"},
		{"upper-case scheme", "FILE://" + wh + "/sales/ns/t9"},
		{"bare path", wh + "/sales/ns/t9"},
		{"other bucket", "s3://other-bucket/sales/ns/t9"},
		{"s3a", "s3a://" + wh + "/sales/ns/t9"},
		{"query string", sales + "/ns/t9?x=../../y"},
		{"fragment", sales + "/ns/t9#/../../y"},
		{"NUL", sales + "/ns/t9\x00/x"},
		{"backslash", sales + `/ns\..\..\t9`},
		{"dot segment", sales + "/ns/./t9"},
		{"empty segment", sales + "/ns//t9"},
		{"the repo folder itself", sales},
	}
	refused := func(t *testing.T, what string, code int, body map[string]any) {
		t.Helper()
		typ, msg := restError(body)
		if code != 400 || typ != "BadRequestException" || !strings.Contains(msg, "location") {
			t.Errorf("%s: got %d %s %q, want 400 BadRequestException naming the location", what, code, typ, msg)
		}
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	for _, h := range hostile {
		t.Run("create/"+h.name, func(t *testing.T) {
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables", `{"name":"t9","location":`+q(h.loc)+`,"schema":`+restSchema+`}`)
			refused(t, "create table", code, body)
		})
		t.Run("stage-create/"+h.name, func(t *testing.T) {
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables", `{"name":"t9","location":`+q(h.loc)+`,"schema":`+restSchema+`,"stage-create":true}`)
			refused(t, "stage-create", code, body)
		})
		t.Run("set-location/"+h.name, func(t *testing.T) {
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t", `{"requirements":[{"type":"assert-table-uuid","uuid":"`+uuid+`"}],"updates":[{"action":"set-location","location":`+q(h.loc)+`}]}`)
			refused(t, "set-location", code, body)
		})
	}
	t.Run("assert-create with a hostile location", func(t *testing.T) {
		code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t8", `{"requirements":[{"type":"assert-create"}],"updates":[
			{"action":"assign-uuid","uuid":"00000000-0000-4000-8000-000000000008"},
			{"action":"upgrade-format-version","format-version":2},
			{"action":"add-schema","schema":`+restSchema+`},
			{"action":"set-current-schema","schema-id":-1},
			{"action":"add-spec","spec":{"spec-id":0,"fields":[]}},
			{"action":"set-default-spec","spec-id":-1},
			{"action":"add-sort-order","sort-order":{"order-id":0,"fields":[]}},
			{"action":"set-default-sort-order","sort-order-id":-1},
			{"action":"set-location","location":`+q(toSentinel("%2e%2e"))+`}]}`)
		refused(t, "assert-create commit", code, body)
	})

	lists := []struct{ name, loc string }{
		{"/etc/shadow", "file:///etc/shadow"},
		{"/etc/shadow through encoded dot-dots", toShadow},
		{"another repo's file through an encoded dot-dot", sales + "/%2e%2e/other/" + otherFile},
		{"another repo's file", "file://" + wh + "/other/" + otherFile},
		{"a repo whose name extends this one", "file://" + wh + "/sales2/" + otherFile},
	}
	for i, l := range lists {
		t.Run("add-snapshot/"+l.name, func(t *testing.T) {
			id := 100 + i
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t", fmt.Sprintf(`{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":null}],"updates":[
				{"action":"add-snapshot","snapshot":{"snapshot-id":%d,"timestamp-ms":4000000000000,"manifest-list":%s,"summary":{"operation":"append"},"sequence-number":1,"schema-id":0}},
				{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":%d}]}`, id, q(l.loc), id))
			refused(t, "add-snapshot", code, body)
		})
	}

	// Table properties that steer where writers put files.
	for _, prop := range []string{"write.metadata.path", "write.data.path"} {
		t.Run("set-properties/"+prop, func(t *testing.T) {
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"`+prop+`":`+q(toSentinel("%2e%2e"))+`}}]}`)
			refused(t, "set-properties "+prop, code, body)
		})
	}

	// Manifest lists written into sales' own folder (as any client on
	// this machine can) that name a manifest of another repo, or a
	// manifest that adds /etc/shadow as a data file.
	salesMeta := filepath.Join(wh, "sales", "ns", "t", "metadata")
	handMade := []struct {
		name, want string
		manifests  func(id int64) []iceberg.ManifestFile
	}{
		{"a manifest of another repo", "manifest", func(id int64) []iceberg.ManifestFile {
			return []iceberg.ManifestFile{iceberg.NewManifestFile(2, "file://"+wh+"/other/ns/t/metadata/m0.avro", 100, 0, id).AddedFiles(1).AddedRows(1).Build()}
		}},
		{"a manifest adding /etc/shadow", "data file", func(id int64) []iceberg.ManifestFile {
			return []iceberg.ManifestFile{writeManifest(t, filepath.Join(salesMeta, fmt.Sprintf("evil-%d-m0.avro", id)), "file://"+filepath.Join(salesMeta, fmt.Sprintf("evil-%d-m0.avro", id)), id, "file:///etc/shadow")}
		}},
	}
	for i, h := range handMade {
		t.Run("add-snapshot/manifest list naming "+h.name, func(t *testing.T) {
			id := int64(200 + i)
			list := filepath.Join(salesMeta, fmt.Sprintf("snap-%d-evil.avro", id))
			var buf bytes.Buffer
			seq := int64(1)
			if err := iceberg.WriteManifestList(2, &buf, id, nil, &seq, 0, h.manifests(id)); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(list, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			code, body := restCall(t, "POST", p+"/namespaces/ns/tables/t", fmt.Sprintf(`{"requirements":[{"type":"assert-ref-snapshot-id","ref":"main","snapshot-id":null}],"updates":[
				{"action":"add-snapshot","snapshot":{"snapshot-id":%d,"timestamp-ms":4000000000000,"manifest-list":%s,"summary":{"operation":"append"},"sequence-number":1,"schema-id":0}},
				{"action":"set-snapshot-ref","ref-name":"main","type":"branch","snapshot-id":%d}]}`, id, q("file://"+list), id))
			refused(t, "add-snapshot", code, body)
			if _, msg := restError(body); !strings.Contains(msg, h.want) {
				t.Errorf("the refusal does not say which file: %q", msg)
			}
		})
	}

	if got := lsRemote(t, s.URL("sales"))["refs/data/main"]; got != ref {
		t.Errorf("refs/data/main of sales moved from %s to %s", ref, got)
	}
	if got := fileList(t, sentinel); !slices.Equal(got, []string{"."}) {
		t.Errorf("files appeared outside the warehouse, in %s: %v", sentinel, got)
	}
	for r, files := range before {
		if got := fileList(t, filepath.Join(wh, r)); !slices.Equal(got, files) {
			t.Errorf("repo %s's warehouse folder changed:\nbefore %v\nafter  %v", r, files, got)
		}
	}
	if got := fileList(t, wh); len(got) < len(whTop) {
		t.Errorf("warehouse lost files: %v", got)
	}
	for _, f := range fileList(t, wh) {
		if !strings.HasPrefix(f, "sales"+string(filepath.Separator)) && !slices.Contains(whTop, f) {
			t.Errorf("new file outside sales' folder of the warehouse: %s", f)
		}
	}
	code, again := restCall(t, "GET", p+"/namespaces/ns/tables/t", "")
	if code != 200 || again["metadata-location"] != metaLoc {
		t.Errorf("sales ns.t after the attacks: %d %v (was %v)", code, again["metadata-location"], metaLoc)
	}
}

// writeManifest writes, at path (location loc), an Iceberg v2 manifest of
// snapshot id that adds one data file at dataLoc, and returns its entry
// for a manifest list.
func writeManifest(t *testing.T, path, loc string, id int64, dataLoc string) iceberg.ManifestFile {
	t.Helper()
	sc := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64})
	b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, dataLoc, iceberg.ParquetFile, nil, nil, nil, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	mf, err := iceberg.WriteManifest(loc, &buf, 2, *iceberg.UnpartitionedSpec, sc, id, []iceberg.ManifestEntry{iceberg.NewManifestEntry(iceberg.EntryStatusADDED, &id, nil, nil, b.Build())})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return mf
}

// icebergAppend creates ns.<name> in repo through iceberg-go's REST client
// and appends rows to it; the client writes the Parquet and Avro files
// into the warehouse itself, as any Iceberg engine on this machine would.
func icebergAppend(t *testing.T, s *weirServer, repo, name string, rows int) *table.Table {
	t.Helper()
	ctx := context.Background()
	cat, err := icebergcat.Load(ctx, "weir", iceberg.Properties{"type": "rest", "uri": s.HTTP + "/iceberg", "warehouse": repo + "@main"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := cat.CheckNamespaceExists(ctx, table.Identifier{"ns"}); !ok {
		if err := cat.CreateNamespace(ctx, table.Identifier{"ns"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true}}, nil)
	isc, err := table.ArrowSchemaToIcebergWithFreshIDs(sc, false)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := cat.CreateTable(ctx, table.Identifier{"ns", name}, isc)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewInt64Builder(memory.DefaultAllocator)
	for i := range rows {
		b.Append(int64(i))
	}
	col := b.NewArray()
	rec := array.NewRecordBatch(sc, []arrow.Array{col}, int64(rows))
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	tbl, err = tbl.AppendTable(ctx, at, int64(rows), nil)
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

// TestQueryShowsNoServerPath asks `weir query` (over SSH, and offline)
// questions whose answers or errors used to carry the server's absolute
// paths: the views' definitions, DuckDB's settings, a table whose data
// file is damaged, a table whose metadata file is gone. Answers and
// errors name tables and repo-relative files only.
func TestQueryShowsNoServerPath(t *testing.T) {
	data := t.TempDir()
	s := startWeir(t, data)
	dir := newWorkRepo(t, 1)
	git(t, dir, "push", "-q", s.URL("leak"), "main")
	icebergAppend(t, s, "leak", "good", 3)
	bad := icebergAppend(t, s, "leak", "bad", 3)
	gone := icebergAppend(t, s, "leak", "gone", 3)

	real, err := filepath.EvalSymlinks(data)
	if err != nil {
		t.Fatal(err)
	}
	leaks := []string{real}
	if data != real {
		leaks = append(leaks, data)
	}
	if home, err := os.UserHomeDir(); err == nil && home != "/" {
		leaks = append(leaks, home+"/")
	}
	check := func(t *testing.T, what, out string) {
		t.Helper()
		for _, l := range leaks {
			if strings.Contains(out, l) {
				t.Errorf("%s shows the server path %s:\n%s", what, l, out)
			}
		}
	}
	ask := func(sql string, fails bool, mention string) {
		t.Helper()
		out, err := sshWeir(t, s, "query", "leak", "main", "'"+strings.ReplaceAll(sql, "'", `'\''`)+"'")
		t.Logf("weir query %s:\n%s", sql, out)
		if (err != nil) != fails {
			t.Errorf("%s: err %v, want failure %v:\n%s", sql, err, fails, out)
		}
		check(t, "weir query "+sql, out)
		if !strings.Contains(out, mention) {
			t.Errorf("%s: the answer does not name %s:\n%s", sql, mention, out)
		}
	}
	ask("SELECT count(*) AS n FROM ns.good", false, "n\n3\n")
	ask("SELECT sql FROM duckdb_views() WHERE NOT internal", false, "")
	ask("SELECT view_definition FROM information_schema.views", false, "")
	ask("SELECT current_setting('allowed_paths') AS p", false, "")
	ask("SELECT name, value FROM duckdb_settings()", false, "")

	// Damage ns.bad's data file, as a broken writer (or a full disk)
	// might.
	ctx := context.Background()
	tasks, err := bad.Scan().PlanFiles(ctx)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ns.bad's files: %v %v", tasks, err)
	}
	if err := os.WriteFile(s.LocalPath(tasks[0].File.FilePath()), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	ask("SELECT count(*) FROM ns.bad", true, "ns.bad")

	// The offline form, on the stopped server's data directory, once
	// ns.gone's metadata file is gone too (the server had it cached).
	s.Stop()
	if err := os.Remove(s.LocalPath(gone.MetadataLocation())); err != nil {
		t.Fatal(err)
	}
	for _, sql := range []string{"SELECT count(*) FROM ns.gone", "SELECT sql FROM duckdb_views()"} {
		out, err := exec.Command(weirBin, "query", "--data", data, "--repo", "leak", "--ref", "main", sql).CombinedOutput()
		t.Logf("offline weir query %s:\n%s", sql, out)
		if err == nil || !strings.Contains(string(out), "ns.gone") {
			t.Errorf("offline weir query %s: err %v, want a failure naming ns.gone:\n%s", sql, err, out)
		}
		check(t, "offline weir query "+sql, string(out))
	}
}
