package rest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/objects"
)

// direct sends one request straight to h (no ServeMux or StripPrefix in
// front, as a caller embedding the handler might) from loopback, and
// returns the status, the REST error type and message, and the body.
func direct(t *testing.T, h http.Handler, method, target, body string) (int, string, string, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:1"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	if e.Error.Code != 0 && e.Error.Code != rec.Code {
		t.Errorf("%s %s: body code %d != status %d", method, target, e.Error.Code, rec.Code)
	}
	return rec.Code, e.Error.Type, e.Error.Message, rec.Body.Bytes()
}

// TestRouting pins how a request finds its endpoint: the URL layout
// (/iceberg or not, url-escaped repo, trailing slashes, escaped literal
// segments), the order of the checks (repo name, access, repo and branch
// existence before 404 and 405), and the exact 404 and 405 answers.
func TestRouting(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	h := rest.NewRESTHandler(s.cat)
	p := "/v1/team%2Fdemo/main"
	for _, tc := range []struct {
		name, method, path string
		code               int
		typ, msg           string // msg: the whole message when typ is set
	}{
		{"config", "GET", "/v1/config", 200, "", ""},
		{"config under /iceberg", "GET", "/iceberg/v1/config", 200, "", ""},
		{"config trailing slash", "GET", "/v1/config/", 200, "", ""},
		{"config head", "HEAD", "/v1/config", 405, "", ""},
		{"config post", "POST", "/v1/config", 405, "BadRequestException", "method POST not allowed on /v1/config"},
		{"list namespaces", "GET", p + "/namespaces", 200, "", ""},
		{"list namespaces under /iceberg", "GET", "/iceberg" + p + "/namespaces", 200, "", ""},
		{"trailing slash", "GET", p + "/namespaces/", 200, "", ""},
		{"trailing slashes", "GET", p + "/namespaces//", 200, "", ""},
		{"escaped literal segment", "GET", p + "/%6Eamespaces", 200, "", ""},
		{"escaped branch", "GET", "/v1/team%2Fdemo/%6Dain/namespaces", 200, "", ""},
		{"load namespace", "GET", p + "/namespaces/sales", 200, "", ""},
		{"namespace exists", "HEAD", p + "/namespaces/sales", 204, "", ""},
		{"namespace missing", "HEAD", p + "/namespaces/nope", 404, "", ""},
		{"list tables", "GET", p + "/namespaces/sales/tables", 200, "", ""},
		{"load table", "GET", p + "/namespaces/sales/tables/orders", 200, "", ""},
		{"table exists", "HEAD", p + "/namespaces/sales/tables/orders", 204, "", ""},
		{"table missing", "HEAD", p + "/namespaces/sales/tables/nope", 404, "", ""},
		{"metrics", "POST", p + "/namespaces/sales/tables/orders/metrics", 204, "", ""},
		{"head on a GET-only endpoint", "HEAD", p + "/namespaces", 405, "", ""},
		{"put", "PUT", p + "/namespaces", 405, "BadRequestException", "method PUT not allowed on /v1/team/demo/main/namespaces"},
		{"patch table", "PATCH", p + "/namespaces/sales/tables/orders", 405, "BadRequestException", "method PATCH not allowed on /v1/team/demo/main/namespaces/sales/tables/orders"},
		{"get rename", "GET", p + "/tables/rename", 405, "BadRequestException", "method GET not allowed on /v1/team/demo/main/tables/rename"},
		{"get metrics", "GET", p + "/namespaces/sales/tables/orders/metrics", 405, "BadRequestException", "method GET not allowed on /v1/team/demo/main/namespaces/sales/tables/orders/metrics"},
		{"unknown endpoint", "GET", p + "/views", 404, "NotFoundException", "no such endpoint /v1/team/demo/main/views: this catalog serves no views (a data commit holds tables and namespaces only; create a table instead)"},
		{"unknown deeper endpoint", "POST", p + "/namespaces/sales/tables/orders/plan", 404, "NotFoundException", "no such endpoint /v1/team/demo/main/namespaces/sales/tables/orders/plan"},
		{"unknown endpoint under /iceberg", "GET", "/iceberg" + p + "/views", 404, "NotFoundException", "no such endpoint /iceberg/v1/team/demo/main/views: this catalog serves no views (a data commit holds tables and namespaces only; create a table instead)"},
		{"too deep", "GET", p + "/namespaces/sales/tables/orders/metrics/x", 404, "NotFoundException", "no such endpoint /v1/team/demo/main/namespaces/sales/tables/orders/metrics/x"},
		{"escaped slash is not a separator", "GET", p + "/namespaces%2Fsales", 404, "NotFoundException", "no such endpoint /v1/team/demo/main/namespaces/sales"},
		{"not under v1", "GET", "/v2/config", 404, "NotFoundException", "no such endpoint /v2/config (the Iceberg REST API is under /iceberg/v1/)"},
		{"root", "GET", "/", 404, "NotFoundException", "no such endpoint / (the Iceberg REST API is under /iceberg/v1/)"},
		{"no prefix", "GET", "/v1/namespaces", 404, "NotFoundException", "no such endpoint /v1/namespaces: want /v1/<repo>/<branch>/... (get the prefix from /v1/config?warehouse=<repo>@<branch>)"},
		{"prefix alone", "GET", p, 404, "NotFoundException", "no such endpoint /v1/team/demo/main: want /v1/<repo>/<branch>/... (get the prefix from /v1/config?warehouse=<repo>@<branch>)"},
		{"config below v1 root", "GET", "/v1/config/x", 404, "NotFoundException", "no such endpoint /v1/config/x: want /v1/<repo>/<branch>/... (get the prefix from /v1/config?warehouse=<repo>@<branch>)"},
		// The prefix is checked before the endpoint and the method.
		{"unknown endpoint of an unknown repo", "GET", "/v1/nope/main/views", 404, "NotFoundException", "repo nope does not exist (push to it first)"},
		{"wrong method on a bad repo name", "PUT", "/v1/..%2Fetc/main/namespaces", 400, "BadRequestException", ""},
		{"unknown endpoint of an unknown branch", "GET", "/v1/team%2Fdemo/nobranch/views", 404, "NotFoundException", ""},
		{"wrong method on an unknown branch", "PUT", "/v1/team%2Fdemo/nobranch/namespaces", 404, "NotFoundException", ""},
		// Path segments are unescaped one by one.
		{"dot-dot namespace", "GET", p + "/namespaces/%2E%2E", 400, "BadRequestException", ""},
		{"slash in a namespace", "GET", p + "/namespaces/sa%2Fles", 400, "BadRequestException", ""},
		// Paths a ServeMux in front would have cleaned (weir serve's does)
		// are taken as they come: no segment is dropped or merged.
		{"empty namespace segment", "GET", p + "/namespaces//tables", 400, "BadRequestException", "catalog: invalid name: empty name"},
		{"empty branch segment", "GET", "/v1/team%2Fdemo//main/namespaces", 404, "NotFoundException", "catalog: no such data branch: empty revision"},
		{"empty segment before an endpoint", "GET", p + "//namespaces", 404, "NotFoundException", "no such endpoint /v1/team/demo/main//namespaces"},
		{"leading empty segment", "GET", "/v1//config", 200, "", ""},
		{"dot namespace", "GET", p + "/namespaces/./tables", 400, "BadRequestException", ""},
		{"dot-dot segments", "GET", p + "/namespaces/sales/../sales/tables", 404, "NotFoundException", "no such endpoint /v1/team/demo/main/namespaces/sales/../sales/tables"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, typ, msg, body := direct(t, h, tc.method, tc.path, "")
			if code != tc.code || typ != tc.typ && tc.typ != "" || tc.typ != "" && tc.msg != "" && msg != tc.msg {
				t.Fatalf("%s %s = %d %s %q, want %d %s %q\n%s", tc.method, tc.path, code, typ, msg, tc.code, tc.typ, tc.msg, body)
			}
		})
	}
}

