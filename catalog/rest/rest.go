package rest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Authorizer decides a request: ok=false answers 401; identity names the
// writer in the data commits the request makes.
type Authorizer func(r *http.Request) (identity access.Identity, ok bool)

// LoopbackOnly is the default Authorizer: it allows clients on a loopback
// address as "anonymous" and refuses everyone else.
func LoopbackOnly(r *http.Request) (access.Identity, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return access.Anonymous, true
	}
	return "", false
}

// Option configures the handler.
type Option func(*handler)

// WithAuthorizer replaces LoopbackOnly.
func WithAuthorizer(a Authorizer) Option { return func(h *handler) { h.auth = a } }

// RepoAccess decides whether identity may read (write=false) or write
// (write=true) the data of branch (or data tag, or commit) of repo: nil,
// or an error whose text the client sees. The default allows everything
// the Authorizer let in.
type RepoAccess func(identity access.Identity, repo objects.RepoName, branch string, write bool) error

// WithRepoAccess adds a per-repo and per-branch permission check: reads
// need read access, writes (any method but GET and HEAD) need the right
// to write the branch's data outside a run (access.AuthorizeDataWrite);
// refusals are 403 ForbiddenException.
func WithRepoAccess(a RepoAccess) Option { return func(h *handler) { h.access = a } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(h *handler) { h.log = l } }

// WithVendedCredentials chooses what the "config" of a LoadTableResult
// (load table, create table) holds. Off, the default: the warehouse's
// ReaderProps (S3 endpoint, region, addressing), so every reader reads the
// files with its own credentials. On: the warehouse's Props, which include
// the server's own static S3 keys, handed to every client allowed to load
// a table of any repo on this server.
func WithVendedCredentials(on bool) Option { return func(h *handler) { h.vend = on } }

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 32 << 20

type handler struct {
	c      *catalog.Catalog
	auth   Authorizer
	access RepoAccess
	log    *slog.Logger
	vend   bool
}

// NewRESTHandler returns the Iceberg REST catalog over c.
func NewRESTHandler(c *catalog.Catalog, opts ...Option) http.Handler {
	h := &handler{c: c, auth: LoopbackOnly, log: slog.Default()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// endpoints is what /v1/config advertises.
var endpoints = []string{
	"GET /v1/{prefix}/namespaces",
	"POST /v1/{prefix}/namespaces",
	"GET /v1/{prefix}/namespaces/{namespace}",
	"HEAD /v1/{prefix}/namespaces/{namespace}",
	"DELETE /v1/{prefix}/namespaces/{namespace}",
	"POST /v1/{prefix}/namespaces/{namespace}/properties",
	"GET /v1/{prefix}/namespaces/{namespace}/tables",
	"POST /v1/{prefix}/namespaces/{namespace}/tables",
	"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
	"POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
	"POST /v1/{prefix}/tables/rename",
	"POST /v1/{prefix}/transactions/commit",
}

// httpError is an error with a chosen status and REST error type.
type httpError struct {
	code int
	typ  string
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, "BadRequestException", fmt.Sprintf(format, a...)}
}

func notFound(typ, format string, a ...any) error {
	return &httpError{http.StatusNotFound, typ, fmt.Sprintf(format, a...)}
}

// errorFor is the one place catalog errors become REST errors.
func errorFor(err error) (int, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code, he.typ
	case errors.Is(err, icebergcat.ErrNoSuchTable):
		return http.StatusNotFound, "NoSuchTableException"
	case errors.Is(err, icebergcat.ErrNoSuchNamespace):
		return http.StatusNotFound, "NoSuchNamespaceException"
	case errors.Is(err, catalog.ErrNoSuchBranch):
		return http.StatusNotFound, "NotFoundException"
	case errors.Is(err, icebergcat.ErrTableAlreadyExists), errors.Is(err, icebergcat.ErrNamespaceAlreadyExists):
		return http.StatusConflict, "AlreadyExistsException"
	case errors.Is(err, icebergcat.ErrNamespaceNotEmpty):
		return http.StatusConflict, "NamespaceNotEmptyException"
	case errors.Is(err, table.ErrCommitFailed):
		return http.StatusConflict, "CommitFailedException"
	case errors.Is(err, catalog.ErrReadOnly):
		return http.StatusForbidden, "ForbiddenException"
	case errors.Is(err, catalog.ErrBadName), errors.Is(err, catalog.ErrBadUpdate),
		errors.Is(err, catalog.ErrBadLocation), errors.Is(err, catalog.ErrOutsideRepo),
		errors.Is(err, objects.ErrBadRepoName), errors.Is(err, icebergcat.ErrEmptyCommitList):
		return http.StatusBadRequest, "BadRequestException"
	default:
		return http.StatusInternalServerError, "InternalServerError"
	}
}

