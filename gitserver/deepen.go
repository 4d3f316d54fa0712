package gitserver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Shallow requests (gitprotocol-pack, gitprotocol-v2 "fetch"):
//
//	deepen <n>            history n commits deep from the wants
//	deepen-relative       with deepen <n>: n commits below the client's
//	                      current shallow boundary
//	deepen-since <ts>     the commits no older than ts (committer time)
//	deepen-not <ref>      the commits not reachable from ref (repeatable)
//
// deepen-since and deepen-not combine (as "git rev-list --max-age=<ts>
// --not <refs> --not <wants>"); neither may come with deepen <n>. The
// boundary they draw is the commits selected that have a parent not
// selected; a client's shallow commit that is now selected and not on the
// boundary is "unshallow"ed and its parents are walked.

// deepenSpec is what one fetch asked for about history depth.
type deepenSpec struct {
	depth    int   // deepen <n>; 0: none
	since    int64 // deepen-since; 0: none
	not      []string
	relative bool
}

// revList reports whether the boundary is drawn by since and not.
func (d *deepenSpec) revList() bool { return d.since != 0 || len(d.not) > 0 }

// any reports whether the fetch asked to change the depth.
func (d *deepenSpec) any() bool { return d.depth > 0 || d.revList() }

// parseDeepenLine parses the deepen lines shared by v0 and v2 into d. It
// reports false when line is none of them.
func parseDeepenLine(line string, d *deepenSpec) (bool, error) {
	switch {
	case strings.HasPrefix(line, "deepen "):
		n, err := strconv.Atoi(line[7:])
		if err != nil || n <= 0 {
			return true, fmt.Errorf("%w: invalid deepen %s", ErrProtocol, clip([]byte(line)))
		}
		d.depth = n
	case strings.HasPrefix(line, "deepen-since "):
		ts, err := strconv.ParseInt(line[len("deepen-since "):], 10, 64)
		if err != nil || ts <= 0 {
			return true, fmt.Errorf("%w: invalid deepen-since %s (want seconds since the epoch)", ErrProtocol, clip([]byte(line)))
		}
		d.since = ts
	case strings.HasPrefix(line, "deepen-not "):
		ref := line[len("deepen-not "):]
		if ref == "" || len(ref) > 4096 || strings.ContainsAny(ref, "\x00\n") {
			return true, fmt.Errorf("%w: invalid deepen-not %s", ErrProtocol, clip([]byte(line)))
		}
		if len(d.not) >= maxDeepenNot {
			return true, fmt.Errorf("%w: more than %d deepen-not lines", ErrProtocol, maxDeepenNot)
		}
		d.not = append(d.not, ref)
	default:
		return false, nil
	}
	return true, nil
}

// maxDeepenNot bounds the deepen-not lines of one request.
const maxDeepenNot = 1024

// errShallowRequest is a shallow request that cannot be answered; its
// text goes to the client as is.
type errShallowRequest struct{ msg string }

func (e *errShallowRequest) Error() string { return e.msg }

// resolveDeepenNot finds the ref a deepen-not names, by git's rules for a
// short name (as is, refs/, refs/tags/, refs/heads/, refs/remotes/,
// refs/remotes/<name>/HEAD), among the advertised refs, and returns the
// commit it peels to.
func resolveDeepenNot(rs *repoRefs, name string) (objects.Hash, error) {
	var found []advRef
	for _, full := range []string{name, "refs/" + name, refs.TagsPrefix + name, refs.HeadsPrefix + name,
		"refs/remotes/" + name, "refs/remotes/" + name + "/HEAD"} {
		if full == "HEAD" && !rs.head.IsZero() {
			found = append(found, advRef{name: "HEAD", hash: rs.head})
			continue
		}
		for _, r := range rs.list {
			if string(r.name) == full {
				found = append(found, r)
			}
		}
	}
	switch {
	case len(found) > 1:
		return objects.Hash{}, &errShallowRequest{"git upload-pack: ambiguous deepen-not: " + name}
	case len(found) == 0:
		return objects.Hash{}, &errShallowRequest{"git upload-pack: deepen-not is not a ref: " + name}
	}
	if !found[0].peeled.IsZero() {
		return found[0].peeled, nil
	}
	return found[0].hash, nil
}

