package access

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// ErrDenied is wrapped by every refusal of AuthorizeRef and
// AuthorizeDataWrite.
var ErrDenied = errors.New("access: denied")

// DeniedError is a refusal, with the reason a client is shown.
// errors.Is(err, ErrDenied) is true.
type DeniedError struct {
	Reason string // one line, says what to do instead where there is something
}

func (e *DeniedError) Error() string { return e.Reason }

// Unwrap makes errors.Is(err, ErrDenied) hold.
func (e *DeniedError) Unwrap() error { return ErrDenied }

func denied(format string, args ...any) error {
	return &DeniedError{Reason: fmt.Sprintf(format, args...)}
}

// Config configures an Access.
type Config struct {
	// Users is the user database (users, keys, tokens, grants, rules).
	Users *Users
	// AuthorizedKeys, if not empty, is an OpenSSH authorized_keys file
	// whose keys may write every repo.
	AuthorizedKeys string
	// Protected are ref patterns (path.Match, or exact) whose refs refuse
	// force push and deletion: weir serve --protected. A pattern matching
	// refs/heads/<b> or refs/data/<b> protects the pair b.
	Protected []string
}

// Access decides who may read and write which repo and ref. One Access is
// shared by all listeners; WithAnonymous gives each listener its own view.
type Access struct {
	users     *Users
	admins    *authorizedKeys
	protected []string
	anonymous bool
}

