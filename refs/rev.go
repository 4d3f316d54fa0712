package refs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/weir-dev/weir/objects"
)

// Revisions: the subset of git rev-parse's grammar that names a commit.
//
//	rev     = base [ "@{" at "}" ] { suffix }
//	base    = a name the caller resolves (a branch, a tag: NameFunc)
//	        | 40 hex digits, the object itself
//	        | 4 to 39 hex digits, the one commit whose name starts so
//	at      = N                 the ref's value N updates ago (its reflog,
//	                            LogFunc; 0 is its value now)
//	        | a date            its value then: "yesterday", "N
//	                            seconds|minutes|hours|days|weeks ago",
//	                            "YYYY-MM-DD", RFC 3339
//	suffix  = "^"  | "^" N    the first (N-th) parent; "^0" the commit itself
//	        | "~"  | "~" N    the first parent, N times
//	        | "^{commit}"     the commit (peeling a tag object)
//
// A name is tried before an abbreviation (as git does); a tag object is
// peeled to its commit. Bounds, since every byte is a client's: a
// revision is at most MaxRevisionLen bytes and walks at most
// MaxRevisionSteps parents in all; a number is decimal, at most 6 digits.
const (
	MaxRevisionLen   = 256
	MaxRevisionSteps = 100000
)

// Errors of ResolveRevision besides ErrNotFound (no such name, object or
// parent): a revision that does not parse or names no commit, and an
// abbreviation more than one commit starts with (*AmbiguousError).
var (
	ErrBadRevision = errors.New("refs: bad revision")
	ErrAmbiguous   = errors.New("refs: ambiguous revision")
)

// NameFunc resolves a base name (no suffix) to a commit or tag object:
// ErrNotFound (or ErrBadName) when there is no such name.
type NameFunc func(ctx context.Context, name string) (objects.Hash, error)

// LogFunc returns the reflog (oldest first, Store.Reflog) of the ref a
// base name resolves to, for the "name@{...}" forms: ErrNotFound when
// there is no such name.
type LogFunc func(ctx context.Context, name string) ([]LogEntry, error)

// AmbiguousError is an abbreviation that more than one commit starts with.
type AmbiguousError struct {
	Prefix     string
	Candidates []objects.Hash
}

