package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Bounds of one page's work.
const (
	// MaxPathLen is the longest request path served; longer is 414.
	MaxPathLen = 2048
	// maxList is the most rows of a list of repos, branches, tags or
	// tables shown; past it the page says how many were left out.
	maxList = 200
	// runsPerPage is the most runs on one page of the runs list.
	runsPerPage = 50
	// historyWalk is the most data commits one page of a table's history
	// reads; historyMax the most versions it shows.
	historyWalk = 500
	historyMax  = 50
	// maxLogBytes is the most of a run's log a page shows.
	maxLogBytes = 1 << 20
)

//go:embed templates/*.html style.css
var assets embed.FS

// Config is what the web view reads from.
type Config struct {
	// Access is the listener's view of access (Access.WithAnonymous):
	// the same identities and read grants as Git over HTTP.
	Access  *access.Access
	Catalog *catalog.Catalog
	Objects *objects.Store
	Runs    *runs.Source
	// Git serves the Git paths that fall under /ui/ (gitserver.IsGitPath).
	Git    http.Handler
	Logger *slog.Logger
}

// handler serves the pages.
type handler struct {
	cfg   Config
	refs  refs.Store
	pages map[string]*template.Template
	css   []byte
}

// New returns the web view's handler; mount it at "/{$}" and "/ui/".
func New(cfg Config) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{cfg: cfg, refs: cfg.Catalog.Refs(), pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"short":     shortID,
		"date":      formatDate,
		"ms":        formatMS,
		"repoURL":   repoURL,
		"runURL":    runURL,
		"runsURL":   runsURL,
		"tableURL":  tableURL,
		"tablesURL": tablesURL,
		"diffURL":   diffURL,
	}
	for _, page := range []string{"repos", "repo", "runs", "run", "tables", "table", "diff", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", page, err)
		}
		h.pages[page] = t
	}
	css, err := assets.ReadFile("style.css")
	if err != nil {
		return nil, err
	}
	h.css = css
	return h, nil
}

// pageError is a page that could not be shown: its status and what the
// viewer is told (with what to do next).
type pageError struct {
	Status  int
	Message string
}

func (e *pageError) Error() string { return e.Message }

func notFound(format string, a ...any) error {
	return &pageError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) error {
	return &pageError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

// clip shortens client text quoted back in a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// route is one page: the word after "/-/" (or "" for the repo page) and
// how it renders from the rest of the path.
type route struct {
	word string
	page func(h *handler, r *http.Request, repo objects.RepoName, rest string) (string, any, error)
}

// routes are the pages of a repo; the dispatcher and the package comment
// list the same words.
var routes = []route{
	{"", (*handler).repoPage},
	{"runs", (*handler).runsPage},
	{"tables", (*handler).tablesPage},
	{"table", (*handler).tablePage},
	{"diff", (*handler).diffPage},
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p != "/" && gitserver.IsGitPath(p) && h.cfg.Git != nil {
		h.cfg.Git.ServeHTTP(w, r)
		return
	}
	setHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		h.render(w, r, http.StatusMethodNotAllowed, "error", errorData(http.StatusMethodNotAllowed, "this page is read-only: use GET"))
		return
	}
	if len(p) > MaxPathLen || len(r.URL.RawQuery) > MaxPathLen {
		h.render(w, r, http.StatusRequestURITooLong, "error", errorData(http.StatusRequestURITooLong, fmt.Sprintf("the address is longer than %d bytes", MaxPathLen)))
		return
	}
	if p == "/ui/-/style.css" {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(h.css)
		return
	}
	id, ok := h.cfg.Access.HTTPIdentity(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
		h.render(w, r, http.StatusUnauthorized, "error", errorData(http.StatusUnauthorized,
			"authentication required: sign in with your user name and an HTTP token (weir user token NAME) as the password"))
		return
	}
	page, data, err := h.dispatch(r, id, p)
	if err != nil {
		var pe *pageError
		if !errors.As(err, &pe) {
			h.cfg.Logger.Warn("web page failed", "path", p, "identity", string(id), "err", err)
			pe = &pageError{http.StatusInternalServerError, "internal error: " + h.cfg.Catalog.Redact(err.Error())}
		}
		h.render(w, r, pe.Status, "error", errorData(pe.Status, pe.Message))
		return
	}
	h.render(w, r, http.StatusOK, page, data)
}

// setHeaders forbids every script, frame and foreign resource: the
// escaping of html/template is the first line, this the second.
func setHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
}

