package gitserver

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/objects"
)

// Access control.
//
// Who may do what is decided in two steps: a transport authenticates the
// client to an identity (an SSH public key, an HTTP token, or nobody), then
// Access.Can says what that identity may do with one repo.
//
//	identity               comes from                                may
//	"anonymous"            no credentials                            write everything, but only on a
//	                                                                 loopback listener (127.0.0.0/8, ::1)
//	"<user>"               a key or token in users.json              what the user's grants say
//	"key:SHA256:<fp>"      a key in the --authorized-keys file       write everything
//
// An authenticated identity never has fewer rights than "anonymous" on the
// same listener. Whether anonymous access is on is decided once per
// listener, from the address the listener is bound to (WithAnonymous), never
// from the client's address.
//
// Users live in one JSON file, <data>/users.json (mode 0600), written only by
// the weir admin commands and re-read by the server whenever it changes:
//
//	{"users": {"alice": {
//	    "keys":   ["ssh-ed25519 AAAAC3... alice@laptop"],
//	    "tokens": [{"sha256": "<hex of SHA-256(token)>", "created": "2026-11-21T19:30:00Z"}],
//	    "grants": {"demo": "write", "*": "read"}}}}
//
// Only the SHA-256 of a token is stored; the token itself is printed once,
// when it is made. A grant names one repo, or "*" for every repo.

// Permission is what an identity may do with a repo.
type Permission int

// Permissions, ordered: each includes the ones before it.
const (
	PermNone  Permission = iota // nothing
	PermRead                    // fetch and clone
	PermWrite                   // push, and create the repo on first push
)

// String returns "none", "read" or "write".
func (p Permission) String() string {
	switch p {
	case PermRead:
		return "read"
	case PermWrite:
		return "write"
	}
	return "none"
}

// ParsePermission parses "none", "read" or "write".
func ParsePermission(s string) (Permission, error) {
	switch s {
	case "none":
		return PermNone, nil
	case "read":
		return PermRead, nil
	case "write":
		return PermWrite, nil
	}
	return PermNone, fmt.Errorf("gitserver: unknown permission %q (want read, write or none)", s)
}

// MarshalText writes the permission's name.
func (p Permission) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses a permission's name.
func (p *Permission) UnmarshalText(b []byte) error {
	v, err := ParsePermission(string(b))
	*p = v
	return err
}

// Anonymous is the identity of a client that presented no credentials.
const Anonymous = "anonymous"

// keyIdentityPrefix starts the identity of a key from the authorized_keys
// file. ':' cannot occur in a user name, so the two never collide.
const keyIdentityPrefix = "key:"

// Access errors.
var (
	ErrBadUserName = errors.New("gitserver: invalid user name (want 1-64 of [a-z0-9._-], starting with a letter or digit)")
	ErrNoSuchUser  = errors.New("gitserver: no such user")
)

var userNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidUserName reports whether name may name a user. "anonymous" is reserved.
func ValidUserName(name string) bool {
	return userNameRE.MatchString(name) && name != Anonymous
}

// IsLoopback reports whether a listener bound to addr is reachable only
// from this machine (127.0.0.0/8 or ::1). An unspecified address
// (0.0.0.0, ::) is not loopback.
func IsLoopback(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return false
		}
		ip = net.ParseIP(host)
	}
	return ip != nil && ip.IsLoopback()
}

// userRecord is one user in users.json.
type userRecord struct {
	Keys   []string              `json:"keys,omitempty"`
	Tokens []tokenRecord         `json:"tokens,omitempty"`
	Grants map[string]Permission `json:"grants,omitempty"`
}

