package gitserver

import (
	"strconv"
	"strings"

	"github.com/weir-dev/weir/objects"
)

// The .gitattributes an archive honours, read from the archived tree
// itself (git's upload-archive reads them from the tree, never from a work
// tree or the server's info/attributes):
//
//	<pattern> <attr>...       attr: name (set), -name (unset), !name
//	                          (unspecified), name=value
//	# comment, blank lines, "[attr]" macro lines (skipped: no macros but
//	the built-in "binary", which unsets diff)
//
// A pattern without "/" matches the base name at any depth below the
// .gitattributes that holds it; one with "/" matches the path relative to
// that directory (a leading "/" anchors nothing more), with git's wildmatch
// ("*", "?", "[...]", "**/", "/**"); a trailing "/" matches directories
// only. A deeper .gitattributes wins over a shallower one, and a later line
// over an earlier one. Lines over 2048 bytes and negative patterns are
// ignored, as git does. Archives use export-ignore (the entry is left out)
// and diff (unset: a zip entry is marked binary); export-subst, eol, text,
// ident and filter are not applied.

// attrState is the state of one attribute for a path.
type attrState int

const (
	attrUnspecified attrState = iota
	attrSet
	attrUnset
	attrValue
)

// maxAttrLine is git's ATTR_MAX_LINE_LENGTH.
const maxAttrLine = 2048

type attrAssign struct {
	name  string
	state attrState
}

type attrRule struct {
	pattern   string
	nodir     bool // no "/" in the pattern: match the base name
	mustBeDir bool
	assigns   []attrAssign
}

type attrFrame struct {
	base  string // directory of the .gitattributes, "" at the root
	rules []attrRule
}

// attrStack holds the rules of the directories from the archived tree's
// root down to the one being walked.
type attrStack struct{ frames []attrFrame }

// push reads the .gitattributes blob (zero: none) of directory base.
func (a *attrStack) push(w *walker, base string, blob objects.Hash) error {
	f := attrFrame{base: base}
	if !blob.IsZero() {
		o, err := w.get(blob)
		if err != nil {
			return err
		}
		f.rules = parseAttrs(string(o.Data))
	}
	a.frames = append(a.frames, f)
	return nil
}

func (a *attrStack) pop() { a.frames = a.frames[:len(a.frames)-1] }

// state returns attribute name's state for path (relative to the archived
// tree, no trailing slash).
func (a *attrStack) state(path string, isDir bool, name string) attrState {
	st := attrUnspecified
	base := path
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		base = path[i+1:]
	}
	for _, f := range a.frames {
		for _, r := range f.rules {
			if !r.matches(f.base, path, base, isDir) {
				continue
			}
			for _, as := range r.assigns {
				switch {
				case as.name == name:
					st = as.state
				case as.name == "binary" && name == "diff" && as.state == attrSet:
					st = attrUnset
				}
			}
		}
	}
	return st
}

func (r *attrRule) matches(dir, path, base string, isDir bool) bool {
	if r.mustBeDir && !isDir {
		return false
	}
	rel := path
	if dir != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(path, dir+"/"); !ok {
			return false // a .gitattributes covers only what is below it
		}
	}
	if r.nodir {
		return wildmatch(r.pattern, base, false)
	}
	return wildmatch(strings.TrimPrefix(r.pattern, "/"), rel, true)
}

// parseAttrs parses a .gitattributes file.
func parseAttrs(text string) []attrRule {
	var rules []attrRule
	for _, line := range strings.Split(text, "\n") {
		if len(line) > maxAttrLine {
			continue
		}
		line = strings.TrimLeft(line, " \t\r")
		if line == "" || line[0] == '#' || strings.HasPrefix(line, "[attr]") {
			continue
		}
		var pat string
		if line[0] == '"' {
			end := quotedEnd(line)
			if end < 0 {
				continue
			}
			u, err := strconv.Unquote(line[:end+1])
			if err != nil {
				continue
			}
			pat, line = u, line[end+1:]
		} else {
			i := strings.IndexAny(line, " \t\r")
			if i < 0 {
				i = len(line)
			}
			pat, line = line[:i], line[i:]
		}
		if pat == "" || pat[0] == '!' {
			continue // negative patterns are forbidden in attributes
		}
		r := attrRule{pattern: pat}
		if strings.HasSuffix(r.pattern, "/") {
			r.mustBeDir = true
			r.pattern = strings.TrimRight(r.pattern, "/")
		}
		r.nodir = !strings.Contains(r.pattern, "/")
		for _, a := range strings.Fields(line) {
			switch {
			case a[0] == '-':
				r.assigns = append(r.assigns, attrAssign{a[1:], attrUnset})
			case a[0] == '!':
				r.assigns = append(r.assigns, attrAssign{a[1:], attrUnspecified})
			case strings.Contains(a, "="):
				r.assigns = append(r.assigns, attrAssign{a[:strings.IndexByte(a, '=')], attrValue})
			default:
				r.assigns = append(r.assigns, attrAssign{a, attrSet})
			}
		}
		if r.pattern != "" {
			rules = append(rules, r)
		}
	}
	return rules
}

