package gitserver

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/hooks"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// receive-pack (gitprotocol-pack, "Pushing Data To a Server"):
//
//	S: <oid> <ref>\0<capabilities> ...  0000   (0{40} capabilities^{}\0<caps> when empty)
//	C: [shallow <oid>]... <old> <new> <ref>\0<client caps>  <old> <new> <ref> ...  0000
//	C: [push-option <text>... 0000]            (when push-options was asked for)
//	C: <pack>                                  (absent when every command deletes)
//	S: unpack ok|<error>  ok <ref> | ng <ref> <reason> ...  0000
//	   (inside side band 1 when side-band-64k was asked for, hook output on
//	   band 2, then a final 0000)
//
// What happens between reading and reporting, in order: the pack goes into
// a quarantine and is checked (fsck and connectivity from the new tips);
// every command is checked (name, permission, old value, protection); the
// pre-receive hook sees the commands that passed; one refs.Store.Update
// moves every accepted ref, plus the hook's own updates, and commits the
// quarantine with them. With "atomic" any failure fails every command.

// receiveCaps are the receive-pack capabilities.
func receiveCaps() string {
	return "report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta push-options object-format=sha1 agent=" + Agent
}

// advertiseReceive writes the receive-pack ref advertisement (no HEAD, no
// peeled lines).
func (s *Server) advertiseReceive(pw *pktWriter, sess *Session, rs *repoRefs) error {
	if sess.Protocol == 1 {
		pw.linef("version 1")
	}
	plain := &repoRefs{}
	for _, r := range rs.list {
		plain.list = append(plain.list, advRef{name: r.name, hash: r.hash})
	}
	writeRefLines(pw, plain, receiveCaps(), false)
	return pw.flushPkt()
}

// pushCommand is one "<old> <new> <ref>" line.
type pushCommand struct {
	Old, New objects.Hash
	Name     refs.Name
}

// pushRequest is a parsed command list.
type pushRequest struct {
	commands []pushCommand
	caps     capList
	shallows []objects.Hash
	options  []string
	// refused, when set, refuses the whole push: the list went over a
	// ReceiveLimits limit, and reading stopped there. commands holds the
	// commands read before it (so the reply names no more refs than the
	// limit allows).
	refused string
	size    int // payload bytes read: commands, shallow lines, push options
}

// maxPushOptions is the most push options one push may carry.
const maxPushOptions = 1000

// readCommandList reads shallow lines and commands up to the flush. It
// returns nil when the client sent no command (closed or a lone flush).
// Over lim it stops reading and returns the request with refused set.
func readCommandList(pr *pktReader, lim ReceiveLimits) (*pushRequest, error) {
	lim = lim.withDefaults()
	req := &pushRequest{caps: capList{}}
	for i := 0; ; i++ {
		k, b, err := pr.next()
		if err == io.EOF && i == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read commands: %w", err)
		}
		if k == pktFlush {
			break
		}
		if k != pktData {
			return nil, fmt.Errorf("%w: unexpected %v pkt in command list", ErrProtocol, k)
		}
		if req.size += len(b); req.size > lim.MaxCommandBytes {
			req.refused = fmt.Sprintf("command list larger than %d bytes; push fewer refs at a time", lim.MaxCommandBytes)
			return req, nil
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		if bytes.HasPrefix(b, []byte("shallow ")) {
			if len(req.commands) > 0 {
				return nil, fmt.Errorf("%w: shallow line after commands", ErrProtocol)
			}
			h, ok := parseHash(b[8:])
			if !ok {
				return nil, fmt.Errorf("%w: invalid shallow line %s", ErrProtocol, clip(b))
			}
			req.shallows = append(req.shallows, h)
			continue
		}
		line, caps, hasCaps := bytes.Cut(b, []byte{0})
		if hasCaps && len(req.commands) == 0 {
			req.caps = parseCaps(string(caps))
		}
		if len(line) < 83 || line[40] != ' ' || line[81] != ' ' {
			return nil, fmt.Errorf("%w: malformed command %s", ErrProtocol, clip(line))
		}
		old, ok1 := parseHash(line[:40])
		nw, ok2 := parseHash(line[41:81])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: malformed command %s", ErrProtocol, clip(line))
		}
		if len(req.commands) == lim.MaxCommands {
			req.refused = fmt.Sprintf("too many ref updates in one push (max %d); push fewer refs at a time", lim.MaxCommands)
			return req, nil
		}
		req.commands = append(req.commands, pushCommand{Old: old, New: nw, Name: refs.Name(line[82:])})
	}
	if len(req.commands) == 0 {
		return nil, nil
	}
	return req, nil
}

