package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// TestServeMountsWebView: weir serve's HTTP listener serves the web view
// at exactly "/" and under "/ui/", and Git everything else, a repo named
// ui/<x> included.
func TestServeMountsWebView(t *testing.T) {
	cfg, _ := parseServe(t, "--data", t.TempDir(), "--http", "127.0.0.1:0", "--ssh", "")
	a, err := newServeApp(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	ctx := context.Background()
	for _, repo := range []objects.RepoName{"team/demo", "ui/tools"} {
		tree, _ := a.Objects.Put(ctx, repo, plumbing.TreeObject, nil)
		code, _ := a.Objects.Put(ctx, repo, plumbing.CommitObject, []byte("tree "+tree.String()+"\nauthor A <a@x> 1700000000 +0000\ncommitter A <a@x> 1700000000 +0000\n\nfirst <commit>\n"))
		if err := a.Refs.Update(ctx, repo, []refs.Update{{Name: "refs/heads/main", New: code}}, nil, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ path, ctype, text string }{
		{"/", "text/html; charset=utf-8", `href="/ui/team/demo"`},
		{"/ui/team/demo", "text/html; charset=utf-8", "first &lt;commit&gt;"},
		{"/ui/-/style.css", "text/css; charset=utf-8", ".bar"},
		{"/team/demo.git/info/refs?service=git-upload-pack", "application/x-git-upload-pack-advertisement", "refs/heads/main"},
		{"/ui/tools.git/info/refs?service=git-upload-pack", "application/x-git-upload-pack-advertisement", "refs/heads/main"},
		{"/team/demo.git/HEAD", "text/plain; charset=utf-8", "dumb HTTP protocol is not supported"},
	} {
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		req.RemoteAddr = "127.0.0.1:5000"
		rec := httptest.NewRecorder()
		a.Mux.ServeHTTP(rec, req)
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) || !strings.Contains(rec.Body.String(), tc.text) {
			t.Errorf("GET %s = %d %q, want %q with %q:\n%.300s", tc.path, rec.Code, ct, tc.ctype, tc.text, rec.Body.String())
		}
	}
}