// New returns access control as cfg says. Anonymous access is off; see
// WithAnonymous.
func New(cfg Config) (*Access, error) {
	if cfg.Users == nil {
		return nil, errors.New("access: no user database")
	}
	a := &Access{users: cfg.Users}
	if cfg.AuthorizedKeys != "" {
		if _, err := os.Stat(cfg.AuthorizedKeys); err != nil {
			return nil, fmt.Errorf("access: authorized keys: %w", err)
		}
		a.admins = &authorizedKeys{path: cfg.AuthorizedKeys}
	}
	for _, p := range cfg.Protected {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("access: protected ref pattern %q: %w", p, err)
		}
		a.protected = append(a.protected, p)
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
// Unknown keys are Anonymous when anonymous access is on; otherwise ok is
// false.
func (a *Access) KeyIdentity(pk gossh.PublicKey) (id Identity, ok bool) {
	if pk != nil {
		if ix, err := a.users.current(); err == nil {
			if name, found := ix.byKey[string(pk.Marshal())]; found {
				return Identity(name), true
			}
		}
		if keys, _ := a.admins.load(); keys[string(pk.Marshal())] != "" {
			return Identity(keys[string(pk.Marshal())]), true
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
func (a *Access) TokenIdentity(token string) (id Identity, ok bool) {
	if token == "" {
		return "", false
	}
	ix, err := a.users.current()
	if err != nil {
		return "", false
	}
	name, ok := ix.byHash[tokenHash(token)]
	return Identity(name), ok
}

// HTTPIdentity authenticates an HTTP request: a token as the password of
// Basic auth (any user name), or as a Bearer token. A request without
// credentials is Anonymous if anonymous access is on. Wrong credentials
// are never downgraded to anonymous: ok is false.
func (a *Access) HTTPIdentity(r *http.Request) (id Identity, ok bool) {
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

// Permission returns what id may do with repo.
func (a *Access) Permission(id Identity, repo objects.RepoName) Permission {
	p := PermNone
	if a.anonymous {
		p = PermWrite
	}
	switch {
	case id.IsAnonymous():
		return p
	case id.isKey():
		// Still in the file? Keys removed from it lose access at once.
		if _, ids := a.admins.load(); ids[string(id)] {
			return PermWrite
		}
		return p
	}
	ix, err := a.users.current()
	if err != nil {
		return p
	}
	rec := ix.file.Users[string(id)]
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

// Can reports whether id may do want with repo.
func (a *Access) Can(id Identity, repo objects.RepoName, want Permission) bool {
	return a.Permission(id, repo) >= want
}

// MaxPriority is the highest run priority any identity may be allowed to
// ask for (the scheduler's own bound, hooks/sched.MaxPriority).
const MaxPriority = 9

// MaxPriority returns the highest run priority id may ask for with the
// push option priority=N: a user's max_priority (default 0, normal
// only), MaxPriority for a key of the --authorized-keys file (an admin),
// 0 for anonymous.
func (a *Access) MaxPriority(id Identity) int {
	switch {
	case id.IsAnonymous():
		return 0
	case id.isKey():
		if _, ids := a.admins.load(); ids[string(id)] {
			return MaxPriority
		}
		return 0
	}
	ix, err := a.users.current()
	if err != nil {
		return 0
	}
	rec := ix.file.Users[string(id)]
	if rec == nil {
		return 0
	}
	return min(max(rec.MaxPriority, 0), MaxPriority)
}

// IsAdmin reports whether id may run the admin commands over SSH while
// the server runs (weir data, import, user and rule: cmd/weir/admin.go):
//
//	a key of the --authorized-keys file   yes (it already writes every repo)
//	a user with "admin": true             yes (weir user admin NAME on)
//	anonymous                             only on a listener with anonymous
//	                                      access (loopback, no --assume-remote)
//	any other user                        no
//
// Anonymous on loopback counts as an admin because such a listener already
// trusts every process of this machine to write every repo, and whoever
// runs as the server's user can stop it and run the same commands offline:
// the laptop default needs no setup. Off loopback anonymous is never an
// admin, since anonymous access is off there.
func (a *Access) IsAdmin(id Identity) bool {
	switch {
	case id.IsAnonymous():
		return a.anonymous
	case id.isKey():
		_, ids := a.admins.load()
		return ids[string(id)]
	}
	ix, err := a.users.current()
	if err != nil {
		return false
	}
	rec := ix.file.Users[string(id)]
	return rec != nil && rec.Admin
}

// BranchOf returns the branch a ref belongs to: b for refs/heads/b,
// refs/data/b and refs/merge/b (a merge request into b).
func BranchOf(ref refs.Name) (branch string, ok bool) {
	if b, ok := strings.CutPrefix(string(ref), refs.HeadsPrefix); ok {
		return b, true
	}
	if b, ok := strings.CutPrefix(string(ref), refs.DataPrefix); ok {
		return b, true
	}
	if b, ok := strings.CutPrefix(string(ref), refs.MergePrefix); ok {
		return b, true // a merge request into b writes b
	}
	return "", false
}

// BranchRules are the rules that apply to one branch of one repo, every
// matching rule and --protected pattern combined.
type BranchRules struct {
	// Protected: force push, rewind and deletion of the pair are refused.
	Protected bool
	// RequireRun: data moves only through a run or a merge that passes
	// the branch's expectations.
	RequireRun bool
	// writers holds each matching rule's writers list; an identity must
	// be in every one.
	writers [][]string
}

// MayWrite reports whether the branch's writers lists let id move it.
func (b BranchRules) MayWrite(id Identity) bool {
	for _, w := range b.writers {
		if !slices.Contains(w, string(id)) {
			return false
		}
	}
	return true
}

// Writers returns who may move the branch ("" when anyone with write
// access may), for messages.
func (b BranchRules) Writers() string {
	if len(b.writers) == 0 {
		return ""
	}
	may := slices.Clone(b.writers[0])
	for _, w := range b.writers[1:] {
		may = slices.DeleteFunc(may, func(x string) bool { return !slices.Contains(w, x) })
	}
	if len(may) == 0 {
		return "nobody"
	}
	return strings.Join(may, ", ")
}

// Branch returns the rules of branch b of repo.
func (a *Access) Branch(repo objects.RepoName, b string) BranchRules {
	var br BranchRules
	for _, ref := range []string{refs.HeadsPrefix + b, refs.DataPrefix + b} {
		if a.matchProtected(ref) {
			br.Protected = true
		}
	}
	ix, err := a.users.current()
	if err != nil {
		// An unreadable rule file must not open a branch up.
		br.Protected, br.RequireRun = true, true
		br.writers = [][]string{nil}
		return br
	}
	for _, r := range ix.file.Rules {
		if !r.matches(repo, b) {
			continue
		}
		br.Protected = br.Protected || r.Protect
		br.RequireRun = br.RequireRun || r.RequireRun
		if len(r.Writers) > 0 {
			br.writers = append(br.writers, r.Writers)
		}
	}
	return br
}

func (a *Access) matchProtected(ref string) bool {
	for _, p := range a.protected {
		if ok, _ := path.Match(p, ref); ok || p == ref {
			return true
		}
	}
	return false
}

// Protected reports whether ref refuses force push and deletion: the
// code or data ref of a protected branch, or any other ref matching a
// --protected pattern.
func (a *Access) Protected(repo objects.RepoName, ref refs.Name) bool {
	if b, ok := BranchOf(ref); ok {
		return a.Branch(repo, b).Protected
	}
	return a.matchProtected(string(ref))
}

// AuthorizeRef decides whether id may update ref of repo at all (create,
// move or delete it): write access to the repo, and the branch's writers.
// Protection (force, rewind, delete) and require-run are decided where the
// old and new values are known (gitserver, hooks). It returns nil or a
// *DeniedError.
func (a *Access) AuthorizeRef(id Identity, repo objects.RepoName, ref refs.Name) error {
	if !a.Can(id, repo, PermWrite) {
		return denied("permission denied: %s may not write to %s", id, repo)
	}
	b, ok := BranchOf(ref)
	if !ok {
		return nil
	}
	if br := a.Branch(repo, b); !br.MayWrite(id) {
		return denied("permission denied: branch %s of %s may be written only by %s", b, repo, br.Writers())
	}
	return nil
}

// AuthorizeDataWrite decides whether id may move the data of branch b
// other than by a pipeline run or a merge push: a write through the
// Iceberg REST catalog, an import. A require-run branch refuses it, with
// the way to get the data there instead.
func (a *Access) AuthorizeDataWrite(id Identity, repo objects.RepoName, b string) error {
	if err := a.AuthorizeRef(id, repo, refs.Name(refs.DataPrefix+b)); err != nil {
		return err
	}
	if a.Branch(repo, b).RequireRun {
		return denied("branch %s of %s requires a run: its data moves only through a pipeline run or a merge; write to another branch (git push origin %s:refs/heads/ingest, then warehouse %s@ingest) and merge it into %s", b, repo, b, repo, b)
	}
	return nil
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
