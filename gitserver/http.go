package gitserver

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Smart HTTP transport (gitprotocol-http).
//
//	GET  /<repo>[.git]/info/refs?service=git-upload-pack    advertisement
//	GET  /<repo>[.git]/info/refs?service=git-receive-pack   advertisement (needs write)
//	POST /<repo>[.git]/git-upload-pack                      one stateless fetch round
//	POST /<repo>[.git]/git-receive-pack                     one push
//
// A v0/v1 advertisement starts with the "# service=<svc>" packet and a
// flush; with "Git-Protocol: version=2" it is the bare v2 capability list,
// as git http-backend does. Request bodies may be gzip-encoded. The dumb
// HTTP protocol (fetching info/refs without ?service=, or loose objects) is
// refused with a message saying so.
//
// Status codes: 400 bad repo name or service, or a malformed request
// body (pkt-lines, protocol, gzip) caught before any answer; 401 (with WWW-Authenticate:
// Basic realm="weir") when credentials are missing or wrong; 403 when the
// identity may not do this to the repo; 404 "Repository not found".

// httpHandler serves smart HTTP for one listener.
type httpHandler struct {
	srv    *Server
	access *access.Access
}

// NewHTTPHandler returns the smart HTTP handler for s, with a deciding who
// may do what (use the listener's view, Access.WithAnonymous). It serves
// every path as a repo path; mount other handlers (the Iceberg REST catalog
// under /iceberg/) next to it in an http.ServeMux.
func NewHTTPHandler(s *Server, a *access.Access) http.Handler {
	return &httpHandler{srv: s, access: a}
}

// gitPath splits a request path into the repo part and the Git endpoint:
// "/team/demo.git/info/refs" -> ("team/demo.git", "info/refs").
func gitPath(p string) (repo, endpoint string) {
	for _, e := range []string{"/info/refs", "/git-upload-pack", "/git-receive-pack"} {
		if r, ok := strings.CutSuffix(p, e); ok {
			return strings.TrimPrefix(r, "/"), e[1:]
		}
	}
	return "", ""
}

// IsGitPath reports whether request path p is one this handler owns: a
// smart HTTP endpoint or a dumb HTTP path (refused with a message). A mux
// that mounts other handlers beside it under prefixes a repo name can
// start with (the web view's /ui/) hands such paths back to it.
func IsGitPath(p string) bool {
	_, endpoint := gitPath(p)
	return endpoint != "" || dumbPath(p)
}

// dumbPath reports whether p looks like a dumb HTTP request.
func dumbPath(p string) bool {
	return strings.HasSuffix(p, "/HEAD") || strings.Contains(p, "/objects/") || strings.HasSuffix(p, "/info/packs")
}

const dumbMessage = "weir: the dumb HTTP protocol is not supported; use a Git client that speaks smart HTTP (git 1.6.6 or newer)\n"

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	log := transportLogger(h.srv).With("transport", "http", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
	identity, repo, service, err := h.serve(rec, r)
	attrs := []any{"status", rec.status, "bytes", rec.bytes, "ms", time.Since(start).Milliseconds()}
	if repo != "" {
		attrs = append(attrs, "repo", string(repo))
	}
	if service != "" {
		attrs = append(attrs, "service", string(service))
	}
	if identity != "" {
		attrs = append(attrs, "identity", string(identity))
	}
	if err != nil {
		log.Warn("http request failed", append(attrs, "err", err)...)
		return
	}
	log.Info("http request", attrs...)
}

