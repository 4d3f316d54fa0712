package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type httpResult struct {
	status int
	body   string
	header http.Header
}

// httpGet does one GET with optional basic-auth credentials.
func httpGet(t *testing.T, url, user, pass string) httpResult {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(b), resp.Header}
}

// weirCLI runs a weir admin command and returns its stdout.
func weirCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(weirBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("weir %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// newKey makes an ed25519 key pair with ssh-keygen and returns the private
// key's path.
func newKey(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return p
}

// withCreds puts user:token into an HTTP URL.
func withCreds(url, user, token string) string {
	return strings.Replace(url, "http://", "http://"+user+":"+token+"@", 1)
}

// TestRemoteAccess runs the server with the non-loopback rules
// (--assume-remote): no anonymous access; tokens over HTTP, keys over SSH,
// per-repo read/write grants, users changed while the server runs.
func TestRemoteAccess(t *testing.T) {
	data := t.TempDir()
	keys := t.TempDir()
	alice, bob, carol := newKey(t, keys, "alice"), newKey(t, keys, "bob"), newKey(t, keys, "carol")
	admin, stranger := newKey(t, keys, "admin"), newKey(t, keys, "stranger")
	authKeys := filepath.Join(keys, "authorized_keys")
	adminPub, _ := os.ReadFile(admin + ".pub")
	if err := os.WriteFile(authKeys, adminPub, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, key string }{{"alice", alice}, {"bob", bob}, {"carol", carol}} {
		weirCLI(t, "user", "add", u.name, "--key", u.key+".pub", "--data", data)
	}
	weirCLI(t, "user", "grant", "alice", "demo", "write", "--data", data)
	weirCLI(t, "user", "grant", "bob", "demo", "read", "--data", data)
	weirCLI(t, "user", "grant", "carol", "*", "read", "--data", data)
	aliceTok := strings.TrimSpace(weirCLI(t, "user", "token", "alice", "--data", data))
	bobTok := strings.TrimSpace(weirCLI(t, "user", "token", "bob", "--data", data))
	carolTok := strings.TrimSpace(weirCLI(t, "user", "token", "carol", "--data", data))
	if !strings.HasPrefix(aliceTok, "weir_") || aliceTok == bobTok {
		t.Fatalf("tokens %q %q", aliceTok, bobTok)
	}
	usersJSON, _ := os.ReadFile(filepath.Join(data, "users.json"))
	if strings.Contains(string(usersJSON), aliceTok) {
		t.Fatal("users.json stores a token in clear")
	}

	s := startWeir(t, data, "--assume-remote", "--authorized-keys", authKeys)
	work := newWorkRepo(t, 2)

	t.Run("http", func(t *testing.T) {
		url := s.URL("demo")
		// No credentials: 401 with a Basic challenge, and git gives up.
		r := httpGet(t, url+"/info/refs?service=git-upload-pack", "", "")
		if r.status != 401 || r.header.Get("WWW-Authenticate") != `Basic realm="weir"` {
			t.Fatalf("anonymous info/refs: %d %v", r.status, r.header)
		}
		gitFails(t, "", "ls-remote", url)
		// Wrong token: 401.
		if r := httpGet(t, url+"/info/refs?service=git-upload-pack", "alice", "weir_wrong"); r.status != 401 {
			t.Fatalf("wrong token: %d", r.status)
		}
		// alice may write demo: her push creates it.
		git(t, work, "push", "-q", withCreds(url, "alice", aliceTok), "main")
		// bob may read demo but not push.
		clone := filepath.Join(t.TempDir(), "bob")
		git(t, "", "clone", "-q", withCreds(url, "bob", bobTok), clone)
		commitFile(t, clone, "bob.txt", "bob\n")
		out := gitFails(t, clone, "push", "origin", "main")
		if !strings.Contains(out, "The requested URL returned error: 403") {
			t.Fatalf("bob's push:\n%s", out)
		}
		// bob has no grant on other repos: 403, whether they exist or not.
		if r := httpGet(t, s.URL("secret")+"/info/refs?service=git-upload-pack", "x", bobTok); r.status != 403 {
			t.Fatalf("bob on secret: %d %q", r.status, r.body)
		}
		// carol may read everything: a missing repo is a plain 404.
		r = httpGet(t, s.URL("nope")+"/info/refs?service=git-upload-pack", "carol", carolTok)
		if r.status != 404 || !strings.Contains(r.body, "Repository not found") {
			t.Fatalf("carol on a missing repo: %d %q", r.status, r.body)
		}
		// A Bearer token works too (for Iceberg clients).
		req, _ := http.NewRequest("GET", url+"/info/refs?service=git-upload-pack", nil)
		req.Header.Set("Authorization", "Bearer "+carolTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-git-upload-pack-advertisement" {
			t.Fatalf("bearer: %v %v", resp, err)
		}
		resp.Body.Close()
		// Granting bob write while the server runs takes effect at once.
		weirCLI(t, "user", "grant", "bob", "demo", "write", "--data", data)
		git(t, clone, "push", "-q", "origin", "main")
		weirCLI(t, "user", "grant", "bob", "demo", "read", "--data", data)
		// A token of a removed user stops working.
		weirCLI(t, "user", "remove", "carol", "--data", data)
		if r := httpGet(t, url+"/info/refs?service=git-upload-pack", "carol", carolTok); r.status != 401 {
			t.Fatalf("removed user's token: %d", r.status)
		}
	})

	t.Run("ssh", func(t *testing.T) {
		url := s.SSHURL("demo")
		as := func(key string) []string { return []string{"GIT_SSH_COMMAND=" + sshCommand(key)} }
		whoami := func(key string) (string, error) {
			cmd := exec.Command("sh", "-c", sshCommand(key)+" -p "+s.SSHPort+" git@127.0.0.1 weir whoami")
			out, err := cmd.CombinedOutput()
			return strings.TrimSpace(string(out)), err
		}
		if id, err := whoami(alice); err != nil || id != "alice" {
			t.Fatalf("alice whoami: %q %v", id, err)
		}
		if id, err := whoami(stranger); err == nil || !strings.Contains(id, "Permission denied (publickey)") {
			t.Fatalf("stranger whoami: %q %v", id, err)
		}
		// alice pushes, bob clones but cannot push.
		clone := filepath.Join(t.TempDir(), "alice")
		gitWith(t, "", as(alice), "clone", "-q", url, clone)
		commitFile(t, clone, "alice.txt", "alice\n")
		gitWith(t, clone, as(alice), "push", "-q", "origin", "main")
		bobClone := filepath.Join(t.TempDir(), "bob")
		gitWith(t, "", as(bob), "clone", "-q", url, bobClone)
		commitFile(t, bobClone, "bob2.txt", "bob\n")
		out, err := gitRun(bobClone, as(bob), "push", "origin", "main")
		if err == nil || !strings.Contains(out, "weir: permission denied: bob may not push to demo") {
			t.Fatalf("bob's ssh push: %v\n%s", err, out)
		}
		// A stranger gets nothing.
		out, err = gitRun("", as(stranger), "ls-remote", url)
		if err == nil || !strings.Contains(out, "Permission denied (publickey)") {
			t.Fatalf("stranger ls-remote: %v\n%s", err, out)
		}
		// The authorized_keys admin may push anywhere.
		gitWith(t, work, as(admin), "push", "-q", s.SSHURL("admin-made"), "main")

		// Offer the admin key without being able to sign with it (only
		// its .pub is given), then sign with bob's: the push must run as
		// bob, and be refused.
		offer := "ssh -F /dev/null -v -i " + admin + ".pub -i " + bob + " -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
		out, err = gitRun(bobClone, []string{"GIT_SSH_COMMAND=" + offer}, "push", "origin", "main")
		if !strings.Contains(out, "Server accepts key: "+admin+".pub") {
			t.Fatalf("the admin key was not offered and accepted; the test proves nothing:\n%s", out)
		}
		if err == nil || !strings.Contains(out, "weir: permission denied: bob may not push to demo") {
			t.Fatalf("push with an offered admin key: %v\n%s", err, tail(out, 2000))
		}
	})
}
