package objects

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
)

// Git's checks of the blobs that trees name .gitmodules and .gitattributes
// (fsck.c: fsck_blob, fsck_finish). A tree cannot say what is in them, so
// Quarantine.Check notes every such blob while it checks the pushed trees
// and checks each one afterwards, wherever it is: later or earlier in the
// pack, or already in the repo.
//
// Severities are git's defaults under receive.fsckObjects (index-pack
// --strict: warnings become errors, infos stay notes):
//
//	id                          git default   Weir
//	gitmodulesMissing           error         refuses: the blob is in neither the push nor the repo (git fsck and
//	                                          unpack-objects --strict refuse it; index-pack --strict, used for big
//	                                          pushes, leaves it to its caller)
//	gitmodulesBlob              error         refuses: .gitmodules names a tree or a commit
//	gitmodulesLarge             error         refuses: bigger than MaxGitmodulesBytes (see there)
//	gitmodulesName              error         refuses: [submodule "../x"], empty name
//	gitmodulesUrl               error         refuses: "-opt", newline, "../" climbing to a host, bad http(s)/ftp(s) URL
//	gitmodulesPath              error         refuses: path = -x
//	gitmodulesUpdate            error         refuses: update = !command
//	gitmodulesSymlink           error         refuses: .gitmodules is a symlink (CheckTree)
//	gitmodulesParse             info          accepted: the blob is not config syntax (git reads none of it past the error either)
//	gitattributesMissing        error         refuses
//	gitattributesBlob           error         refuses
//	gitattributesLarge          error         refuses: over 100 MiB (git's ATTR_MAX_FILE_SIZE)
//	gitattributesLineLength     error         refuses: a line of 2048 bytes or more (git's ATTR_MAX_LINE_LENGTH)
//	gitattributesSymlink        info          accepted
//	gitignoreSymlink            info          accepted
//	mailmapSymlink              info          accepted (git has no other .mailmap check)

// MaxGitmodulesBytes is the largest .gitmodules blob Check reads; a bigger
// one is refused as gitmodulesLarge. Git refuses a .gitmodules only when it
// is too big to load (core.bigFileThreshold, 512 MiB); Weir reads the blob
// whole into memory to parse it, so it bounds that memory instead. A real
// .gitmodules is a few hundred bytes per submodule: 4 MiB holds about
// 30,000 of them.
const MaxGitmodulesBytes = 4 << 20

// Git's limits on a .gitattributes blob (attr.h).
const (
	maxGitattributesBytes = 100 << 20 // ATTR_MAX_FILE_SIZE
	maxGitattributesLine  = 2048      // ATTR_MAX_LINE_LENGTH: a line this long or longer is refused
)

// blobRole says what a tree named a blob.
type blobRole uint8

// maxBytes is the largest blob checkNamedBlob reads for roles r.
func (r blobRole) maxBytes() int64 {
	var n int64
	if r&roleGitmodules != 0 {
		n = max(n, MaxGitmodulesBytes)
	}
	if r&roleGitattributes != 0 {
		n = max(n, maxGitattributesBytes)
	}
	return n
}

const (
	roleGitmodules blobRole = 1 << iota
	roleGitattributes
)

// String names the file, for messages.
func (r blobRole) String() string {
	if r == roleGitattributes {
		return ".gitattributes"
	}
	return ".gitmodules"
}

// ids returns git's message ids for a role: missing, not a blob, too large.
func (r blobRole) ids() (missing, notBlob, large string) {
	if r == roleGitattributes {
		return "gitattributesMissing", "gitattributesBlob", "gitattributesLarge"
	}
	return "gitmodulesMissing", "gitmodulesBlob", "gitmodulesLarge"
}

// checkNamedBlob runs the checks of one role on object id, named so by
// tree: typ, size and zdata are the object as stored (see Store.Raw), err
// the error reading it.
func checkNamedBlob(id Hash, role blobRole, tree Hash, typ Type, size int64, zdata []byte, err error) error {
	missing, notBlob, large := role.ids()
	switch {
	case errors.Is(err, ErrNotFound):
		return &CheckError{Object: id, Check: missing,
			Detail: fmt.Sprintf("unable to read %s blob (tree %s names it %s; push it too)", role, tree, role)}
	case err != nil:
		return err
	case typ != plumbing.BlobObject:
		return &CheckError{Object: id, Check: notBlob,
			Detail: fmt.Sprintf("non-blob found at %s: a %s (in tree %s)", role, typ, tree)}
	}
	switch role {
	case roleGitmodules:
		if size > MaxGitmodulesBytes {
			return &CheckError{Object: id, Check: large,
				Detail: fmt.Sprintf(".gitmodules too large to parse: %d bytes, the limit is %d", size, MaxGitmodulesBytes)}
		}
		data, err := inflate(zdata, size)
		if err != nil {
			return fmt.Errorf("read %s: %w", id, err)
		}
		return CheckGitmodules(id, data)
	case roleGitattributes:
		if size > maxGitattributesBytes {
			return &CheckError{Object: id, Check: large,
				Detail: fmt.Sprintf(".gitattributes too large to parse: %d bytes, git's limit is %d", size, maxGitattributesBytes)}
		}
		zr, err := zlib.NewReader(bytes.NewReader(zdata))
		if err != nil {
			return fmt.Errorf("read %s: %w: %v", id, ErrBadObject, err)
		}
		defer zr.Close()
		return CheckGitattributes(id, io.LimitReader(zr, size))
	}
	return nil
}