// TestRoutingChecksAccessFirst: a refused write is a 403 whatever the
// endpoint or method, and a read of an unknown endpoint asks RepoAccess
// for read access to the request's branch first.
func TestRoutingChecksAccessFirst(t *testing.T) {
	s := newServer(t, nil)
	var asked []string
	h := rest.NewRESTHandler(s.cat, rest.WithRepoAccess(func(id access.Identity, r objects.RepoName, branch string, write bool) error {
		asked = append(asked, fmt.Sprintf("%s %s %t", r, branch, write))
		if write {
			return fmt.Errorf("%s may not write to repo %s", id, r)
		}
		return nil
	}))
	for _, tc := range []struct {
		method, path string
		code         int
		typ          string
	}{
		{"PUT", "/v1/team%2Fdemo/main/namespaces", 403, "ForbiddenException"},
		{"POST", "/v1/team%2Fdemo/main/views", 403, "ForbiddenException"},
		{"DELETE", "/v1/team%2Fdemo/main/namespaces/x/tables/y/metrics", 403, "ForbiddenException"},
		{"GET", "/v1/team%2Fdemo/main/views", 404, "NotFoundException"},
		{"HEAD", "/v1/team%2Fdemo/main/namespaces", 405, ""},
		{"GET", "/v1/config", 200, ""},
	} {
		code, typ, _, body := direct(t, h, tc.method, tc.path, "")
		if code != tc.code || typ != tc.typ {
			t.Errorf("%s %s = %d %s, want %d %s\n%s", tc.method, tc.path, code, typ, tc.code, tc.typ, body)
		}
	}
	want := []string{"team/demo main true", "team/demo main true", "team/demo main true", "team/demo main false", "team/demo main false"}
	if !slices.Equal(asked, want) {
		t.Fatalf("RepoAccess asked %q, want %q", asked, want)
	}
}

