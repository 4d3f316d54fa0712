package rest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/apache/iceberg-go"

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

// TableCredentials vends the storage config of one table: the FileIO
// properties a client needs to read the files of the table at location
// in repo and, when write is set, to add new files under it. ok=false:
// nothing to vend for this table (the config keeps the warehouse's
// ReaderProps).
type TableCredentials func(repo objects.RepoName, location string, write bool) (props iceberg.Properties, ok bool, err error)

// WithTableCredentials makes load table and create table answer, in
// the LoadTableResult's config, what vend returns: write is set when the
// view is a branch the request's identity may write (RepoAccess with
// write=true), never for a data tag or a commit.
func WithTableCredentials(vend TableCredentials) Option {
	return func(h *handler) { h.tableCreds = vend }
}

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 32 << 20

type handler struct {
	c      *catalog.Catalog
	auth   Authorizer
	access RepoAccess
	log    *slog.Logger
	vend   bool
	router *router
	// tableCreds, when set, vends per-table credentials (see
	// WithTableCredentials).
	tableCreds TableCredentials
}

// NewRESTHandler returns the Iceberg REST catalog over c.
func NewRESTHandler(c *catalog.Catalog, opts ...Option) http.Handler {
	h := &handler{c: c, auth: LoopbackOnly, log: slog.Default(), router: newRouter(routes)}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP authenticates the request, bounds its body, and answers it
// (serve), or answers its error as a REST error body; a panic is logged
// and answered 500.
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

// serve answers an authenticated request: it finds the route, then, for
// a path under /v1/<repo>/<branch>/, parses that prefix, asks RepoAccess
// and opens the branch's catalog before it either calls the route or
// answers that there is none (404) or none for this method (405): those
// come after the prefix's 400, 403 and 404. The one path outside a
// prefix, /v1/config, is served at once.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, identity access.Identity) error {
	segs, err := segments(r)
	if err != nil {
		return err
	}
	rt, missing := h.router.match(r, segs)
	if len(segs) <= prefixLen { // no prefix: /v1/config, or no endpoint
		if missing != nil {
			return missing
		}
		return rt.serve(h, w, r, nil)
	}
	repo, err := objects.ParseRepoName(segs[0])
	if err != nil {
		return err
	}
	rev := segs[1]
	if err := h.checkAccess(r, identity, repo, rev); err != nil {
		return err
	}
	ic, err := h.open(r.Context(), identity, repo, rev)
	if err != nil {
		return err
	}
	if missing != nil {
		return missing
	}
	return rt.serve(h, w, r, ic)
}

// checkAccess asks RepoAccess whether the request's identity may read
// (GET, HEAD) or write (any other method) the data of rev in repo: a
// refusal is a 403 ForbiddenException.
func (h *handler) checkAccess(r *http.Request, identity access.Identity, repo objects.RepoName, rev string) error {
	if h.access == nil {
		return nil
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if err := h.access(identity, repo, rev, write); err != nil {
		return &httpError{http.StatusForbidden, "ForbiddenException", err.Error()}
	}
	return nil
}

// open returns the catalog of branch (or data tag, or commit) rev of
// repo, whose commits name identity: a 404 when the repo or rev does not
// exist.
func (h *handler) open(ctx context.Context, identity access.Identity, repo objects.RepoName, rev string) (*catalog.IcebergCatalog, error) {
	if err := h.repoExists(ctx, repo, rev); err != nil {
		return nil, err
	}
	return h.c.Iceberg(ctx, repo, rev, string(identity))
}

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