// writeError answers err as a REST error body. The log gets the whole
// message; the client gets it without the server's own paths
// (catalog.Redact): locations read relative to the warehouse.
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, typ := errorFor(err)
	if code == http.StatusInternalServerError {
		h.log.Error("iceberg rest", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Info("iceberg rest refused", "method", r.Method, "path", r.URL.Path, "status", code, "err", err.Error())
	}
	msg := h.c.Redact(err.Error())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return badRequest("missing request body")
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &httpError{http.StatusRequestEntityTooLarge, "BadRequestException", fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		return badRequest("malformed request body: %v", err)
	}
	if dec.More() {
		return badRequest("malformed request body: trailing data after the JSON object")
	}
	return nil
}

// segments splits the escaped path into unescaped segments after "v1".
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

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	identity, ok := h.auth(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="weir"`)
		h.writeError(w, r, &httpError{http.StatusUnauthorized, "NotAuthorizedException", "not authorized: send a bearer token (Authorization: Bearer <token>) the server accepts"})
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	defer func() {
		// A bug must cost one request, not the server: nothing is
		// published before the final compare-and-swap of the data ref, so
		// a request that panics changed nothing.
		if v := recover(); v != nil {
			h.log.Error("iceberg rest: panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			h.writeError(w, r, fmt.Errorf("internal error (logged on the server): %v", v))
		}
	}()
	if err := h.serve(w, r, identity); err != nil {
		h.writeError(w, r, err)
	}
}

func methodNotAllowed(r *http.Request) error {
	return &httpError{http.StatusMethodNotAllowed, "BadRequestException", fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path)}
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, identity access.Identity) error {
	segs, err := segments(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if len(segs) == 1 && segs[0] == "config" {
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		return h.config(w, r)
	}
	if len(segs) < 3 {
		return notFound("NotFoundException", "no such endpoint %s: want /v1/<repo>/<branch>/... (get the prefix from /v1/config?warehouse=<repo>@<branch>)", r.URL.Path)
	}
	repo, err := objects.ParseRepoName(segs[0])
	if err != nil {
		return err
	}
	if h.access != nil {
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		if err := h.access(identity, repo, segs[1], write); err != nil {
			return &httpError{http.StatusForbidden, "ForbiddenException", err.Error()}
		}
	}
	if err := h.repoExists(ctx, repo, segs[1]); err != nil {
		return err
	}
	ic, err := h.c.Iceberg(ctx, repo, segs[1], string(identity))
	if err != nil {
		return err
	}
	rest := segs[2:]
	switch {
	case len(rest) == 1 && rest[0] == "namespaces":
		switch r.Method {
		case http.MethodGet:
			return h.listNamespaces(w, r, ic)
		case http.MethodPost:
			return h.createNamespace(w, r, ic)
		}
	case len(rest) == 2 && rest[0] == "namespaces":
		ns := nsIdent(rest[1])
		switch r.Method {
		case http.MethodGet:
			props, err := ic.LoadNamespaceProperties(ctx, ns)
			if err != nil {
				return err
			}
			writeJSON(w, map[string]any{"namespace": ns, "properties": props})
			return nil
		case http.MethodHead:
			ok, err := ic.CheckNamespaceExists(ctx, ns)
			if err != nil {
				return err
			}
			if !ok {
				return notFound("NoSuchNamespaceException", "namespace %s does not exist", rest[1])
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		case http.MethodDelete:
			if err := ic.DropNamespace(ctx, ns); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case len(rest) == 3 && rest[0] == "namespaces" && rest[2] == "properties":
		if r.Method == http.MethodPost {
			return h.updateNamespace(w, r, ic, nsIdent(rest[1]))
		}
	case len(rest) == 3 && rest[0] == "namespaces" && rest[2] == "tables":
		switch r.Method {
		case http.MethodGet:
			return h.listTables(w, r, ic, nsIdent(rest[1]))
		case http.MethodPost:
			return h.createTable(w, r, ic, nsIdent(rest[1]))
		}
	case len(rest) == 4 && rest[0] == "namespaces" && rest[2] == "tables":
		ident := append(nsIdent(rest[1]), rest[3])
		switch r.Method {
		case http.MethodGet:
			tbl, err := ic.LoadTable(ctx, ident)
			if err != nil {
				return err
			}
			h.writeTable(w, tbl.MetadataLocation(), tbl.Metadata())
			return nil
		case http.MethodHead:
			ok, err := ic.CheckTableExists(ctx, ident)
			if err != nil {
				return err
			}
			if !ok {
				return notFound("NoSuchTableException", "table %s does not exist", strings.Join(ident, "."))
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		case http.MethodPost:
			return h.commitTable(w, r, ic, ident)
		case http.MethodDelete:
			if err := ic.DropTable(ctx, ident); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case len(rest) == 5 && rest[0] == "namespaces" && rest[2] == "tables" && rest[4] == "metrics":
		if r.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
	case len(rest) == 2 && rest[0] == "tables" && rest[1] == "rename":
		if r.Method == http.MethodPost {
			return h.renameTable(w, r, ic)
		}
	case len(rest) == 2 && rest[0] == "transactions" && rest[1] == "commit":
		if r.Method == http.MethodPost {
			return h.commitTransaction(w, r, ic)
		}
	default:
		return notFound("NotFoundException", "no such endpoint %s", r.URL.Path)
	}
	return methodNotAllowed(r)
}

// nsIdent splits a namespace path segment on the unit separator.
func nsIdent(s string) table.Identifier { return table.Identifier(strings.Split(s, "\x1f")) }

// repoExists answers 404 for a repo with no refs at all. rev is the
// branch (or tag, or commit) the request names: when it is a branch with
// data or code the repo exists, found with one lookup; only otherwise are
// the repo's refs listed, which costs as many refs as the repo has.
func (h *handler) repoExists(ctx context.Context, repo objects.RepoName, rev string) error {
	for _, name := range []refs.Name{catalog.DataRef(rev), refs.Name(refs.HeadsPrefix + rev)} {
		if _, err := h.c.Refs().Resolve(ctx, repo, name); err == nil {
			return nil
		}
	}
	rs, err := h.c.Refs().List(ctx, repo, "refs/")
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return notFound("NotFoundException", "repo %s does not exist (push to it first)", repo)
	}
	return nil
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) error {
	wh := r.URL.Query().Get("warehouse")
	overrides := map[string]string{}
	if wh != "" {
		repo, branch, ok := strings.Cut(wh, "@")
		if !ok || branch == "" {
			return badRequest("warehouse %q: want <repo>@<branch> (or <repo>@<data-tag>, <repo>@<commit>)", wh)
		}
		rn, err := objects.ParseRepoName(repo)
		if err != nil {
			return err
		}
		if err := h.repoExists(r.Context(), rn, branch); err != nil {
			return err
		}
		overrides["prefix"] = url.PathEscape(string(rn)) + "/" + url.PathEscape(branch)
	}
	writeJSON(w, map[string]any{"defaults": map[string]string{}, "overrides": overrides, "endpoints": endpoints})
	return nil
}

// writeTable answers a LoadTableResult. loc is "" for a staged create,
// whose metadata is not written anywhere yet (the spec's field is then
// absent). The config tells the reader where the files are; it holds the
// server's keys only under WithVendedCredentials.
func (h *handler) writeTable(w http.ResponseWriter, loc string, meta table.Metadata) {
	config := h.c.Warehouse().ReaderProps()
	if h.vend {
		config = h.c.Warehouse().Props()
	}
	if raw, ok := h.c.MetadataJSON(loc); ok && loc != "" {
		// The file's own bytes, spliced in as they are: encoding/json would
		// re-scan a RawMessage, which costs as much as serializing.
		head, err1 := json.Marshal(map[string]any{"metadata-location": loc, "config": config})
		if err1 == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(head[:len(head)-1])
			w.Write([]byte(`,"metadata":`))
			w.Write(raw)
			w.Write([]byte("}\n"))
			return
		}
	}
	out := map[string]any{"metadata": meta, "config": config}
	if loc != "" {
		out["metadata-location"] = loc
	}
	writeJSON(w, out)
}

func (h *handler) listNamespaces(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var parent table.Identifier
	p := r.URL.Query().Get("parent")
	if p != "" {
		parent = nsIdent(p)
	}
	pg, err := parsePage(r, "namespaces\x00"+p)
	if err != nil {
		return err
	}
	nss, err := ic.ListNamespaces(r.Context(), parent)
	if err != nil {
		return err
	}
	names := make([]string, len(nss))
	byName := make(map[string]table.Identifier, len(nss))
	for i, ns := range nss {
		names[i] = strings.Join(ns, "\x1f")
		byName[names[i]] = ns
	}
	names, next := pg.cut(names)
	out := make([]table.Identifier, len(names))
	for i, n := range names {
		out[i] = byName[n]
	}
	writeJSON(w, map[string]any{"namespaces": out, "next-page-token": next})
	return nil
}

func (h *handler) createNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req struct {
		Namespace  table.Identifier   `json:"namespace"`
		Properties iceberg.Properties `json:"properties"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Namespace) == 0 {
		return badRequest("missing namespace")
	}
	if err := ic.CreateNamespace(r.Context(), req.Namespace, req.Properties); err != nil {
		return err
	}
	props := req.Properties
	if props == nil {
		props = iceberg.Properties{}
	}
	writeJSON(w, map[string]any{"namespace": req.Namespace, "properties": props})
	return nil
}

