package gitserver

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anmitsu/go-shlex"
	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// SSH transport.
//
// Exec requests, as OpenSSH runs them for git:
//
//	git-upload-pack '<repo>.git'     fetch and clone
//	git-receive-pack '<repo>.git'    push
//	git-upload-archive '<repo>.git'  git archive --remote (archive.go)
//	weir <command> [args...]         a command from SSHServer.Commands
//
// The path may also come unquoted, with a leading '/', or without ".git".
// Of the client's environment only GIT_PROTOCOL is read, and only for the
// protocol version. Anything else (a shell, an unknown command) gets a
// message on stderr and exit status 1.
//
// Authentication is by public key. gossh calls the public key callback for
// every key a client merely offers, before (and whether or not) the client
// proves it holds the private key, so nothing is decided there except "this
// key could log in". The identity is taken from the key whose signature the
// library verified (VerifiedPublicKeyCallback, stored per connection), it
// must equal the session's PublicKey, and it is looked up again in Access
// when the session starts. An offered-but-unproven key grants nothing.
//
// On a loopback listener with anonymous access, any key (or
// keyboard-interactive with no questions) logs in; known keys still log in
// as their user.

// SSHCommand runs one "weir <command> ..." request over SSH and returns the
// exit status. It must check req.Can itself before touching a repo.
type SSHCommand func(ctx context.Context, req *SSHRequest) int

// SSHRequest is one non-Git command run over SSH.
type SSHRequest struct {
	// Args are the shell-split words after "weir": Args[0] is the command.
	Args []string
	// Identity is the authenticated identity ("anonymous" on loopback).
	Identity access.Identity
	// Stdin, Stdout and Stderr are the session's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Can reports whether Identity may do p with repo.
	Can func(repo objects.RepoName, p access.Permission) bool
}

// SSHServer serves Git (and registered weir commands) over SSH.
type SSHServer struct {
	// Commands are the "weir <name> ..." commands, by name. Add to it
	// before Serve; "whoami" is built in.
	Commands map[string]SSHCommand

	git    *Server
	access *access.Access
	srv    *ssh.Server
}

// verifiedKey is the per-connection context key under which the key that
// passed signature verification is stored.
type verifiedKeyCtx struct{}

// NewSSHServer returns an SSH server for git, with a deciding who may do
// what (the listener's view, Access.WithAnonymous) and hostKeys as the
// server's identity (LoadHostKeys), all offered.
func NewSSHServer(git *Server, a *access.Access, hostKeys ...gossh.Signer) *SSHServer {
	signers := make([]ssh.Signer, len(hostKeys))
	for i, k := range hostKeys {
		signers[i] = k
	}
	s := &SSHServer{
		Commands: map[string]SSHCommand{"whoami": whoami},
		git:      git,
		access:   a,
	}
	s.srv = &ssh.Server{
		Handler:     s.handle,
		HostSigners: signers,
		Version:     "weir",
		PublicKeyHandler: func(_ ssh.Context, key ssh.PublicKey) bool {
			// Only "could this key log in"; see the package comment.
			return s.access.KnownKey(key)
		},
		ServerConfigCallback: func(ctx ssh.Context) *gossh.ServerConfig {
			return &gossh.ServerConfig{
				VerifiedPublicKeyCallback: func(_ gossh.ConnMetadata, key gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
					// Called only for the key whose signature verified.
					ctx.SetValue(verifiedKeyCtx{}, key)
					return perms, nil
				},
			}
		},
		ConnectionFailedCallback: func(c net.Conn, err error) {
			transportLogger(git).Debug("ssh connection failed", "transport", "ssh", "remote", c.RemoteAddr().String(), "err", err)
		},
	}
	if a.AnonymousAllowed() {
		s.srv.KeyboardInteractiveHandler = func(ssh.Context, gossh.KeyboardInteractiveChallenge) bool { return true }
	}
	return s
}