// shallowFor works out the shallow boundary of one fetch.
func shallowFor(w *walker, rs *repoRefs, wants, clientShallow []objects.Hash, d *deepenSpec) (*shallowInfo, error) {
	// The client's shallow commits we do not know are ignored (as git
	// does); one that is not a commit is refused.
	var known []objects.Hash
	for _, h := range clientShallow {
		if _, err := w.commit(h); err != nil {
			if errors.Is(err, errNotCommit) {
				return nil, &errShallowRequest{"invalid shallow object " + h.String()}
			}
			if errors.Is(err, objects.ErrNotFound) {
				continue
			}
			return nil, err
		}
		known = append(known, h)
	}
	switch {
	case d.depth > 0 && d.revList():
		return nil, &errShallowRequest{"git upload-pack: deepen and deepen-since (or deepen-not) cannot be used together"}
	case d.depth > 0 && d.relative:
		// From the client's boundary, one deeper than asked: the
		// boundary commits themselves are at depth 1.
		return computeShallow(w, known, known, d.depth+1)
	case d.revList():
		var not []objects.Hash
		for _, name := range d.not {
			h, err := resolveDeepenNot(rs, name)
			if err != nil {
				return nil, err
			}
			not = append(not, h)
		}
		return computeShallowRevList(w, wants, known, d.since, not)
	}
	return computeShallow(w, wants, known, d.depth)
}

// computeShallowRevList draws the boundary of the commits reachable from
// wants that are no older than since (when not 0) and not reachable from
// not.
func computeShallowRevList(w *walker, wants, clientShallow []objects.Hash, since int64, not []objects.Hash) (*shallowInfo, error) {
	excluded := map[objects.Hash]bool{}
	stack := append([]objects.Hash(nil), not...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if excluded[h] {
			continue
		}
		c, err := w.commit(h)
		if err != nil {
			if errors.Is(err, errNotCommit) || errors.Is(err, objects.ErrNotFound) {
				continue
			}
			return nil, err
		}
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		excluded[h] = true
		stack = append(stack, c.parents...)
	}
	selected := map[objects.Hash]bool{}
	var order []*commitNode
	visited := map[objects.Hash]bool{}
	stack = append(stack[:0], wants...)
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[h] {
			continue
		}
		visited[h] = true
		c, err := w.commit(h)
		if err != nil {
			if errors.Is(err, errNotCommit) {
				continue
			}
			return nil, err
		}
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		if excluded[h] || (since != 0 && c.time < since) {
			continue
		}
		selected[h] = true
		order = append(order, c)
		stack = append(stack, c.parents...)
	}
	if len(order) == 0 {
		return nil, &errShallowRequest{"no commits selected for shallow requests"}
	}
	si := &shallowInfo{graftsWant: map[objects.Hash]bool{}, graftsHave: map[objects.Hash]bool{}}
	client := map[objects.Hash]bool{}
	for _, h := range clientShallow {
		client[h] = true
		si.graftsHave[h] = true
	}
	for _, c := range order {
		for _, p := range c.parents {
			if !selected[p] {
				si.graftsWant[c.hash] = true
				if !client[c.hash] {
					si.shallow = append(si.shallow, c.hash)
				}
				break
			}
		}
	}
	for _, h := range clientShallow {
		if selected[h] && !si.graftsWant[h] {
			si.unshallow = append(si.unshallow, h)
			if c, err := w.commit(h); err == nil {
				si.extraWants = append(si.extraWants, c.parents...)
			}
		} else {
			si.graftsWant[h] = true
		}
	}
	return si, nil
}
