package gitserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/access"
)

func TestParseGitCommand(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		service Service
		path    string
		ok      bool
	}{
		{"git-upload-pack 'demo.git'", UploadPack, "demo.git", true},
		{"git-receive-pack '/team/demo.git'", ReceivePack, "/team/demo.git", true},
		{"git-upload-pack demo", UploadPack, "demo", true},
		{"git upload-pack 'demo.git'", UploadPack, "demo.git", true},
		{"git-upload-pack 'a b'", UploadPack, "a b", true},
		{"git-upload-pack", "", "", false},
		{"git-upload-pack 'a' 'b'", "", "", false},
		{"git-upload-archive 'demo.git'", UploadArchive, "demo.git", true},
		{"git-upload-archivex 'demo.git'", "", "", false},
		{"weir whoami", "", "", false},
		{"sh -c 'git-upload-pack demo'", "", "", false},
	} {
		svc, path, ok := parseGitCommand(tc.raw)
		if svc != tc.service || path != tc.path || ok != tc.ok {
			t.Errorf("parseGitCommand(%q) = %q, %q, %v; want %q, %q, %v", tc.raw, svc, path, ok, tc.service, tc.path, tc.ok)
		}
	}
}

func TestLoadHostKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ssh_host_ed25519_key")
	k1, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.PublicKey().Marshal(), k2.PublicKey().Marshal()) {
		t.Fatal("host key changed between starts")
	}
	if k1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Fatalf("host key type %s", k1.PublicKey().Type())
	}
}