// ensure creates namespace sales and table sales.orders where missing.
func ensure(t *testing.T, s *server) {
	t.Helper()
	ctx := context.Background()
	ic, err := s.cat.Iceberg(ctx, repo, "main", "")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := ic.CheckNamespaceExists(ctx, table.Identifier{"sales"}); !ok {
		if err := ic.CreateNamespace(ctx, table.Identifier{"sales"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := ic.CheckTableExists(ctx, table.Identifier{"sales", "orders"}); !ok {
		if _, err := ic.CreateTable(ctx, table.Identifier{"sales", "orders"}, icebergSchema); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEndpointsAreTheRoutes: /v1/config advertises exactly the endpoints
// the handler serves. Every method is tried on every advertised path and
// on paths of the spec this server does not serve (see served).
// /v1/config itself is served and not advertised.
func TestEndpointsAreTheRoutes(t *testing.T) {
	s := newServer(t, nil)
	h := rest.NewRESTHandler(s.cat)
	advertised := advertisedEndpoints(t, h)
	paths := map[string]bool{
		// Spec paths Weir does not serve.
		"/v1/{prefix}/namespaces/{namespace}/views":                         true,
		"/v1/{prefix}/namespaces/{namespace}/views/{view}":                  true,
		"/v1/{prefix}/views/rename":                                         true,
		"/v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials":    true,
		"/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan":           true,
		"/v1/{prefix}/namespaces/{namespace}/tables/{table}/plan/{plan-id}": true,
		"/v1/{prefix}/namespaces/{namespace}/tables/{table}/tasks":          true,
		"/v1/oauth/tokens": true,
	}
	for ep := range advertised {
		_, path, _ := strings.Cut(ep, " ")
		paths[path] = true
	}
	for path := range paths {
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"} {
			ep := method + " " + path
			if got := served(t, s, h, method, path); got != advertised[ep] {
				t.Errorf("%s: served %t, advertised %t", ep, got, advertised[ep])
			}
		}
	}
	if !served(t, s, h, "GET", "/v1/config") {
		t.Error("GET /v1/config is not served")
	}
}

// advertisedEndpoints returns the endpoints of h's /v1/config, each once
// and each "METHOD /v1/{prefix}/...".
func advertisedEndpoints(t *testing.T, h http.Handler) map[string]bool {
	t.Helper()
	code, _, _, body := direct(t, h, "GET", "/v1/config?warehouse=team/demo@main", "")
	var cfg struct {
		Defaults  map[string]string `json:"defaults"`
		Overrides map[string]string `json:"overrides"`
		Endpoints []string          `json:"endpoints"`
	}
	if err := json.Unmarshal(body, &cfg); err != nil || code != 200 || cfg.Overrides["prefix"] != "team%2Fdemo/main" || cfg.Defaults == nil {
		t.Fatalf("config = %d %s (%v)", code, body, err)
	}
	advertised := map[string]bool{}
	for _, ep := range cfg.Endpoints {
		method, path, ok := strings.Cut(ep, " ")
		if advertised[ep] || !ok || method != strings.ToUpper(method) || !strings.HasPrefix(path, "/v1/{prefix}/") {
			t.Errorf("advertised endpoint %q is a duplicate or not METHOD /v1/{prefix}/...", ep)
		}
		advertised[ep] = true
	}
	if len(advertised) == 0 {
		t.Fatal("no endpoints advertised")
	}
	return advertised
}

// served sends method to the spec path filled in, on a branch where what
// it names exists, and says whether h serves it: anything but a 405 or a
// 404 "no such endpoint" (for HEAD, which has no body to tell why, any
// 404).
func served(t *testing.T, s *server, h http.Handler, method, path string) bool {
	t.Helper()
	ensure(t, s) // a DELETE may have dropped them
	fill := strings.NewReplacer("{prefix}", "team%2Fdemo/main", "{namespace}", "sales", "{table}", "orders", "{view}", "v", "{plan-id}", "p")
	code, typ, msg, body := direct(t, h, method, fill.Replace(path), "")
	if code >= 500 {
		t.Fatalf("%s %s = %d %s", method, path, code, body)
	}
	if code == http.StatusMethodNotAllowed {
		return false
	}
	if method == http.MethodHead {
		return code != http.StatusNotFound
	}
	return !(code == http.StatusNotFound && typ == "NotFoundException" && strings.HasPrefix(msg, "no such endpoint"))
}

// jsonKinds maps each top-level field of a JSON object to its kind
// (null, bool, number, string, array, object); nested objects named in
// deep are mapped the same way, as "field.sub".
func jsonKinds(t *testing.T, data []byte, deep ...string) map[string]string {
	t.Helper()
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, data)
	}
	kind := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case bool:
			return "bool"
		case float64:
			return "number"
		case string:
			return "string"
		case []any:
			return "array"
		default:
			return "object"
		}
	}
	out := map[string]string{}
	for k, v := range top {
		out[k] = kind(v)
		if slices.Contains(deep, k) {
			sub, _ := v.(map[string]any)
			for sk, sv := range sub {
				out[k+"."+sk] = kind(sv)
			}
		}
	}
	return out
}

