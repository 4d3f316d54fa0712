package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// maxRetries bounds every compare-and-swap retry loop of the catalog.
const maxRetries = 32

// Resolve turns a data revision into a commit: a branch (refs/data/<rev>),
// a data tag (refs/tags/data/<rev>), a commit name (40 hex, or a unique
// prefix of 4 or more), a branch or tag with a reflog form (main@{1}: its
// value one update ago; main@{yesterday}), any of them followed by git's
// ~N, ^N suffixes (refs.ResolveRevisionLog). ref is the branch ref when rev is exactly a
// branch (writable), else empty. An abbreviation two commits share is an
// error listing both.
func (c *Catalog) Resolve(ctx context.Context, repo objects.RepoName, rev string) (h objects.Hash, ref refs.Name, err error) {
	if rev == "" {
		return objects.ZeroHash, "", fmt.Errorf("%w: empty revision", ErrNoSuchBranch)
	}
	h, err = c.refs.Resolve(ctx, repo, DataRef(rev))
	if err == nil {
		return h, DataRef(rev), nil
	}
	if !errors.Is(err, refs.ErrNotFound) && !errors.Is(err, refs.ErrBadName) {
		return objects.ZeroHash, "", err
	}
	h, err = refs.ResolveRevisionLog(ctx, c.objs, repo, rev, func(ctx context.Context, name string) (objects.Hash, error) {
		if h, err := c.refs.Resolve(ctx, repo, DataRef(name)); !errors.Is(err, refs.ErrNotFound) && !errors.Is(err, refs.ErrBadName) {
			return h, err
		}
		return c.refs.Resolve(ctx, repo, TagRef(name))
	}, func(ctx context.Context, name string) ([]refs.LogEntry, error) {
		// name@{N}: the reflog of the ref name resolves to.
		for _, ref := range []refs.Name{DataRef(name), TagRef(name)} {
			if _, err := c.refs.Resolve(ctx, repo, ref); err == nil {
				return c.refs.Reflog(ctx, repo, ref)
			} else if !errors.Is(err, refs.ErrNotFound) && !errors.Is(err, refs.ErrBadName) {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: %q is not a data branch or data tag of %s", refs.ErrNotFound, name, repo)
	})
	if (errors.Is(err, refs.ErrNotFound) || errors.Is(err, objects.ErrNotFound)) && !strings.ContainsAny(rev, "^~@") {
		return objects.ZeroHash, "", fmt.Errorf("%w: %q is not a data branch, data tag or data commit of %s", ErrNoSuchBranch, rev, repo)
	}
	if err != nil {
		return objects.ZeroHash, "", fmt.Errorf("%w: %v", ErrNoSuchBranch, err)
	}
	return h, "", nil
}

// CreateBranch creates branch name at the data commit rev resolves to (a
// branch, data tag or commit): refs/data/<name>, and beside it
// refs/heads/<name> at the code that data belongs to (rev's code ref, else
// the data commit's code entry), in one ref update, so that a data ref
// always sits beside its code ref. It copies refs: O(1). Every pointer of
// the data must have been published (a failed run's data cannot become a
// branch). If rev is a branch with no data yet, nothing is created and
// ZeroHash is returned.
func (c *Catalog) CreateBranch(ctx context.Context, repo objects.RepoName, name, rev string) (objects.Hash, error) {
	h, ref, err := c.Resolve(ctx, repo, rev)
	if err != nil {
		return objects.ZeroHash, err
	}
	st, err := c.state(ctx, repo, h)
	if err != nil {
		return objects.ZeroHash, err
	}
	if err := c.checkPublished(ctx, repo, st, rev); err != nil {
		return objects.ZeroHash, err
	}
	code := st.code
	if ref != "" {
		if ch, err := c.refs.Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+strings.TrimPrefix(string(ref), refs.DataPrefix))); err == nil {
			code = ch
		}
	}
	ups := []refs.Update{{Name: DataRef(name), Old: objects.ZeroHash, New: h}}
	if !code.IsZero() {
		if ok, _ := c.objs.Has(ctx, repo, code); ok {
			ups = append(ups, refs.Update{Name: refs.Name(refs.HeadsPrefix + name), Old: objects.ZeroHash, New: code})
		}
	}
	err = c.refs.Update(ctx, repo, ups, nil, "weir: branch "+name+" from "+rev)
	if errors.Is(err, refs.ErrStale) {
		return objects.ZeroHash, fmt.Errorf("%w: %s", ErrBranchExists, name)
	}
	if err != nil {
		return objects.ZeroHash, fmt.Errorf("create data branch %s: %w", name, err)
	}
	return h, nil
}