func (e *AmbiguousError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "short id %s is ambiguous; give more digits, one of:", e.Prefix)
	for _, h := range e.Candidates {
		b.WriteString(" " + h.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Unwrap() error { return ErrAmbiguous }

// ResolveRevision resolves rev in repo to a commit: names through names,
// objects, parents and abbreviations through objs. The reflog forms
// ("main@{1}") are refused: see ResolveRevisionLog.
func ResolveRevision(ctx context.Context, objs *objects.Store, repo objects.RepoName, rev string, names NameFunc) (objects.Hash, error) {
	return ResolveRevisionLog(ctx, objs, repo, rev, names, nil)
}

// ResolveRevisionLog is ResolveRevision with the reflog forms
// ("name@{N}", "name@{yesterday}") read through logs (nil: refused).
func ResolveRevisionLog(ctx context.Context, objs *objects.Store, repo objects.RepoName, rev string, names NameFunc, logs LogFunc) (objects.Hash, error) {
	if rev == "" || len(rev) > MaxRevisionLen {
		return objects.ZeroHash, fmt.Errorf("%w: want 1 to %d bytes", ErrBadRevision, MaxRevisionLen)
	}
	base, suffix, at, hasAt, err := splitRevision(rev)
	if err != nil {
		return objects.ZeroHash, err
	}
	if base == "" {
		return objects.ZeroHash, fmt.Errorf("%w: %q has no name before %q", ErrBadRevision, rev, rev[:len(rev)-len(suffix)]+suffix)
	}
	var h objects.Hash
	if hasAt {
		if logs == nil {
			return objects.ZeroHash, fmt.Errorf("%w: %q: the reflog forms (name@{N}) are not taken here", ErrBadRevision, clip(rev))
		}
		h, err = resolveAt(ctx, base, at, logs, time.Now())
	} else {
		h, err = resolveBase(ctx, objs, repo, base, names)
	}
	if err != nil {
		return objects.ZeroHash, err
	}
	if h, err = peel(ctx, objs, repo, h); err != nil {
		return objects.ZeroHash, fmt.Errorf("%s: %w", base, err)
	}
	steps := 0
	for suffix != "" {
		op := suffix[0]
		suffix = suffix[1:]
		if op == '^' && strings.HasPrefix(suffix, "{commit}") {
			suffix = suffix[len("{commit}"):]
			continue
		}
		n, rest, explicit, err := number(suffix)
		if err != nil {
			return objects.ZeroHash, fmt.Errorf("%w: %q: %v", ErrBadRevision, rev, err)
		}
		suffix = rest
		if !explicit {
			n = 1
		}
		if op == '^' {
			if n == 0 {
				continue
			}
			if h, err = parent(ctx, objs, repo, h, n); err != nil {
				return objects.ZeroHash, fmt.Errorf("%s: %w", rev, err)
			}
			steps++
			continue
		}
		if steps += n; steps > MaxRevisionSteps {
			return objects.ZeroHash, fmt.Errorf("%w: %q walks more than %d parents", ErrBadRevision, clip(rev), MaxRevisionSteps)
		}
		for range n {
			if h, err = parent(ctx, objs, repo, h, 1); err != nil {
				return objects.ZeroHash, fmt.Errorf("%s: %w", rev, err)
			}
		}
	}
	return h, nil
}

// splitRevision cuts rev into its base, its "@{...}" part (at, without
// the braces) and its suffix ("^", "~" and what follows).
func splitRevision(rev string) (base, suffix, at string, hasAt bool, err error) {
	i := strings.Index(rev, "@{")
	if i < 0 {
		cut := strings.IndexAny(rev, "^~")
		if cut < 0 {
			return rev, "", "", false, nil
		}
		return rev[:cut], rev[cut:], "", false, nil
	}
	base = rev[:i]
	end := strings.IndexByte(rev[i:], '}')
	if end < 0 {
		return "", "", "", false, fmt.Errorf("%w: %q: no '}' after '@{'", ErrBadRevision, clip(rev))
	}
	at, suffix = rev[i+2:i+end], rev[i+end+1:]
	if strings.ContainsAny(base, "^~") {
		return "", "", "", false, fmt.Errorf("%w: %q: '@{' must follow a name", ErrBadRevision, clip(rev))
	}
	if suffix != "" && suffix[0] != '^' && suffix[0] != '~' {
		return "", "", "", false, fmt.Errorf("%w: %q: unexpected %q", ErrBadRevision, clip(rev), clip(suffix))
	}
	return base, suffix, at, true, nil
}

// resolveAt is name@{at}: the value name's ref had N updates ago, or at
// a date, from its reflog.
func resolveAt(ctx context.Context, name, at string, logs LogFunc, now time.Time) (objects.Hash, error) {
	log, err := logs(ctx, name)
	if err != nil {
		return objects.ZeroHash, err
	}
	if len(log) == 0 {
		return objects.ZeroHash, fmt.Errorf("%w: %s has no reflog", ErrNotFound, name)
	}
	var e LogEntry
	if n, err := strconv.Atoi(at); err == nil && len(at) <= 6 && at[0] != '-' && at[0] != '+' {
		if n >= len(log) {
			return objects.ZeroHash, fmt.Errorf("%w: the log of %s has only %d entries", ErrNotFound, name, len(log))
		}
		e = log[len(log)-1-n]
	} else {
		t, err := parseAtDate(at, now)
		if err != nil {
			return objects.ZeroHash, fmt.Errorf("%w: %s@{%s}: %v", ErrBadRevision, name, clip(at), err)
		}
		i := len(log) - 1
		for i >= 0 && log[i].UnixNano > t.UnixNano() {
			i--
		}
		if i < 0 {
			first := time.Unix(0, log[0].UnixNano).UTC()
			return objects.ZeroHash, fmt.Errorf("%w: the log of %s goes back only to %s", ErrNotFound, name, first.Format(time.RFC3339))
		}
		e = log[i]
	}
	if e.New.IsZero() {
		return objects.ZeroHash, fmt.Errorf("%w: %s was deleted then", ErrNotFound, name)
	}
	return e.New, nil
}

// atUnits are the units "N <unit>s ago" takes.
var atUnits = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour,
	"day": 24 * time.Hour, "week": 7 * 24 * time.Hour,
}

// parseAtDate reads the dates "@{...}" takes: "now", "yesterday",
// "N units ago" (dots as spaces, as git writes "2.days.ago"),
// "YYYY-MM-DD" (midnight UTC) and RFC 3339.
func parseAtDate(s string, now time.Time) (time.Time, error) {
	f := strings.Fields(strings.ReplaceAll(s, ".", " "))
	switch {
	case s == "now":
		return now, nil
	case s == "yesterday":
		return now.Add(-24 * time.Hour), nil
	case len(f) == 3 && f[2] == "ago":
		n, err := strconv.Atoi(f[0])
		unit, ok := atUnits[strings.TrimSuffix(f[1], "s")]
		if err != nil || n < 0 || n > 100000 || !ok {
			break
		}
		return now.Add(-time.Duration(n) * unit), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New(`want N (updates ago), "yesterday", "N days ago" (seconds, minutes, hours, weeks), YYYY-MM-DD or an RFC 3339 time`)
}

// number reads an optional decimal at the start of s.
func number(s string) (n int, rest string, explicit bool, err error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		if s != "" && s[0] != '^' && s[0] != '~' {
			return 0, s, false, fmt.Errorf("unexpected %q", s)
		}
		return 0, s, false, nil
	}
	if i > 6 {
		return 0, s, false, fmt.Errorf("number %q too large", s[:i])
	}
	n, _ = strconv.Atoi(s[:i])
	if rest = s[i:]; rest != "" && rest[0] != '^' && rest[0] != '~' {
		return 0, s, false, fmt.Errorf("unexpected %q", rest)
	}
	return n, rest, true, nil
}

// clip shortens a long revision for an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func resolveBase(ctx context.Context, objs *objects.Store, repo objects.RepoName, base string, names NameFunc) (objects.Hash, error) {
	h, err := names(ctx, base)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadName) {
		return objects.ZeroHash, err
	}
	if !isHex(base) || len(base) < objects.MinPrefix || len(base) > 40 {
		return objects.ZeroHash, fmt.Errorf("%w: %q is not a branch, tag or commit of %s", ErrNotFound, base, repo)
	}
	if len(base) == 40 {
		h, _ := objects.ParseHash([]byte(strings.ToLower(base)))
		if ok, err := objs.Has(ctx, repo, h); err != nil {
			return objects.ZeroHash, err
		} else if !ok {
			return objects.ZeroHash, fmt.Errorf("%w: no commit %s in %s", ErrNotFound, base, repo)
		}
		return h, nil
	}
	hs, ts, err := objs.WithPrefix(ctx, repo, base, 8)
	if err != nil {
		return objects.ZeroHash, err
	}
	var commits []objects.Hash
	for i, h := range hs {
		if ts[i] == plumbing.CommitObject || ts[i] == plumbing.TagObject {
			commits = append(commits, h)
		}
	}
	switch len(commits) {
	case 0:
		return objects.ZeroHash, fmt.Errorf("%w: no branch, tag or commit %q in %s", ErrNotFound, base, repo)
	case 1:
		return commits[0], nil
	}
	return objects.ZeroHash, &AmbiguousError{Prefix: base, Candidates: commits}
}