// Serve accepts connections on l until Shutdown or Close.
func (s *SSHServer) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for open sessions to end
// or ctx to expire.
func (s *SSHServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Close closes the listener and every connection at once.
func (s *SSHServer) Close() error { return s.srv.Close() }

// identity returns who the session's client proved to be.
func (s *SSHServer) identity(sess ssh.Session) (access.Identity, bool) {
	verified, _ := sess.Context().Value(verifiedKeyCtx{}).(gossh.PublicKey)
	if verified == nil {
		// keyboard-interactive: only on an anonymous listener.
		if s.access.AnonymousAllowed() {
			return access.Anonymous, true
		}
		return "", false
	}
	if pk := sess.PublicKey(); pk == nil || !bytes.Equal(pk.Marshal(), verified.Marshal()) {
		return "", false
	}
	return s.access.KeyIdentity(verified)
}

func (s *SSHServer) handle(sess ssh.Session) {
	start := time.Now()
	log := transportLogger(s.git).With("transport", "ssh", "remote", sess.RemoteAddr().String())
	identity, ok := s.identity(sess)
	if !ok {
		log.Warn("ssh session refused: no verified identity")
		fmt.Fprintln(sess.Stderr(), "weir: permission denied: this key is not allowed here")
		sess.Exit(1)
		return
	}
	log = log.With("identity", identity)
	raw := sess.RawCommand()
	if raw == "" {
		fmt.Fprintf(sess.Stderr(), "Hi %s! weir does not provide shell access.\nClone with: git clone ssh://git@HOST:PORT/<repo>.git\n", identity)
		sess.Exit(1)
		return
	}
	if service, path, ok := parseGitCommand(raw); ok {
		code := s.serveGit(sess, log, identity, service, path)
		log.Info("ssh git session", "service", string(service), "path", path, "exit", code, "ms", time.Since(start).Milliseconds())
		sess.Exit(code)
		return
	}
	args, err := shlex.Split(raw, true)
	if err != nil || len(args) == 0 || args[0] != "weir" {
		log.Info("ssh unknown command", "command", raw)
		fmt.Fprintf(sess.Stderr(), "weir: unknown command %q; this server runs git-upload-pack, git-receive-pack, git-upload-archive and 'weir <command>' (%s)\n", firstWord(raw), strings.Join(s.commandNames(), ", "))
		sess.Exit(1)
		return
	}
	args = args[1:]
	if len(args) == 0 || s.Commands[args[0]] == nil {
		fmt.Fprintf(sess.Stderr(), "weir: unknown weir command; available: %s\n", strings.Join(s.commandNames(), ", "))
		sess.Exit(1)
		return
	}
	code := s.Commands[args[0]](sess.Context(), &SSHRequest{
		Args:     args,
		Identity: identity,
		Stdin:    sess,
		Stdout:   sess,
		Stderr:   sess.Stderr(),
		Can: func(repo objects.RepoName, p access.Permission) bool {
			return s.access.Can(identity, repo, p)
		},
	})
	log.Info("ssh weir command", "command", args[0], "exit", code, "ms", time.Since(start).Milliseconds())
	sess.Exit(code)
}

func (s *SSHServer) commandNames() []string {
	var names []string
	for n := range s.Commands {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *SSHServer) serveGit(sess ssh.Session, log *slog.Logger, identity access.Identity, service Service, path string) int {
	stderr := sess.Stderr()
	repo, err := objects.ParseRepoName(strings.TrimPrefix(path, "/"))
	if err != nil {
		fmt.Fprintf(stderr, "weir: invalid repository name %q\n", path)
		return 1
	}
	need := access.PermRead
	if service == ReceivePack {
		need = access.PermWrite
	}
	if !s.access.Can(identity, repo, need) {
		fmt.Fprintf(stderr, "weir: permission denied: %s may not %s %s\n", identity, permVerb(need), repo)
		return 1
	}
	proto := 0
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, "GIT_PROTOCOL="); ok {
			proto = parseGitProtocol(v)
		}
	}
	gs := &Session{
		Repo:     repo,
		Service:  service,
		Protocol: proto,
		Identity: identity,
		Authorize: func(ref refs.Name) error {
			return s.access.AuthorizeRef(identity, repo, ref)
		},
		CreateRepo: service == ReceivePack,
		// A stalled read ends with the channel (Server.ReadIdleTimeout).
		cut: func() { _ = sess.Close() },
	}
	if err := s.git.Serve(sess.Context(), sess, sess, gs); err != nil {
		if errors.Is(err, ErrRepoNotFound) {
			fmt.Fprintf(stderr, "weir: repository '%s' not found\n", repo)
			return 1
		}
		log.Warn("ssh git session failed", "repo", string(repo), "service", string(service), "err", err)
		fmt.Fprintf(stderr, "weir: %s failed: %v\n", service, err)
		return 1
	}
	return 0
}