func (h *handler) updateNamespace(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog, ns table.Identifier) error {
	var req struct {
		Removals []string           `json:"removals"`
		Updates  iceberg.Properties `json:"updates"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	for _, k := range req.Removals {
		if _, ok := req.Updates[k]; ok {
			return &httpError{http.StatusUnprocessableEntity, "UnprocessableEntityException", fmt.Sprintf("property %q is both in removals and in updates; nothing was changed", k)}
		}
	}
	sum, err := ic.UpdateNamespaceProperties(r.Context(), ns, req.Removals, req.Updates)
	if err != nil {
		return err
	}
	writeJSON(w, sum)
	return nil
}

type identifier struct {
	Namespace []string `json:"namespace"`
	Name      string   `json:"name"`
}

func (id identifier) ident() table.Identifier {
	return append(append(table.Identifier{}, id.Namespace...), id.Name)
}

func (h *handler) listTables(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog, ns table.Identifier) error {
	pg, err := parsePage(r, "tables\x00"+strings.Join(ns, "\x1f"))
	if err != nil {
		return err
	}
	var names []string
	for id, err := range ic.ListTables(r.Context(), ns) {
		if err != nil {
			return err
		}
		names = append(names, id[len(id)-1])
	}
	names, next := pg.cut(names)
	ids := make([]identifier, len(names))
	for i, n := range names {
		ids[i] = identifier{Namespace: ns, Name: n}
	}
	writeJSON(w, map[string]any{"identifiers": ids, "next-page-token": next})
	return nil
}

// Pagination of list namespaces and list tables, as the spec has it: a
// request without the pageToken parameter gets every result at once; one
// with it (empty for the first page) gets at most pageSize results
// (default DefaultPageSize, at most MaxPageSize) and, when more remain, a
// next-page-token to send as the next pageToken. next-page-token is null
// on the last page.
//
// A token is opaque to clients. It is the listing it belongs to and the
// last name returned, base64url-encoded:
//
//	"v1" 0x00 <listing> 0x00 <last name>
//	<listing> = "tables" 0x00 <namespace> | "namespaces" 0x00 <parent>
//
// Listings are sorted by name and a page starts after the token's name, so
// paging while tables are created or dropped never repeats a name and
// never skips one that existed throughout. A token that does not decode,
// or belongs to another listing, is a 400.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// page is one request's pagination: on=false returns everything.
type page struct {
	on      bool
	listing string
	after   string
	size    int
}

func parsePage(r *http.Request, listing string) (page, error) {
	q := r.URL.Query()
	pg := page{listing: listing, size: DefaultPageSize}
	if v, ok := q["pageSize"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 {
			return pg, badRequest("pageSize %q: want a positive integer", v[0])
		}
		pg.size = min(n, MaxPageSize)
	}
	v, ok := q["pageToken"]
	if !ok {
		return pg, nil
	}
	pg.on = true
	if v[0] == "" {
		return pg, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(v[0])
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 4 || parts[0] != "v1" {
		return pg, badRequest("pageToken %q is not a page token this server issued (start again without one, or with an empty one)", v[0])
	}
	if parts[1]+"\x00"+parts[2] != listing {
		return pg, badRequest("pageToken %q belongs to another listing (start again with an empty one)", v[0])
	}
	if err := catalog.ValidateName(parts[3]); err != nil {
		return pg, badRequest("pageToken %q is not a page token this server issued: %v", v[0], err)
	}
	pg.after = parts[3]
	return pg, nil
}

// cut returns the page of sorted names and the next page token (nil on
// the last page and when pagination is off).
func (pg page) cut(names []string) ([]string, *string) {
	if !pg.on {
		return names, nil
	}
	sort.Strings(names)
	start := sort.SearchStrings(names, pg.after)
	if start < len(names) && names[start] == pg.after {
		start++
	}
	names = names[start:]
	if len(names) <= pg.size {
		return names, nil
	}
	names = names[:pg.size]
	tok := base64.RawURLEncoding.EncodeToString([]byte("v1\x00" + pg.listing + "\x00" + names[len(names)-1]))
	return names, &tok
}

func (h *handler) createTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog, ns table.Identifier) error {
	var req struct {
		Name          string                        `json:"name"`
		Schema        *iceberg.Schema               `json:"schema"`
		Location      string                        `json:"location"`
		PartitionSpec *iceberg.UnboundPartitionSpec `json:"partition-spec"`
		WriteOrder    *table.UnboundSortOrder       `json:"write-order"`
		StageCreate   bool                          `json:"stage-create"`
		Properties    iceberg.Properties            `json:"properties"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return badRequest("missing table name")
	}
	if req.Schema == nil {
		return badRequest("missing schema")
	}
	var opts []icebergcat.CreateTableOpt
	if req.Location != "" {
		opts = append(opts, icebergcat.WithLocation(req.Location))
	}
	if req.PartitionSpec != nil {
		spec := req.PartitionSpec.PartitionSpec
		opts = append(opts, icebergcat.WithPartitionSpec(&spec))
	}
	if req.WriteOrder != nil {
		opts = append(opts, icebergcat.WithSortOrder(req.WriteOrder.SortOrder))
	}
	if req.Properties != nil {
		opts = append(opts, icebergcat.WithProperties(req.Properties))
	}
	ident := append(append(table.Identifier{}, ns...), req.Name)
	if req.StageCreate {
		// Nothing is written: the table is created by the commit that
		// follows, with an assert-create requirement (see commitTable).
		meta, err := ic.StageCreateTable(r.Context(), ident, req.Schema, opts...)
		if err != nil {
			return err
		}
		h.writeTable(w, "", meta)
		return nil
	}
	tbl, err := ic.CreateTable(r.Context(), ident, req.Schema, opts...)
	if err != nil {
		return err
	}
	h.writeTable(w, tbl.MetadataLocation(), tbl.Metadata())
	return nil
}