// readPushOptions reads push-option lines up to the flush into req. Over
// lim (counted with the command list) it stops and sets req.refused.
func readPushOptions(pr *pktReader, req *pushRequest, lim ReceiveLimits) error {
	lim = lim.withDefaults()
	for {
		line, k, err := pr.line()
		if err != nil {
			return fmt.Errorf("read push options: %w", err)
		}
		if k == pktFlush {
			return nil
		}
		if k != pktData {
			return fmt.Errorf("%w: unexpected %v pkt in push options", ErrProtocol, k)
		}
		if req.size += len(line); req.size > lim.MaxCommandBytes {
			req.refused = fmt.Sprintf("command list and push options larger than %d bytes; send fewer or shorter push options", lim.MaxCommandBytes)
			return nil
		}
		if len(req.options) == maxPushOptions {
			req.refused = fmt.Sprintf("too many push options (max %d)", maxPushOptions)
			return nil
		}
		req.options = append(req.options, line)
	}
}

// discardRequest reads what is left of a refused push's request, so an
// HTTP client, which sends its whole body before it reads the answer, sees
// the answer rather than a broken connection (curl then sends the rest of
// the pack as a new request). It reads at most MaxPackBytes more and keeps
// nothing. Over SSH nothing is read: git reads the report even when the
// server stops reading its pack.
func (s *Server) discardRequest(sess *Session, pr *pktReader) {
	if !sess.StatelessRPC {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(pr.reader(), s.Objects.Limits().MaxPackBytes))
}

// clip quotes client text for an error message, cut to a few dozen
// bytes: errors may reach the client and the log, and must not echo
// whatever it sent.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q... (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// checkRefFormat reports whether a client may push to name: a full ref
// under refs/ that the ref store accepts (refs.CheckName: git
// check-ref-format's rules, a little stricter), with no component "@"
// (git's receive-pack takes refs/heads/@; we refuse it as ambiguous).
func checkRefFormat(name string) bool {
	return strings.HasPrefix(name, "refs/") && refs.CheckName(refs.Name(name)) == nil &&
		!slices.Contains(strings.Split(name, "/"), "@")
}

// Reasons given in "ng <ref> <reason>", in git's words where git has some.
const (
	reasonFunnyName    = "funny refname"
	reasonDenied       = "permission denied"
	reasonFetchFirst   = "fetch first"
	reasonExists       = "already exists"
	reasonStale        = "stale info"
	reasonAtomic       = "atomic push failed"
	reasonForceRefused = "protected branch: force push refused"
	reasonDeleteRefuse = "protected branch: deletion refused"
	reasonNotCommit    = "branch must point to a commit"
	reasonDuplicate    = "duplicate ref in push"
	reasonShallow      = "shallow update not allowed"
	reasonMergeDelete  = "refs/merge/ names merge requests, not refs: there is nothing to delete"
	reasonNoMergeQueue = "this server has no merge queue: push to the branch itself"
)

// pushState is one push being decided.
type pushState struct {
	cmds    []pushCommand
	reasons []string // "" while the command stands
	skip    []bool   // accepted but nothing to write (delete of a missing ref, old == new)
}

func (p *pushState) failAll(reason string) {
	for i := range p.reasons {
		if p.reasons[i] == "" {
			p.reasons[i] = reason
		}
	}
}

