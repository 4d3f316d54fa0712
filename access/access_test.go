package access

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
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
	tok, _, err := users.NewToken("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.NewToken("nobody", ""); err == nil {
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

	remote, err := New(Config{Users: users})
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
		identity Identity
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
	a, err := New(Config{Users: OpenUsers(filepath.Join(dir, "users.json")), AuthorizedKeys: path})
	if err != nil {
		t.Fatal(err)
	}
	id, ok := a.KeyIdentity(admin.PublicKey())
	if !ok || id != Identity("key:"+gossh.FingerprintSHA256(admin.PublicKey())) {
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
	if _, err := New(Config{Users: OpenUsers(filepath.Join(dir, "users.json")), AuthorizedKeys: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing authorized_keys file accepted")
	}
}

func TestHTTPIdentity(t *testing.T) {
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	if err := users.AddUser("alice"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := users.NewToken("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	remote, _ := New(Config{Users: users})
	local := remote.WithAnonymous(true)
	for _, tc := range []struct {
		name   string
		a      *Access
		setup  func(h map[string]string, user, pass *string)
		wantID Identity
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

func TestTokensListAndRevoke(t *testing.T) {
	users := OpenUsers(filepath.Join(t.TempDir(), "users.json"))
	if err := users.AddUser("alice"); err != nil {
		t.Fatal(err)
	}
	a, _ := New(Config{Users: users})
	ci, ciID, err := users.NewToken("alice", "ci")
	if err != nil {
		t.Fatal(err)
	}
	laptop, _, err := users.NewToken("alice", "")
	if err != nil {
		t.Fatal(err)
	}
	list, err := users.Tokens("alice")
	if err != nil || len(list) != 2 || list[0].ID != ciID || list[0].Name != "ci" || len(ciID) != 12 {
		t.Fatalf("Tokens = %+v, %v (ci id %q)", list, err, ciID)
	}
	if strings.Contains(list[0].ID, ci) || !strings.HasPrefix(tokenHash(ci), ciID) {
		t.Fatalf("token id %q is not a prefix of the token's hash", ciID)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("0", 12)} {
		if err := users.RevokeToken("alice", bad); !errors.Is(err, ErrNoSuchToken) {
			t.Errorf("RevokeToken(%q) = %v, want ErrNoSuchToken", bad, err)
		}
	}
	if err := users.RevokeToken("bob", ciID); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("revoke for unknown user: %v", err)
	}
	if err := users.RevokeToken("alice", strings.ToUpper(ciID)); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.TokenIdentity(ci); ok {
		t.Fatal("revoked token still authenticates")
	}
	if id, ok := a.TokenIdentity(laptop); !ok || id != "alice" {
		t.Fatalf("the other token stopped working: %q %v", id, ok)
	}
	if list, _ := users.Tokens("alice"); len(list) != 1 {
		t.Fatalf("after revoke: %+v", list)
	}
}

func TestBranchRules(t *testing.T) {
	users := OpenUsers(filepath.Join(t.TempDir(), "users.json"))
	for _, u := range []string{"alice", "bob"} {
		if err := users.AddUser(u); err != nil {
			t.Fatal(err)
		}
		if err := users.Grant(u, "*", PermWrite); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []Rule{
		{Repo: "../x", Branch: "main"},
		{Repo: "demo", Branch: ""},
		{Repo: "demo", Branch: "[bad"},
		{Repo: "demo", Branch: "a..b"},
		{Repo: "demo", Branch: "main", Writers: []string{"Not A User"}},
	} {
		if err := users.SetRule(bad); !errors.Is(err, ErrBadRule) {
			t.Errorf("SetRule(%+v) = %v, want ErrBadRule", bad, err)
		}
	}
	for _, r := range []Rule{
		{Repo: "demo", Branch: "main", RequireRun: true, Writers: []string{"alice", "bob"}},
		{Repo: "*", Branch: "release/*", Protect: true, Writers: []string{"alice"}},
		{Repo: "*", Branch: "*", Writers: []string{"alice", "bob", "anonymous"}},
	} {
		if err := users.SetRule(r); err != nil {
			t.Fatal(err)
		}
	}
	// Setting a rule with the same repo and branch replaces it.
	if err := users.SetRule(Rule{Repo: "demo", Branch: "main", Protect: true, RequireRun: true, Writers: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	if rules, _ := users.Rules(); len(rules) != 3 || !rules[0].Protect {
		t.Fatalf("Rules = %+v", rules)
	}
	a, err := New(Config{Users: users, Protected: []string{"refs/heads/main", "refs/tags/v*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		repo, ref string
		protected bool
	}{
		{"other", "refs/heads/main", true},
		{"other", "refs/data/main", true}, // the pair of a protected code ref
		{"other", "refs/heads/dev", false},
		{"other", "refs/data/dev", false},
		{"demo", "refs/data/release/1", true},
		{"demo", "refs/heads/release/1", true},
		{"demo", "refs/heads/release", false},
		{"demo", "refs/tags/v1", true},
		{"demo", "refs/tags/x", false},
	} {
		if got := a.Protected(objects.RepoName(tc.repo), refs.Name(tc.ref)); got != tc.protected {
			t.Errorf("Protected(%s, %s) = %v, want %v", tc.repo, tc.ref, got, tc.protected)
		}
	}
	if !a.Branch("demo", "main").RequireRun || a.Branch("other", "main").RequireRun {
		t.Fatal("require-run does not follow the rule's repo")
	}
	for _, tc := range []struct {
		id        Identity
		repo, ref string
		want      string // "" allowed, else part of the refusal
	}{
		{"alice", "demo", "refs/heads/release/2", ""},
		{"bob", "demo", "refs/heads/release/2", "may be written only by alice"},
		{"bob", "demo", "refs/data/release/2", "may be written only by alice"}, // rules cover the pair
		{"bob", "demo", "refs/heads/main", ""},
		{"bob", "demo", "refs/tags/anything", ""},
		{"carol", "demo", "refs/heads/dev", "carol may not write to demo"},
	} {
		err := a.AuthorizeRef(tc.id, objects.RepoName(tc.repo), refs.Name(tc.ref))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("AuthorizeRef(%s, %s) = %v, want allowed", tc.id, tc.ref, err)
		case tc.want != "" && (err == nil || !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("AuthorizeRef(%s, %s) = %v, want %q", tc.id, tc.ref, err, tc.want)
		}
	}
	// On loopback the anonymous identity is bound by the writers too.
	local := a.WithAnonymous(true)
	if err := local.AuthorizeRef(Anonymous, "demo", "refs/heads/release/3"); err == nil {
		t.Fatal("anonymous wrote a branch whose writers exclude it")
	}
	if err := local.AuthorizeRef(Anonymous, "demo", "refs/heads/dev"); err != nil {
		t.Fatalf("anonymous on loopback: %v", err)
	}
	err = a.AuthorizeDataWrite("alice", "demo", "main")
	if err == nil || !strings.Contains(err.Error(), "requires a run") || !strings.Contains(err.Error(), "merge it into main") {
		t.Fatalf("REST write to a require-run branch: %v", err)
	}
	if err := a.AuthorizeDataWrite("alice", "demo", "dev"); err != nil {
		t.Fatalf("REST write to dev: %v", err)
	}
	if err := users.RemoveRule("demo", "main"); err != nil {
		t.Fatal(err)
	}
	if a.Branch("demo", "main").RequireRun {
		t.Fatal("removed rule still applies")
	}
	if err := users.RemoveRule("demo", "main"); !errors.Is(err, ErrNoSuchRule) {
		t.Fatalf("removing a missing rule: %v", err)
	}
}

// TestBrokenUserFileClosesBranches: a users.json that does not parse
// opens nothing: every branch counts as protected and require-run, and
// nobody may write it.
func TestBrokenUserFileClosesBranches(t *testing.T) {
	p := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _ := New(Config{Users: OpenUsers(p)})
	local := a.WithAnonymous(true)
	br := local.Branch("demo", "dev")
	if !br.Protected || !br.RequireRun || br.MayWrite(Anonymous) {
		t.Fatalf("rules with a broken users.json: %+v", br)
	}
}

func TestMaxPriority(t *testing.T) {
	dir := t.TempDir()
	users := OpenUsers(filepath.Join(dir, "users.json"))
	_, aliceKey := newTestKey(t)
	adminSigner, adminKey := newTestKey(t)
	keys := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(keys, []byte(adminKey+" admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := users.AddUser("alice", aliceKey); err != nil {
		t.Fatal(err)
	}
	if err := users.AddUser("bob"); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Users: users, AuthorizedKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	admin, ok := a.KeyIdentity(adminSigner.PublicKey())
	if !ok {
		t.Fatal("admin key not known")
	}
	if got := a.MaxPriority("alice"); got != 0 {
		t.Fatalf("alice's default max priority = %d, want 0", got)
	}
	if err := users.SetMaxPriority("alice", 4); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []int{-1, MaxPriority + 1} {
		if err := users.SetMaxPriority("alice", bad); !errors.Is(err, ErrBadPriority) {
			t.Errorf("SetMaxPriority(alice, %d): err = %v, want ErrBadPriority", bad, err)
		}
	}
	if err := users.SetMaxPriority("nobody", 1); !errors.Is(err, ErrNoSuchUser) {
		t.Errorf("SetMaxPriority(nobody): err = %v", err)
	}
	for id, want := range map[Identity]int{"alice": 4, "bob": 0, Anonymous: 0, admin: MaxPriority, "key:SHA256:gone": 0, "nobody": 0} {
		if got := a.WithAnonymous(true).MaxPriority(id); got != want {
			t.Errorf("MaxPriority(%s) = %d, want %d", id, got, want)
		}
	}
	list, err := users.List()
	if err != nil {
		t.Fatal(err)
	}
	if list[0].Name != "alice" || list[0].MaxPriority != 4 {
		t.Fatalf("List: %+v", list[0])
	}
	b, _ := os.ReadFile(users.Path())
	if !strings.Contains(string(b), `"max_priority": 4`) {
		t.Fatalf("users.json lacks max_priority:\n%s", b)
	}
}

// TestIsAdmin: who may run the admin commands over SSH: a key of the
// --authorized-keys file, a user marked admin (at once, and no longer once
// unmarked), anonymous only on a listener with anonymous access; never a
// plain user with write grants.
func TestIsAdmin(t *testing.T) {
	dir := t.TempDir()
	keySigner, key := newTestKey(t)
	path := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(path, []byte(key+" ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := OpenUsers(filepath.Join(dir, "users.json"))
	for _, u := range []string{"alice", "bob"} {
		if err := users.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := users.Grant("bob", "*", PermWrite); err != nil {
		t.Fatal(err)
	}
	if err := users.SetAdmin("alice", true); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Users: users, AuthorizedKeys: path})
	if err != nil {
		t.Fatal(err)
	}
	keyID, _ := a.KeyIdentity(keySigner.PublicKey())
	remote, local := a.WithAnonymous(false), a.WithAnonymous(true)
	for _, c := range []struct {
		acc  *Access
		id   Identity
		want bool
	}{
		{remote, keyID, true}, {remote, "alice", true}, {remote, "bob", false},
		{remote, Anonymous, false}, {local, Anonymous, true}, {local, "bob", false},
		{remote, "key:SHA256:forged", false}, {remote, "nobody", false},
	} {
		if got := c.acc.IsAdmin(c.id); got != c.want {
			t.Errorf("IsAdmin(%q, anonymous %v) = %v, want %v", c.id, c.acc.AnonymousAllowed(), got, c.want)
		}
	}
	if err := users.SetAdmin("alice", false); err != nil {
		t.Fatal(err)
	}
	if remote.IsAdmin("alice") {
		t.Fatal("alice is still an admin after weir user admin alice off")
	}
	if list, _ := users.List(); list[0].Name != "alice" || list[0].Admin {
		t.Fatalf("List after SetAdmin off: %+v", list)
	}
	if err := users.SetAdmin("carol", true); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("SetAdmin of a missing user: %v", err)
	}
}
