package gitserver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Session tests drive real C git against Server. The client reaches the
// server through git's ext:: transport: git runs this test binary as the
// remote command (TestHelperProcess), which only pipes its stdin and stdout
// to a Unix socket served by the test process. So the Server, its Pebble
// store and its hook live in the test, where the test can inspect them.
//
//	git ──ext::──► gitserver.test (TestHelperProcess) ──unix socket──► Server.Serve (in the test)
//
// The helper sends one header line first: "<service> <repo> <GIT_PROTOCOL>".

const (
	sessSockEnv  = "WEIR_GITSERVER_SESSION_SOCK"
	sessProtoEnv = "WEIR_GITSERVER_SESSION_PROTOCOL"
)

// TestHelperProcess is the ext:: remote command, not a test.
func TestHelperProcess(t *testing.T) {
	sock := os.Getenv(sessSockEnv)
	if sock == "" {
		return
	}
	args := flag.Args()
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "helper: want <service> <repo>, got %q\n", args)
		os.Exit(2)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		os.Exit(2)
	}
	// git does not hand GIT_PROTOCOL to ext:: commands; tests that want
	// v2 over this stateful transport set sessProtoEnv, as an SSH server
	// would pass the client's GIT_PROTOCOL.
	proto := os.Getenv("GIT_PROTOCOL")
	if proto == "" {
		proto = os.Getenv(sessProtoEnv)
	}
	fmt.Fprintf(conn, "%s %s %s\n", args[0], args[1], proto)
	go func() {
		io.Copy(conn, os.Stdin)
		conn.(*net.UnixConn).CloseWrite()
	}()
	io.Copy(os.Stdout, conn)
	os.Exit(0)
}

// sessServer is a Server on an in-memory Pebble, reachable by git.
type sessServer struct {
	t      testing.TB
	srv    *Server
	store  *objects.Store
	refs   refs.Store
	sock   string
	logBuf *lockedBuffer

	mu        sync.Mutex
	authorize func(refs.Name) error
	sessions  []*Session
	errs      []error
	wg        sync.WaitGroup
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newSessServer(t testing.TB) *sessServer {
	return newSessServerCache(t, 0)
}

// quietPebble drops Pebble's informational log lines.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)              {}
func (quietPebble) Errorf(string, ...any)             {}
func (quietPebble) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// newSessServerCache is newSessServer with a Pebble block cache of
// cacheBytes and bloom filters (0: the objects package's own options).
func newSessServerCache(t testing.TB, cacheBytes int64) *sessServer {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	var db *pebblekv.DB
	var err error
	if cacheBytes > 0 {
		cache := pebble.NewCache(cacheBytes)
		defer cache.Unref()
		opts := &pebble.Options{FS: vfs.NewMem(), Cache: cache, MemTableSize: 64 << 20, Logger: quietPebble{}}
		opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // inherited by the other levels
		var pdb *pebble.DB
		pdb, err = pebble.Open("", opts)
		db = pebblekv.New(pdb)
	} else {
		db, err = pebblekv.OpenFS("", vfs.NewMem(), nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	store := objects.New(db, objects.Limits{})
	ts := &sessServer{t: t, store: store, refs: refs.NewDB(store), logBuf: &lockedBuffer{}}
	ts.srv = &Server{
		Objects: store,
		Refs:    ts.refs,
		Logger:  slog.New(slog.NewTextHandler(ts.logBuf, nil)),
	}
	dir, err := os.MkdirTemp("", "wgs")
	if err != nil {
		t.Fatal(err)
	}
	ts.sock = filepath.Join(dir, "s")
	l, err := net.Listen("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ts.wg.Add(1)
			go ts.handle(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		ts.wg.Wait()
		db.Close()
		os.RemoveAll(dir)
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logBuf.String())
		}
	})
	return ts
}

func (ts *sessServer) handle(c net.Conn) {
	defer ts.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	hdr, err := br.ReadString('\n')
	if err != nil {
		return
	}
	f := strings.SplitN(strings.TrimSuffix(hdr, "\n"), " ", 3)
	repo, err := objects.ParseRepoName(f[1])
	if err != nil {
		fmt.Fprintf(c, "%04xERR %v\n", len(err.Error())+9, err)
		return
	}
	sess := &Session{
		Repo:       repo,
		Service:    Service(f[0]),
		Protocol:   protocolFromEnv(f[2]),
		Identity:   "tester",
		CreateRepo: true,
	}
	ts.mu.Lock()
	sess.Authorize = ts.authorize
	ts.sessions = append(ts.sessions, sess)
	ts.mu.Unlock()
	err = ts.srv.Serve(context.Background(), br, c, sess)
	if err != nil {
		ts.mu.Lock()
		ts.errs = append(ts.errs, err)
		ts.mu.Unlock()
	}
}

// protocolFromEnv reads "version=2" out of a GIT_PROTOCOL value.
func protocolFromEnv(v string) int {
	for _, kv := range strings.Split(v, ":") {
		switch kv {
		case "version=2":
			return 2
		case "version=1":
			return 1
		}
	}
	return 0
}

// lastSession returns the most recent session the server saw.
func (ts *sessServer) lastSession() *Session {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.sessions) == 0 {
		return nil
	}
	return ts.sessions[len(ts.sessions)-1]
}

