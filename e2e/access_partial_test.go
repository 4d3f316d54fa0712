package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadForbiddenArchiveAndLazyFetch: an identity without a read grant
// on a repo gets nothing of it through the newer protocol paths either:
// git archive --remote (SSH), a blobless or treeless clone (SSH and HTTP),
// and the lazy fetch of a blob that a partial clone made by a reader
// needs, once that clone's credentials are the forbidden identity's. The
// same requests with a reader's credentials work, so the refusals are the
// grant's doing.
func TestReadForbiddenArchiveAndLazyFetch(t *testing.T) {
	data := t.TempDir()
	keys := t.TempDir()
	alice, bob := newKey(t, keys, "alice"), newKey(t, keys, "bob")
	weirCLI(t, "user", "add", "alice", "--key", alice+".pub", "--data", data)
	weirCLI(t, "user", "add", "bob", "--key", bob+".pub", "--data", data)
	weirCLI(t, "user", "grant", "alice", "demo", "write", "--data", data)
	weirCLI(t, "user", "grant", "bob", "other", "write", "--data", data) // bob: nothing on demo
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	s := startWeir(t, data, "--assume-remote")
	as := func(key string) []string { return []string{"GIT_SSH_COMMAND=" + sshCommand(key)} }

	work := newWorkRepo(t, 2)
	commitFile(t, work, "big.txt", strings.Repeat("old\n", 100))
	commitFile(t, work, "big.txt", strings.Repeat("new\n", 100))
	sshURL, httpURL := s.SSHURL("demo"), s.URL("demo")
	gitWith(t, work, as(alice), "push", "-q", sshURL, "main")

	// git archive --remote (stdout alone is the archive).
	archiveAs := func(key string, args ...string) ([]byte, string, error) {
		cmd := exec.Command("git", append([]string{"archive", "--remote=" + sshURL}, args...)...)
		cmd.Dir, cmd.Env = work, gitEnv(as(key)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.Bytes(), errb.String(), err
	}
	if _, errOut, err := archiveAs(alice, "main"); err != nil {
		t.Fatalf("alice's archive: %v\n%s", err, errOut)
	}
	for _, format := range []string{"tar", "zip"} {
		b, errOut, err := archiveAs(bob, "--format="+format, "main")
		if err == nil || len(b) != 0 || !strings.Contains(errOut, "weir: permission denied: bob may not read demo") {
			t.Fatalf("bob's %s archive: err %v, %d bytes:\n%s", format, err, len(b), errOut)
		}
	}

	// Partial clones.
	for _, filter := range []string{"blob:none", "tree:0"} {
		dir := filepath.Join(t.TempDir(), "bob")
		out, err := gitRun("", as(bob), "clone", "-q", "--filter="+filter, sshURL, dir)
		if err == nil || !strings.Contains(out, "weir: permission denied: bob may not read demo") {
			t.Fatalf("bob's ssh clone --filter=%s: %v\n%s", filter, err, out)
		}
		out, err = gitRun("", nil, "clone", "-q", "--filter="+filter, withCreds(httpURL, "bob", bobTok), dir+"-http")
		if err == nil || !strings.Contains(out, "The requested URL returned error: 403") {
			t.Fatalf("bob's http clone --filter=%s: %v\n%s", filter, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "big.txt")); err == nil {
			t.Fatalf("bob's refused clone left big.txt")
		}
	}

	// Lazy fetch: alice makes a blobless clone (HEAD~1's big.txt is not
	// fetched); checking HEAD~1 out needs that blob.
	for _, tc := range []struct{ name, url string }{
		{"ssh", sshURL},
		{"http", withCreds(httpURL, "alice", aliceTok)},
	} {
		dir := filepath.Join(t.TempDir(), "partial-"+tc.name)
		gitWith(t, "", as(alice), "clone", "-q", "--filter=blob:none", tc.url, dir)
		if tc.name == "http" {
			git(t, dir, "remote", "set-url", "origin", withCreds(httpURL, "bob", bobTok))
		}
		out, err := gitRun(dir, as(bob), "checkout", "-q", "HEAD~1")
		want := "weir: permission denied: bob may not read demo"
		if tc.name == "http" {
			want = "The requested URL returned error: 403"
		}
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("%s: bob's lazy fetch: %v\n%s", tc.name, err, out)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "big.txt")); string(b) != strings.Repeat("new\n", 100) {
			t.Fatalf("%s: big.txt changed by a refused lazy fetch: %q", tc.name, b)
		}
		// The reader's credentials fetch the same blob.
		if tc.name == "http" {
			git(t, dir, "remote", "set-url", "origin", tc.url)
		}
		gitWith(t, dir, as(alice), "checkout", "-q", "HEAD~1")
		if b, _ := os.ReadFile(filepath.Join(dir, "big.txt")); string(b) != strings.Repeat("old\n", 100) {
			t.Fatalf("%s: alice's lazy fetch: big.txt is %q", tc.name, b)
		}
	}
}