// parseGitCommand recognises "git-upload-pack '<path>'",
// "git-receive-pack '<path>'" and "git-upload-archive '<path>'" (also
// "git upload-pack", unquoted paths).
func parseGitCommand(raw string) (Service, string, bool) {
	raw = strings.TrimSpace(raw)
	var svc Service
	for _, s := range []Service{UploadPack, ReceivePack, UploadArchive} {
		name := string(s)
		alt := "git " + strings.TrimPrefix(name, "git-")
		if rest, ok := strings.CutPrefix(raw, name+" "); ok {
			svc, raw = s, rest
			break
		}
		if rest, ok := strings.CutPrefix(raw, alt+" "); ok {
			svc, raw = s, rest
			break
		}
	}
	if svc == "" {
		return "", "", false
	}
	args, err := shlex.Split(raw, true)
	if err != nil || len(args) != 1 || args[0] == "" {
		return "", "", false
	}
	return svc, args[0], true
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

// whoami prints the caller's identity: "weir whoami".
func whoami(_ context.Context, req *SSHRequest) int {
	fmt.Fprintln(req.Stdout, req.Identity)
	return 0
}

// Host keys: one per algorithm, each generated on first start in the data
// directory (mode 0600, OpenSSH private key format) and kept after that.
// All are offered, so clients that know only RSA (JGit 4 with JSch: ssh-rsa
// signatures; newer ones rsa-sha2-256/512) or only ECDSA connect too.
var hostKeyFiles = []struct {
	file string
	gen  func() (crypto.Signer, error)
}{
	{"ssh_host_ed25519_key", func() (crypto.Signer, error) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}},
	{"ssh_host_ecdsa_key", func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"ssh_host_rsa_key", func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 3072) }},
}

// LoadHostKeys reads (or creates) the ed25519, ECDSA P-256 and RSA 3072
// host keys in dir: ssh_host_ed25519_key, ssh_host_ecdsa_key and
// ssh_host_rsa_key.
func LoadHostKeys(dir string) ([]gossh.Signer, error) {
	var out []gossh.Signer
	for _, k := range hostKeyFiles {
		s, err := loadHostKey(filepath.Join(dir, k.file), k.gen)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// LoadHostKey reads the server's ed25519 host key from path, creating it
// (mode 0600, OpenSSH private key format) on first start.
func LoadHostKey(path string) (gossh.Signer, error) {
	return loadHostKey(path, hostKeyFiles[0].gen)
}

// loadHostKey reads the host key at path, creating it with gen when it
// does not exist.
func loadHostKey(path string, gen func() (crypto.Signer, error)) (gossh.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		priv, err := gen()
		if err != nil {
			return nil, err
		}
		block, err := gossh.MarshalPrivateKey(priv, "weir host key")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("gitserver: create host key: %w", err)
		}
		if err := pem.Encode(f, block); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return gossh.NewSignerFromKey(priv)
	}
	if err != nil {
		return nil, fmt.Errorf("gitserver: read host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("gitserver: parse host key %s: %w", path, err)
	}
	return signer, nil
}
