package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/weir-dev/weir/objects"
)

// upload-pack, protocol v2 (gitprotocol-v2):
//
//	S: version 2 / agent=... / ls-refs=unborn / fetch=shallow filter / server-option / object-format=sha1 / 0000
//	C: command=<name> / <capability>... / 0001 / <argument>... / 0000
//	S: <response> / 0000
//
// ls-refs answers "<oid> <ref>[ symref-target:<t>][ peeled:<oid>]" lines.
// fetch answers, in order and each only when needed:
//
//	acknowledgments / NAK | ACK <oid>... / [ready]      (unless the client said done)
//	0001 when ready, else 0000 and the response ends
//	shallow-info / shallow <oid> | unshallow <oid>... / 0001
//	packfile / <side-band pkt-lines: 1 pack, 2 progress, 3 error> / 0000
//
// Over SSH the client sends commands until it closes the stream or sends a
// lone flush; over HTTP every request is one command.

// advertiseV2 writes the v2 capability advertisement.
func advertiseV2(pw *pktWriter) error {
	pw.linef("version 2")
	pw.linef("agent=%s", Agent)
	pw.linef("ls-refs=unborn")
	pw.linef("fetch=shallow filter")
	pw.linef("server-option")
	pw.linef("object-format=sha1")
	return pw.flushPkt()
}

// v2Request is one command with its capabilities and arguments.
type v2Request struct {
	command string
	caps    []string
	args    []string
}

// Bounds on one v2 request: lines (capabilities and arguments) and their
// bytes, far above what a real client sends.
const (
	maxV2Lines = 1 << 20
	maxV2Bytes = 32 << 20
)

// readV2Request reads one command. It returns nil at the end of the
// session (EOF or a lone flush).
func readV2Request(pr *pktReader) (*v2Request, error) {
	req := &v2Request{}
	inArgs := false
	size := 0
	for i := 0; ; i++ {
		line, k, err := pr.line()
		if err == io.EOF && i == 0 {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read command: %w", err)
		}
		switch k {
		case pktFlush:
			if i == 0 {
				return nil, nil
			}
			if req.command == "" {
				return nil, fmt.Errorf("%w: no command in request", ErrProtocol)
			}
			return req, nil
		case pktDelim:
			if inArgs {
				return nil, fmt.Errorf("%w: second delimiter in request", ErrProtocol)
			}
			inArgs = true
			continue
		case pktResponseEnd:
			return nil, fmt.Errorf("%w: unexpected response-end pkt", ErrProtocol)
		}
		if size += len(line); i >= maxV2Lines || size > maxV2Bytes {
			return nil, fmt.Errorf("%w: request longer than %d lines or %d bytes", ErrProtocol, maxV2Lines, maxV2Bytes)
		}
		switch {
		case inArgs:
			req.args = append(req.args, line)
		case strings.HasPrefix(line, "command="):
			if req.command != "" {
				return nil, fmt.Errorf("%w: command given twice", ErrProtocol)
			}
			req.command = line[len("command="):]
		default:
			req.caps = append(req.caps, line)
		}
	}
}

// serveUploadV2 runs a v2 session.
func (s *Server) serveUploadV2(ctx context.Context, pr *pktReader, pw *pktWriter, sess *Session) error {
	if !sess.StatelessRPC {
		if _, err := s.loadRefs(ctx, sess.Repo); err != nil {
			return err
		}
		if err := advertiseV2(pw); err != nil {
			return err
		}
		if err := pw.send(); err != nil {
			return err
		}
	}
	for {
		req, err := readV2Request(pr)
		if err != nil || req == nil {
			return err
		}
		for _, c := range req.caps {
			if strings.HasPrefix(c, "object-format=") && c != "object-format=sha1" {
				pw.errLine("unsupported object format " + clip([]byte(strings.TrimPrefix(c, "object-format="))))
				return fmt.Errorf("%w: %s", ErrProtocol, clip([]byte(c)))
			}
		}
		switch req.command {
		case "ls-refs":
			err = s.lsRefs(ctx, pw, sess, req.args)
		case "fetch":
			err = s.fetchV2(ctx, pw, sess, req.args)
		default:
			pw.errLine("unknown command " + clip([]byte(req.command)))
			err = fmt.Errorf("%w: unknown command %s", ErrProtocol, clip([]byte(req.command)))
		}
		if err != nil {
			return err
		}
		if err := pw.send(); err != nil {
			return err
		}
		if sess.StatelessRPC {
			return nil
		}
	}
}

// lsRefsArgs are the arguments of ls-refs.
type lsRefsArgs struct {
	symrefs, peel, unborn bool
	prefixes              []string
}

// parseLsRefsArgs parses the arguments of ls-refs, all or nothing.
func parseLsRefsArgs(args []string) (*lsRefsArgs, error) {
	a := &lsRefsArgs{}
	for _, arg := range args {
		switch {
		case arg == "symrefs":
			a.symrefs = true
		case arg == "peel":
			a.peel = true
		case arg == "unborn":
			a.unborn = true
		case strings.HasPrefix(arg, "ref-prefix "):
			a.prefixes = append(a.prefixes, arg[len("ref-prefix "):])
		default:
			return nil, fmt.Errorf("%w: ls-refs: unexpected argument %s", ErrProtocol, clip([]byte(arg)))
		}
	}
	return a, nil
}

