package rest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestServeMuxEscapedSlash pins what the router relies on in Go's
// ServeMux: it splits the escaped path (r.URL.EscapedPath) and unescapes
// each segment, so %2F inside a segment is no separator, and it matches
// literal segments after unescaping them too. Matching the unescaped
// r.URL.Path instead would split "team%2Fdemo" in two.
func TestServeMuxEscapedSlash(t *testing.T) {
	mux := http.NewServeMux()
	var repo, branch string
	mux.HandleFunc("GET /v1/{repo}/{branch}/namespaces", func(w http.ResponseWriter, r *http.Request) {
		repo, branch = r.PathValue("repo"), r.PathValue("branch")
	})
	for _, tc := range []struct {
		target           string
		code             int
		wantRepo, branch string
	}{
		{"/v1/team%2Fdemo/main/namespaces", 200, "team/demo", "main"},
		{"/v1/team%2fdemo/ma%69n/%6Eamespaces", 200, "team/demo", "main"},
		{"/v1/team/demo/main/namespaces", 404, "", ""},
		{"/v1/team%2Fdemo/main/namespaces%2Fx", 404, "", ""},
	} {
		repo, branch = "", ""
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", tc.target, nil))
		if rec.Code != tc.code || repo != tc.wantRepo || branch != tc.branch {
			t.Errorf("%s = %d repo %q branch %q, want %d %q %q", tc.target, rec.Code, repo, branch, tc.code, tc.wantRepo, tc.branch)
		}
	}
}

// TestRouteTable: every route of the table is found by its own method and
// path, with its path values; the advertised endpoints are the routes
// under {prefix}, in table order, and are the list /v1/config has always
// sent.
func TestRouteTable(t *testing.T) {
	rt := newRouter(routes)
	fill := strings.NewReplacer("{prefix}", "team%2Fdemo/main", "{namespace}", "sa%1Fles", "{table}", "or%2Fders")
	for i := range routes {
		want := &routes[i]
		target := fill.Replace(want.path)
		r := httptest.NewRequest(want.method, target, nil)
		segs, err := segments(r)
		if err != nil {
			t.Fatalf("%s: %v", target, err)
		}
		got, err := rt.match(r, segs)
		if err != nil || got != want {
			t.Errorf("%s %s matched %v, %v", want.method, target, got, err)
			continue
		}
		if strings.Contains(want.path, "{namespace}") && r.PathValue("namespace") != "sa\x1fles" {
			t.Errorf("%s: namespace %q", target, r.PathValue("namespace"))
		}
		if strings.Contains(want.path, "{table}") && r.PathValue("table") != "or/ders" {
			t.Errorf("%s: table %q", target, r.PathValue("table"))
		}
	}
	advertised := []string{
		"GET /v1/{prefix}/namespaces",
		"POST /v1/{prefix}/namespaces",
		"GET /v1/{prefix}/namespaces/{namespace}",
		"HEAD /v1/{prefix}/namespaces/{namespace}",
		"DELETE /v1/{prefix}/namespaces/{namespace}",
		"POST /v1/{prefix}/namespaces/{namespace}/properties",
		"GET /v1/{prefix}/namespaces/{namespace}/tables",
		"POST /v1/{prefix}/namespaces/{namespace}/tables",
		"POST /v1/{prefix}/namespaces/{namespace}/register",
		"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
		"POST /v1/{prefix}/tables/rename",
		"POST /v1/{prefix}/transactions/commit",
	}
	if !slices.Equal(rt.endpoints, advertised) {
		t.Fatalf("endpoints\n%q\nwant\n%q", rt.endpoints, advertised)
	}
}

// TestProbePath: the path ServeMux matches keeps every segment one
// segment, and nothing in it is cleaned away.
func TestProbePath(t *testing.T) {
	for _, tc := range []struct {
		segs []string
		want string
	}{
		{[]string{"team/demo", "main", "namespaces"}, "/v1/team%2Fdemo/main/namespaces"},
		{[]string{"config"}, "/v1/config"},
		{[]string{"r", "", "namespaces"}, "/v1/r/%00/namespaces"},
		{[]string{"r", "b", "namespaces", ".", "tables", ".."}, "/v1/r/b/namespaces/%2E/tables/%2E%2E"},
		{[]string{"r", "b", "a b", "..."}, "/v1/r/b/a%20b/..."},
	} {
		if got := probePath(tc.segs); got != tc.want {
			t.Errorf("probePath(%q) = %s, want %s", tc.segs, got, tc.want)
		}
	}
}