// DeleteBranch deletes refs/data/<name> and returns the commit it held.
func (c *Catalog) DeleteBranch(ctx context.Context, repo objects.RepoName, name string) (objects.Hash, error) {
	for range maxRetries {
		h, err := c.refs.Resolve(ctx, repo, DataRef(name))
		if errors.Is(err, refs.ErrNotFound) {
			return objects.ZeroHash, fmt.Errorf("%w: %s", ErrNoSuchBranch, name)
		}
		if err != nil {
			return objects.ZeroHash, err
		}
		err = c.refs.Update(ctx, repo, []refs.Update{{Name: DataRef(name), Old: h, New: objects.ZeroHash}}, nil, "weir: delete data branch "+name)
		if errors.Is(err, refs.ErrStale) {
			continue
		}
		return h, err
	}
	return objects.ZeroHash, fmt.Errorf("delete data branch %s: %w", name, refs.ErrStale)
}

// Tag creates the data tag refs/tags/data/<name> at rev.
func (c *Catalog) Tag(ctx context.Context, repo objects.RepoName, name, rev string) (objects.Hash, error) {
	h, _, err := c.Resolve(ctx, repo, rev)
	if err != nil {
		return objects.ZeroHash, err
	}
	err = c.refs.Update(ctx, repo, []refs.Update{{Name: TagRef(name), Old: objects.ZeroHash, New: h}}, nil, "weir: data tag "+name)
	if errors.Is(err, refs.ErrStale) {
		return objects.ZeroHash, fmt.Errorf("catalog: data tag %s already exists", name)
	}
	return h, err
}

// ancestors returns every commit reachable from h (h included).
func (c *Catalog) ancestors(ctx context.Context, r objectReader, h objects.Hash) (map[objects.Hash]bool, error) {
	seen := map[objects.Hash]bool{}
	queue := []objects.Hash{h}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x.IsZero() || seen[x] {
			continue
		}
		seen[x] = true
		cm, err := readCommit(ctx, r, x)
		if err != nil {
			return nil, err
		}
		queue = append(queue, cm.ParentHashes...)
	}
	return seen, nil
}

// mergeBase returns the nearest (breadth first from a) common ancestor of
// a and b, or ZeroHash.
func (c *Catalog) mergeBase(ctx context.Context, r objectReader, a, b objects.Hash) (objects.Hash, error) {
	ofB, err := c.ancestors(ctx, r, b)
	if err != nil {
		return objects.ZeroHash, err
	}
	seen := map[objects.Hash]bool{}
	queue := []objects.Hash{a}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		if x.IsZero() || seen[x] {
			continue
		}
		if ofB[x] {
			return x, nil
		}
		seen[x] = true
		cm, err := readCommit(ctx, r, x)
		if err != nil {
			return objects.ZeroHash, err
		}
		queue = append(queue, cm.ParentHashes...)
	}
	return objects.ZeroHash, nil
}

// Merge merges the data of branch (or tag, or commit) from into branch
// into: a fast-forward when into has not moved since from forked, else a
// 3-way merge table by table. If both sides changed a table (or a
// namespace's properties) differently it returns *ConflictError and changes
// nothing. It returns the new head of into.
func (c *Catalog) Merge(ctx context.Context, repo objects.RepoName, from, into string) (objects.Hash, error) {
	r := repoObjects{c.objs, repo}
	for range maxRetries {
		fh, _, err := c.Resolve(ctx, repo, from)
		if err != nil {
			return objects.ZeroHash, err
		}
		ih, iref, err := c.Resolve(ctx, repo, into)
		if err != nil {
			return objects.ZeroHash, err
		}
		if iref == "" {
			return objects.ZeroHash, fmt.Errorf("%w: cannot merge into %q", ErrReadOnly, into)
		}
		if fh == ih {
			return ih, nil
		}
		base, err := c.mergeBase(ctx, r, fh, ih)
		if err != nil {
			return objects.ZeroHash, err
		}
		var next objects.Hash
		switch base {
		case fh: // into already has everything from
			return ih, nil
		case ih: // fast-forward
			next = fh
		default:
			next, err = c.threeWay(ctx, repo, base, fh, ih, from, into)
			if err != nil {
				return objects.ZeroHash, err
			}
		}
		// Only published data may be merged in: a failed run's data
		// commit, named by its hash, is evidence, not a source.
		st, err := c.state(ctx, repo, next)
		if err != nil {
			return objects.ZeroHash, err
		}
		if err := c.checkPublished(ctx, repo, st, from); err != nil {
			return objects.ZeroHash, err
		}
		err = c.refs.Update(ctx, repo, []refs.Update{{Name: iref, Old: ih, New: next}}, nil, "weir: merge "+from+" into "+into)
		if errors.Is(err, refs.ErrStale) {
			continue
		}
		if err != nil {
			return objects.ZeroHash, err
		}
		return next, nil
	}
	return objects.ZeroHash, fmt.Errorf("merge %s into %s: %w", from, into, refs.ErrStale)
}

