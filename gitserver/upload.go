package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// upload-pack, protocol v0/v1 (gitprotocol-pack):
//
//	S: [version 1]
//	S: <oid> HEAD\0<capabilities>        (or 0{40} capabilities^{}\0<caps> when empty)
//	S: <oid> <ref> ...  <oid> <tag>^{}
//	S: 0000
//	C: want <oid> <client caps>  want <oid> ...  [shallow <oid>]...
//	   [deepen <n> | deepen-since <ts> | deepen-not <ref>...]  [filter <spec>]  0000
//	S: [shallow <oid>|unshallow <oid>]... 0000          (only when a deepen was sent)
//	C: have <oid> ... 0000          S: ACK <oid> common ... [ACK <oid> ready] NAK
//	C: have ... done                S: ACK <oid> | NAK
//	S: pack (side band 1), progress (band 2), 0000
//
// Stateless (HTTP): every request repeats the wants, shallows and deepen,
// then the common haves so far and new ones, and ends with a flush (the
// response ends after NAK) or "done" (the response carries the pack).

// uploadCaps returns the upload-pack capabilities for the advertisement.
func uploadCaps(rs *repoRefs) string {
	caps := []string{
		"multi_ack", "multi_ack_detailed", "no-done", "side-band", "side-band-64k",
		"thin-pack", "ofs-delta", "shallow", "deepen-since", "deepen-not", "deepen-relative",
		"no-progress", "include-tag", "allow-tip-sha1-in-want", "allow-reachable-sha1-in-want",
		"filter",
	}
	if rs.headTarget != "" && !rs.head.IsZero() {
		caps = append(caps, "symref=HEAD:"+string(rs.headTarget))
	}
	caps = append(caps, "object-format=sha1", "agent="+Agent)
	return strings.Join(caps, " ")
}

// advertiseUpload writes the v0/v1 ref advertisement.
func (s *Server) advertiseUpload(pw *pktWriter, sess *Session, rs *repoRefs) error {
	if sess.Protocol == 1 {
		pw.linef("version 1")
	}
	writeRefLines(pw, rs, uploadCaps(rs), true)
	return pw.flushPkt()
}

// writeRefLines writes HEAD (when wanted and born), every ref and the peeled
// values of tags, the first line carrying caps. An empty list is advertised
// as the "capabilities^{}" line.
func writeRefLines(pw *pktWriter, rs *repoRefs, caps string, withHead bool) {
	first := true
	emit := func(h objects.Hash, name string) {
		if first {
			pw.data([]byte(h.String() + " " + name + "\x00" + caps + "\n"))
			first = false
			return
		}
		pw.linef("%s %s", h, name)
	}
	if withHead && !rs.head.IsZero() {
		emit(rs.head, "HEAD")
	}
	for _, r := range rs.list {
		emit(r.hash, string(r.name))
		if !r.peeled.IsZero() {
			emit(r.peeled, string(r.name)+"^{}")
		}
	}
	if first {
		emit(plumbing.ZeroHash, "capabilities^{}")
	}
}

// uploadRequest is the want section of a fetch.
type uploadRequest struct {
	wants    []objects.Hash
	caps     capList
	shallows []objects.Hash // the client's shallow commits
	deepen   deepenSpec
	filter   *objectFilter // nil: no filter
}

// Bounds on an upload-pack request: they keep a request's parsed form to a
// few tens of megabytes, far above what a real client sends.
const (
	maxWantLines     = 1 << 20 // want and shallow lines of one request
	maxHavesPerRound = 1 << 18 // have lines between two flushes
)

