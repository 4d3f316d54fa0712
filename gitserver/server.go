package gitserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/metrics"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Agent is what the server calls itself in the "agent=" capability.
var Agent = "weir/0.1"

// ErrRepoNotFound is returned (wrapped) when the repo does not exist and
// may not be created.
var ErrRepoNotFound = errors.New("gitserver: repository not found")

// ErrProtocol is returned (wrapped) when the client breaks the protocol.
var ErrProtocol = errors.New("gitserver: protocol error")

// Server speaks the Git protocol for every repo in one store.
type Server struct {
	Objects *objects.Store
	Refs    refs.Store
	// Hook decides pushes; nil accepts every push (hooks.None{}).
	Hook hooks.PreReceive
	// Protected reports whether ref may be neither force-pushed nor
	// deleted. nil protects only refs/heads/main.
	Protected func(repo objects.RepoName, ref refs.Name) bool
	// Logger gets one line per push and per failed session; nil discards.
	Logger *slog.Logger
	// Receive bounds a push's command list and how many pushes are
	// received at once. Zero fields take the defaults.
	Receive ReceiveLimits
	// ReadIdleTimeout is how long a push that holds its turn (see
	// ReceiveLimits.MaxConcurrent) may send nothing while the server waits
	// for its pack; the session is then cut, so a stalled client cannot
	// keep others waiting. (The turn is taken at the pack's first byte:
	// the time a client spends compressing its pack does not count.)
	// Zero means DefaultReadIdleTimeout.
	ReadIdleTimeout time.Duration
	// Metrics records bytes read and written per service and push
	// durations; nil records nothing.
	Metrics *metrics.Metrics

	plans  planCache  // clone plans; the zero value is ready
	reach  reachCache // objects the refs reach, per set of tips; ready
	slots  pushSlots  // admission of pushes; the zero value is ready
	deltas deltaQueue // repos for the background delta search; ready
	// serving counts the upload-packs planning or writing a pack: the
	// background delta search yields to them.
	serving atomic.Int64
}

// ReceiveLimits bound what a push may send before its pack, and how many
// pushes the server receives at once (the pack itself is bounded by
// objects.Limits). Zero fields take the defaults.
type ReceiveLimits struct {
	// MaxCommands is the most ref updates one push may carry.
	MaxCommands int
	// MaxCommandBytes bounds the command list: commands, shallow lines
	// and push options together, in pkt-line payload bytes.
	MaxCommandBytes int
	// MaxConcurrent is the most pushes receiving and checking their pack
	// at once: a push holds its turn from its first pack byte to the end
	// of its object checks (a pipeline run waits for its own scheduler,
	// not for this). Each receiving push takes the memory budget of
	// objects.IngestPack.
	MaxConcurrent int
	// QueueTimeout is how long a push waits for its turn before it is
	// refused with "server busy"; at most 4 * MaxConcurrent pushes wait.
	QueueTimeout time.Duration
}

// DefaultReadIdleTimeout is Server.ReadIdleTimeout's default.
const DefaultReadIdleTimeout = time.Minute

// Defaults of ReceiveLimits.
const (
	DefaultMaxCommands      = 5000
	DefaultMaxCommandBytes  = 1 << 20
	DefaultMaxConcurrent    = 4
	DefaultPushQueueTimeout = time.Minute
)

func (l ReceiveLimits) withDefaults() ReceiveLimits {
	if l.MaxCommands <= 0 {
		l.MaxCommands = DefaultMaxCommands
	}
	if l.MaxCommandBytes <= 0 {
		l.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = DefaultMaxConcurrent
	}
	if l.QueueTimeout <= 0 {
		l.QueueTimeout = DefaultPushQueueTimeout
	}
	return l
}

// errServerBusy refuses a push that did not get its turn.
var errServerBusy = errors.New("server busy: too many pushes in progress, try again")

// pushSlots admits at most MaxConcurrent pushes at once; others wait in
// line, up to QueueTimeout, at most 4 * MaxConcurrent of them.
type pushSlots struct {
	once    sync.Once
	slots   chan struct{}
	waiting atomic.Int64
}

