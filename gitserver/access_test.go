package gitserver

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/objects"
)

func newTestKey(t *testing.T) (gossh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:7480", true},
		{"127.1.2.3:1", true},
		{"[::1]:22", true},
		{"0.0.0.0:7480", false},
		{"[::]:22", false},
		{"10.0.0.1:22", false},
		{"192.168.1.5:80", false},
	} {
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := IsLoopback(a); got != tc.want {
			t.Errorf("IsLoopback(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestAccessUsersTokensGrants(t *testing.T) {
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	_, aliceKey := newTestKey(t)
	bobSigner, bobKey := newTestKey(t)
	if err := users.AddUser("alice", aliceKey+" alice@laptop"); err != nil {
		t.Fatal(err)
	}
	if err := users.AddUser("bob", bobKey); err != nil {
		t.Fatal(err)
	}
	if err := users.AddUser("carol", aliceKey); err == nil || !strings.Contains(err.Error(), "already belongs to user alice") {
		t.Fatalf("adding alice's key to carol: err = %v", err)
	}
	for _, bad := range []string{"", "Alice", "anonymous", "a:b", "-x", "a/b"} {
		if err := users.AddUser(bad); err == nil {
			t.Errorf("AddUser(%q) accepted", bad)
		}
	}
	tok, err := users.NewToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.NewToken("nobody"); err == nil {
		t.Fatal("token for unknown user")
	}
	if err := users.Grant("alice", "demo.git", PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := users.Grant("alice", "*", PermRead); err != nil {
		t.Fatal(err)
	}
	if err := users.Grant("bob", "../etc", PermRead); err == nil {
		t.Fatal("grant on a bad repo name accepted")
	}

	// The file holds no token, only its hash, and is private.
	b, err := os.ReadFile(users.Path())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), tok) {
		t.Fatal("users.json contains the token itself")
	}
	if !strings.Contains(string(b), tokenHash(tok)) {
		t.Fatal("users.json lacks the token's hash")
	}
	var f userFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if got := f.Users["alice"].Grants["demo"]; got != PermWrite {
		t.Fatalf("alice's grant on demo = %v", got)
	}
	fi, _ := os.Stat(users.Path())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("users.json mode %v", fi.Mode())
	}

	remote, err := NewAccess(users, "")
	if err != nil {
		t.Fatal(err)
	}
	local := remote.WithAnonymous(true)
	if id, ok := remote.TokenIdentity(tok); !ok || id != "alice" {
		t.Fatalf("token identity = %q, %v", id, ok)
	}
	if _, ok := remote.TokenIdentity(tok + "x"); ok {
		t.Fatal("wrong token accepted")
	}
	if id, ok := remote.KeyIdentity(bobSigner.PublicKey()); !ok || id != "bob" {
		t.Fatalf("bob's key identity = %q, %v", id, ok)
	}
	stranger, _ := newTestKey(t)
	if _, ok := remote.KeyIdentity(stranger.PublicKey()); ok {
		t.Fatal("unknown key authenticated on a remote listener")
	}
	if id, ok := local.KeyIdentity(stranger.PublicKey()); !ok || id != Anonymous {
		t.Fatalf("unknown key on loopback = %q, %v", id, ok)
	}

	for _, tc := range []struct {
		a        *Access
		identity string
		repo     string
		want     Permission
	}{
		{remote, "alice", "demo", PermWrite},
		{remote, "alice", "other", PermRead},
		{remote, "bob", "demo", PermNone},
		{remote, Anonymous, "demo", PermNone},
		{remote, "", "demo", PermNone},
		{remote, "key:SHA256:forged", "demo", PermNone},
		{remote, "nobody", "demo", PermNone},
		{local, Anonymous, "demo", PermWrite},
		{local, "bob", "demo", PermWrite},
	} {
		if got := tc.a.Permission(tc.identity, objects.RepoName(tc.repo)); got != tc.want {
			t.Errorf("anonymous=%v Permission(%q, %q) = %v, want %v", tc.a.AnonymousAllowed(), tc.identity, tc.repo, got, tc.want)
		}
	}

	// Changes by another process (the admin command) apply at once.
	if err := OpenUsers(users.Path()).Grant("bob", "demo", PermRead); err != nil {
		t.Fatal(err)
	}
	if got := remote.Permission("bob", "demo"); got != PermRead {
		t.Fatalf("after grant: bob on demo = %v", got)
	}
	if err := users.RemoveUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, ok := remote.TokenIdentity(tok); ok {
		t.Fatal("token of a removed user still works")
	}
	list, err := users.List()
	if err != nil || len(list) != 1 || list[0].Name != "bob" || len(list[0].Keys) != 1 || !strings.HasPrefix(list[0].Keys[0], "SHA256:") {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestAccessAuthorizedKeysFile(t *testing.T) {
	dir := t.TempDir()
	admin, adminKey := newTestKey(t)
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, []byte("# admins\nno-pty "+adminKey+" admin@host\n\ngarbage line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewAccess(OpenUsers(filepath.Join(dir, "users.json")), path)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := a.KeyIdentity(admin.PublicKey())
	if !ok || id != "key:"+gossh.FingerprintSHA256(admin.PublicKey()) {
		t.Fatalf("admin identity = %q, %v", id, ok)
	}
	if !a.Can(id, "anything", PermWrite) {
		t.Fatal("authorized_keys key may not write")
	}
	// Removing the key from the file revokes it, also for an identity
	// already handed out.
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if a.Can(id, "anything", PermRead) {
		t.Fatal("removed key still has access")
	}
	if _, ok := a.KeyIdentity(admin.PublicKey()); ok {
		t.Fatal("removed key still authenticates")
	}
	if _, err := NewAccess(OpenUsers(filepath.Join(dir, "users.json")), filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing authorized_keys file accepted")
	}
}

func TestHTTPIdentity(t *testing.T) {
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	if err := users.AddUser("alice"); err != nil {
		t.Fatal(err)
	}
	tok, err := users.NewToken("alice")
	if err != nil {
		t.Fatal(err)
	}
	remote, _ := NewAccess(users, "")
	local := remote.WithAnonymous(true)
	for _, tc := range []struct {
		name   string
		a      *Access
		setup  func(h map[string]string, user, pass *string)
		wantID string
		wantOK bool
	}{
		{"remote none", remote, nil, "", false},
		{"local none", local, nil, Anonymous, true},
		{"basic token", remote, func(_ map[string]string, u, p *string) { *u, *p = "whatever", tok }, "alice", true},
		{"basic wrong", remote, func(_ map[string]string, u, p *string) { *u, *p = "alice", "nope" }, "", false},
		{"basic wrong on loopback", local, func(_ map[string]string, u, p *string) { *u, *p = "alice", "nope" }, "", false},
		{"bearer", remote, func(h map[string]string, _, _ *string) { h["Authorization"] = "Bearer " + tok }, "alice", true},
		{"other scheme", remote, func(h map[string]string, _, _ *string) { h["Authorization"] = "Digest x" }, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/demo.git/info/refs", nil)
			h := map[string]string{}
			var u, p string
			if tc.setup != nil {
				tc.setup(h, &u, &p)
			}
			if u != "" || p != "" {
				r.SetBasicAuth(u, p)
			}
			for k, v := range h {
				r.Header.Set(k, v)
			}
			id, ok := tc.a.HTTPIdentity(r)
			if id != tc.wantID || ok != tc.wantOK {
				t.Fatalf("HTTPIdentity = %q, %v; want %q, %v", id, ok, tc.wantID, tc.wantOK)
			}
		})
	}
}
