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
