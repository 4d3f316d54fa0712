package objects

import (
	"errors"
	"fmt"
	"strings"
)

// ErrBadRepoName is returned (wrapped) by ParseRepoName.
var ErrBadRepoName = errors.New("objects: invalid repo name")

// MaxRepoNameLen is the longest repo name accepted, without ".git".
const MaxRepoNameLen = 100

// ParseRepoName validates s and returns it as a RepoName, without a
// trailing ".git" and without leading or trailing slashes.
//
// A name is one or two segments separated by a single '/'; a segment is
// made of [A-Za-z0-9._-], does not start with '.' or '-', and is not "..".
func ParseRepoName(s string) (RepoName, error) {
	bad := func(why string) (RepoName, error) {
		return "", fmt.Errorf("%w %q: %s", ErrBadRepoName, s, why)
	}
	name := strings.TrimPrefix(s, "/")
	name = strings.TrimSuffix(name, "/")
	name = strings.TrimSuffix(name, ".git")
	if name == "" {
		return bad("empty")
	}
	if len(name) > MaxRepoNameLen {
		return bad(fmt.Sprintf("longer than %d characters", MaxRepoNameLen))
	}
	segs := strings.Split(name, "/")
	if len(segs) > 2 {
		return bad("more than two path segments")
	}
	for _, seg := range segs {
		if seg == "" {
			return bad("empty path segment")
		}
		if seg[0] == '.' || seg[0] == '-' {
			return bad("a segment starts with '.' or '-'")
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
			if !ok {
				return bad(fmt.Sprintf("character %q not allowed", c))
			}
		}
		if strings.Contains(seg, "..") {
			return bad("contains \"..\"")
		}
	}
	return RepoName(name), nil
}

// String returns the name.
func (r RepoName) String() string { return string(r) }

// ParseHash parses an object name written as exactly 40 lowercase hex
// digits, the only form Git puts on the wire and in object headers.
func ParseHash(b []byte) (Hash, bool) {
	var h Hash
	if len(b) != 40 {
		return h, false
	}
	for i := range h {
		hi, ok1 := unhex(b[2*i])
		lo, ok2 := unhex(b[2*i+1])
		if !ok1 || !ok2 {
			return Hash{}, false
		}
		h[i] = hi<<4 | lo
	}
	return h, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