// sshTestServer runs an SSHServer (without a Git store: only weir
// commands are exercised here) on a loopback port.
func sshTestServer(t *testing.T, a *access.Access) (addr string) {
	t.Helper()
	host, err := LoadHostKey(filepath.Join(t.TempDir(), "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSSHServer(&Server{}, a, host)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String()
}

// goSSH runs cmd with the Go client, authenticating with signer (or with
// no key at all when signer is nil). It returns stdout, stderr and the exit
// status; err is set only when the connection could not be made.
func goSSH(t *testing.T, addr string, signer gossh.Signer, cmd string) (string, string, int, error) {
	t.Helper()
	cfg := &gossh.ClientConfig{User: "git", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
	if signer != nil {
		cfg.Auth = []gossh.AuthMethod{gossh.PublicKeys(signer)}
	}
	c, err := gossh.Dial("tcp", addr, cfg)
	if err != nil {
		return "", "", 0, err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	code := 0
	var exit *gossh.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitStatus()
	} else if err != nil {
		t.Fatalf("run %q: %v", cmd, err)
	}
	return out.String(), errb.String(), code, nil
}

func TestSSHIdentityAndCommands(t *testing.T) {
	dir := t.TempDir()
	users := access.OpenUsers(filepath.Join(dir, "users.json"))
	bob, bobKey := newTestKey(t)
	if err := users.AddUser("bob", bobKey); err != nil {
		t.Fatal(err)
	}
	remote, _ := access.New(access.Config{Users: users})
	remoteAddr := sshTestServer(t, remote)
	localAddr := sshTestServer(t, remote.WithAnonymous(true))
	stranger, _ := newTestKey(t)

	out, _, code, err := goSSH(t, remoteAddr, bob, "weir whoami")
	if err != nil || code != 0 || out != "bob\n" {
		t.Fatalf("bob whoami on remote: %q, %d, %v", out, code, err)
	}
	if _, _, _, err := goSSH(t, remoteAddr, stranger, "weir whoami"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("unknown key on remote listener: err = %v", err)
	}
	if _, _, _, err := goSSH(t, remoteAddr, nil, "weir whoami"); err == nil {
		t.Fatal("no key on remote listener: connected")
	}
	if out, _, code, err := goSSH(t, localAddr, stranger, "weir whoami"); err != nil || code != 0 || out != string(access.Anonymous)+"\n" {
		t.Fatalf("unknown key on loopback: %q, %d, %v", out, code, err)
	}
	if out, _, code, err := goSSH(t, localAddr, bob, "weir whoami"); err != nil || code != 0 || out != "bob\n" {
		t.Fatalf("bob on loopback: %q, %d, %v", out, code, err)
	}

	for _, tc := range []struct {
		cmd, stderr string
	}{
		{"ls -la", `weir: unknown command "ls"`},
		{"weir frobnicate", "weir: unknown weir command; available: whoami"},
		{"git-upload-pack '../etc/passwd'", "weir: invalid repository name"},
		{"git-receive-pack 'demo.git'", "weir: permission denied: bob may not push to demo"},
		{"git-upload-pack '-x'", "weir: invalid repository name"},
	} {
		_, stderr, code, err := goSSH(t, remoteAddr, bob, tc.cmd)
		if err != nil || code != 1 || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: stderr %q, exit %d, err %v; want exit 1 and %q", tc.cmd, stderr, code, err, tc.stderr)
		}
	}
}

// writeOpenSSHKey writes signer's private key (and .pub) for the ssh client.
func writeOpenSSHKey(t *testing.T, path string, priv ed25519.PrivateKey, withPrivate bool) {
	t.Helper()
	pub, _ := gossh.NewPublicKey(priv.Public())
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	if !withPrivate {
		return
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSSHOfferedKeyGrantsNothing: the client offers a privileged key it
// cannot sign with (the server accepts the offer), then authenticates with
// a key of a user without grants. The session must run as that user.
func TestSSHOfferedKeyGrantsNothing(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("OpenSSH client not installed")
	}
	dir := t.TempDir()
	_, adminPriv, _ := ed25519.GenerateKey(nil)
	_, bobPriv, _ := ed25519.GenerateKey(nil)
	writeOpenSSHKey(t, filepath.Join(dir, "admin"), adminPriv, false) // public half only
	writeOpenSSHKey(t, filepath.Join(dir, "bob"), bobPriv, true)
	adminPub, _ := os.ReadFile(filepath.Join(dir, "admin.pub"))
	bobPub, _ := os.ReadFile(filepath.Join(dir, "bob.pub"))
	authKeys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authKeys, adminPub, 0o600); err != nil {
		t.Fatal(err)
	}
	users := access.OpenUsers(filepath.Join(dir, "users.json"))
	if err := users.AddUser("bob", strings.TrimSpace(string(bobPub))); err != nil {
		t.Fatal(err)
	}
	a, err := access.New(access.Config{Users: users, AuthorizedKeys: authKeys})
	if err != nil {
		t.Fatal(err)
	}
	addr := sshTestServer(t, a)
	_, port, _ := net.SplitHostPort(addr)

	cmd := exec.Command("ssh", "-v", "-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-i", filepath.Join(dir, "admin.pub"), "-i", filepath.Join(dir, "bob"),
		"-p", port, "git@127.0.0.1", "weir", "whoami")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	t.Logf("ssh -v:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	// The server did accept the admin key's offer ...
	if !strings.Contains(stderr.String(), "Server accepts key: "+filepath.Join(dir, "admin.pub")) {
		t.Fatalf("the admin key was not offered and accepted; the test proves nothing")
	}
	// ... but the session runs as bob, who signed.
	if got := strings.TrimSpace(out.String()); got != "bob" {
		t.Fatalf("identity = %q, want bob", got)
	}
}

// fakeSession is an ssh.Session whose Context and PublicKey are set by the
// test; nothing else is called.
type fakeSession struct {
	ssh.Session
	ctx ssh.Context
	pk  ssh.PublicKey
}

func (f fakeSession) Context() ssh.Context     { return f.ctx }
func (f fakeSession) PublicKey() ssh.PublicKey { return f.pk }

type fakeContext struct {
	ssh.Context
	values map[any]any
}

func (f fakeContext) Value(k any) any { return f.values[k] }

// TestSSHIdentityUsesVerifiedKey: whatever the library left as the
// session's public key, the identity comes from the key whose signature was
// verified, and a disagreement between the two refuses the session.
func TestSSHIdentityUsesVerifiedKey(t *testing.T) {
	dir := t.TempDir()
	admin, adminKey := newTestKey(t)
	bob, bobKey := newTestKey(t)
	authKeys := filepath.Join(dir, "authorized_keys")
	os.WriteFile(authKeys, []byte(adminKey+"\n"), 0o600)
	users := access.OpenUsers(filepath.Join(dir, "users.json"))
	if err := users.AddUser("bob", bobKey); err != nil {
		t.Fatal(err)
	}
	a, _ := access.New(access.Config{Users: users, AuthorizedKeys: authKeys})
	s := NewSSHServer(&Server{}, a, admin)
	sess := func(offered, verified gossh.PublicKey) ssh.Session {
		v := map[any]any{}
		if verified != nil {
			v[verifiedKeyCtx{}] = verified
		}
		return fakeSession{ctx: fakeContext{values: v}, pk: offered}
	}
	if id, ok := s.identity(sess(admin.PublicKey(), bob.PublicKey())); ok {
		t.Fatalf("offered admin key, verified bob: identity %q accepted", id)
	}
	if id, ok := s.identity(sess(admin.PublicKey(), nil)); ok {
		t.Fatalf("no verified key: identity %q accepted", id)
	}
	if id, ok := s.identity(sess(bob.PublicKey(), bob.PublicKey())); !ok || id != "bob" {
		t.Fatalf("verified bob: %q, %v", id, ok)
	}
	if id, ok := s.identity(sess(admin.PublicKey(), admin.PublicKey())); !ok || !strings.HasPrefix(string(id), "key:SHA256:") {
		t.Fatalf("verified admin: %q, %v", id, ok)
	}
}

// newTestKey makes a client key: its signer and its authorized_keys line.
func newTestKey(t *testing.T) (gossh.Signer, string) {
	t.Helper()
	s, err := LoadHostKey(filepath.Join(t.TempDir(), "id_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// TestHostKeysAllAlgorithms: the three host keys are made on first start
// (mode 0600), an existing ed25519 key is kept, the same keys come back on
// the next start, and a client that accepts only one host key algorithm
// (ssh-ed25519, ecdsa-sha2-nistp256, rsa-sha2-512, rsa-sha2-256, ssh-rsa)
// connects and sees that key.
func TestHostKeysAllAlgorithms(t *testing.T) {
	dir := t.TempDir()
	old, err := LoadHostKey(filepath.Join(dir, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, k := range keys {
		types = append(types, k.PublicKey().Type())
	}
	if fmt.Sprint(types) != "[ssh-ed25519 ecdsa-sha2-nistp256 ssh-rsa]" {
		t.Fatalf("host key types %v", types)
	}
	if !bytes.Equal(keys[0].PublicKey().Marshal(), old.PublicKey().Marshal()) {
		t.Fatal("the existing ed25519 host key was replaced")
	}
	if n := keys[2].PublicKey().(gossh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey).N.BitLen(); n != 3072 {
		t.Fatalf("RSA host key of %d bits", n)
	}
	for _, f := range []string{"ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v", f, fi, err)
		}
	}
	again, err := LoadHostKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if !bytes.Equal(keys[i].PublicKey().Marshal(), again[i].PublicKey().Marshal()) {
			t.Fatalf("host key %s changed between starts", types[i])
		}
	}

	a, _ := access.New(access.Config{Users: access.OpenUsers(filepath.Join(dir, "users.json"))})
	s := NewSSHServer(&Server{}, a.WithAnonymous(true), keys...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Close()
	client, _ := newTestKey(t)
	for _, tc := range []struct {
		algo string
		key  gossh.PublicKey
	}{
		{gossh.KeyAlgoED25519, keys[0].PublicKey()},
		{gossh.KeyAlgoECDSA256, keys[1].PublicKey()},
		{gossh.KeyAlgoRSASHA512, keys[2].PublicKey()},
		{gossh.KeyAlgoRSASHA256, keys[2].PublicKey()},
		{gossh.KeyAlgoRSA, keys[2].PublicKey()},
	} {
		var seen gossh.PublicKey
		cfg := &gossh.ClientConfig{
			User: "git", Auth: []gossh.AuthMethod{gossh.PublicKeys(client)},
			HostKeyAlgorithms: []string{tc.algo},
			HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
				seen = k
				return nil
			},
			Timeout: 5 * time.Second,
		}
		c, err := gossh.Dial("tcp", l.Addr().String(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", tc.algo, err)
		}
		c.Close()
		if seen == nil || !bytes.Equal(seen.Marshal(), tc.key.Marshal()) {
			t.Fatalf("%s: the server showed another key", tc.algo)
		}
	}
}
