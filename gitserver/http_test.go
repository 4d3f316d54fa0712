package gitserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// httpTestServer serves an in-memory store with one repo, "demo", holding
// one commit on main. It returns the base URL and the commit id.
func httpTestServer(t *testing.T, a *access.Access) (string, objects.Hash) {
	t.Helper()
	db, err := pebblekv.OpenFS("", vfs.NewMem(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := objects.New(db, objects.Limits{})
	rs := refs.NewDB(store)
	ctx := context.Background()
	blob, _ := store.Put(ctx, "demo", objects.Type(3), []byte("hello\n")) // blob
	var tree bytes.Buffer
	tree.WriteString("100644 hello.txt\x00")
	tree.Write(blob[:])
	treeID, _ := store.Put(ctx, "demo", objects.Type(2), tree.Bytes()) // tree
	commit, err := store.Put(ctx, "demo", objects.Type(1), []byte("tree "+treeID.String()+"\nauthor A <a@b.c> 1700000000 +0000\ncommitter A <a@b.c> 1700000000 +0000\n\nfirst\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Update(ctx, "demo", []refs.Update{{Name: "refs/heads/main", New: commit}}, nil, "test"); err != nil {
		t.Fatal(err)
	}
	if err := rs.SetSymbolic(ctx, "demo", refs.HEAD, "refs/heads/main"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHTTPHandler(&Server{Objects: store, Refs: rs}, a))
	t.Cleanup(srv.Close)
	return srv.URL, commit
}

type httpCase struct {
	name, method, path string
	header             map[string]string
	user, pass         string
	body               []byte
	status             int
	contentType        string
	bodyHas            []string
}

func runHTTPCases(t *testing.T, base string, cases []httpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.user != "" || tc.pass != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, b)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if resp.StatusCode == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="weir"` {
				t.Errorf("401 without the Basic challenge: %v", resp.Header)
			}
			if resp.StatusCode == 200 && !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
				t.Errorf("no no-cache header: %v", resp.Header)
			}
			for _, want := range tc.bodyHas {
				if !bytes.Contains(b, []byte(want)) {
					t.Errorf("body lacks %q:\n%q", want, b)
				}
			}
		})
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestHTTPLoopback(t *testing.T) {
	a, _ := access.New(access.Config{Users: access.OpenUsers(filepath.Join(t.TempDir(), "users.json"))})
	base, commit := httpTestServer(t, a.WithAnonymous(true))
	lsRefs := []byte("0014command=ls-refs\n0001000bsymrefs0000")
	runHTTPCases(t, base, []httpCase{
		{name: "v0 advertisement", method: "GET", path: "/demo.git/info/refs?service=git-upload-pack", status: 200,
			contentType: "application/x-git-upload-pack-advertisement",
			bodyHas:     []string{"001e# service=git-upload-pack\n0000", commit.String() + " HEAD\x00", "refs/heads/main"}},
		{name: "without .git", method: "GET", path: "/demo/info/refs?service=git-upload-pack", status: 200,
			bodyHas: []string{commit.String() + " refs/heads/main"}},
		{name: "receive-pack advertisement", method: "GET", path: "/demo.git/info/refs?service=git-receive-pack", status: 200,
			contentType: "application/x-git-receive-pack-advertisement",
			bodyHas:     []string{"# service=git-receive-pack\n", "report-status"}},
		{name: "v2 advertisement has no preamble", method: "GET", path: "/demo.git/info/refs?service=git-upload-pack",
			header: map[string]string{"Git-Protocol": "version=2"}, status: 200, bodyHas: []string{"000eversion 2\n", "ls-refs"}},
		{name: "v2 ls-refs", method: "POST", path: "/demo.git/git-upload-pack", body: lsRefs,
			header: map[string]string{"Git-Protocol": "version=2", "Content-Type": "application/x-git-upload-pack-request"},
			status: 200, contentType: "application/x-git-upload-pack-result", bodyHas: []string{commit.String() + " refs/heads/main"}},
		{name: "v2 ls-refs gzip", method: "POST", path: "/demo.git/git-upload-pack", body: gzipBytes(lsRefs),
			header: map[string]string{"Git-Protocol": "version=2", "Content-Encoding": "gzip"},
			status: 200, bodyHas: []string{commit.String() + " refs/heads/main"}},
		{name: "bad gzip", method: "POST", path: "/demo.git/git-upload-pack", body: lsRefs,
			header: map[string]string{"Git-Protocol": "version=2", "Content-Encoding": "gzip"}, status: 400},
		{name: "unknown encoding", method: "POST", path: "/demo.git/git-upload-pack", body: lsRefs,
			header: map[string]string{"Content-Encoding": "br"}, status: 415},
		{name: "unknown repo", method: "GET", path: "/nope.git/info/refs?service=git-upload-pack", status: 404, bodyHas: []string{"Repository not found"}},
		{name: "unknown repo post", method: "POST", path: "/nope.git/git-upload-pack", body: []byte("0000"), status: 404, bodyHas: []string{"Repository not found"}},
		{name: "dumb info/refs", method: "GET", path: "/demo.git/info/refs", status: 403, bodyHas: []string{"dumb HTTP protocol is not supported"}},
		{name: "dumb object", method: "GET", path: "/demo.git/objects/ab/cdef", status: 404, bodyHas: []string{"dumb HTTP"}},
		{name: "dumb HEAD", method: "GET", path: "/demo.git/HEAD", status: 404, bodyHas: []string{"dumb HTTP"}},
		{name: "other path", method: "GET", path: "/", status: 404},
		{name: "unknown service", method: "GET", path: "/demo.git/info/refs?service=git-upload-archive", status: 400},
		{name: "dotdot", method: "GET", path: "/a/..%2F..%2Fetc.git/info/refs?service=git-upload-pack", status: 400},
		{name: "leading dash", method: "GET", path: "/-x.git/info/refs?service=git-upload-pack", status: 400},
		{name: "control char", method: "GET", path: "/de%01mo.git/info/refs?service=git-upload-pack", status: 400},
		{name: "post to info/refs", method: "POST", path: "/demo.git/info/refs?service=git-upload-pack", status: 405},
		{name: "get upload-pack", method: "GET", path: "/demo.git/git-upload-pack", status: 405},
	})
}

func TestHTTPRemoteAccess(t *testing.T) {
	users := access.OpenUsers(filepath.Join(t.TempDir(), "users.json"))
	for _, u := range []string{"reader", "writer", "stranger"} {
		if err := users.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	users.Grant("reader", "demo", access.PermRead)
	users.Grant("writer", "*", access.PermWrite)
	tok := map[string]string{}
	for _, u := range []string{"reader", "writer", "stranger"} {
		tok[u], _, _ = users.NewToken(u, "")
	}
	a, _ := access.New(access.Config{Users: users})
	base, _ := httpTestServer(t, a)
	up := "/demo.git/info/refs?service=git-upload-pack"
	rp := "/demo.git/info/refs?service=git-receive-pack"
	runHTTPCases(t, base, []httpCase{
		{name: "anonymous", method: "GET", path: up, status: 401},
		{name: "anonymous push", method: "POST", path: "/demo.git/git-receive-pack", body: []byte("0000"), status: 401},
		{name: "wrong token", method: "GET", path: up, user: "reader", pass: "weir_nope", status: 401},
		{name: "reader reads", method: "GET", path: up, user: "x", pass: tok["reader"], status: 200},
		{name: "reader may not push", method: "GET", path: rp, user: "x", pass: tok["reader"], status: 403, bodyHas: []string{"reader may not push to demo"}},
		{name: "reader on other repo", method: "GET", path: "/other.git/info/refs?service=git-upload-pack", user: "x", pass: tok["reader"], status: 403},
		{name: "stranger", method: "GET", path: up, user: "x", pass: tok["stranger"], status: 403},
		{name: "writer pushes", method: "GET", path: rp, user: "x", pass: tok["writer"], status: 200},
		{name: "writer on missing repo", method: "GET", path: "/nope.git/info/refs?service=git-upload-pack", user: "x", pass: tok["writer"], status: 404},
		{name: "writer may create", method: "GET", path: "/nope.git/info/refs?service=git-receive-pack", user: "x", pass: tok["writer"], status: 200},
	})
}
