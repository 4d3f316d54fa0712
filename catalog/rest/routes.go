package rest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/weir-dev/weir/catalog"
)

// A route is one endpoint: its method, its path as the Iceberg REST spec
// writes it, and the function that serves it. serve gets the catalog of
// the request's repo and branch, opened as the request's identity; nil
// on the one path without {prefix}, /v1/config.
type route struct {
	method string
	path   string
	serve  func(h *handler, w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error
}

// routes is every endpoint the handler serves, one table with two
// readers: newRouter registers each as a ServeMux pattern, which is how
// requests find them, and lists each path under {prefix} as an endpoint
// of /v1/config, which is how clients find them. The two cannot drift.
//
//	route                                        ServeMux pattern                                    advertised
//	GET /v1/config                               GET /v1/config                                      no
//	GET /v1/{prefix}/namespaces/{namespace}      GET /v1/{repo}/{branch}/namespaces/{namespace}      GET /v1/{prefix}/namespaces/{namespace}
//
// {prefix} is two path segments, <repo>/<branch> (see the package
// comment); a pattern names them {repo} and {branch}. A handler reads
// the other wildcards with r.PathValue. The order is the order of the
// advertised list.
var routes = []route{
	{http.MethodGet, "/v1/config", (*handler).config},
	{http.MethodGet, "/v1/{prefix}/namespaces", (*handler).listNamespaces},
	{http.MethodPost, "/v1/{prefix}/namespaces", (*handler).createNamespace},
	{http.MethodGet, "/v1/{prefix}/namespaces/{namespace}", (*handler).loadNamespace},
	{http.MethodHead, "/v1/{prefix}/namespaces/{namespace}", (*handler).namespaceExists},
	{http.MethodDelete, "/v1/{prefix}/namespaces/{namespace}", (*handler).dropNamespace},
	{http.MethodPost, "/v1/{prefix}/namespaces/{namespace}/properties", (*handler).updateNamespace},
	{http.MethodGet, "/v1/{prefix}/namespaces/{namespace}/tables", (*handler).listTables},
	{http.MethodPost, "/v1/{prefix}/namespaces/{namespace}/tables", (*handler).createTable},
	{http.MethodPost, "/v1/{prefix}/namespaces/{namespace}/register", (*handler).registerTable},
	{http.MethodGet, "/v1/{prefix}/namespaces/{namespace}/tables/{table}", (*handler).loadTable},
	{http.MethodHead, "/v1/{prefix}/namespaces/{namespace}/tables/{table}", (*handler).tableExists},
	{http.MethodPost, "/v1/{prefix}/namespaces/{namespace}/tables/{table}", (*handler).commitTable},
	{http.MethodDelete, "/v1/{prefix}/namespaces/{namespace}/tables/{table}", (*handler).dropTable},
	{http.MethodPost, "/v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics", (*handler).reportMetrics},
	{http.MethodPost, "/v1/{prefix}/tables/rename", (*handler).renameTable},
	{http.MethodPost, "/v1/{prefix}/transactions/commit", (*handler).commitTransaction},
}

const (
	// prefixParam is {prefix} in a route's path.
	prefixParam = "{prefix}"
	// prefixPattern is what {prefix} is in a ServeMux pattern.
	prefixPattern = "{repo}/{branch}"
	// prefixLen is the number of path segments of a prefix.
	prefixLen = 2
)

// router finds a request's route with a ServeMux built from routes. The
// mux only matches (ServeMux.Handler): serve calls the route itself,
// after the prefix checks, so that its errors are REST errors.
//
// Under every route's path a pattern without a method is registered too:
// a request whose path exists with other methods matches it and is a
// 405. A GET pattern also matches HEAD; match answers such a HEAD 405 as
// well, unless the path has a HEAD route of its own (ServeMux prefers
// it).
type router struct {
	mux       *http.ServeMux
	byPattern map[string]matched // ServeMux pattern -> route
	endpoints []string           // /v1/config's list: "METHOD /v1/{prefix}/..."
}

// matched is a registered pattern: its route (nil for a pattern without
// method, whose path exists with other methods) and the path value name
// of each path segment after /v1/ ("" for a literal segment).
type matched struct {
	route  *route
	params []string
}

// matchOnly is the handler of every pattern of the router's ServeMux,
// which only matches: it is never called.
var matchOnly = http.NotFoundHandler()

// newRouter registers table. It panics, as ServeMux does, when two
// routes have patterns that conflict.
func newRouter(table []route) *router {
	rt := &router{mux: http.NewServeMux(), byPattern: map[string]matched{}}
	for i := range table {
		r := &table[i]
		path := strings.Replace(r.path, prefixParam, prefixPattern, 1)
		params := paramsOf(path)
		pattern := r.method + " " + path
		rt.mux.Handle(pattern, matchOnly)
		rt.byPattern[pattern] = matched{route: r, params: params}
		if _, ok := rt.byPattern[path]; !ok {
			rt.mux.Handle(path, matchOnly)
			rt.byPattern[path] = matched{params: params}
		}
		if strings.Contains(r.path, prefixParam) {
			rt.endpoints = append(rt.endpoints, r.method+" "+r.path)
		}
	}
	return rt
}

// paramsOf names the wildcard of each segment after /v1/ of a ServeMux
// path, "" for a literal segment.
func paramsOf(path string) []string {
	segs := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segs[i] = s[1 : len(s)-1]
		} else {
			segs[i] = ""
		}
	}
	return segs
}