// url is the ext:: remote URL of repo.
func (ts *sessServer) url(repo string) string {
	exe, err := os.Executable()
	if err != nil {
		ts.t.Fatal(err)
	}
	return "ext::" + exe + " -test.run=^TestHelperProcess$ -- %S " + repo
}

// ref returns the server's value of a ref (zero if absent).
func (ts *sessServer) ref(repo, name string) objects.Hash {
	ts.t.Helper()
	h, err := ts.refs.Resolve(context.Background(), objects.RepoName(repo), refs.Name(name))
	if err != nil {
		return objects.ZeroHash
	}
	return h
}

// sessGit runs C git in dirs under one HOME with the server's socket.
type sessGit struct {
	t    testing.TB
	home string
	env  []string
}

func newSessGit(t testing.TB, ts *sessServer) *sessGit {
	home := t.TempDir()
	g := &sessGit{t: t, home: home}
	g.env = append(os.Environ(),
		"HOME="+home,
		"XDG_CONFIG_HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Tess Ter", "GIT_AUTHOR_EMAIL=tess@example.com",
		"GIT_COMMITTER_NAME=Tess Ter", "GIT_COMMITTER_EMAIL=tess@example.com",
		"GIT_CONFIG_COUNT=3",
		"GIT_CONFIG_KEY_0=protocol.ext.allow", "GIT_CONFIG_VALUE_0=always",
		"GIT_CONFIG_KEY_1=init.defaultBranch", "GIT_CONFIG_VALUE_1=main",
		"GIT_CONFIG_KEY_2=advice.detachedHead", "GIT_CONFIG_VALUE_2=false",
		sessSockEnv+"="+ts.sock,
	)
	return g
}

// protocol makes the helper announce GIT_PROTOCOL=version=<v> (0: none).
func (g *sessGit) protocol(v int) {
	g.env = append(g.env, fmt.Sprintf("%s=version=%d", sessProtoEnv, v))
}

