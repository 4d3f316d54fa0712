package objects

import (
	"errors"
	"fmt"
)

// This file reads Git's config syntax the way C git's config parser does,
// for the one config file a push can carry that Git clients act on:
// .gitmodules. It is written from git's documented and observed behaviour
// (git-config(1), "CONFIGURATION FILE"), not from its code.
//
// Why not go-git's plumbing/format/config (github.com/go-git/gcfg)? A
// checker must see exactly the variables Git will see, and gcfg does not:
// it refuses old-style "[submodule.name]" headers, a variable on the same
// line as its header, and a leading UTF-8 byte order mark, all of which
// git accepts (an attacker would hide a URL behind any of them: we would
// see a parse error, git would see the URL); it keeps the newline of a
// backslash-newline continuation, which git removes; and it reads the
// whole input with io.ReadAll. This reader takes the blob as bytes already
// bounded by MaxGitmodulesBytes, allocates nothing beyond the current
// variable's name and value, and stops at the first syntax error exactly
// where git stops, after handing over every variable before it, as git
// does.
//
// Grammar, as git reads it (bytes, not runes; "space" is one of
// ' ', '\t', '\r', '\n'; "\r\n" reads as "\n"):
//
//	file     = [BOM] { blank | comment | header | variable }
//	BOM      = EF BB BF                 (a partial BOM is an error)
//	comment  = ('#' | ';') ... '\n'
//	header   = '[' name ']'             name: [A-Za-z0-9.-]+, lower-cased
//	         | '[' name space+ '"' sub '"' ']'
//	                                    sub: any bytes but '\n'; '\' takes
//	                                    the next byte as is; case kept
//	variable = key [space* '=' value] '\n'   key: alpha [A-Za-z0-9-]*, lower-cased
//	value    = leading and trailing spaces dropped; '"' toggles quoting
//	           (inside quotes spaces, ';' and '#' are kept); ';' or '#'
//	           outside quotes starts a comment; escapes \n \t \b \\ \"
//	           and backslash-newline (continuation); any other escape
//	           is an error
//
// A variable's full name is "section.key" or "section.sub.key" (section
// and key lower-cased, sub as written), the string git hands to its
// callbacks; a variable with no '=' has no value (a boolean true).

// errConfigSyntax is returned (wrapped, with the line) when a config blob
// does not parse.
var errConfigSyntax = errors.New("objects: bad config syntax")

// configVar is one variable as git's config parser reports it.
type configVar struct {
	name     []byte // "section.key" or "section.sub.key"; only valid during the callback
	value    []byte // only valid during the callback
	hasValue bool   // false for "key" alone (no '='): git passes NULL
	line     int    // 1-based line of the variable
}

// configSource says how C git reads the bytes of a config: the two ways
// disagree, and a checker must see what either sees.
type configSource uint8

const (
	// configFile is a config read from a file, as git reads a checked-out
	// .gitmodules (and as git reads a blob where char is unsigned, on
	// arm64 for one): a leading UTF-8 byte order mark is skipped.
	configFile configSource = iota
	// configBlob is a config read from memory where C's char is signed
	// (x86), as git fsck reads a .gitmodules blob and as git reads
	// HEAD:.gitmodules: byte 0xff reads as EOF (it sign-extends to -1),
	// after which the parser goes on reading with its end-of-file flag
	// set, and no byte order mark is ever recognised (0xef never equals
	// 239). So git fsck on x86 sees a blob with a BOM, or a 0xff before a
	// variable, as a syntax error, and passes what a checkout then reads.
	configBlob
)

// configReader yields a config's bytes as git's parser sees them.
type configReader struct {
	data   []byte
	source configSource
	pos    int
	line   int  // lines consumed so far
	eof    bool // git's cs->eof: set at the end (and, from a blob, at 0xff), never cleared
}

// next returns the next byte, "\r\n" as '\n', and '\n' (with eof set) at
// the end, forever; from a blob, 0xff also reads as '\n' with eof set.
func (r *configReader) next() byte {
	if r.pos >= len(r.data) {
		r.eof = true
		return '\n'
	}
	c := r.data[r.pos]
	r.pos++
	if r.source == configBlob && c == 0xff {
		r.eof = true
		return '\n'
	}
	if c == '\r' && r.pos < len(r.data) {
		switch r.data[r.pos] {
		case '\n':
			r.pos++
			c = '\n'
		case 0xff:
			if r.source == configBlob {
				r.pos++ // git reads it as EOF and does not push it back
			}
		}
	}
	if c == '\n' {
		r.line++
	}
	return c
}

func isConfigSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isAlpha(c byte) bool       { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isKeyChar(c byte) bool     { return isAlpha(c) || c >= '0' && c <= '9' || c == '-' }

// parseGitConfig calls fn for every variable of data, in order, the way
// git's config parser calls its callback when it reads data from source.
// It stops at the first error fn returns, or at the first syntax error
// (after fn has seen every variable before it), returned wrapping
// errConfigSyntax.
func parseGitConfig(data []byte, source configSource, fn func(v configVar) error) error {
	r := &configReader{data: data, source: source}
	var name, value []byte
	base := 0 // len(name) of "section." or "section.sub."
	bom := []byte{0xef, 0xbb, 0xbf}
	nbom := 0 // BOM bytes seen; -1 once past the start
	if source == configBlob {
		nbom = -1
	}
	comment := false
	bad := func() error {
		return fmt.Errorf("%w: line %d", errConfigSyntax, r.line+1)
	}
	for {
		c := r.next()
		if nbom >= 0 && nbom < len(bom) {
			if c == bom[nbom] {
				nbom++
				continue
			}
			if nbom > 0 {
				return bad() // a partial byte order mark
			}
			nbom = -1
		}
		switch {
		case c == '\n':
			if r.eof {
				return nil
			}
			comment = false
			continue
		case comment, isConfigSpace(c):
			continue
		case c == '#' || c == ';':
			comment = true
			continue
		case c == '[':
			name = name[:0]
			var ok bool
			if name, ok = r.header(name); !ok || len(name) == 0 {
				return bad()
			}
			name = append(name, '.')
			base = len(name)
			continue
		case !isAlpha(c):
			return bad()
		}
		line := r.line + 1
		name = append(name[:base], lower(c))
		for {
			c = r.next()
			if r.eof || !isKeyChar(c) {
				break
			}
			name = append(name, lower(c))
		}
		for c == ' ' || c == '\t' {
			c = r.next()
		}
		v := configVar{name: name, line: line}
		if c != '\n' {
			if c != '=' {
				return bad()
			}
			var ok bool
			if value, ok = r.value(value[:0]); !ok {
				return bad()
			}
			v.value, v.hasValue = value, true
		}
		if err := fn(v); err != nil {
			return err
		}
	}
}

// header reads a section header after its '[' and appends its name to
// name: "section" or "section.sub".
func (r *configReader) header(name []byte) ([]byte, bool) {
	for {
		c := r.next()
		switch {
		case r.eof:
			return name, false
		case c == ']':
			return name, true
		case isConfigSpace(c):
			return r.subsection(name, c)
		case !isKeyChar(c) && c != '.':
			return name, false
		}
		name = append(name, lower(c))
	}
}

// subsection reads `space* "sub"]` (c is the first space) and appends
// ".sub" to name.
func (r *configReader) subsection(name []byte, c byte) ([]byte, bool) {
	for isConfigSpace(c) {
		if c == '\n' {
			return name, false
		}
		c = r.next()
	}
	if c != '"' {
		return name, false
	}
	name = append(name, '.')
	for {
		c := r.next()
		if c == '\n' {
			return name, false
		}
		if c == '"' {
			break
		}
		if c == '\\' {
			if c = r.next(); c == '\n' {
				return name, false
			}
		}
		name = append(name, c)
	}
	return name, r.next() == ']'
}

// value reads a variable's value after its '=' up to and including the
// end of its line, appending it to buf.
func (r *configReader) value(buf []byte) ([]byte, bool) {
	quoted, comment := false, false
	trim := 0 // when > 0: length before a run of trailing spaces
	for {
		c := r.next()
		if c == '\n' {
			if quoted {
				return buf, false
			}
			if trim > 0 {
				buf = buf[:trim]
			}
			return buf, true
		}
		if comment {
			continue
		}
		if isConfigSpace(c) && !quoted {
			if trim == 0 {
				trim = len(buf)
			}
			if len(buf) > 0 {
				buf = append(buf, c)
			}
			continue
		}
		if !quoted && (c == ';' || c == '#') {
			comment = true
			continue
		}
		trim = 0
		switch c {
		case '\\':
			switch c = r.next(); c {
			case '\n':
				continue // a continuation line
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'n':
				c = '\n'
			case '\\', '"':
			default:
				return buf, false
			}
		case '"':
			quoted = !quoted
			continue
		}
		buf = append(buf, c)
	}
}