// match returns the route of r, whose path after /v1/ is segs (unescaped
// one by one, as segments returns them), and sets r's path values from
// segs. When no route has r's path it answers 404 "no such endpoint"
// (saying where endpoints are when the path has no room for a prefix);
// when routes have it with other methods, 405.
func (rt *router) match(r *http.Request, segs []string) (*route, error) {
	raw := probePath(segs)
	unescaped, _ := url.PathUnescape(raw)
	_, pattern := rt.mux.Handler(&http.Request{Method: r.Method, URL: &url.URL{Path: unescaped, RawPath: raw}})
	m, ok := rt.byPattern[pattern]
	switch {
	case !ok && len(segs) <= prefixLen:
		return nil, notFound("NotFoundException", "no such endpoint %s: want /v1/<repo>/<branch>/... (get the prefix from /v1/config?warehouse=<repo>@<branch>)", r.URL.Path)
	case !ok && slices.Contains(segs[min(prefixLen, len(segs)):], "views"):
		// The spec's view endpoints: see "Views" in the package comment.
		return nil, notFound("NotFoundException", "no such endpoint %s: this catalog serves no views (a data commit holds tables and namespaces only; create a table instead)", r.URL.Path)
	case !ok:
		return nil, notFound("NotFoundException", "no such endpoint %s", r.URL.Path)
	case m.route == nil || m.route.method != r.Method:
		return nil, methodNotAllowed(r)
	}
	for i, name := range m.params {
		if name != "" {
			r.SetPathValue(name, segs[i])
		}
	}
	return m.route, nil
}

// probePath is the escaped path the ServeMux matches: /v1/ and segs, each
// escaped again, so that "team/demo" stays one segment ("team%2Fdemo";
// ServeMux splits the escaped path, then unescapes each segment). A
// segment ServeMux would clean away or redirect ("", ".", "..") is
// escaped past its cleaning: "." and ".." as %2E, "" as %00, which
// matches a wildcard and no literal. The handler takes every segment as
// it comes (TestRouting): a path value is the segment itself, from segs,
// never the escaped stand-in.
func probePath(segs []string) string {
	var b strings.Builder
	b.WriteString("/v1")
	for _, s := range segs {
		b.WriteByte('/')
		switch s {
		case "":
			b.WriteString("%00")
		case ".", "..":
			b.WriteString(strings.Repeat("%2E", len(s)))
		default:
			b.WriteString(url.PathEscape(s))
		}
	}
	return b.String()
}

// segments splits the escaped path into unescaped segments after "v1".
// The handler is mounted at /iceberg/ (weir serve strips that) or not:
// it takes the path with or without it. Slashes around the path are
// ignored.
func segments(r *http.Request) ([]string, error) {
	p := r.URL.EscapedPath()
	p = strings.TrimPrefix(p, "/iceberg")
	if !strings.HasPrefix(p, "/v1/") {
		return nil, notFound("NotFoundException", "no such endpoint %s (the Iceberg REST API is under /iceberg/v1/)", r.URL.Path)
	}
	raw := strings.Split(strings.Trim(strings.TrimPrefix(p, "/v1/"), "/"), "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			return nil, badRequest("bad path segment %q: %v", s, err)
		}
		out[i] = u
	}
	return out, nil
}