// serve handles one request; the results are only for the log line.
func (h *httpHandler) serve(w *statusRecorder, r *http.Request) (identity access.Identity, repo objects.RepoName, service Service, err error) {
	repoPart, endpoint := gitPath(r.URL.Path)
	switch {
	case endpoint == "" && dumbPath(r.URL.Path):
		httpError(w, http.StatusNotFound, dumbMessage)
		return
	case endpoint == "":
		httpError(w, http.StatusNotFound, "weir: not found; clone URLs look like http://HOST/<repo>.git\n")
		return
	case endpoint == "info/refs":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			httpError(w, http.StatusMethodNotAllowed, "weir: info/refs takes GET\n")
			return
		}
		service = Service(r.URL.Query().Get("service"))
		if service == "" {
			httpError(w, http.StatusForbidden, dumbMessage)
			return
		}
	default:
		if r.Method != http.MethodPost {
			httpError(w, http.StatusMethodNotAllowed, "weir: "+endpoint+" takes POST\n")
			return
		}
		service = Service(endpoint)
	}
	if service != UploadPack && service != ReceivePack {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("weir: unknown service %q\n", service))
		return
	}
	repo, err = objects.ParseRepoName(repoPart)
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("weir: invalid repository name %q\n", repoPart))
		return "", "", service, err
	}

	identity, ok := h.access.HTTPIdentity(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
		httpError(w, http.StatusUnauthorized, "weir: authentication required: use an HTTP token (weir user token NAME) as the password\n")
		return
	}
	need := access.PermRead
	if service == ReceivePack {
		need = access.PermWrite
	}
	if !h.access.Can(identity, repo, need) {
		if identity.IsAnonymous() {
			w.Header().Set("WWW-Authenticate", `Basic realm="weir"`)
			httpError(w, http.StatusUnauthorized, "weir: authentication required\n")
			return
		}
		httpError(w, http.StatusForbidden, fmt.Sprintf("weir: %s may not %s %s\n", identity, permVerb(need), repo))
		return
	}

	sess := &Session{
		Repo:         repo,
		Service:      service,
		Protocol:     parseGitProtocol(r.Header.Get("Git-Protocol")),
		StatelessRPC: true,
		Identity:     identity,
		Authorize: func(ref refs.Name) error {
			return h.access.AuthorizeRef(identity, repo, ref)
		},
		CreateRepo: service == ReceivePack,
	}
	// A stalled body read ends at the deadline (Server.ReadIdleTimeout).
	rc := http.NewResponseController(w.ResponseWriter)
	sess.cut = func() { _ = rc.SetReadDeadline(time.Now()) }
	ctx := r.Context()

	if endpoint == "info/refs" {
		// Buffer the advertisement: it is small, and a missing repo must
		// still become a 404 rather than a half-written 200.
		var buf bytes.Buffer
		if sess.Protocol != 2 {
			httpPktLine(&buf, "# service="+string(service)+"\n")
			buf.WriteString("0000")
		}
		if err := h.srv.AdvertiseRefs(ctx, &buf, sess); err != nil {
			h.fail(w, err)
			return identity, repo, service, err
		}
		setNoCache(w.Header())
		w.Header().Set("Content-Type", "application/x-"+string(service)+"-advertisement")
		if r.Method == http.MethodHead {
			return identity, repo, service, nil
		}
		_, err = w.Write(buf.Bytes())
		return identity, repo, service, err
	}

	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			httpError(w, http.StatusBadRequest, "weir: bad gzip request body\n")
			return identity, repo, service, err
		}
		defer zr.Close()
		body = zr
	default:
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("weir: unsupported Content-Encoding %q\n", enc))
		return identity, repo, service, nil
	}

	out := &lazyResponse{w: w, contentType: "application/x-" + string(service) + "-result"}
	stop := out.startFlusher(100 * time.Millisecond)
	err = h.srv.Serve(ctx, body, out, sess)
	stop()
	if err != nil && !out.started() {
		h.fail(w, err)
		return identity, repo, service, err
	}
	out.flush()
	return identity, repo, service, err
}

// fail turns an error from the protocol session into a status: 404 for a
// missing repo, 400 for a request the client got wrong (malformed
// pkt-lines, a broken protocol, a corrupt gzip body), 500 for the rest.
func (h *httpHandler) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrRepoNotFound):
		httpError(w, http.StatusNotFound, "Repository not found\n")
	case badRequest(err):
		httpError(w, http.StatusBadRequest, "weir: bad request: "+oneLine(err.Error())+"\n")
	default:
		httpError(w, http.StatusInternalServerError, "weir: internal error; the server log has the details\n")
	}
}

// badRequest reports whether err is the client's fault: its text quotes
// at most a clipped piece of what the client sent.
func badRequest(err error) bool {
	var corrupt flate.CorruptInputError
	return errors.Is(err, errBadPktLine) || errors.Is(err, ErrProtocol) ||
		errors.As(err, &corrupt) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader)
}

func permVerb(p access.Permission) string {
	if p == access.PermWrite {
		return "push to"
	}
	return "read"
}

// protocolVersion reads "version=N" from a Git-Protocol header or a
// GIT_PROTOCOL variable: colon-separated key=value pairs. Anything but 2 is 0.
func parseGitProtocol(h string) int {
	for _, kv := range strings.Split(h, ":") {
		if kv == "version=2" {
			return 2
		}
	}
	return 0
}

func setNoCache(h http.Header) {
	h.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
	h.Set("Pragma", "no-cache")
	h.Set("Cache-Control", "no-cache, max-age=0, must-revalidate")
}

func httpError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	setNoCache(h)
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// writePktLine writes one pkt-line: four hex digits of length, then s.
func httpPktLine(w io.Writer, s string) {
	fmt.Fprintf(w, "%04x%s", len(s)+4, s)
}

// statusRecorder remembers the status and size of a response for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// lazyResponse sends the 200 and headers only with the first byte of the
// body, so an error before any output can still become a 404 or 500. A
// background flusher pushes buffered output (side-band progress, report
// status) to the client at most every interval, without flushing on every
// small write of a large pack.
type lazyResponse struct {
	w           *statusRecorder
	contentType string

	mu      sync.Mutex
	begun   bool
	dirty   bool
	stopped bool
}

func (l *lazyResponse) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.begun {
		l.begun = true
		h := l.w.Header()
		h.Set("Content-Type", l.contentType)
		setNoCache(h)
		l.w.WriteHeader(http.StatusOK)
	}
	l.dirty = true
	return l.w.Write(p)
}

func (l *lazyResponse) started() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.begun
}

func (l *lazyResponse) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dirty {
		l.w.Flush()
		l.dirty = false
	}
}

func (l *lazyResponse) startFlusher(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				l.flush()
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// transportLogger returns s.Logger or a discarding logger.
func transportLogger(s *Server) *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}