// readUploadRequest reads wants, shallows and deepen up to the flush.
// It returns nil when the client sent nothing (closed or flush only).
func readUploadRequest(pr *pktReader) (*uploadRequest, error) {
	req := &uploadRequest{caps: capList{}}
	for i := 0; ; i++ {
		line, k, err := pr.line()
		if err == io.EOF && i == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read wants: %w", err)
		}
		if k == pktFlush {
			break
		}
		if k != pktData {
			return nil, fmt.Errorf("%w: unexpected %v pkt in wants", ErrProtocol, k)
		}
		if i >= maxWantLines {
			return nil, fmt.Errorf("%w: more than %d want and shallow lines", ErrProtocol, maxWantLines)
		}
		switch {
		case strings.HasPrefix(line, "want "):
			arg := line[5:]
			hexID, rest, _ := strings.Cut(arg, " ")
			h, ok := parseHashString(hexID)
			if !ok {
				return nil, fmt.Errorf("%w: expected to get object ID, not %s", ErrProtocol, clip([]byte(line)))
			}
			if len(req.wants) == 0 {
				req.caps = parseCaps(rest)
			}
			req.wants = append(req.wants, h)
		case strings.HasPrefix(line, "shallow "):
			h, ok := parseHashString(line[8:])
			if !ok {
				return nil, fmt.Errorf("%w: invalid shallow line %s", ErrProtocol, clip([]byte(line)))
			}
			req.shallows = append(req.shallows, h)
		case strings.HasPrefix(line, "filter "):
			if !req.caps.has("filter") {
				return nil, fmt.Errorf("%w: filtering capability not negotiated", ErrProtocol)
			}
			if req.filter != nil {
				return nil, fmt.Errorf("%w: more than one filter line", ErrProtocol)
			}
			f, err := parseFilter(line[len("filter "):])
			if err != nil {
				return nil, err
			}
			req.filter = f
		default:
			ok, err := parseDeepenLine(line, &req.deepen)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("%w: expected want, shallow, deepen or filter, got %s", ErrProtocol, clip([]byte(line)))
			}
		}
	}
	if len(req.wants) == 0 {
		return nil, nil
	}
	req.deepen.relative = req.caps.has("deepen-relative")
	return req, nil
}

// haveRound is one round of negotiation: the have lines up to a flush, or
// up to "done".
type haveRound struct {
	haves []objects.Hash
	done  bool
}

// readHaveRound reads one round whole, so a malformed line is refused
// before anything of the round is answered. It returns io.EOF when the
// stream ends cleanly before the round starts.
func readHaveRound(pr *pktReader) (*haveRound, error) {
	r := &haveRound{}
	for i := 0; ; i++ {
		line, k, err := pr.line()
		if err == io.EOF && i == 0 {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("read haves: %w", err)
		}
		switch {
		case k == pktFlush:
			return r, nil
		case k != pktData:
			return nil, fmt.Errorf("%w: unexpected %v pkt in haves", ErrProtocol, k)
		case strings.HasPrefix(line, "have "):
			h, ok := parseHashString(line[5:])
			if !ok {
				return nil, fmt.Errorf("%w: invalid have line %s", ErrProtocol, clip([]byte(line)))
			}
			if len(r.haves) == maxHavesPerRound {
				return nil, fmt.Errorf("%w: more than %d have lines before a flush", ErrProtocol, maxHavesPerRound)
			}
			r.haves = append(r.haves, h)
		case line == "done":
			r.done = true
			return r, nil
		default:
			return nil, fmt.Errorf("%w: expected have or done, got %s", ErrProtocol, clip([]byte(line)))
		}
	}
}

// notOurRefError is a want of an object no ref reaches.
type notOurRefError struct{ id objects.Hash }

func (e *notOurRefError) Error() string { return "upload-pack: not our ref " + e.id.String() }