func (c *Catalog) threeWay(ctx context.Context, repo objects.RepoName, base, fh, ih objects.Hash, from, into string) (objects.Hash, error) {
	bs, fs, is, err := c.states(ctx, repo, base, fh, ih)
	if err != nil {
		return objects.ZeroHash, err
	}
	out, changes, conflicts := mergeStates(bs, fs, is, from)
	if len(conflicts) > 0 {
		return objects.ZeroHash, &ConflictError{From: from, Into: into, Tables: conflicts}
	}
	subject := fmt.Sprintf("weir: merge data of %s into %s", from, into)
	// Lineage: the merged data sits beside into's code (invariant 7).
	if code, err := c.refs.Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+into)); err == nil {
		out.code = code
	}
	return c.commitState(ctx, repo, out, []objects.Hash{ih, fh}, subject+"\n\n"+strings.Join(changes, "\n"), "", out.code, nil)
}

// states reads the data states of commits hs, in order.
func (c *Catalog) states(ctx context.Context, repo objects.RepoName, hs ...objects.Hash) (*dataState, *dataState, *dataState, error) {
	var out [3]*dataState
	for i, h := range hs {
		st, err := c.state(ctx, repo, h)
		if err != nil {
			return nil, nil, nil, err
		}
		out[i] = st
	}
	return out[0], out[1], out[2], nil
}

// mergeStates is the table-level three-way merge: what from (fs) changed
// since the merge base (bs), applied to into (is). A table or namespace
// both sides changed differently is a conflict (sorted; "ns.table" or
// "namespace ns"); then out is not to be used. changes (sorted) say what
// was taken from from, naming it fromName. It reads and writes nothing.
func mergeStates(bs, fs, is *dataState, fromName string) (out *dataState, changes, conflicts []string) {
	out = is.clone()
	names := map[TableName]bool{}
	for t := range bs.tables {
		names[t] = true
	}
	for t := range fs.tables {
		names[t] = true
	}
	for t := range is.tables {
		names[t] = true
	}
	for t := range names {
		b, f, i := bs.tables[t], fs.tables[t], is.tables[t]
		switch {
		case f == b || f == i: // from did not change it, or both agree
		case i == b: // only from changed it
			if f.IsZero() {
				delete(out.tables, t)
				changes = append(changes, "drop "+t.String())
			} else {
				out.tables[t] = f
				changes = append(changes, "take "+t.String()+" from "+fromName)
			}
		default:
			conflicts = append(conflicts, t.String())
		}
	}
	nss := map[string]bool{}
	for n := range bs.namespaces {
		nss[n] = true
	}
	for n := range fs.namespaces {
		nss[n] = true
	}
	for n := range is.namespaces {
		nss[n] = true
	}
	for n := range nss {
		b, f, i := bs.namespaces[n], fs.namespaces[n], is.namespaces[n]
		switch {
		case f == b || f == i:
		case i == b:
			if f.IsZero() {
				delete(out.namespaces, n)
			} else {
				out.namespaces[n] = f
			}
		default:
			conflicts = append(conflicts, "namespace "+n)
		}
	}
	if len(conflicts) > 0 {
		sort.Strings(conflicts)
		return nil, nil, conflicts
	}
	// A namespace dropped on one side while the other added a table or a
	// namespace to it would leave a table without its namespace, or a
	// namespace without its parent: keep the namespace.
	keep := func(ns string) {
		for {
			if _, ok := out.namespaces[ns]; !ok {
				if h, ok := fs.namespaces[ns]; ok {
					out.namespaces[ns] = h
				} else if h, ok := is.namespaces[ns]; ok {
					out.namespaces[ns] = h
				}
			}
			p, nested := NamespaceParent(ns)
			if !nested {
				return
			}
			ns = p
		}
	}
	for t := range out.tables {
		keep(t.Namespace)
	}
	for _, ns := range slices.Collect(maps.Keys(out.namespaces)) {
		keep(ns)
	}
	sort.Strings(changes)
	return out, changes, nil
}

// TableChange is a table whose pointer differs between two data commits
// of one branch (ChangedTables).
type TableChange struct {
	Table TableName
	// By is the data commit that last changed it on the way (the newest
	// one on the first-parent line of the later commit that did), and
	// Subject that commit's subject line ("weir: append to ns.t (by
	// ingest)"), for a message that says what moved a branch.
	By      objects.Hash
	Subject string
}