// admit waits for a push's turn and returns the function that ends it, or
// errServerBusy.
func (s *Server) admit(ctx context.Context) (func(), error) {
	lim := s.Receive.withDefaults()
	p := &s.slots
	p.once.Do(func() { p.slots = make(chan struct{}, lim.MaxConcurrent) })
	release := func() { <-p.slots }
	select {
	case p.slots <- struct{}{}:
		return release, nil
	default:
	}
	if p.waiting.Add(1) > int64(4*lim.MaxConcurrent) {
		p.waiting.Add(-1)
		return nil, errServerBusy
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(lim.QueueTimeout)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, errServerBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Service names one of the two Git services.
type Service string

// The services a Session may run.
const (
	UploadPack  Service = "git-upload-pack"
	ReceivePack Service = "git-receive-pack"
)

// Session is one client connection (SSH) or one request (HTTP) to one repo.
type Session struct {
	Repo    objects.RepoName
	Service Service
	// Protocol is 0/1 or 2, from the Git-Protocol header or the
	// GIT_PROTOCOL environment ("version=2"). receive-pack has no v2 and
	// answers v2 requests with v0, as git does.
	Protocol int
	// StatelessRPC is true for HTTP (one request, one response) and false
	// for SSH (one long conversation).
	StatelessRPC bool
	// Identity is access.Anonymous or the authenticated user.
	Identity access.Identity
	// Authorize decides whether Identity may update ref (nil: yes; else
	// its error is the reason the client sees); it is called for every
	// ref of a push on its own. nil allows every ref.
	Authorize func(ref refs.Name) error
	// CreateRepo lets receive-pack create the repo on its first push.
	CreateRepo bool

	// cut, set by the transport, makes a blocked read of the client's
	// stream return (ReadIdleTimeout); nil: reads cannot be watched.
	cut func()
	// idle watches reads while armed; set by Serve when cut is.
	idle *idleReader
}

// watchReads arms or disarms the ReadIdleTimeout watch of the session's
// reads. Only the goroutine that reads may call it.
func (sess *Session) watchReads(on bool) {
	if sess.idle != nil {
		sess.idle.armed = on
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (s *Server) hook() hooks.PreReceive {
	if s.Hook != nil {
		return s.Hook
	}
	return hooks.None{}
}

func (s *Server) protected(repo objects.RepoName, ref refs.Name) bool {
	if s.Protected != nil {
		return s.Protected(repo, ref)
	}
	return ref == refs.HeadsPrefix+"main"
}

// AdvertiseRefs writes the ref advertisement (v0/v1) or the capability
// advertisement (v2). For HTTP (StatelessRPC) the transport writes the
// "# service=..." preamble and its flush itself.
func (s *Server) AdvertiseRefs(ctx context.Context, w io.Writer, sess *Session) error {
	pw := newPktWriter(w)
	if err := s.advertise(ctx, pw, sess); err != nil {
		return err
	}
	return pw.send()
}

func (s *Server) advertise(ctx context.Context, pw *pktWriter, sess *Session) error {
	switch sess.Service {
	case UploadPack:
		if sess.Protocol == 2 {
			if _, err := s.loadRefs(ctx, sess.Repo); err != nil {
				return err
			}
			return advertiseV2(pw)
		}
		rs, err := s.loadRefs(ctx, sess.Repo)
		if err != nil {
			return err
		}
		return s.advertiseUpload(pw, sess, rs)
	case ReceivePack:
		rs, err := s.loadRefs(ctx, sess.Repo)
		if errors.Is(err, ErrRepoNotFound) && sess.CreateRepo {
			rs, err = &repoRefs{headTarget: refs.HeadsPrefix + "main"}, nil
		}
		if err != nil {
			return err
		}
		return s.advertiseReceive(pw, sess, rs)
	}
	return fmt.Errorf("gitserver: unknown service %q", sess.Service)
}

// Serve runs the rest of the session: it reads the client's request from r
// and writes the response to w. For SSH (not stateless) it first writes the
// advertisement, then converses as the protocol requires.
func (s *Server) Serve(ctx context.Context, r io.Reader, w io.Writer, sess *Session) error {
	if _, buffered := w.(*bufio.Writer); s.Metrics != nil && !buffered {
		// (A caller's *bufio.Writer is left as it is: pktWriter flushes
		// it; none is passed by the transports.)
		cr, cw, start := &countReader{r: r}, &countWriter{w: w}, time.Now()
		r, w = cr, cw
		defer func() {
			s.Metrics.GitBytes(string(sess.Service), cr.n, cw.n)
			if sess.Service == ReceivePack {
				s.Metrics.Push(time.Since(start))
			}
		}()
	}
	if sess.cut != nil {
		idle := s.ReadIdleTimeout
		if idle <= 0 {
			idle = DefaultReadIdleTimeout
		}
		sess.idle = &idleReader{r: r, idle: idle, cut: sess.cut}
		r = sess.idle
	}
	pr := newPktReader(r)
	pw := newPktWriter(w)
	var err error
	switch sess.Service {
	case UploadPack:
		if sess.Protocol == 2 {
			err = s.serveUploadV2(ctx, pr, pw, sess)
		} else {
			err = s.serveUpload(ctx, pr, pw, sess)
		}
	case ReceivePack:
		err = s.serveReceive(ctx, pr, pw, sess)
	case UploadArchive:
		err = s.serveUploadArchive(ctx, pr, pw, sess)
	default:
		err = fmt.Errorf("gitserver: unknown service %q", sess.Service)
	}
	if serr := pw.send(); err == nil {
		err = serr
	}
	if err != nil {
		s.logger().Warn("git session failed", "repo", sess.Repo, "service", sess.Service,
			"identity", sess.Identity, "err", err)
	}
	return err
}

// countReader counts the bytes read through it (for Metrics).
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countWriter counts the bytes written through it (for Metrics).
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// repoRefs is a snapshot of one repo's refs, as advertised.
type repoRefs struct {
	head       objects.Hash // zero when HEAD is unborn
	headTarget refs.Name    // what HEAD points at (symbolic), "" if detached
	list       []advRef     // sorted by name; HEAD not included
	byName     map[refs.Name]objects.Hash
}

// advRef is one advertised ref with its peeled value (annotated tags).
type advRef struct {
	name   refs.Name
	hash   objects.Hash
	peeled objects.Hash // zero unless hash is a tag object
}

// loadRefs reads every ref of repo. ErrRepoNotFound if it has none.
func (s *Server) loadRefs(ctx context.Context, repo objects.RepoName) (*repoRefs, error) {
	all, err := s.Refs.List(ctx, repo, "")
	if err != nil {
		return nil, fmt.Errorf("list refs of %s: %w", repo, err)
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrRepoNotFound, repo)
	}
	rs := &repoRefs{byName: make(map[refs.Name]objects.Hash, len(all))}
	var head *refs.Ref
	var symbolic []refs.Ref
	for i := range all {
		r := all[i]
		switch {
		case r.Name == refs.HEAD:
			head = &all[i]
		case !strings.HasPrefix(string(r.Name), "refs/"):
			// Only refs/... and HEAD are advertised.
		case r.Target != "":
			symbolic = append(symbolic, r)
		default:
			rs.byName[r.Name] = r.Hash
		}
	}
	for _, r := range symbolic {
		if h, ok := rs.byName[r.Target]; ok {
			rs.byName[r.Name] = h
		}
	}
	for name, h := range rs.byName {
		ar := advRef{name: name, hash: h}
		if strings.HasPrefix(string(name), refs.TagsPrefix) {
			ar.peeled, err = s.peel(ctx, repo, h)
			if err != nil {
				return nil, err
			}
		}
		rs.list = append(rs.list, ar)
	}
	sort.Slice(rs.list, func(i, j int) bool { return rs.list[i].name < rs.list[j].name })
	switch {
	case head == nil:
		rs.headTarget = refs.HeadsPrefix + "main"
		rs.head = rs.byName[rs.headTarget]
	case head.Target != "":
		rs.headTarget = head.Target
		rs.head = rs.byName[head.Target]
	default:
		rs.head = head.Hash
	}
	return rs, nil
}

// peel returns the non-tag object an annotated tag h points to, or zero if
// h is not a tag.
func (s *Server) peel(ctx context.Context, repo objects.RepoName, h objects.Hash) (objects.Hash, error) {
	peeled := plumbing.ZeroHash
	for depth := 0; depth < 16; depth++ {
		typ, _, err := s.Objects.Stat(ctx, repo, h)
		if err != nil {
			if errors.Is(err, objects.ErrNotFound) {
				return peeled, nil
			}
			return peeled, fmt.Errorf("peel %s: %w", h, err)
		}
		if typ != plumbing.TagObject {
			return peeled, nil
		}
		o, err := s.Objects.Get(ctx, repo, h)
		if err != nil {
			return peeled, fmt.Errorf("peel %s: %w", h, err)
		}
		target, ok := tagTarget(o.Data)
		if !ok {
			return peeled, nil
		}
		peeled, h = target, target
	}
	return peeled, nil
}

// tagTarget parses the "object <hex>" header of a tag object.
func tagTarget(data []byte) (objects.Hash, bool) {
	if !bytes.HasPrefix(data, []byte("object ")) || len(data) < 7+40 {
		return plumbing.ZeroHash, false
	}
	return parseHash(data[7 : 7+40])
}

// parseHash is objects.ParseHash: 40 lowercase hex digits.
func parseHash(b []byte) (objects.Hash, bool) { return objects.ParseHash(b) }

func parseHashString(s string) (objects.Hash, bool) { return objects.ParseHash([]byte(s)) }

// capList is the set of capabilities a client asked for.
type capList map[string]string

func parseCaps(s string) capList {
	c := capList{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		c[k] = v
	}
	return c
}

func (c capList) has(name string) bool { _, ok := c[name]; return ok }

// bufferedReader exposes the session's buffered reader (for pack ingestion).
func (p *pktReader) reader() *bufio.Reader { return p.r }

// idleReader, while armed, cuts the session (Session.cut) when one Read
// waits longer than idle for the client: the server only reads when it
// needs the client's bytes, so a client silent that long has stalled.
type idleReader struct {
	r     io.Reader
	idle  time.Duration
	cut   func()
	armed bool
}

func (i *idleReader) Read(p []byte) (int, error) {
	if !i.armed {
		return i.r.Read(p)
	}
	t := time.AfterFunc(i.idle, i.cut)
	n, err := i.r.Read(p)
	if !t.Stop() && err != nil {
		err = fmt.Errorf("%w: the client sent nothing for %v", ErrProtocol, i.idle)
	}
	return n, err
}