// quotedEnd returns the index of the quote closing the C-quoted string at
// the start of s, or -1.
func quotedEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// wildmatch matches text against a glob pattern as git's wildmatch does;
// pathname is WM_PATHNAME: "*", "?" and "[...]" then never match "/", and
// "**" between slashes (or at either end) matches across directories.
func wildmatch(pattern, text string, pathname bool) bool {
	return wildmatchAt(pattern, 0, text, pathname) == wmMatch
}

const (
	wmNoMatch = iota
	wmMatch
	wmAbortAll
	wmAbortToStarStar
)

func wildmatchAt(p string, pi int, t string, pathname bool) int {
	ti := 0
	for ; pi < len(p); pi++ {
		c := p[pi]
		if ti >= len(t) && c != '*' {
			return wmAbortAll
		}
		switch c {
		case '\\':
			pi++
			if pi >= len(p) || t[ti] != p[pi] {
				return wmNoMatch
			}
			ti++
		case '?':
			if pathname && t[ti] == '/' {
				return wmNoMatch
			}
			ti++
		case '*':
			matchSlash := !pathname
			start := pi
			for pi+1 < len(p) && p[pi+1] == '*' {
				pi++
			}
			if pi > start && pathname {
				// "**": across directories only between slashes or at an end.
				prevOK := start == 0 || p[start-1] == '/'
				nextOK := pi+1 == len(p) || p[pi+1] == '/'
				if prevOK && nextOK {
					if pi+1 < len(p) && p[pi+1] == '/' &&
						wildmatchAt(p, pi+2, t[ti:], pathname) == wmMatch {
						return wmMatch // "**/" matching no directory
					}
					matchSlash = true
				}
			} else if pi > start {
				matchSlash = true
			}
			pi++
			if pi == len(p) {
				if !matchSlash && strings.IndexByte(t[ti:], '/') >= 0 {
					return wmAbortToStarStar
				}
				return wmMatch
			}
			for {
				if ti > len(t) {
					return wmAbortAll
				}
				r := wildmatchAt(p, pi, t[ti:], pathname)
				if r != wmNoMatch {
					if !matchSlash || r != wmAbortToStarStar {
						return r
					}
				}
				if ti < len(t) && !matchSlash && t[ti] == '/' {
					return wmAbortToStarStar
				}
				ti++
				if ti > len(t) {
					return wmAbortAll
				}
			}
		case '[':
			end, ok := classMatch(p, pi, t[ti], pathname)
			if end < 0 {
				return wmAbortAll
			}
			if !ok {
				return wmNoMatch
			}
			pi = end
			ti++
		default:
			if t[ti] != c {
				return wmNoMatch
			}
			ti++
		}
	}
	if ti == len(t) {
		return wmMatch
	}
	return wmNoMatch
}

// classMatch matches ch against the bracket expression at p[pi] ("[");
// it returns the index of the closing "]" (-1: none) and whether ch is in
// the class.
func classMatch(p string, pi int, ch byte, pathname bool) (int, bool) {
	i := pi + 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg, i = true, i+1
	}
	in := false
	first := true
	for ; i < len(p); i++ {
		c := p[i]
		if c == ']' && !first {
			if pathname && ch == '/' {
				return i, false
			}
			return i, in != neg
		}
		first = false
		if c == '\\' && i+1 < len(p) {
			i++
			c = p[i]
		}
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi := p[i+2]
			if hi == '\\' && i+3 < len(p) {
				hi = p[i+3]
				i++
			}
			if c <= ch && ch <= hi {
				in = true
			}
			i += 2
			continue
		}
		if c == ch {
			in = true
		}
	}
	return -1, false
}
