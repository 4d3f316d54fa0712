package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/refs"
)

// fuzzEndpoints are the write endpoints whose bodies FuzzRESTBodies
// feeds; the first fuzz argument picks one.
var fuzzEndpoints = []struct{ method, path string }{
	{"POST", "/v1/team%2Fdemo/main/namespaces"},                      // create namespace
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales/tables"},         // create table (and stage-create)
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales/tables/orders"},  // commit table
	{"POST", "/v1/team%2Fdemo/main/transactions/commit"},             // commit transaction
	{"POST", "/v1/team%2Fdemo/main/tables/rename"},                   // rename table
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales/properties"},     // update namespace properties
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales/tables/missing"}, // commit (or assert-create) a table that does not exist
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales/register"},       // register table
	// In the nested namespace sales.eu.
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales%1Feu/tables"},        // create table
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales%1Feu/tables/orders"}, // commit table
	{"POST", "/v1/team%2Fdemo/main/namespaces/sales%1Feu/properties"},    // update namespace properties
}

// FuzzRESTBodies sends arbitrary bytes as the body of every write
// endpoint, against a repo with namespaces sales and sales.eu and tables
// sales.orders and sales.eu.orders.
// Invariants: never a panic, never a 5xx (the storage here, in-memory
// Pebble and a local folder, does not fail), every error is a JSON error
// body whose code is the status, and a 4xx changes nothing: refs/data/main
// is where it was. After a 2xx the branch is put back, so every input
// starts from the same state and a failure replays exactly.
func FuzzRESTBodies(f *testing.F) {
	s := newServer(f, nil)
	cl := s.client(f, "main", nil)
	setup(f, cl, "sales", "orders")
	ctx := context.Background()
	if err := cl.CreateNamespace(ctx, []string{"sales", "eu"}, nil); err != nil {
		f.Fatal(err)
	}
	if _, err := cl.CreateTable(ctx, []string{"sales", "eu", "orders"}, icebergSchema); err != nil {
		f.Fatal(err)
	}
	start := s.head(f, "main")
	ic, err := s.cat.Iceberg(ctx, repo, "main", "")
	if err != nil {
		f.Fatal(err)
	}
	tbl, err := ic.LoadTable(ctx, []string{"sales", "orders"})
	if err != nil {
		f.Fatal(err)
	}
	uuid := tbl.Metadata().TableUUID().String()
	for _, seed := range []struct {
		endpoint uint8
		body     string
	}{
		{0, `{"namespace":["ns1"],"properties":{"a":"b"}}`},
		{1, `{"name":"t2","schema":` + longSchema + `}`},
		{1, `{"name":"t3","schema":` + longSchema + `,"stage-create":true,"partition-spec":{"spec-id":0,"fields":[]},"write-order":{"order-id":0,"fields":[]}}`},
		{2, `{"requirements":[{"type":"assert-table-uuid","uuid":"` + uuid + `"}],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`},
		{3, `{"table-changes":[{"identifier":{"namespace":["sales"],"name":"orders"},"requirements":[],"updates":[{"action":"remove-properties","removals":["k"]}]}]}`},
		{4, `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":["sales"],"name":"orders2"}}`},
		{5, `{"removals":["x"],"updates":{"y":"z"}}`},
		{6, `{"requirements":[{"type":"assert-create"}],"updates":[{"action":"assign-uuid","uuid":"` + uuid + `"},{"action":"upgrade-format-version","format-version":2},{"action":"add-schema","schema":` + longSchema + `},{"action":"set-current-schema","schema-id":-1},{"action":"set-location","location":"` + tbl.Location() + `x"}]}`},
		{7, `{"name":"reg","metadata-location":"` + tbl.MetadataLocation() + `"}`},
		{7, `{"name":"orders","metadata-location":"` + tbl.MetadataLocation() + `","overwrite":true}`},
		{7, `{"name":"reg","metadata-location":"` + tbl.Location() + `/../../other/x.metadata.json"}`},
		{7, `{"name":"reg","metadata-location":"file:///etc/passwd"}`},
		{7, `{"name":"reg","metadata-location":"` + tbl.Location() + `/metadata/00001-missing.metadata.json"}`},
		// Nested namespaces.
		{0, `{"namespace":["sales","eu","de"]}`},
		{0, `{"namespace":["sales","eu.de"]}`},
		{0, `{"namespace":["nope","x"]}`},
		{0, `{"namespace":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`},
		{0, `{"namespace":["sales","\u001f"]}`},
		{8, `{"name":"t4","schema":` + longSchema + `}`},
		{8, `{"name":"..","schema":` + longSchema + `}`},
		{9, `{"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`},
		{3, `{"table-changes":[{"identifier":{"namespace":["sales","eu"],"name":"orders"},"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]},{"identifier":{"namespace":["sales"],"name":"orders"},"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}]}`},
		{4, `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":["sales","eu"],"name":"orders2"}}`},
		{4, `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":["sales","eu",""],"name":"orders2"}}`},
		{10, `{"removals":["x"],"updates":{"y":"z"}}`},
	} {
		f.Add(seed.endpoint, []byte(seed.body))
	}
	var logs syncBuf
	h := rest.NewRESTHandler(s.cat, rest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := fuzzEndpoints[int(which)%len(fuzzEndpoints)]
		logs.Reset()
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after := s.head(t, "main")
		code := rec.Code
		if code >= 500 {
			t.Fatalf("%s %s %q = %d %s\nserver log:\n%s", ep.method, ep.path, body, code, rec.Body, logs.String())
		}
		if code >= 400 {
			var e struct {
				Error struct {
					Message, Type string
					Code          int
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code != code || e.Error.Type == "" || e.Error.Message == "" {
				t.Fatalf("%s %q = %d with a bad error body %q (%v)", ep.path, body, code, rec.Body, err)
			}
			if after != start {
				t.Fatalf("%s %q = %d %s, yet refs/data/main moved from %s to %s", ep.path, body, code, e.Error.Message, start, after)
			}
			return
		}
		if after != start {
			if err := s.refs.Update(ctx, repo, []refs.Update{{Name: catalog.DataRef("main"), Old: after, New: start}}, nil, "fuzz: reset"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// syncBuf is a log sink for one request at a time.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func (s *syncBuf) Reset() { s.mu.Lock(); defer s.mu.Unlock(); s.b.Reset() }
