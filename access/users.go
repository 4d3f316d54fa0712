package access

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Errors of the user database.
var (
	ErrBadUserName = errors.New("access: invalid user name (want 1-64 of [a-z0-9._-], starting with a letter or digit)")
	ErrNoSuchUser  = errors.New("access: no such user")
	ErrNoSuchToken = errors.New("access: no such token")
	ErrNoSuchRule  = errors.New("access: no such rule")
	ErrBadRule     = errors.New("access: invalid rule")
	ErrBadPriority = errors.New("access: invalid priority")
)

// userRecord is one user in users.json.
type userRecord struct {
	Keys   []string              `json:"keys,omitempty"`
	Tokens []tokenRecord         `json:"tokens,omitempty"`
	Grants map[string]Permission `json:"grants,omitempty"`
	// MaxPriority is the highest run priority (push option priority=N)
	// the user may ask for; 0, the default, is normal priority only.
	MaxPriority int `json:"max_priority,omitempty"`
	// Admin lets the user run the admin commands over SSH (weir data,
	// import, user, rule while the server runs); see Access.IsAdmin.
	Admin bool `json:"admin,omitempty"`
}

type tokenRecord struct {
	SHA256  string    `json:"sha256"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
}

// tokenIDLen is how many hex digits of a token's hash name it.
const tokenIDLen = 12

func (t tokenRecord) id() string {
	if len(t.SHA256) < tokenIDLen {
		return t.SHA256
	}
	return t.SHA256[:tokenIDLen]
}

// Rule is one branch rule: what it covers and what it demands. See the
// package comment.
type Rule struct {
	// Repo is a repo name, or "*" for every repo.
	Repo string `json:"repo"`
	// Branch is a branch name or a path.Match pattern over branch names.
	Branch string `json:"branch"`
	// Protect refuses force push, rewind and deletion of the branch's
	// code and data refs.
	Protect bool `json:"protect,omitempty"`
	// RequireRun lets the branch's data move only through a successful
	// run, or a pushed merge of data from another branch that passes the
	// branch's expectations.
	RequireRun bool `json:"require-run,omitempty"`
	// Writers, when not empty, are the only identities that may move the
	// branch's refs.
	Writers []string `json:"writers,omitempty"`
}

// String shows the rule as `weir rule list` prints it.
func (r Rule) String() string {
	var what []string
	if r.Protect {
		what = append(what, "protect")
	}
	if r.RequireRun {
		what = append(what, "require-run")
	}
	if len(r.Writers) > 0 {
		what = append(what, "writers="+strings.Join(r.Writers, ","))
	}
	if len(what) == 0 {
		what = append(what, "(no effect)")
	}
	return r.Repo + " " + r.Branch + " " + strings.Join(what, " ")
}

// check validates a rule from an admin command.
func (r *Rule) check() error {
	if r.Repo != "*" {
		n, err := objects.ParseRepoName(r.Repo)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadRule, err)
		}
		r.Repo = string(n)
	}
	if r.Branch == "" {
		return fmt.Errorf("%w: empty branch pattern", ErrBadRule)
	}
	if _, err := path.Match(r.Branch, ""); err != nil {
		return fmt.Errorf("%w: branch pattern %q: %v", ErrBadRule, r.Branch, err)
	}
	if !strings.ContainsAny(r.Branch, "*?[") && refs.CheckName(refs.Name(refs.HeadsPrefix+r.Branch)) != nil {
		return fmt.Errorf("%w: %q is not a branch name", ErrBadRule, r.Branch)
	}
	for _, w := range r.Writers {
		if w != string(Anonymous) && !ValidUserName(w) && !Identity(w).isKey() {
			return fmt.Errorf("%w: writer %q is not a user name, %q or key:SHA256:...", ErrBadRule, w, Anonymous)
		}
	}
	return nil
}

// matches reports whether the rule covers branch of repo.
func (r Rule) matches(repo objects.RepoName, branch string) bool {
	if r.Repo != "*" && r.Repo != string(repo) {
		return false
	}
	ok, _ := path.Match(r.Branch, branch)
	return ok || r.Branch == branch
}

type userFile struct {
	Users map[string]*userRecord `json:"users"`
	Rules []Rule                 `json:"rules,omitempty"`
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
		return f, fmt.Errorf("access: read %s: %w", path, err)
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

// user returns the record of an existing user, for update.
func (f *userFile) user(name string) (*userRecord, error) {
	rec := f.Users[name]
	if rec == nil {
		return nil, fmt.Errorf("%w: %s (add it first with 'weir user add')", ErrNoSuchUser, name)
	}
	return rec, nil
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
			return fmt.Errorf("access: parse key: %w", err)
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
				return fmt.Errorf("access: key %s already belongs to user %s", gossh.FingerprintSHA256(pk), owner)
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
		if _, err := f.user(name); err != nil {
			return err
		}
		delete(f.Users, name)
		return nil
	})
}

// NewToken makes a new HTTP token for an existing user and returns it with
// its id. label (may be empty) says what the token is for, in listings.
// Only its SHA-256 is stored: the caller must show the token now or lose
// it.
func (u *Users) NewToken(name, label string) (token, id string, err error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	token = "weir_" + hex.EncodeToString(raw[:])
	rec := tokenRecord{SHA256: tokenHash(token), Name: strings.TrimSpace(label), Created: time.Now().UTC().Truncate(time.Second)}
	err = u.update(func(f *userFile) error {
		r, err := f.user(name)
		if err != nil {
			return err
		}
		r.Tokens = append(r.Tokens, rec)
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return token, rec.id(), nil
}

// TokenInfo describes one token for listings; it carries no secret.
type TokenInfo struct {
	ID      string // first 12 hex digits of the token's SHA-256
	Name    string
	Created time.Time
}

// Tokens lists a user's tokens, oldest first.
func (u *Users) Tokens(name string) ([]TokenInfo, error) {
	ix, err := u.current()
	if err != nil {
		return nil, err
	}
	rec, err := ix.file.user(name)
	if err != nil {
		return nil, err
	}
	out := make([]TokenInfo, 0, len(rec.Tokens))
	for _, t := range rec.Tokens {
		out = append(out, TokenInfo{ID: t.id(), Name: t.Name, Created: t.Created})
	}
	return out, nil
}

// RevokeToken deletes the user's token whose id (or a longer prefix of
// its hash) is id. A running server refuses the token at once.
func (u *Users) RevokeToken(name, id string) error {
	id = strings.ToLower(strings.TrimSpace(id))
	if len(id) < tokenIDLen {
		return fmt.Errorf("%w: want the %d-digit id 'weir user tokens %s' prints", ErrNoSuchToken, tokenIDLen, name)
	}
	return u.update(func(f *userFile) error {
		rec, err := f.user(name)
		if err != nil {
			return err
		}
		for i, t := range rec.Tokens {
			if strings.HasPrefix(t.SHA256, id) {
				rec.Tokens = append(rec.Tokens[:i], rec.Tokens[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("%w: %s has no token %s (see 'weir user tokens %s')", ErrNoSuchToken, name, id, name)
	})
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
		rec, err := f.user(name)
		if err != nil {
			return err
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

// SetMaxPriority sets the highest run priority the user may ask for
// (0, normal priority only, to MaxPriority).
func (u *Users) SetMaxPriority(name string, prio int) error {
	if prio < 0 || prio > MaxPriority {
		return fmt.Errorf("%w: %d (want 0 to %d)", ErrBadPriority, prio, MaxPriority)
	}
	return u.update(func(f *userFile) error {
		rec, err := f.user(name)
		if err != nil {
			return err
		}
		rec.MaxPriority = prio
		return nil
	})
}

// SetAdmin makes the user an admin (on) or not: an admin may run the
// admin commands over SSH while the server runs (Access.IsAdmin).
func (u *Users) SetAdmin(name string, on bool) error {
	return u.update(func(f *userFile) error {
		rec, err := f.user(name)
		if err != nil {
			return err
		}
		rec.Admin = on
		return nil
	})
}

// UserInfo describes one user for listings; it carries no secret.
type UserInfo struct {
	Name        string
	Keys        []string // SHA256 fingerprints
	Tokens      int
	Grants      map[string]Permission
	MaxPriority int
	Admin       bool
}

// List returns every user, sorted by name.
func (u *Users) List() ([]UserInfo, error) {
	ix, err := u.current()
	if err != nil {
		return nil, err
	}
	var out []UserInfo
	for name, rec := range ix.file.Users {
		info := UserInfo{Name: name, Tokens: len(rec.Tokens), Grants: map[string]Permission{}, MaxPriority: rec.MaxPriority, Admin: rec.Admin}
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

// SetRule adds a branch rule, replacing the rule with the same repo and
// branch pattern.
func (u *Users) SetRule(r Rule) error {
	if err := r.check(); err != nil {
		return err
	}
	return u.update(func(f *userFile) error {
		for i, have := range f.Rules {
			if have.Repo == r.Repo && have.Branch == r.Branch {
				f.Rules[i] = r
				return nil
			}
		}
		f.Rules = append(f.Rules, r)
		return nil
	})
}

// RemoveRule deletes the rule with this repo and branch pattern.
func (u *Users) RemoveRule(repo, branch string) error {
	return u.update(func(f *userFile) error {
		for i, have := range f.Rules {
			if have.Repo == repo && have.Branch == branch {
				f.Rules = append(f.Rules[:i], f.Rules[i+1:]...)
				return nil
			}
		}
		return fmt.Errorf("%w for repo %s, branch %s (see 'weir rule list')", ErrNoSuchRule, repo, branch)
	})
}

// Rules returns every branch rule, in the order they were added.
func (u *Users) Rules() ([]Rule, error) {
	ix, err := u.current()
	if err != nil {
		return nil, err
	}
	return append([]Rule(nil), ix.file.Rules...), nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