type tokenRecord struct {
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

type userFile struct {
	Users map[string]*userRecord `json:"users"`
}

// userIndex is users.json parsed for lookups.
type userIndex struct {
	file   userFile
	byKey  map[string]string // marshalled public key -> user
	byHash map[string]string // hex SHA-256 of a token -> user
}

func indexUsers(f userFile) *userIndex {
	ix := &userIndex{file: f, byKey: map[string]string{}, byHash: map[string]string{}}
	for name, u := range f.Users {
		for _, k := range u.Keys {
			pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k))
			if err == nil {
				ix.byKey[string(pk.Marshal())] = name
			}
		}
		for _, t := range u.Tokens {
			ix.byHash[t.SHA256] = name
		}
	}
	return ix
}

// Users is the user database: users.json in the data directory. It is safe
// for concurrent use, also across processes (the admin commands change it
// while the server runs; the server sees the change on its next lookup).
type Users struct {
	path string

	mu    sync.Mutex
	stamp fileStamp
	ix    *userIndex
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// OpenUsers returns the user database stored at path (usually
// <data>/users.json). A missing file is an empty database.
func OpenUsers(path string) *Users { return &Users{path: path} }

// Path returns the file the users are stored in.
func (u *Users) Path() string { return u.path }

// current returns the parsed file, re-reading it if it changed on disk.
func (u *Users) current() (*userIndex, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.path)
	if errors.Is(err, os.ErrNotExist) {
		u.ix, u.stamp = indexUsers(userFile{}), fileStamp{}
		return u.ix, nil
	}
	if err != nil {
		return nil, err
	}
	if st := stampOf(fi); u.ix == nil || st != u.stamp {
		f, err := readUserFile(u.path)
		if err != nil {
			return nil, err
		}
		u.ix, u.stamp = indexUsers(f), st
	}
	return u.ix, nil
}

func readUserFile(path string) (userFile, error) {
	var f userFile
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return userFile{Users: map[string]*userRecord{}}, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("gitserver: read %s: %w", path, err)
	}
	if f.Users == nil {
		f.Users = map[string]*userRecord{}
	}
	return f, nil
}

// update applies fn to the file under an exclusive lock and replaces the
// file atomically (write to a temporary file, fsync, rename).
func (u *Users) update(fn func(f *userFile) error) error {
	if err := os.MkdirAll(filepath.Dir(u.path), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(u.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	f, err := readUserFile(u.path)
	if err != nil {
		return err
	}
	if err := fn(&f); err != nil {
		return err
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(u.path), ".users-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), u.path)
}

// AddUser creates the user if it does not exist and adds the keys, each one
// line in authorized_keys format. A key may belong to one user only.
func (u *Users) AddUser(name string, keys ...string) error {
	if !ValidUserName(name) {
		return ErrBadUserName
	}
	var lines []string
	var parsed []gossh.PublicKey
	for _, k := range keys {
		pk, comment, _, _, err := gossh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			return fmt.Errorf("gitserver: parse key: %w", err)
		}
		line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pk)))
		if comment != "" {
			line += " " + comment
		}
		lines = append(lines, line)
		parsed = append(parsed, pk)
	}
	return u.update(func(f *userFile) error {
		ix := indexUsers(*f)
		for _, pk := range parsed {
			if owner, ok := ix.byKey[string(pk.Marshal())]; ok && owner != name {
				return fmt.Errorf("gitserver: key %s already belongs to user %s", gossh.FingerprintSHA256(pk), owner)
			}
		}
		rec := f.Users[name]
		if rec == nil {
			rec = &userRecord{}
			f.Users[name] = rec
		}
	next:
		for i, line := range lines {
			for _, have := range rec.Keys {
				if pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(have)); err == nil && bytes.Equal(pk.Marshal(), parsed[i].Marshal()) {
					continue next
				}
			}
			rec.Keys = append(rec.Keys, line)
		}
		return nil
	})
}

// RemoveUser deletes a user with its keys, tokens and grants.
func (u *Users) RemoveUser(name string) error {
	return u.update(func(f *userFile) error {
		if f.Users[name] == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		delete(f.Users, name)
		return nil
	})
}