// lsRefs answers the ls-refs command.
func (s *Server) lsRefs(ctx context.Context, pw *pktWriter, sess *Session, args []string) error {
	a, err := parseLsRefsArgs(args)
	if err != nil {
		pw.errLine(strings.TrimPrefix(err.Error(), ErrProtocol.Error()+": "))
		return err
	}
	symrefs, peel, unborn, prefixes := a.symrefs, a.peel, a.unborn, a.prefixes
	rs, err := s.loadRefs(ctx, sess.Repo)
	if err != nil {
		return err
	}
	match := func(name string) bool {
		if len(prefixes) == 0 {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	if match("HEAD") {
		switch {
		case !rs.head.IsZero():
			line := rs.head.String() + " HEAD"
			if symrefs && rs.headTarget != "" {
				line += " symref-target:" + string(rs.headTarget)
			}
			pw.linef("%s", line)
		case unborn && rs.headTarget != "":
			pw.linef("unborn HEAD symref-target:%s", rs.headTarget)
		}
	}
	for _, r := range rs.list {
		if !match(string(r.name)) {
			continue
		}
		line := r.hash.String() + " " + string(r.name)
		if peel && !r.peeled.IsZero() {
			line += " peeled:" + r.peeled.String()
		}
		pw.linef("%s", line)
	}
	return pw.flushPkt()
}

// fetchArgs are the arguments of fetch.
type fetchArgs struct {
	wants, haves, shallows       []objects.Hash
	done, noProgress, includeTag bool
	thin, ofsDelta               bool
	deepen                       deepenSpec
	filter                       *objectFilter
}

// parseFetchArgs parses the arguments of fetch, all or nothing.
func parseFetchArgs(args []string) (*fetchArgs, error) {
	f := &fetchArgs{}
	for _, a := range args {
		var ok bool
		var h objects.Hash
		switch {
		case strings.HasPrefix(a, "want "):
			if h, ok = parseHashString(a[5:]); ok {
				f.wants = append(f.wants, h)
			}
		case strings.HasPrefix(a, "have "):
			if h, ok = parseHashString(a[5:]); ok {
				f.haves = append(f.haves, h)
			}
		case strings.HasPrefix(a, "shallow "):
			if h, ok = parseHashString(a[8:]); ok {
				f.shallows = append(f.shallows, h)
			}
		case strings.HasPrefix(a, "deepen"):
			if a == "deepen-relative" {
				f.deepen.relative, ok = true, true
				break
			}
			matched, err := parseDeepenLine(a, &f.deepen)
			if err != nil {
				return nil, fmt.Errorf("fetch: %w", err)
			}
			ok = matched
		case strings.HasPrefix(a, "filter "):
			if f.filter != nil {
				return nil, fmt.Errorf("%w: fetch: more than one filter argument", ErrProtocol)
			}
			flt, err := parseFilter(a[len("filter "):])
			if err != nil {
				return nil, fmt.Errorf("%w: fetch: %v", ErrProtocol, err)
			}
			f.filter, ok = flt, true
		case a == "done":
			f.done, ok = true, true
		case a == "thin-pack":
			f.thin, ok = true, true
		case a == "ofs-delta":
			f.ofsDelta, ok = true, true
		case a == "no-progress":
			f.noProgress, ok = true, true
		case a == "include-tag":
			f.includeTag, ok = true, true
		}
		if !ok {
			return nil, fmt.Errorf("%w: fetch: unexpected argument %s", ErrProtocol, clip([]byte(a)))
		}
	}
	return f, nil
}

// fetchV2 answers the fetch command.
func (s *Server) fetchV2(ctx context.Context, pw *pktWriter, sess *Session, args []string) error {
	f, err := parseFetchArgs(args)
	if err != nil {
		pw.errLine(strings.TrimPrefix(err.Error(), ErrProtocol.Error()+": "))
		return err
	}
	wants, haves, shallows := f.wants, f.haves, f.shallows
	done, noProgress, includeTag := f.done, f.noProgress, f.includeTag
	rs, err := s.loadRefs(ctx, sess.Repo)
	if err != nil {
		return err
	}
	if err := s.checkWants(ctx, sess.Repo, rs, wants); err != nil {
		pw.errLine(err.Error())
		return err
	}
	w := newWalker(ctx, s.Objects, sess.Repo)
	// The boundary is worked out before anything is answered, so a
	// request it refuses gets one ERR line and nothing else.
	si, err := shallowFor(w, rs, wants, shallows, &f.deepen)
	if err != nil {
		var sr *errShallowRequest
		if errors.As(err, &sr) {
			pw.errLine(sr.msg)
		}
		return err
	}
	neg := newNegotiator(w, wants)
	for _, h := range haves {
		if _, err := neg.have(h); err != nil {
			return err
		}
	}
	if !done {
		pw.linef("acknowledgments")
		if len(neg.common) == 0 {
			pw.linef("NAK")
		}
		for _, h := range neg.common {
			pw.linef("ACK %s", h)
		}
		ready, err := neg.okToGiveUp()
		if err != nil {
			return err
		}
		if !ready {
			return pw.flushPkt()
		}
		pw.linef("ready")
		pw.special(pktDelim)
	}
	if f.deepen.any() || len(shallows) > 0 {
		pw.linef("shallow-info")
		for _, h := range si.shallow {
			pw.linef("shallow %s", h)
		}
		for _, h := range si.unshallow {
			pw.linef("unshallow %s", h)
		}
		pw.special(pktDelim)
	}
	pw.linef("packfile")
	fp := &fetchPlan{
		wants:      append(append([]objects.Hash{}, wants...), si.extraWants...),
		haves:      neg.common,
		graftsWant: si.graftsWant,
		graftsHave: si.graftsHave,
		filter:     f.filter,
	}
	if includeTag {
		fp.tags = rs.list
	}
	return s.sendPack(ctx, pw, sess, w, fp, packOptions{ofsDelta: f.ofsDelta, thin: f.thin}, maxBandPayload, !noProgress)
}