// refused maps each refused command to its reason.
func (p *pushState) refused() map[refs.Name]string {
	m := map[refs.Name]string{}
	for i, c := range p.cmds {
		if p.reasons[i] != "" {
			m[c.Name] = p.reasons[i]
		}
	}
	return m
}

func (p *pushState) allFailed() bool {
	for _, r := range p.reasons {
		if r == "" {
			return false
		}
	}
	return true
}

func (p *pushState) anyFailed() bool {
	for _, r := range p.reasons {
		if r != "" {
			return true
		}
	}
	return false
}

// serveReceive runs a receive-pack session.
func (s *Server) serveReceive(ctx context.Context, pr *pktReader, pw *pktWriter, sess *Session) error {
	rs, err := s.loadRefs(ctx, sess.Repo)
	if errors.Is(err, ErrRepoNotFound) && sess.CreateRepo {
		rs, err = &repoRefs{}, nil
	}
	if err != nil {
		return err
	}
	if !sess.StatelessRPC {
		if err := s.advertiseReceive(pw, sess, rs); err != nil {
			return err
		}
		if err := pw.send(); err != nil {
			return err
		}
	}
	req, err := readCommandList(pr, s.Receive)
	if err != nil || req == nil {
		return err
	}
	if req.refused == "" && req.caps.has("push-options") {
		if err := readPushOptions(pr, req, s.Receive); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	sideband := req.caps.has("side-band-64k")
	var progress io.Writer = io.Discard
	if sideband {
		progress = newBandWriter(&mu, pw, bandProgress, true)
	}

	st := &pushState{cmds: req.commands, reasons: make([]string, len(req.commands)), skip: make([]bool, len(req.commands))}
	q := s.Objects.NewQuarantine(sess.Repo)
	defer q.Close()

	unpack := "ok"
	var tips []objects.Hash
	needPack := false
	for _, c := range st.cmds {
		if !c.New.IsZero() {
			needPack = true
			tips = append(tips, c.New)
		}
	}
	// A push takes its turn (bounded memory per server) from its first
	// pack byte to the end of its object checks, and while it holds it
	// may not stall (Server.ReadIdleTimeout).
	release := func() {}
	if req.refused != "" {
		unpack = req.refused
	} else if needPack {
		// Wait for the pack to start: a client may compress for minutes
		// first, and holds no turn meanwhile.
		_, _ = pr.reader().Peek(1)
		var done func()
		done, err = s.admit(ctx)
		if err == nil {
			sess.watchReads(true)
			var once sync.Once
			release = func() { once.Do(func() { sess.watchReads(false); done() }) }
		}
		switch {
		case errors.Is(err, errServerBusy):
			release, unpack = func() {}, err.Error()
			s.logger().Warn("push refused: server busy", "repo", sess.Repo, "identity", sess.Identity)
		case err != nil:
			return err
		default:
			s.logger().Debug("push receiving its pack", "repo", sess.Repo, "identity", sess.Identity)
		}
	}
	if unpack != "ok" {
		st.failAll(unpack)
		s.discardRequest(sess, pr)
	} else if needPack {
		if _, err := q.IngestPack(ctx, pr.reader()); err != nil {
			unpack = oneLine(err.Error())
			st.failAll("unpacker error: " + unpack)
			// The client may still be sending (the pack was refused at
			// the limit it crossed, or at its first bad entry): read the
			// rest without its turn.
			release()
			s.discardRequest(sess, pr)
		} else if err := q.Check(ctx, tips); err != nil {
			unpack = oneLine(err.Error())
			reason := unpack
			var ce *objects.CheckError
			if errors.As(err, &ce) {
				reason = fmt.Sprintf("%s %s: %s", ce.Check, ce.Object, oneLine(ce.Detail))
				if ce.Check == "missingObject" && len(req.shallows) > 0 {
					reason = reasonShallow
				}
			}
			st.failAll(reason)
		}
	}
	release()
	if unpack == "ok" {
		s.checkCommands(ctx, sess, q, st)
	}
	atomic := req.caps.has("atomic")
	if atomic && st.anyFailed() {
		st.failAll(reasonAtomic)
	}

	// The hook decides the commands that stand.
	var res *hooks.Result
	if unpack == "ok" {
		push := &hooks.Push{
			Repo: sess.Repo, Quarantine: q, Options: req.options, Atomic: atomic,
			Pusher: sess.Identity, Progress: progress,
		}
		var idx []int
		for i, c := range st.cmds {
			if st.reasons[i] == "" {
				push.Commands = append(push.Commands, hooks.Command{Name: c.Name, Old: c.Old, New: c.New})
				idx = append(idx, i)
			}
		}
		if len(idx) > 0 {
			var err error
			res, err = s.hook().PreReceive(ctx, push)
			switch {
			case err != nil:
				s.logger().Warn("pre-receive hook failed", "repo", sess.Repo, "err", err)
				for _, i := range idx {
					st.reasons[i] = oneLine(err.Error())
				}
			case res != nil:
				for _, i := range idx {
					if why, ok := res.Refused[st.cmds[i].Name]; ok {
						if why == "" {
							why = "pre-receive hook declined"
						}
						st.reasons[i] = oneLine(why)
					}
				}
			}
			// A merge request lands only as the hook says (Result.Lands):
			// refs/merge/<b> itself is never written.
			for _, i := range idx {
				if st.reasons[i] == "" && isMerge(st.cmds[i].Name) && !landsOK(res, st.cmds[i].Name) {
					st.reasons[i] = reasonNoMergeQueue
				}
			}
			if atomic && st.anyFailed() {
				st.failAll(reasonAtomic)
			}
		}
	}

	if unpack == "ok" {
		// Once decided, the push is written even if the client has gone:
		// a failed run's record must not be lost to a disconnect.
		s.commitPush(context.WithoutCancel(ctx), sess, q, st, res, atomic)
		if !st.allFailed() {
			s.deltas.add(sess.Repo)
		}
		if res != nil && res.Report != nil {
			res.Report(st.refused())
		}
	}

	s.logPush(sess, st, unpack)
	if req.caps.has("report-status") || req.caps.has("report-status-v2") {
		var buf bytes.Buffer
		rw := newPktWriter(&buf)
		rw.linef("unpack %s", unpack)
		for i, c := range st.cmds {
			if st.reasons[i] == "" {
				rw.linef("ok %s", c.Name)
			} else {
				rw.linef("ng %s %s", c.Name, st.reasons[i])
			}
		}
		rw.flushPkt()
		if err := rw.send(); err != nil {
			return err
		}
		if sideband {
			if _, err := newBandWriter(&mu, pw, bandPack, false).Write(buf.Bytes()); err != nil {
				return err
			}
		} else if _, err := pw.w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if sideband {
		mu.Lock()
		pw.flushPkt()
		mu.Unlock()
	}
	return pw.send()
}

// checkCommands applies the per-ref rules to every command.
func (s *Server) checkCommands(ctx context.Context, sess *Session, q *objects.Quarantine, st *pushState) {
	seen := map[refs.Name]bool{}
	w := newQuarantineWalker(ctx, q)
	for i, c := range st.cmds {
		st.reasons[i] = s.checkCommand(ctx, sess, q, w, c, seen)
	}
	for i, c := range st.cmds {
		if st.reasons[i] == "" && c.Old == c.New {
			st.skip[i] = true
		}
	}
}

func (s *Server) checkCommand(ctx context.Context, sess *Session, q *objects.Quarantine, w *walker, c pushCommand, seen map[refs.Name]bool) string {
	if !checkRefFormat(string(c.Name)) {
		return reasonFunnyName
	}
	if seen[c.Name] {
		return reasonDuplicate
	}
	seen[c.Name] = true
	if b, ok := strings.CutPrefix(string(c.Name), refs.MergePrefix); ok {
		if c.New.IsZero() {
			return reasonMergeDelete
		}
		// A merge request writes the branch: the identity must be one
		// that may push to it.
		if sess.Authorize != nil {
			if err := sess.Authorize(refs.Name(refs.HeadsPrefix + b)); err != nil {
				return oneLine(err.Error())
			}
		}
	}
	if sess.Authorize != nil {
		if err := sess.Authorize(c.Name); err != nil {
			return oneLine(err.Error())
		}
	}
	cur, err := s.Refs.Resolve(ctx, sess.Repo, c.Name)
	if errors.Is(err, refs.ErrNotFound) {
		cur, err = plumbing.ZeroHash, nil
	}
	if err != nil {
		s.logger().Error("read ref", "repo", sess.Repo, "ref", c.Name, "err", err)
		return "failed to read ref"
	}
	protected := s.protected(sess.Repo, c.Name)
	if c.New.IsZero() {
		if protected && !cur.IsZero() {
			return reasonDeleteRefuse
		}
		if cur.IsZero() {
			return "" // deleting a missing ref: nothing to do, as git
		}
		if !c.Old.IsZero() && c.Old != cur {
			return reasonFetchFirst
		}
		return ""
	}
	if c.Old != cur {
		if c.Old.IsZero() {
			return reasonExists
		}
		return reasonFetchFirst
	}
	if strings.HasPrefix(string(c.Name), refs.HeadsPrefix) || strings.HasPrefix(string(c.Name), refs.MergePrefix) {
		typ, _, err := q.Stat(ctx, c.New)
		if err != nil || typ != plumbing.CommitObject {
			return reasonNotCommit
		}
	}
	if protected && !c.Old.IsZero() && c.Old != c.New {
		ok, err := isAncestor(w, c.Old, c.New)
		if err != nil {
			s.logger().Error("fast-forward check", "repo", sess.Repo, "ref", c.Name, "err", err)
			return reasonForceRefused
		}
		if !ok {
			return reasonForceRefused
		}
	}
	return ""
}

// isAncestor reports whether commit anc is reachable from commit desc.
//
// It walks desc's history newest first (by committer date, as git's
// merge-base does) and never prunes by date: a child may be dated before
// its parent (clock skew, rebases, hand-set dates), and a fast-forward must
// never be mistaken for a force push. A true force push walks the whole
// history reachable from desc once.
func isAncestor(w *walker, anc, desc objects.Hash) (bool, error) {
	if _, err := w.commit(anc); err != nil {
		if errors.Is(err, errNotCommit) {
			return false, nil
		}
		return false, err
	}
	start, err := w.commit(desc)
	if err != nil {
		if errors.Is(err, errNotCommit) {
			return false, nil
		}
		return false, err
	}
	visited := map[objects.Hash]bool{desc: true}
	q := commitQueue{start}
	for q.Len() > 0 {
		c := heap.Pop(&q).(*commitNode)
		if c.hash == anc {
			return true, nil
		}
		for _, p := range c.parents {
			if visited[p] {
				continue
			}
			visited[p] = true
			pc, err := w.commit(p)
			if err != nil {
				if errors.Is(err, errNotCommit) {
					continue
				}
				return false, err
			}
			heap.Push(&q, pc)
		}
	}
	return false, nil
}

// commitPush writes the accepted commands and the hook's updates in one
// refs.Store.Update, with the quarantine. Non-atomic pushes retry without a
// command that turned out stale, so the others still land; the hook's
// updates are asked for again for each outcome (Result.Finish), and again
// (at most maxHookRetries times) when one of them was stale: a branch's
// data that moved during its run may still take the run's outputs on top
// (the hook decides, gitserver only retries and reports). Every attempt
// either lands or changes the outcome or spends one of those retries, so
// the loop is bounded.
func (s *Server) commitPush(ctx context.Context, sess *Session, q *objects.Quarantine, st *pushState, res *hooks.Result, atomic bool) {
	msg := "push by " + string(sess.Identity)
	hookRetries := 0
	for attempt := 0; attempt <= 2*len(st.cmds)+maxHookRetries+2; attempt++ {
		var ups []refs.Update
		var idx []int
		for i, c := range st.cmds {
			if st.reasons[i] != "" || st.skip[i] {
				continue
			}
			if c.New.IsZero() {
				cur, err := s.Refs.Resolve(ctx, sess.Repo, c.Name)
				if errors.Is(err, refs.ErrNotFound) {
					continue // nothing to delete
				}
				if err == nil && c.Old.IsZero() {
					c.Old = cur // "delete whatever it is" still names the value it deletes
				}
			}
			u := refs.Update{Name: c.Name, Old: c.Old, New: c.New}
			if isMerge(c.Name) {
				if u = (refs.Update{}); res != nil {
					u = res.Lands[c.Name]
				}
				if u.Name == "" {
					continue // accepted, nothing to write (already merged)
				}
			}
			ups = append(ups, u)
			idx = append(idx, i)
		}
		var extra, finished []refs.Update
		if res != nil {
			extra = res.Updates
			if res.Finish != nil {
				var refuse map[refs.Name]string
				finished, refuse = res.Finish(ctx, st.refused())
				if st.refuse(refuse) {
					if atomic {
						st.failAll(reasonAtomic)
					}
					continue // ask again for the new outcome
				}
				extra = append(slices.Clone(extra), finished...)
			}
		}
		ups = append(ups, boundExtra(ups, extra)...)
		if len(ups) == 0 {
			return
		}
		err := s.Refs.Update(ctx, sess.Repo, ups, q, msg)
		if err == nil {
			s.setHeadIfUnset(ctx, sess, st)
			return
		}
		var se *refs.StaleError
		stale := errors.As(err, &se)
		culprit := -1
		if stale {
			for k, i := range idx {
				if ups[k].Name == se.Name {
					culprit = i
				}
			}
		}
		why := reasonStale
		if culprit >= 0 && isMerge(st.cmds[culprit].Name) {
			why = fmt.Sprintf(reasonMergeMoved, se.Name, st.cmds[culprit].Name)
		}
		switch {
		case culprit >= 0 && !atomic:
			st.reasons[culprit] = why
			continue
		case culprit >= 0 && atomic:
			st.reasons[culprit] = why
			st.failAll(reasonAtomic)
			continue // commit the hook's updates alone
		case stale && !st.allFailed() && hookRetries < maxHookRetries && names(finished, se.Name):
			// A ref the hook's Finish read moved (a REST commit to the
			// branch's data while its pipeline ran): Finish reads it again.
			hookRetries++
			continue
		case stale && !st.allFailed():
			// One of the hook's own refs moved: a concurrent push to the
			// same branch won while the pipeline ran. Commit the hook's
			// updates for that outcome alone (the run is kept).
			st.failAll(reasonMovedDuringRun)
			continue
		case stale:
			s.logger().Error("hook's own ref update is stale", "repo", sess.Repo, "ref", se.Name, "err", err)
		default:
			s.logger().Error("ref update failed", "repo", sess.Repo, "err", err)
			st.failAll("failed to update ref")
		}
		return
	}
	s.logger().Error("push not committed: too many attempts", "repo", sess.Repo)
	st.failAll("failed to update ref")
}

// reasonMergeMoved refuses a merge request whose branch moved between the
// merge and its landing (a push that ran no pipeline does not wait for
// the branch's queue).
const reasonMergeMoved = "stale info: %s moved while this merge was checked; push to %s again"

// isMerge reports whether name is a merge request (refs/merge/<b>).
func isMerge(name refs.Name) bool { return strings.HasPrefix(string(name), refs.MergePrefix) }

// landsOK reports whether the hook said how the merge request name
// lands: on refs/heads/<b> of its own branch, or (a zero Update) not at
// all because there is nothing to merge.
func landsOK(res *hooks.Result, name refs.Name) bool {
	if res == nil {
		return false
	}
	u, ok := res.Lands[name]
	return ok && (u.Name == "" || u.Name == refs.Name(refs.HeadsPrefix+strings.TrimPrefix(string(name), refs.MergePrefix)))
}

// maxHookRetries bounds how often commitPush asks the hook again because
// one of its own updates was stale.
const maxHookRetries = 8

// names reports whether ups updates ref.
func names(ups []refs.Update, ref refs.Name) bool {
	for _, u := range ups {
		if u.Name == ref {
			return true
		}
	}
	return false
}

// refuse gives each standing command that why names its reason, and
// reports whether any was refused.
func (p *pushState) refuse(why map[refs.Name]string) bool {
	changed := false
	for i, c := range p.cmds {
		if r, ok := why[c.Name]; ok && p.reasons[i] == "" {
			if r == "" {
				r = "pre-receive hook declined"
			}
			p.reasons[i] = oneLine(r)
			changed = true
		}
	}
	return changed
}

// reasonMovedDuringRun refuses a push whose branch data moved while its
// pipeline ran: another push to the same branch won the compare-and-swap.
const reasonMovedDuringRun = "stale info: the branch moved while this push was checked; fetch and push again"

// boundExtra returns the hook updates that may be committed with ups.
// An update of refs/data/<b> belongs to the command on refs/heads/<b>
// (invariant 1: code and data move together), so it is dropped unless that
// command is in ups; every other hook update (refs/runs/...) is kept.
func boundExtra(ups, extra []refs.Update) []refs.Update {
	heads := make(map[string]bool, len(ups))
	for _, u := range ups {
		if b, ok := strings.CutPrefix(string(u.Name), refs.HeadsPrefix); ok {
			heads[b] = true
		}
	}
	var out []refs.Update
	for _, u := range extra {
		if b, ok := strings.CutPrefix(string(u.Name), refs.DataPrefix); ok && !heads[b] {
			continue
		}
		out = append(out, u)
	}
	return out
}

// setHeadIfUnset points HEAD at refs/heads/main if this push created it,
// else at the first branch it created, when HEAD is not yet set.
func (s *Server) setHeadIfUnset(ctx context.Context, sess *Session, st *pushState) {
	if _, err := s.Refs.Get(ctx, sess.Repo, refs.HEAD); !errors.Is(err, refs.ErrNotFound) {
		return
	}
	var target refs.Name
	for i, c := range st.cmds {
		if st.reasons[i] != "" || c.New.IsZero() || !strings.HasPrefix(string(c.Name), refs.HeadsPrefix) {
			continue
		}
		if c.Name == refs.HeadsPrefix+"main" {
			target = c.Name
			break
		}
		if target == "" {
			target = c.Name
		}
	}
	if target == "" {
		return
	}
	if err := s.Refs.SetSymbolic(ctx, sess.Repo, refs.HEAD, target); err != nil {
		s.logger().Error("set HEAD", "repo", sess.Repo, "target", target, "err", err)
	}
}

func (s *Server) logPush(sess *Session, st *pushState, unpack string) {
	for i, c := range st.cmds {
		result := "ok"
		if st.reasons[i] != "" {
			result = st.reasons[i]
		}
		s.logger().Info("push", "repo", sess.Repo, "ref", c.Name, "identity", sess.Identity,
			"old", c.Old, "new", c.New, "result", result, "unpack", unpack)
	}
}

// oneLine makes s safe for one pkt-line of report-status, which git
// prints to the pusher's terminal: one line, at most about 1000 bytes,
// control characters escaped (hooks.Neutralise) so that no reason, whatever
// text it quotes, can move the cursor or pass for another line.
func oneLine(s string) string {
	s = hooks.Neutralise(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", " "), "\n", " "))
	if len(s) > 1000 {
		n := 1000
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}