// NewToken makes a new HTTP token for an existing user and returns it. Only
// its SHA-256 is stored: the caller must show the token now or lose it.
func (u *Users) NewToken(name string) (string, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := "weir_" + hex.EncodeToString(raw[:])
	err := u.update(func(f *userFile) error {
		rec := f.Users[name]
		if rec == nil {
			return fmt.Errorf("%w: %s (add it first with 'weir user add')", ErrNoSuchUser, name)
		}
		rec.Tokens = append(rec.Tokens, tokenRecord{SHA256: tokenHash(token), Created: time.Now().UTC().Truncate(time.Second)})
		return nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// Grant sets what a user may do with repo ("*" for every repo). PermNone
// removes the grant.
func (u *Users) Grant(name, repo string, p Permission) error {
	if repo != "*" {
		r, err := objects.ParseRepoName(repo)
		if err != nil {
			return err
		}
		repo = string(r)
	}
	return u.update(func(f *userFile) error {
		rec := f.Users[name]
		if rec == nil {
			return fmt.Errorf("%w: %s", ErrNoSuchUser, name)
		}
		if p == PermNone {
			delete(rec.Grants, repo)
			return nil
		}
		if rec.Grants == nil {
			rec.Grants = map[string]Permission{}
		}
		rec.Grants[repo] = p
		return nil
	})
}

// UserInfo describes one user for listings; it carries no secret.
type UserInfo struct {
	Name   string
	Keys   []string // SHA256 fingerprints
	Tokens int
	Grants map[string]Permission
}

// List returns every user, sorted by name.
func (u *Users) List() ([]UserInfo, error) {
	ix, err := u.current()
	if err != nil {
		return nil, err
	}
	var out []UserInfo
	for name, rec := range ix.file.Users {
		info := UserInfo{Name: name, Tokens: len(rec.Tokens), Grants: map[string]Permission{}}
		for _, k := range rec.Keys {
			if pk, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k)); err == nil {
				info.Keys = append(info.Keys, gossh.FingerprintSHA256(pk))
			}
		}
		for r, p := range rec.Grants {
			info.Grants[r] = p
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// authorizedKeys is an OpenSSH authorized_keys file, re-read when it changes.
// Options on a line are ignored; every key in it may write every repo.
type authorizedKeys struct {
	path string

	mu    sync.Mutex
	stamp fileStamp
	keys  map[string]string // marshalled public key -> identity
	ids   map[string]bool   // identities
}

// load returns the file's keys, re-reading it if it changed.
func (a *authorizedKeys) load() (keys map[string]string, ids map[string]bool) {
	if a == nil {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	fi, err := os.Stat(a.path)
	if err != nil {
		// A file that went away grants nothing.
		a.keys, a.ids, a.stamp = nil, nil, fileStamp{}
		return nil, nil
	}
	if st := stampOf(fi); a.keys == nil || st != a.stamp {
		b, err := os.ReadFile(a.path)
		if err != nil {
			return nil, nil
		}
		a.keys, a.ids = map[string]string{}, map[string]bool{}
		for len(bytes.TrimSpace(b)) > 0 {
			k, _, _, rest, err := gossh.ParseAuthorizedKey(b)
			if err != nil {
				break // ParseAuthorizedKey skips bad lines; an error means no key is left
			}
			id := keyIdentityPrefix + gossh.FingerprintSHA256(k)
			a.keys[string(k.Marshal())] = id
			a.ids[id] = true
			b = rest
		}
		a.stamp = st
	}
	return a.keys, a.ids
}

// Access decides who may read and write which repo. One Access is shared
// by all listeners; WithAnonymous gives each listener its own view.
type Access struct {
	users     *Users
	admins    *authorizedKeys
	anonymous bool
}

// NewAccess returns access control over users and, if authorizedKeysFile
// is not empty, an OpenSSH authorized_keys file whose keys may write every
// repo. Anonymous access is off; see WithAnonymous.
func NewAccess(users *Users, authorizedKeysFile string) (*Access, error) {
	a := &Access{users: users}
	if authorizedKeysFile != "" {
		if _, err := os.Stat(authorizedKeysFile); err != nil {
			return nil, fmt.Errorf("gitserver: authorized keys: %w", err)
		}
		a.admins = &authorizedKeys{path: authorizedKeysFile}
	}
	return a, nil
}

// WithAnonymous returns a view of a for one listener: on means a client
// without credentials may read and write every repo. Pass
// IsLoopback(listener.Addr()).
func (a *Access) WithAnonymous(on bool) *Access {
	b := *a
	b.anonymous = on
	return &b
}

// AnonymousAllowed reports whether clients without credentials are let in.
func (a *Access) AnonymousAllowed() bool { return a.anonymous }

// Users returns the user database.
func (a *Access) Users() *Users { return a.users }

// KeyIdentity returns the identity an SSH public key authenticates as. The
// caller must have verified that the client holds the private key.
// Unknown keys are "anonymous" when anonymous access is on; otherwise ok is
// false.
func (a *Access) KeyIdentity(pk gossh.PublicKey) (identity string, ok bool) {
	if pk != nil {
		if ix, err := a.users.current(); err == nil {
			if name, found := ix.byKey[string(pk.Marshal())]; found {
				return name, true
			}
		}
		if keys, _ := a.admins.load(); keys[string(pk.Marshal())] != "" {
			return keys[string(pk.Marshal())], true
		}
	}
	if a.anonymous {
		return Anonymous, true
	}
	return "", false
}

// KnownKey reports whether a key could authenticate at all. The SSH server
// uses it to answer a client offering a key; the identity is decided later,
// from the key the client proved it holds.
func (a *Access) KnownKey(pk gossh.PublicKey) bool {
	_, ok := a.KeyIdentity(pk)
	return ok
}

// TokenIdentity returns the user an HTTP token belongs to.
func (a *Access) TokenIdentity(token string) (identity string, ok bool) {
	if token == "" {
		return "", false
	}
	ix, err := a.users.current()
	if err != nil {
		return "", false
	}
	name, ok := ix.byHash[tokenHash(token)]
	return name, ok
}

// HTTPIdentity authenticates an HTTP request: a token as the password of
// Basic auth (any user name), or as a Bearer token. A request without
// credentials is "anonymous" if anonymous access is on. Wrong credentials
// are never downgraded to anonymous: ok is false.
//
// Its signature fits the Iceberg REST catalog's authorizer.
func (a *Access) HTTPIdentity(r *http.Request) (identity string, ok bool) {
	if _, pass, has := r.BasicAuth(); has {
		return a.TokenIdentity(pass)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, found := strings.CutPrefix(h, "Bearer "); found {
			return a.TokenIdentity(strings.TrimSpace(tok))
		}
		return "", false
	}
	if a.anonymous {
		return Anonymous, true
	}
	return "", false
}

// Permission returns what identity may do with repo.
func (a *Access) Permission(identity string, repo objects.RepoName) Permission {
	p := PermNone
	if a.anonymous {
		p = PermWrite
	}
	switch {
	case identity == Anonymous || identity == "":
		return p
	case strings.HasPrefix(identity, keyIdentityPrefix):
		// Still in the file? Keys removed from it lose access at once.
		if _, ids := a.admins.load(); ids[identity] {
			return PermWrite
		}
		return p
	}
	ix, err := a.users.current()
	if err != nil {
		return p
	}
	rec := ix.file.Users[identity]
	if rec == nil {
		return p
	}
	for _, g := range []string{string(repo), "*"} {
		if q, ok := rec.Grants[g]; ok && q > p {
			p = q
		}
	}
	return p
}

// Can reports whether identity may do want with repo.
func (a *Access) Can(identity string, repo objects.RepoName, want Permission) bool {
	return a.Permission(identity, repo) >= want
}