// dispatch finds the page of path p for identity id.
func (h *handler) dispatch(r *http.Request, id access.Identity, p string) (string, any, error) {
	rest, ok := strings.CutPrefix(p, "/ui/")
	if p == "/" || ok && rest == "" {
		return h.reposPage(r, id)
	}
	if !ok {
		return "", nil, notFound("no such page: the web view starts at /")
	}
	name, tail, _ := strings.Cut(rest, "/-/")
	name = strings.TrimSuffix(name, "/")
	repo, err := objects.ParseRepoName(name)
	if err != nil || !h.cfg.Access.Can(id, repo, access.PermRead) {
		return "", nil, notFound("repo %q not found or not readable", clip(name))
	}
	if ok, err := h.repoExists(r.Context(), repo); err != nil {
		return "", nil, err
	} else if !ok {
		return "", nil, notFound("repo %q not found or not readable", clip(name))
	}
	word, arg, _ := strings.Cut(tail, "/")
	for _, rt := range routes {
		if rt.word == word && (word != "" || arg == "") {
			return rt.page(h, r, repo, arg)
		}
	}
	return "", nil, notFound("no such page %q: a repo has /-/runs, /-/tables/<rev>, /-/table/<ns.table>/<rev> and /-/diff/<a>..<b>", clip(word))
}

// repoExists reports whether repo has a branch (code or data).
func (h *handler) repoExists(ctx context.Context, repo objects.RepoName) (bool, error) {
	for _, prefix := range []string{refs.HeadsPrefix, refs.DataPrefix, refs.TagsPrefix} {
		l, err := h.refs.List(ctx, repo, prefix)
		if err != nil {
			return false, err
		}
		if len(l) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// render executes page into a buffer first, so that a failure is a
// clean 500 and not half a page.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := h.pages[page].Execute(&buf, data); err != nil {
		h.cfg.Logger.Warn("web template failed", "page", page, "path", r.URL.Path, "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("internal error\n")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

type errorPage struct {
	Title   string
	Repo    objects.RepoName // none: the header shows no repo
	Status  int
	Text    string
	Message string
}

func errorData(status int, msg string) errorPage {
	return errorPage{Title: http.StatusText(status), Status: status, Text: http.StatusText(status), Message: msg}
}

// commitInfo is what a page shows of a commit.
type commitInfo struct {
	Hash    objects.Hash
	Subject string
	Author  string
	When    time.Time
	Parents int
}

// commit reads commit c of repo.
func (h *handler) commit(ctx context.Context, repo objects.RepoName, c objects.Hash) (commitInfo, error) {
	o, err := h.cfg.Objects.Get(ctx, repo, c)
	if err != nil {
		return commitInfo{}, err
	}
	if o.Type != plumbing.CommitObject {
		return commitInfo{Hash: c, Subject: "(a " + o.Type.String() + ", not a commit)"}, nil
	}
	mo := &plumbing.MemoryObject{}
	mo.SetType(plumbing.CommitObject)
	mo.Write(o.Data)
	var cm object.Commit
	if err := cm.Decode(mo); err != nil {
		return commitInfo{}, fmt.Errorf("commit %s: %w", c, err)
	}
	subject, _, _ := strings.Cut(cm.Message, "\n")
	return commitInfo{Hash: c, Subject: subject, Author: cm.Author.Name, When: cm.Committer.When.UTC(), Parents: len(cm.ParentHashes)}, nil
}

func shortID(v any) string {
	var s string
	switch x := v.(type) {
	case objects.Hash:
		if x.IsZero() {
			return ""
		}
		s = x.String()
	case string:
		s = x
	default:
		s = fmt.Sprint(v)
	}
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func formatDate(v any) string {
	switch t := v.(type) {
	case time.Time:
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if t == nil || t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	return ""
}

func formatMS(v any) string {
	switch n := v.(type) {
	case int64:
		return (time.Duration(n) * time.Millisecond).String()
	case *int64:
		if n == nil {
			return ""
		}
		return (time.Duration(*n) * time.Millisecond).String()
	}
	return ""
}

// revPath escapes a revision for a URL path: each "/"-separated part on
// its own, so that a branch "feature/x" stays readable.
func revPath(rev string) string {
	parts := strings.Split(rev, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func repoURL(repo any) string { return "/ui/" + fmt.Sprint(repo) }

func runsURL(repo any) string { return "/ui/" + fmt.Sprint(repo) + "/-/runs" }

func runURL(repo any, id string) string {
	return "/ui/" + fmt.Sprint(repo) + "/-/runs/" + url.PathEscape(id)
}

func tablesURL(repo any, rev string) string {
	return "/ui/" + fmt.Sprint(repo) + "/-/tables/" + revPath(rev)
}

func tableURL(repo any, table any, rev string) string {
	return "/ui/" + fmt.Sprint(repo) + "/-/table/" + url.PathEscape(fmt.Sprint(table)) + "/" + revPath(rev)
}

func diffURL(repo any, a, b string) string {
	return "/ui/" + fmt.Sprint(repo) + "/-/diff/" + revPath(a) + ".." + revPath(b)
}