// TestResponseShapes pins the fields of every response body and the kind
// of each (a field that is null stays present and null).
func TestResponseShapes(t *testing.T) {
	s := newServer(t, nil)
	setup(t, s.client(t, "main", nil), "sales", "orders")
	h := rest.NewRESTHandler(s.cat)
	p := "/v1/team%2Fdemo/main"
	errShape := map[string]string{"error": "object", "error.code": "number", "error.message": "string", "error.type": "string"}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     map[string]string
	}{
		{"config", "GET", "/v1/config", "", 200, map[string]string{"defaults": "object", "overrides": "object", "endpoints": "array"}},
		{"config with warehouse", "GET", "/v1/config?warehouse=team/demo@main", "", 200, map[string]string{"defaults": "object", "overrides": "object", "endpoints": "array", "overrides.prefix": "string"}},
		{"list namespaces", "GET", p + "/namespaces", "", 200, map[string]string{"namespaces": "array", "next-page-token": "null"}},
		{"list namespaces paged", "GET", p + "/namespaces?pageToken=&pageSize=1", "", 200, map[string]string{"namespaces": "array", "next-page-token": "null"}},
		{"create namespace", "POST", p + "/namespaces", `{"namespace":["other"]}`, 200, map[string]string{"namespace": "array", "properties": "object"}},
		{"create namespace with properties", "POST", p + "/namespaces", `{"namespace":["third"],"properties":{"a":"b"}}`, 200, map[string]string{"namespace": "array", "properties": "object", "properties.a": "string"}},
		{"load namespace", "GET", p + "/namespaces/third", "", 200, map[string]string{"namespace": "array", "properties": "object", "properties.a": "string"}},
		{"update namespace", "POST", p + "/namespaces/third/properties", `{"removals":["a","zz"],"updates":{"c":"d"}}`, 200, map[string]string{"removed": "array", "updated": "array", "missing": "array"}},
		{"list tables", "GET", p + "/namespaces/sales/tables", "", 200, map[string]string{"identifiers": "array", "next-page-token": "null"}},
		{"list tables paged", "GET", p + "/namespaces/sales/tables?pageToken=", "", 200, map[string]string{"identifiers": "array", "next-page-token": "null"}},
		{"load table", "GET", p + "/namespaces/sales/tables/orders", "", 200, map[string]string{"metadata-location": "string", "metadata": "object", "config": "object"}},
		{"create table", "POST", p + "/namespaces/sales/tables", `{"name":"t2","schema":` + longSchema + `}`, 200, map[string]string{"metadata-location": "string", "metadata": "object", "config": "object"}},
		{"stage create", "POST", p + "/namespaces/sales/tables", `{"name":"t3","schema":` + longSchema + `,"stage-create":true}`, 200, map[string]string{"metadata": "object", "config": "object"}},
		{"commit table", "POST", p + "/namespaces/sales/tables/orders", `{"requirements":[],"updates":[{"action":"set-properties","updates":{"k":"v"}}]}`, 200, map[string]string{"metadata-location": "string", "metadata": "object"}},
		{"error", "GET", p + "/namespaces/nope", "", 404, errShape},
		{"405", "PUT", p + "/namespaces", "", 405, errShape},
		{"404", "GET", p + "/views", "", 404, errShape},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, _, body := direct(t, h, tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("%s %s = %d\n%s", tc.method, tc.path, code, body)
			}
			if got := jsonKinds(t, body, "error", "overrides", "properties"); !maps.Equal(got, tc.want) {
				t.Fatalf("%s %s: fields %v, want %v\n%s", tc.method, tc.path, got, tc.want, body)
			}
		})
	}
	for _, tc := range []struct{ method, path string }{
		{"HEAD", p + "/namespaces/sales"},
		{"HEAD", p + "/namespaces/sales/tables/orders"},
		{"HEAD", p + "/namespaces/nope"},
		{"POST", p + "/namespaces/sales/tables/orders/metrics"},
		{"POST", p + "/tables/rename"},
		{"DELETE", p + "/namespaces/sales/tables/t2"},
	} {
		body := ""
		if strings.HasSuffix(tc.path, "rename") {
			body = `{"source":{"namespace":["sales"],"name":"orders"},"destination":{"namespace":["sales"],"name":"renamed"}}`
		}
		if code, _, _, data := direct(t, h, tc.method, tc.path, body); len(data) != 0 || code/100 == 5 {
			t.Errorf("%s %s = %d with a body %q, want none", tc.method, tc.path, code, data)
		}
	}
}