// try runs git in dir and returns stdout, stderr and the error.
func (g *sessGit) try(dir string, args ...string) (string, string, error) {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// runIn runs git with stdin and fails the test if it fails.
func (g *sessGit) runIn(dir, stdin string, args ...string) string {
	g.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		g.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// run runs git and fails the test if it fails; it returns stdout+stderr.
func (g *sessGit) run(dir string, args ...string) string {
	g.t.Helper()
	out, errs, err := g.try(dir, args...)
	if err != nil {
		g.t.Fatalf("git %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errs)
	}
	return out + errs
}

// fail runs git, expects it to fail and returns stderr.
func (g *sessGit) fail(dir string, args ...string) string {
	g.t.Helper()
	out, errs, err := g.try(dir, args...)
	if err == nil {
		g.t.Fatalf("git %s succeeded, want failure\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errs)
	}
	return errs
}

// revParse returns the hash of rev in dir.
func (g *sessGit) revParse(dir, rev string) string {
	g.t.Helper()
	return strings.TrimSpace(g.run(dir, "rev-parse", rev))
}

// newRepo makes a client repo with n commits on main and remote origin.
func (g *sessGit) newRepo(ts *sessServer, repo string, n int) string {
	g.t.Helper()
	dir := filepath.Join(g.home, "work-"+strings.ReplaceAll(repo, "/", "-"))
	g.run(g.home, "init", "-q", dir)
	g.run(dir, "remote", "add", "origin", ts.url(repo))
	g.commits(dir, "file", n)
	return dir
}

// commits adds n commits to the current branch of dir, each changing
// name and a file of its own under dir/sub.
func (g *sessGit) commits(dir, name string, n int) {
	g.t.Helper()
	for i := 0; i < n; i++ {
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			g.t.Fatal(err)
		}
		g.write(dir, name, fmt.Sprintf("%s line %d\n", name, i))
		g.write(dir, filepath.Join("sub", fmt.Sprintf("%s-%d", name, i)), fmt.Sprintf("content %d\n", i))
		g.run(dir, "add", "-A")
		g.run(dir, "commit", "-q", "-m", fmt.Sprintf("%s commit %d", name, i))
	}
}

func (g *sessGit) write(dir, name, content string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// httpServer serves ts over smart HTTP with the stateless-RPC half of the
// API, the way the HTTP transport does (without its access control).
func (ts *sessServer) httpServer() *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		var repoPart, endpoint string
		var service Service
		switch {
		case strings.HasSuffix(path, "/info/refs"):
			repoPart, endpoint = strings.TrimSuffix(path, "/info/refs"), "info/refs"
			service = Service(r.URL.Query().Get("service"))
		case strings.HasSuffix(path, "/git-upload-pack"):
			repoPart, service = strings.TrimSuffix(path, "/git-upload-pack"), UploadPack
		case strings.HasSuffix(path, "/git-receive-pack"):
			repoPart, service = strings.TrimSuffix(path, "/git-receive-pack"), ReceivePack
		default:
			http.NotFound(w, r)
			return
		}
		repo, err := objects.ParseRepoName(repoPart)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		sess := &Session{Repo: repo, Service: service, Protocol: protocolFromEnv(r.Header.Get("Git-Protocol")),
			StatelessRPC: true, Identity: "tester", CreateRepo: service == ReceivePack}
		ts.mu.Lock()
		ts.sessions = append(ts.sessions, sess)
		ts.mu.Unlock()
		var buf bytes.Buffer
		if endpoint == "info/refs" {
			if sess.Protocol != 2 {
				fmt.Fprintf(&buf, "%04x# service=%s\n0000", len(service)+15, service)
			}
			if err := ts.srv.AdvertiseRefs(r.Context(), &buf, sess); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/x-"+string(service)+"-advertisement")
			w.Write(buf.Bytes())
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		if err := ts.srv.Serve(r.Context(), body, &buf, sess); err != nil {
			ts.mu.Lock()
			ts.errs = append(ts.errs, err)
			ts.mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/x-"+string(service)+"-result")
		w.Write(buf.Bytes())
	})
	hs := httptest.NewServer(h)
	ts.t.Cleanup(hs.Close)
	return hs
}

// testHook is a pre-receive hook for the session tests. It writes one
// progress line per command; a push option "refuse=<ref>" refuses that
// ref, "runref" adds an update creating refs/runs/test/code at the first
// command's new value, and "fail" returns an error.
type testHook struct {
	mu    sync.Mutex
	calls []*hooks.Push
}

func (h *testHook) PreReceive(ctx context.Context, p *hooks.Push) (*hooks.Result, error) {
	h.mu.Lock()
	h.calls = append(h.calls, p)
	h.mu.Unlock()
	res := &hooks.Result{Refused: map[refs.Name]string{}}
	for _, c := range p.Commands {
		fmt.Fprintf(p.Progress, "test hook: checking %s\n", c.Name)
	}
	for _, o := range p.Options {
		switch {
		case strings.HasPrefix(o, "refuse="):
			res.Refused[refs.Name(strings.TrimPrefix(o, "refuse="))] = "refused by test hook"
		case o == "runref" && len(p.Commands) > 0:
			res.Updates = append(res.Updates, refs.Update{Name: "refs/runs/test/code", New: p.Commands[0].New})
		case o == "fail":
			return nil, fmt.Errorf("test hook failed on purpose")
		}
	}
	return res, nil
}

func (h *testHook) lastPush() *hooks.Push {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) == 0 {
		return nil
	}
	return h.calls[len(h.calls)-1]
}