// checkWants refuses any want that is neither an advertised value nor an
// object reachable from one: commits by a walk of the history, trees and
// blobs (a partial clone's lazy fetch) by the cached reachable set.
func (s *Server) checkWants(ctx context.Context, repo objects.RepoName, rs *repoRefs, wants []objects.Hash) error {
	tips := map[objects.Hash]bool{}
	if !rs.head.IsZero() {
		tips[rs.head] = true
	}
	for _, r := range rs.list {
		tips[r.hash] = true
		if !r.peeled.IsZero() {
			tips[r.peeled] = true
		}
	}
	missing := map[objects.Hash]bool{}
	for _, h := range wants {
		if !tips[h] {
			missing[h] = true
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// allow-reachable-sha1-in-want: walk the history of every tip.
	var others []objects.Hash
	for h := range missing {
		typ, _, err := s.Objects.Stat(ctx, repo, h)
		if err != nil {
			return &notOurRefError{id: h}
		}
		if typ != plumbing.CommitObject {
			others = append(others, h)
		}
	}
	if len(others) > 0 {
		set, err := s.reachableSet(ctx, repo, rs)
		if err != nil {
			return err
		}
		for _, h := range others {
			if _, ok := set[h]; !ok {
				return &notOurRefError{id: h}
			}
			delete(missing, h)
		}
		if len(missing) == 0 {
			return nil
		}
	}
	w := newWalker(ctx, s.Objects, repo)
	visited := map[objects.Hash]bool{}
	var stack []objects.Hash
	for t := range tips {
		stack = append(stack, t)
	}
	for len(stack) > 0 && len(missing) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[h] {
			continue
		}
		visited[h] = true
		delete(missing, h)
		c, err := w.commit(h)
		if err != nil {
			if errors.Is(err, errNotCommit) || errors.Is(err, objects.ErrNotFound) {
				continue
			}
			return err
		}
		for _, p := range c.parents {
			if !visited[p] {
				stack = append(stack, p)
			}
		}
	}
	for h := range missing {
		return &notOurRefError{id: h}
	}
	return nil
}

// shallowInfo is the result of a deepen request.
type shallowInfo struct {
	shallow   []objects.Hash // new boundaries to tell the client
	unshallow []objects.Hash // client boundaries that now get their parents
	// graftsWant and graftsHave drive the commit walk (see fetchPlan).
	graftsWant map[objects.Hash]bool
	graftsHave map[objects.Hash]bool
	// extraWants are the parents of unshallowed commits.
	extraWants []objects.Hash
}

// computeShallow works out the shallow boundary for "deepen depth" from the
// wants (depth 0: no deepen, the client's boundaries stay as they are).
func computeShallow(w *walker, wants, clientShallow []objects.Hash, depth int) (*shallowInfo, error) {
	si := &shallowInfo{graftsWant: map[objects.Hash]bool{}, graftsHave: map[objects.Hash]bool{}}
	client := map[objects.Hash]bool{}
	for _, h := range clientShallow {
		client[h] = true
		si.graftsHave[h] = true
	}
	if depth <= 0 {
		for h := range client {
			si.graftsWant[h] = true
		}
		return si, nil
	}
	// Breadth first from the wants: a commit first reached at depth d
	// (wants are at 1) is complete when d < depth and a boundary when
	// d == depth.
	type item struct {
		h objects.Hash
		d int
	}
	visited := map[objects.Hash]bool{}
	notShallow := map[objects.Hash]bool{}
	var queue []item
	for _, h := range wants {
		if c, err := w.commit(h); err == nil && !visited[c.hash] {
			visited[c.hash] = true
			queue = append(queue, item{c.hash, 1})
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		c, err := w.commit(it.h)
		if err != nil {
			return nil, err
		}
		if it.d >= depth {
			if len(c.parents) > 0 {
				si.graftsWant[c.hash] = true
				if !client[c.hash] {
					si.shallow = append(si.shallow, c.hash)
				}
			}
			continue
		}
		notShallow[c.hash] = true
		for _, p := range c.parents {
			if !visited[p] {
				visited[p] = true
				queue = append(queue, item{p, it.d + 1})
			}
		}
	}
	for _, h := range clientShallow {
		if notShallow[h] {
			si.unshallow = append(si.unshallow, h)
			if c, err := w.commit(h); err == nil {
				si.extraWants = append(si.extraWants, c.parents...)
			}
		} else if !si.graftsWant[h] {
			si.graftsWant[h] = true
		}
	}
	return si, nil
}

// negotiator answers have lines (gitprotocol-pack "Packfile Negotiation").
type negotiator struct {
	w        *walker
	wants    []objects.Hash // wanted commits
	common   []objects.Hash // haves we have, in order
	they     map[objects.Hash]bool
	oldest   int64
	ready    bool // cached okToGiveUp
	readyFor int  // len(common) when ready was computed
}

func newNegotiator(w *walker, wants []objects.Hash) *negotiator {
	n := &negotiator{w: w, they: map[objects.Hash]bool{}, readyFor: -1}
	for _, h := range wants {
		if _, err := w.commit(h); err == nil {
			n.wants = append(n.wants, h)
		}
	}
	return n
}

// have records one have line; it reports whether we have the commit.
func (n *negotiator) have(h objects.Hash) (bool, error) {
	if n.they[h] {
		return true, nil
	}
	c, err := n.w.commit(h)
	if err != nil {
		if errors.Is(err, objects.ErrNotFound) {
			return false, nil
		}
		if errors.Is(err, errNotCommit) {
			return true, nil
		}
		return false, err
	}
	n.they[h] = true
	n.common = append(n.common, h)
	if n.oldest == 0 || c.time < n.oldest {
		n.oldest = c.time
	}
	return true, nil
}

// okToGiveUp reports whether every wanted commit reaches a commit the
// client has, so a pack can be cut now.
func (n *negotiator) okToGiveUp() (bool, error) {
	if len(n.common) == 0 {
		return false, nil
	}
	if n.readyFor == len(n.common) {
		return n.ready, nil
	}
	n.readyFor = len(n.common)
	n.ready = false
	for _, want := range n.wants {
		found := false
		visited := map[objects.Hash]bool{}
		stack := []objects.Hash{want}
		for len(stack) > 0 && !found {
			h := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[h] {
				continue
			}
			visited[h] = true
			if n.they[h] {
				found = true
				break
			}
			c, err := n.w.commit(h)
			if err != nil {
				if errors.Is(err, objects.ErrNotFound) {
					continue
				}
				return false, err
			}
			if c.time < n.oldest-86400 {
				continue // older than anything they have: give up here
			}
			stack = append(stack, c.parents...)
		}
		if !found {
			return false, nil
		}
	}
	n.ready = true
	return true, nil
}

// serveUpload runs a v0/v1 upload-pack session.
func (s *Server) serveUpload(ctx context.Context, pr *pktReader, pw *pktWriter, sess *Session) error {
	rs, err := s.loadRefs(ctx, sess.Repo)
	if err != nil {
		return err
	}
	if !sess.StatelessRPC {
		if err := s.advertiseUpload(pw, sess, rs); err != nil {
			return err
		}
		if err := pw.send(); err != nil {
			return err
		}
	}
	req, err := readUploadRequest(pr)
	var fe *filterError
	if errors.As(err, &fe) {
		pw.errLine(fe.msg) // well-formed, but not a filter this server has
	}
	if err != nil || req == nil {
		return err
	}
	// A stateless request holds its haves too: read them all before
	// answering anything, so a malformed one is refused with no partial
	// answer (over HTTP: a 400). A stateful client waits for the shallow
	// lines before it sends haves.
	var first *haveRound
	if sess.StatelessRPC {
		if first, err = readHaveRound(pr); err != nil && err != io.EOF {
			return err
		}
	}
	if err := s.checkWants(ctx, sess.Repo, rs, req.wants); err != nil {
		pw.errLine(err.Error())
		return err
	}
	w := newWalker(ctx, s.Objects, sess.Repo)
	si, err := shallowFor(w, rs, req.wants, req.shallows, &req.deepen)
	if err != nil {
		var sr *errShallowRequest
		if errors.As(err, &sr) {
			pw.errLine(sr.msg)
		}
		return err
	}
	if req.deepen.any() {
		for _, h := range si.shallow {
			pw.linef("shallow %s", h)
		}
		for _, h := range si.unshallow {
			pw.linef("unshallow %s", h)
		}
		pw.flushPkt()
		if err := pw.send(); err != nil {
			return err
		}
	}

	multiAck := 0
	switch {
	case req.caps.has("multi_ack_detailed"):
		multiAck = 2
	case req.caps.has("multi_ack"):
		multiAck = 1
	}
	noDone := req.caps.has("no-done")
	neg := newNegotiator(w, req.wants)
	var lastHex string
	gotCommon, gotOther, sentReady := false, false, false
negotiation:
	for {
		var round *haveRound
		if sess.StatelessRPC {
			if first == nil {
				return nil // a stateless request that only asked for shallow info
			}
			round = first
		} else if round, err = readHaveRound(pr); err != nil {
			return err
		}
		for _, h := range round.haves {
			known, err := neg.have(h)
			if err != nil {
				return err
			}
			if !known {
				gotOther = true
				if multiAck > 0 {
					ok, err := neg.okToGiveUp()
					if err != nil {
						return err
					}
					if ok {
						if multiAck == 2 {
							sentReady = true
							pw.linef("ACK %s ready", h)
						} else {
							pw.linef("ACK %s continue", h)
						}
					}
				}
				continue
			}
			gotCommon = true
			lastHex = h.String()
			switch {
			case multiAck == 2:
				pw.linef("ACK %s common", lastHex)
			case multiAck == 1:
				pw.linef("ACK %s continue", lastHex)
			case len(neg.common) == 1:
				pw.linef("ACK %s", lastHex)
			}
		}
		if round.done {
			if len(neg.common) > 0 {
				if multiAck > 0 {
					pw.linef("ACK %s", lastHex)
				}
			} else {
				pw.linef("NAK")
			}
			break negotiation
		}
		// The round ended with a flush.
		if multiAck == 2 && gotCommon && !gotOther {
			ok, err := neg.okToGiveUp()
			if err != nil {
				return err
			}
			if ok {
				sentReady = true
				pw.linef("ACK %s ready", lastHex)
			}
		}
		if len(neg.common) == 0 || multiAck > 0 {
			pw.linef("NAK")
		}
		if noDone && sentReady {
			pw.linef("ACK %s", lastHex)
			break negotiation
		}
		if err := pw.send(); err != nil {
			return err
		}
		if sess.StatelessRPC {
			return nil
		}
		gotCommon, gotOther = false, false
	}

	fp := &fetchPlan{
		wants:      append(append([]objects.Hash{}, req.wants...), si.extraWants...),
		haves:      neg.common,
		graftsWant: si.graftsWant,
		graftsHave: si.graftsHave,
		filter:     req.filter,
	}
	if req.caps.has("include-tag") {
		fp.tags = rs.list
	}
	band := 0
	switch {
	case req.caps.has("side-band-64k"):
		band = maxBandPayload
	case req.caps.has("side-band"):
		band = 999
	}
	opt := packOptions{ofsDelta: req.caps.has("ofs-delta"), thin: req.caps.has("thin-pack")}
	return s.sendPack(ctx, pw, sess, w, fp, opt, band, !req.caps.has("no-progress"))
}

// sendPack plans and streams the pack. band is the side-band payload size
// (0: raw pack, no side band).
func (s *Server) sendPack(ctx context.Context, pw *pktWriter, sess *Session, w *walker, fp *fetchPlan, opt packOptions, band int, progress bool) error {
	if fp.filter != nil {
		// A partial clone may lack the blobs and trees of the commits it
		// has: no delta against them.
		opt.thin = false
	}
	var mu sync.Mutex
	var prog progressFunc
	if band > 0 && progress {
		bw := newBandWriter(&mu, pw, bandProgress, true)
		bw.max = band
		prog = func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	}
	s.serving.Add(1)
	defer s.serving.Add(-1)
	start := time.Now()
	pl, cached, err := s.planFetch(ctx, sess.Repo, w, fp, prog)
	if err != nil {
		if band > 0 {
			ew := newBandWriter(&mu, pw, bandError, true)
			ew.max = band
			fmt.Fprintf(ew, "upload-pack: %v\n", err)
		} else {
			pw.errLine("upload-pack: " + err.Error())
		}
		return err
	}
	if prog != nil {
		prog("Enumerating objects: %d, done.\n", len(pl.objs))
	}
	var out io.Writer = pw.w
	if band > 0 {
		out = packBandWriter{p: pw, max: band}
	}
	planned := time.Now()
	st, err := writePack(ctx, s.Objects, sess.Repo, pl, opt, prog, out)
	if err != nil {
		return err
	}
	if prog != nil {
		prog("Total %d (delta %d), reused %d (delta %d), pack-reused 0\n", st.objects, st.deltas, st.objects, st.reused)
	}
	if band > 0 {
		pw.flushPkt()
	}
	s.logger().Info("upload-pack", "repo", sess.Repo, "identity", sess.Identity,
		"objects", len(pl.objs), "commits", pl.commits, "deltas", st.deltas, "haves", len(fp.haves), "cached", cached,
		"plan", planned.Sub(start).Round(time.Millisecond), "pack", time.Since(planned).Round(time.Millisecond))
	return pw.send()
}