// CheckGitattributes runs git's checks of a .gitattributes blob's content,
// read from r without holding it: no line may be maxGitattributesLine
// (2048) bytes or longer (gitattributesLineLength). Like git, it reads up
// to the first NUL byte only. The size limit (gitattributesLarge) is the
// caller's, who knows the size before reading.
func CheckGitattributes(id Hash, r io.Reader) error {
	var buf [32 << 10]byte
	line, lineNo := 0, 1
	for {
		n, err := r.Read(buf[:])
		for _, c := range buf[:n] {
			switch c {
			case 0:
				return nil
			case '\n':
				line = 0
				lineNo++
				continue
			}
			if line++; line >= maxGitattributesLine {
				return &CheckError{Object: id, Check: "gitattributesLineLength",
					Detail: fmt.Sprintf(".gitattributes has too long lines to parse: line %d is %d bytes or longer, which git ignores", lineNo, maxGitattributesLine)}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w: %v", id, ErrBadObject, err)
		}
	}
}

// CheckGitmodules runs git's checks of a .gitmodules blob's content
// (fsck_gitmodules_fn): for every variable "submodule.<name>.<key>", the
// name (gitmodulesName), and the values of url (gitmodulesUrl), path
// (gitmodulesPath) and update (gitmodulesUpdate). A blob that is not valid
// config syntax is accepted, as git accepts it (gitmodulesParse is only a
// note), but every variable before the syntax error is checked, as git
// checks them. It returns the first problem as a *CheckError, or nil.
//
// It checks the variables git sees reading the blob (as git fsck does)
// and those it sees reading the checked-out file: they differ when the
// blob holds a byte order mark or a 0xff byte (see configSource), and git
// fsck, which reads only the blob, passes a .gitmodules whose file a
// checkout reads as url = -upload-pack=... Weir refuses both.
//
// Values are read as git's callbacks read them, as C strings: up to the
// first NUL byte.
func CheckGitmodules(id Hash, data []byte) error {
	// Git reads a .gitmodules two ways (see configSource): git fsck reads
	// the blob, a checkout reads the file. Check what either would see.
	for _, source := range []configSource{configFile, configBlob} {
		if err := checkGitmodules(id, data, source); err != nil {
			return err
		}
	}
	return nil
}

func checkGitmodules(id Hash, data []byte, source configSource) error {
	err := parseGitConfig(data, source, func(v configVar) error {
		name, key, ok := submoduleVar(v.name)
		if !ok {
			return nil
		}
		fail := func(check, format string, args ...any) error {
			return &CheckError{Object: id, Check: check, Detail: fmt.Sprintf(format, args...) +
				fmt.Sprintf(" (.gitmodules line %d: fix it and push again)", v.line)}
		}
		if why := submoduleNameProblem(name); why != "" {
			return fail("gitmodulesName", "disallowed submodule name: %s: %s", quoteShort(name), why)
		}
		if !v.hasValue {
			return nil
		}
		value := cString(v.value)
		switch string(key) {
		case "url":
			if why := submoduleURLProblem(value); why != "" {
				return fail("gitmodulesUrl", "disallowed submodule url: %s (submodule %s): %s", quoteShort(value), quoteShort(name), why)
			}
		case "path":
			if len(value) > 0 && value[0] == '-' {
				return fail("gitmodulesPath", "disallowed submodule path: %s (submodule %s): it would be read as a command-line option", quoteShort(value), quoteShort(name))
			}
		case "update":
			// git's parse_submodule_update_type: "!..." is a command, run
			// by `git submodule update`.
			if len(value) > 0 && value[0] == '!' {
				return fail("gitmodulesUpdate", "disallowed submodule update setting: %s (submodule %s): a command is never accepted from a repository", quoteShort(value), quoteShort(name))
			}
		}
		return nil
	})
	if errors.Is(err, errConfigSyntax) {
		return nil // gitmodulesParse: a note in git, not an error
	}
	return err
}

// submoduleVar splits a variable's full name as git's parse_config_key
// does for section "submodule": name and key of "submodule.<name>.<key>"
// (the name may hold dots; the key is after the last one). Like git, it
// sees the full name as a C string, cut at its first NUL.
func submoduleVar(full []byte) (name, key []byte, ok bool) {
	full = cString(full)
	rest, ok := bytes.CutPrefix(full, []byte("submodule."))
	if !ok {
		return nil, nil, false
	}
	dot := bytes.LastIndexByte(rest, '.')
	if dot < 0 {
		return nil, nil, false // "submodule.key": no name
	}
	return rest[:dot], rest[dot+1:], true
}

// cString is b up to its first NUL, as C code sees it.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// quoteShort quotes b for a message, cut to 200 bytes: it comes from the
// client and goes back to it and to logs.
func quoteShort(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// isDirSep is git's is_xplatform_dir_sep: '/' or '\'.
func isDirSep(c byte) bool { return c == '/' || c == '\\' }

// submoduleNameProblem is git's check_submodule_name: a name is where the
// submodule's repository lives under .git/modules/, so it may not be empty
// or have ".." as a component ('/' and '\' both separate). It returns why
// name is refused, or "".
func submoduleNameProblem(name []byte) string {
	if len(name) == 0 {
		return "empty"
	}
	start := 0
	for i := 0; i <= len(name); i++ {
		if i < len(name) && !isDirSep(name[i]) {
			continue
		}
		if string(name[start:i]) == ".." {
			return "'..' would reach outside .git/modules"
		}
		start = i + 1
	}
	return ""
}

// submoduleURLProblem is git's check_submodule_url. It returns why url is
// refused, or "".
//
//   - a URL starting with '-' would be read as an option by the transport
//     (CVE-2018-17456);
//   - a relative URL ("./", "../", also with '\') or a git:// URL may be
//     joined to the superproject's http URL and URL-decoded: it may not
//     decode to a newline (CVE-2020-5260), and it may not climb out of its
//     root with "../" onto ':' or '/' (CVE-2020-11008);
//   - an http(s) or ftp(s) URL (also "http::..." and the like, handed to
//     git-remote-curl) must be one git's url_normalize accepts, which
//     needs a host, and may not decode to a newline (git 2.44 and later;
//     git 2.39 checked the host and the newline only).
//
// Weir decodes the whole URL when looking for a newline, where git leaves
// a relative URL's part before its first ':' as is: a "%0a" there is
// refused here and passes git.
func submoduleURLProblem(url []byte) string {
	if len(url) > 0 && url[0] == '-' {
		return "it would be read as a command-line option"
	}
	if relativeURL(url) || bytes.HasPrefix(url, []byte("git://")) {
		if decodesToNewline(url) {
			return "it holds a newline once URL-decoded"
		}
		rest := url
		climbs := 0
		for {
			if bytes.HasPrefix(rest, []byte("..")) && len(rest) > 2 && isDirSep(rest[2]) {
				rest = rest[3:]
				climbs++
			} else if len(rest) > 1 && rest[0] == '.' && isDirSep(rest[1]) {
				rest = rest[2:]
			} else {
				break
			}
		}
		if climbs > 0 && len(rest) > 0 && (rest[0] == ':' || rest[0] == '/') {
			return "its leading '../' climb out of the superproject's URL onto its host"
		}
		return ""
	}
	if curl, ok := curlURL(url); ok {
		if why := urlNormalizeProblem(curl); why != "" {
			return why
		}
		if decodesToNewline(curl) {
			return "it holds a newline once URL-decoded"
		}
	}
	return ""
}

// relativeURL reports whether url starts with "./" or "../" (or ".\",
// "..\"), git's submodule_url_is_relative.
func relativeURL(url []byte) bool {
	if len(url) > 1 && url[0] == '.' && isDirSep(url[1]) {
		return true
	}
	return len(url) > 2 && url[0] == '.' && url[1] == '.' && isDirSep(url[2])
}

// curlURL is git's url_to_curl_url: the URL git-remote-curl would get for
// url, if it is one of its transports.
func curlURL(url []byte) ([]byte, bool) {
	for _, p := range []string{"http::", "https::", "ftp::", "ftps::"} {
		if rest, ok := bytes.CutPrefix(url, []byte(p)); ok {
			return rest, true
		}
	}
	for _, p := range []string{"http://", "https://", "ftp://", "ftps://"} {
		if bytes.HasPrefix(url, []byte(p)) {
			return url, true
		}
	}
	return nil, false
}

// hexVal is the value of a hex digit, or -1.
func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// percentByte decodes "%XX" at the start of s: the byte and true, or false
// when s does not start with '%' and two hex digits.
func percentByte(s []byte) (byte, bool) {
	if len(s) < 3 || s[0] != '%' {
		return 0, false
	}
	hi, lo := hexVal(s[1]), hexVal(s[2])
	if hi < 0 || lo < 0 {
		return 0, false
	}
	return byte(hi<<4 | lo), true
}

// decodesToNewline reports whether URL-decoding s once (git's url_decode:
// "%XX" becomes its byte, anything else stays) yields a '\n'.
func decodesToNewline(s []byte) bool {
	for i := 0; i < len(s); {
		if b, ok := percentByte(s[i:]); ok {
			if b == '\n' {
				return true
			}
			i += 3
			continue
		}
		if s[i] == '\n' {
			return true
		}
		i++
	}
	return false
}

// URL character classes of git's url_normalize (RFC 3986).
func isURLSchemeChar(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-'
}

func isURLHostChar(c byte) bool {
	return isAlpha(c) || c >= '0' && c <= '9' || bytes.IndexByte([]byte(".-_[:]"), c) >= 0
}

// escapesValid reports whether every '%' in s starts a "%XX" escape.
func escapesValid(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if _, ok := percentByte(s[i:]); !ok {
				return false
			}
			i += 2
		}
	}
	return true
}