// maxChangeWalk bounds the commits ChangedTables reads to attribute a
// change; past it (or off the first-parent line) a change is attributed
// to the later commit itself.
const maxChangeWalk = 256

// ChangedTables returns the tables whose pointers differ between data
// commits from and to (either may be ZeroHash, the empty data), sorted by
// name, each with the commit that changed it. It reads objects only.
func (c *Catalog) ChangedTables(ctx context.Context, repo objects.RepoName, from, to objects.Hash) ([]TableChange, error) {
	if from == to {
		return nil, nil
	}
	fs, err := c.state(ctx, repo, from)
	if err != nil {
		return nil, err
	}
	ts, err := c.state(ctx, repo, to)
	if err != nil {
		return nil, err
	}
	var out []TableChange
	idx := map[TableName]int{}
	add := func(t TableName) {
		if _, ok := idx[t]; !ok && fs.tables[t] != ts.tables[t] {
			idx[t] = -1
			out = append(out, TableChange{Table: t})
		}
	}
	for t := range fs.tables {
		add(t)
	}
	for t := range ts.tables {
		add(t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table.String() < out[j].Table.String() })
	for i, ch := range out {
		idx[ch.Table] = i
	}
	// Attribute each change to the newest commit on to's first-parent
	// line whose tree changed the table.
	left := len(out)
	r := repoObjects{c.objs, repo}
	cur, st := to, ts
	for n := 0; left > 0 && n < maxChangeWalk && !cur.IsZero() && cur != from; n++ {
		cm, err := readCommit(ctx, r, cur)
		if err != nil {
			return nil, err
		}
		var parent objects.Hash
		if len(cm.ParentHashes) > 0 {
			parent = cm.ParentHashes[0]
		}
		ps, err := c.state(ctx, repo, parent)
		if err != nil {
			return nil, err
		}
		subject, _, _ := strings.Cut(cm.Message, "\n")
		for i := range out {
			if out[i].By.IsZero() && st.tables[out[i].Table] != ps.tables[out[i].Table] {
				out[i].By, out[i].Subject = cur, subject
				left--
			}
		}
		cur, st = parent, ps
	}
	if left > 0 {
		subject := ""
		if cm, err := readCommit(ctx, r, to); err == nil {
			subject, _, _ = strings.Cut(cm.Message, "\n")
		}
		for i := range out {
			if out[i].By.IsZero() {
				out[i].By, out[i].Subject = to, subject
			}
		}
	}
	return out, nil
}

// MergeOnto returns a data commit that carries onto theirs what ours
// changed since base (a run's data commit, made on base, published onto
// its branch's head theirs, which moved during the run): the table-level
// three-way merge of Merge, with parents theirs and ours, info's run,
// code commit (its trailer and the tree's code entry: the merge sits
// beside the code that ran) and message. Both sides changing a table or a
// namespace differently is a *ConflictError naming them (From is info's
// run). It moves no ref and marks nothing published (Publish does).
func (c *Catalog) MergeOnto(ctx context.Context, repo objects.RepoName, base, ours, theirs objects.Hash, info CommitInfo) (objects.Hash, error) {
	bs, ous, ts, err := c.states(ctx, repo, base, ours, theirs)
	if err != nil {
		return objects.ZeroHash, err
	}
	from := "run " + info.RunID
	if info.RunID == "" {
		from = ours.String()[:7]
	}
	out, changes, conflicts := mergeStates(bs, ous, ts, from)
	if len(conflicts) > 0 {
		return objects.ZeroHash, &ConflictError{From: from, Into: theirs.String()[:7], Tables: conflicts}
	}
	if !info.CodeCommit.IsZero() {
		out.code = info.CodeCommit
	}
	msg := info.Message
	if msg == "" {
		msg = fmt.Sprintf("weir: %s published onto %s", from, theirs.String()[:7])
	}
	return c.commitState(ctx, repo, out, []objects.Hash{theirs, ours}, msg, info.RunID, out.code, changes)
}

// VerifyPushedDataCommit accepts a client-made data commit (a merge or
// revert of refs/data/*) only if its tree is a well-formed data tree and
// every table pointer and namespace file in it was published: it stood on
// a data ref of this repo (invariant 6). A forged blob, or one only a
// failed run wrote, is refused with an error naming the table.
func (c *Catalog) VerifyPushedDataCommit(ctx context.Context, q *objects.Quarantine, commit objects.Hash) error {
	st, err := readState(ctx, quarantineObjects{q}, commit)
	if err != nil {
		return fmt.Errorf("data commit %s: %w", commit, err)
	}
	return c.checkPublished(ctx, q.Repo(), st, "data commit "+commit.String())
}
