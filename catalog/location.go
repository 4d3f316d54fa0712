package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Locations and their confinement (invariant 9).
//
// A location is a URL naming one file or folder of the warehouse:
//
//	file:///srv/weir/warehouse/team@demo/sales/orders/metadata/00001-<uuid>.metadata.json
//	s3://lake/wh/team@demo/sales/orders/data/<uuid>.parquet
//	└─┬─┘ └┬─┘└──────┬──────┘└─────────────┬───────────────────────────┘
//	scheme host  repo prefix          path below the prefix (rel)
//
// Clients send locations (a table's location, the manifest list of a new
// snapshot) and Iceberg files name more (manifests, data files). Each is
// resolved against the prefix of one repo by prefix.resolve, the only
// place a location is interpreted, and it is accepted only in canonical
// form:
//
//   - the scheme and host are exactly the warehouse's ("file" with an empty
//     host, or "s3" and the bucket), written as "scheme://host/path";
//   - the path is made of non-empty segments, none "." or "..";
//   - there is no percent-escape: a location whose escapes decode to
//     something else is refused, not decoded (file layers disagree on
//     whether to decode: iceberg-go's local FileIO does, object stores
//     do not), and so is a double-encoded one;
//   - no '?', '#', '\\', control character (NUL included) or invalid UTF-8;
//   - the path's segments start with the repo prefix's segments (compared
//     segment by segment, so "sales" is not a prefix of "sales2") and go
//     at least one segment further.
//
// What resolve accepts is the prefix plus a relative path that every file
// layer reads the same way, and that path (rel) is what the warehouse
// opens, below the repo's own folder (os.Root) or key prefix. So even a
// location that escaped a check would reach nothing outside the repo.

// Errors of location checks.
var (
	// ErrBadLocation: a location is not in canonical form (see prefix.resolve).
	ErrBadLocation = errors.New("catalog: bad location")
	// ErrOutsideRepo: a location is canonical but not under the repo's own
	// part of the warehouse.
	ErrOutsideRepo = errors.New("catalog: location outside this repo's warehouse")
)

// MaxLocationLen bounds the length of a location.
const MaxLocationLen = 4096

// prefix is the canonical location of a folder of the warehouse (its root,
// or one repo's part of it), split for comparison.
type prefix struct {
	scheme string   // "file" or "s3"
	host   string   // "" for file, the bucket for s3
	segs   []string // path segments: non-empty, no "." or ".."
}

// parsePrefix parses a location the server itself built (a warehouse
// root); it must be canonical, and may be the root of the scheme.
func parsePrefix(loc string) (prefix, error) {
	p, rest, err := splitLocation(loc)
	if err != nil {
		return prefix{}, err
	}
	if rest != "" {
		if p.segs, err = segments(rest); err != nil {
			return prefix{}, fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
		}
	}
	return p, nil
}

// String returns the prefix as a location, without a trailing slash.
func (p prefix) String() string {
	return p.scheme + "://" + p.host + "/" + strings.Join(p.segs, "/")
}

// child returns the prefix one segment further down; seg must be one
// valid segment.
func (p prefix) child(seg string) (prefix, error) {
	if err := checkSegment(seg); err != nil {
		return prefix{}, fmt.Errorf("%w: %q: %v", ErrBadLocation, seg, err)
	}
	return prefix{p.scheme, p.host, append(p.segs[:len(p.segs):len(p.segs)], seg)}, nil
}

// resolve checks that loc is a canonical location strictly under p and
// returns its path relative to p ("a/b/c", no leading or trailing '/').
// The error wraps ErrBadLocation or ErrOutsideRepo and says why; it
// quotes loc, never p.
func (p prefix) resolve(loc string) (string, error) {
	q, rest, err := splitLocation(loc)
	if err != nil {
		return "", err
	}
	if q.scheme != p.scheme || q.host != p.host {
		return "", fmt.Errorf("%w: %q (this warehouse's locations start %s://%s/)", ErrOutsideRepo, loc, p.scheme, p.host)
	}
	segs, err := segments(rest)
	if err != nil {
		return "", fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
	}
	if len(segs) <= len(p.segs) {
		return "", fmt.Errorf("%w: %q", ErrOutsideRepo, loc)
	}
	for i, s := range p.segs {
		if segs[i] != s {
			return "", fmt.Errorf("%w: %q", ErrOutsideRepo, loc)
		}
	}
	return strings.Join(segs[len(p.segs):], "/"), nil
}

// splitLocation splits a canonical "scheme://host/path" into its scheme
// and host (in a prefix with no segments) and the path after the host's
// '/' (possibly empty). It refuses every non-canonical form but the
// path's segments, which segments checks.
func splitLocation(loc string) (prefix, string, error) {
	bad := func(why string, a ...any) (prefix, string, error) {
		return prefix{}, "", fmt.Errorf("%w %q: %s", ErrBadLocation, loc, fmt.Sprintf(why, a...))
	}
	if len(loc) > MaxLocationLen {
		return bad("longer than %d bytes", MaxLocationLen)
	}
	if !utf8.ValidString(loc) {
		return bad("not valid UTF-8")
	}
	for _, r := range loc {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("control character %q", r)
		case r == '\\':
			return bad("backslash (write '/' between folders)")
		case r == '?' || r == '#':
			return bad("%q: a location has no query or fragment", r)
		case r == '%':
			return bad("%s", escapeReason(loc))
		}
	}
	scheme, rest, ok := strings.Cut(loc, "://")
	if !ok {
		return bad("want scheme://host/path (file:///path for a local warehouse, s3://bucket/key for S3)")
	}
	switch scheme {
	case "file", "s3":
	default:
		if strings.EqualFold(scheme, "file") || strings.EqualFold(scheme, "s3") {
			return bad("write the scheme in lower case (%s://)", strings.ToLower(scheme))
		}
		return bad("scheme %q: the warehouse's locations are file:// or s3://", scheme)
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no path after the host")
	}
	if scheme == "file" && host != "" {
		return bad("a file location has no host (want file:///path, not file://%s/...)", host)
	}
	if scheme == "s3" && host == "" {
		return bad("no bucket (want s3://bucket/key)")
	}
	return prefix{scheme: scheme, host: host}, path, nil
}

// escapeReason says why a location holding '%' is refused: what its
// escapes would decode to, if they decode.
func escapeReason(loc string) string {
	dec, err := url.PathUnescape(loc)
	switch {
	case err != nil:
		return "'%' that is not a valid percent-escape"
	case strings.Contains(dec, "%"):
		return "double percent-encoding (%25)"
	default:
		return fmt.Sprintf("percent-escapes (they would decode to %q): write the location unescaped", dec)
	}
}

// segments splits a path (no leading '/') into its segments.
func segments(path string) ([]string, error) {
	segs := strings.Split(path, "/")
	for _, s := range segs {
		if err := checkSegment(s); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

func checkSegment(s string) error {
	switch s {
	case "":
		return errors.New("empty path segment ('//' or a trailing '/')")
	case ".", "..":
		return fmt.Errorf("%q path segment", s)
	}
	if strings.ContainsAny(s, "/\\%?#\x00") {
		return fmt.Errorf("segment %q has a reserved character", s)
	}
	return nil
}