// dotSegment returns 1 for a path segment that is "." and 2 for "..",
// once "%2e" is decoded to '.' as url_normalize does; 0 otherwise.
func dotSegment(seg []byte) int {
	dots := 0
	for len(seg) > 0 {
		if seg[0] == '.' {
			seg = seg[1:]
		} else if b, ok := percentByte(seg); ok && b == '.' {
			seg = seg[3:]
		} else {
			return 0
		}
		if dots++; dots > 2 {
			return 0
		}
	}
	return dots
}

// urlNormalizeProblem reports why git's url_normalize would refuse u, an
// http(s) or ftp(s) URL, or "". url_normalize wants "scheme://", then
// optional userinfo "...@" with valid %-escapes, a non-empty host of
// [A-Za-z0-9.-_[:]], an optional port of 1 to 65535 (leading zeros
// ignored; an empty port is the default), and a path and query whose
// %-escapes are valid and whose ".." segments never climb above the root.
func urlNormalizeProblem(u []byte) string {
	i := 0
	for i < len(u) && isURLSchemeChar(u[i]) {
		i++
	}
	if i == 0 || !isAlpha(u[0]) || i+3 > len(u) || string(u[i:i+3]) != "://" {
		return "invalid URL scheme name or missing '://' suffix"
	}
	rest := u[i+3:]
	slash := bytes.IndexAny(rest, "/?#")
	if slash < 0 {
		slash = len(rest)
	}
	if at := bytes.IndexByte(rest, '@'); at >= 0 && at < slash {
		if !escapesValid(rest[:at]) {
			return "invalid %XX escape sequence"
		}
		rest, slash = rest[at+1:], slash-at-1
	}
	if slash == 0 || rest[0] == ':' {
		return "missing host"
	}
	colon := slash
	c := slash - 1
	for c > 0 && rest[c] != ':' && rest[c] != ']' {
		c--
	}
	if rest[c] == ':' {
		colon = c
	}
	for _, ch := range rest[:colon] {
		if !isURLHostChar(ch) {
			return "invalid characters in host name"
		}
	}
	if colon < slash {
		port := bytes.TrimLeft(rest[colon+1:slash], "0")
		if len(port) == 0 && slash-colon > 1 {
			port = []byte("0") // all zeros: port 0
		}
		if len(port) > 0 {
			n, err := strconv.ParseUint(string(port), 10, 32)
			if err != nil || len(port) > 5 || n == 0 || n > 65535 {
				return "invalid port number"
			}
		}
	}
	rest = rest[slash:]
	if len(rest) > 0 && rest[0] == '/' {
		rest = rest[1:]
	}
	depth := 0
	for {
		n := bytes.IndexAny(rest, "/?#")
		if n < 0 {
			n = len(rest)
		}
		seg := rest[:n]
		if !escapesValid(seg) {
			return "invalid %XX escape sequence"
		}
		switch dotSegment(seg) {
		case 1:
		case 2:
			if depth == 0 {
				return "invalid '..' path segment"
			}
			depth--
		default:
			depth++
		}
		rest = rest[n:]
		if len(rest) == 0 || rest[0] != '/' {
			break
		}
		rest = rest[1:]
	}
	if !escapesValid(rest) {
		return "invalid %XX escape sequence"
	}
	return ""
}