// peel follows tag objects to the commit they name (at most 8 deep).
func peel(ctx context.Context, objs *objects.Store, repo objects.RepoName, h objects.Hash) (objects.Hash, error) {
	for range 8 {
		o, err := objs.Get(ctx, repo, h)
		if err != nil {
			return objects.ZeroHash, err
		}
		switch o.Type {
		case plumbing.CommitObject:
			return h, nil
		case plumbing.TagObject:
			t, ok := header(o.Data, "object")
			if !ok {
				return objects.ZeroHash, fmt.Errorf("%w: tag %s names no object", ErrBadRevision, h)
			}
			if h, ok = objects.ParseHash(t); !ok {
				return objects.ZeroHash, fmt.Errorf("%w: tag %s names no object", ErrBadRevision, h)
			}
		default:
			return objects.ZeroHash, fmt.Errorf("%w: %s is a %s, not a commit", ErrBadRevision, h, o.Type)
		}
	}
	return objects.ZeroHash, fmt.Errorf("%w: tags nested too deep", ErrBadRevision)
}

// parent is the n-th (from 1) parent of commit h.
func parent(ctx context.Context, objs *objects.Store, repo objects.RepoName, h objects.Hash, n int) (objects.Hash, error) {
	o, err := objs.Get(ctx, repo, h)
	if err != nil {
		return objects.ZeroHash, err
	}
	if o.Type != plumbing.CommitObject {
		return objects.ZeroHash, fmt.Errorf("%w: %s is not a commit", ErrBadRevision, h)
	}
	i := 0
	for _, line := range bytes.Split(o.Data, []byte("\n")) {
		if len(line) == 0 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("parent ")); ok {
			if i++; i == n {
				p, ok := objects.ParseHash(v)
				if !ok {
					return objects.ZeroHash, fmt.Errorf("%w: commit %s has a bad parent line", ErrBadRevision, h)
				}
				return p, nil
			}
		}
	}
	if i == 0 {
		return objects.ZeroHash, fmt.Errorf("%w: commit %s has no parent", ErrNotFound, short(h))
	}
	return objects.ZeroHash, fmt.Errorf("%w: commit %s has %d parents, not %d", ErrNotFound, short(h), i, n)
}

func short(h objects.Hash) string { return h.String()[:7] }

// header is the value of the first header line key of a commit or tag.
func header(data []byte, key string) ([]byte, bool) {
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			return nil, false
		}
		if v, ok := bytes.CutPrefix(line, []byte(key+" ")); ok {
			return v, true
		}
	}
	return nil, false
}