type tableChange struct {
	Identifier   *identifier        `json:"identifier"`
	Requirements table.Requirements `json:"requirements"`
	Updates      table.Updates      `json:"updates"`
}

func (h *handler) commitTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog, ident table.Identifier) error {
	var req tableChange
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Identifier != nil && strings.Join(req.Identifier.ident(), ".") != strings.Join(ident, ".") {
		return badRequest("identifier %s in the body does not match the path %s", strings.Join(req.Identifier.ident(), "."), strings.Join(ident, "."))
	}
	meta, loc, err := ic.CommitTable(r.Context(), ident, req.Requirements, req.Updates)
	if err != nil {
		return err
	}
	writeJSON(w, map[string]any{"metadata-location": loc, "metadata": meta})
	return nil
}

func (h *handler) commitTransaction(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req struct {
		TableChanges []tableChange `json:"table-changes"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.TableChanges) == 0 {
		return badRequest("table-changes is empty")
	}
	commits := make([]table.TableCommit, len(req.TableChanges))
	for i, tc := range req.TableChanges {
		if tc.Identifier == nil {
			return badRequest("table-changes[%d] has no identifier", i)
		}
		commits[i] = table.TableCommit{Identifier: tc.Identifier.ident(), Requirements: tc.Requirements, Updates: tc.Updates}
	}
	if err := ic.CommitTransaction(r.Context(), commits); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) renameTable(w http.ResponseWriter, r *http.Request, ic *catalog.IcebergCatalog) error {
	var req struct {
		Source      *identifier `json:"source"`
		Destination *identifier `json:"destination"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Source == nil || req.Destination == nil {
		return badRequest("rename needs source and destination")
	}
	if _, err := ic.RenameTable(r.Context(), req.Source.ident(), req.Destination.ident()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
