package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/hooks/runs"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

type reposData struct {
	Title    string
	Repo     objects.RepoName // none: the header shows no repo
	Identity string
	Repos    []objects.RepoName
	More     int
}

// reposPage lists the repos id may read.
func (h *handler) reposPage(r *http.Request, id access.Identity) (string, any, error) {
	all, err := h.refs.Repos(r.Context())
	if err != nil {
		return "", nil, err
	}
	d := reposData{Title: "Repos", Identity: string(id)}
	for _, repo := range all {
		if !h.cfg.Access.Can(id, repo, access.PermRead) {
			continue
		}
		if len(d.Repos) == maxList {
			d.More++
			continue
		}
		d.Repos = append(d.Repos, repo)
	}
	return "repos", d, nil
}

type branchRow struct {
	Name string
	Code *commitInfo
	Data *commitInfo
}

type tagRow struct {
	Name   string
	Target objects.Hash
	Data   bool // a data tag (refs/tags/data/<name>)
}

type repoData struct {
	Title    string
	Repo     objects.RepoName
	Branches []branchRow
	Tags     []tagRow
	More     int
}

// repoPage lists repo's branches, each with its code head and its data
// head, and its tags.
func (h *handler) repoPage(r *http.Request, repo objects.RepoName, _ string) (string, any, error) {
	ctx := r.Context()
	heads, err := h.refs.List(ctx, repo, refs.HeadsPrefix)
	if err != nil {
		return "", nil, err
	}
	datas, err := h.refs.List(ctx, repo, refs.DataPrefix)
	if err != nil {
		return "", nil, err
	}
	byName := map[string]*branchRow{}
	var names []string
	row := func(name string) *branchRow {
		if b, ok := byName[name]; ok {
			return b
		}
		b := &branchRow{Name: name}
		byName[name] = b
		names = append(names, name)
		return b
	}
	for _, ref := range heads {
		row(strings.TrimPrefix(string(ref.Name), refs.HeadsPrefix))
	}
	for _, ref := range datas {
		row(strings.TrimPrefix(string(ref.Name), refs.DataPrefix))
	}
	slices.Sort(names)
	d := repoData{Title: string(repo), Repo: repo}
	if len(names) > maxList {
		d.More, names = len(names)-maxList, names[:maxList]
	}
	for _, ref := range heads {
		if b := byName[strings.TrimPrefix(string(ref.Name), refs.HeadsPrefix)]; b != nil && ref.Target == "" {
			if ci, err := h.commit(ctx, repo, ref.Hash); err == nil {
				b.Code = &ci
			}
		}
	}
	for _, ref := range datas {
		if b := byName[strings.TrimPrefix(string(ref.Name), refs.DataPrefix)]; b != nil && ref.Target == "" {
			if ci, err := h.commit(ctx, repo, ref.Hash); err == nil {
				b.Data = &ci
			}
		}
	}
	for _, n := range names {
		d.Branches = append(d.Branches, *byName[n])
	}
	tags, err := h.refs.List(ctx, repo, refs.TagsPrefix)
	if err != nil {
		return "", nil, err
	}
	for _, ref := range tags {
		if len(d.Tags) == maxList {
			d.More++
			continue
		}
		name := strings.TrimPrefix(string(ref.Name), refs.TagsPrefix)
		dataName, isData := strings.CutPrefix(name, "data/")
		if isData {
			name = dataName
		}
		d.Tags = append(d.Tags, tagRow{Name: name, Target: ref.Hash, Data: isData})
	}
	return "repo", d, nil
}

type runRow struct {
	runs.View
	Duration string
}

type runsData struct {
	Title   string
	Repo    objects.RepoName
	Runs    []runRow
	States  []string
	State   string
	Branch  string
	Page    int
	Prev    string
	Next    string
	Total   int
	Showing string
}

// runsPage lists repo's runs, newest first, a page at a time: those the
// queue holds and those refs/runs/ keeps.
func (h *handler) runsPage(r *http.Request, repo objects.RepoName, arg string) (string, any, error) {
	if arg != "" {
		return h.runPage(r, repo, arg)
	}
	q := r.URL.Query()
	f := runs.Filter{Branch: q.Get("branch"), State: q.Get("state")}
	if err := f.Check(); err != nil {
		return "", nil, badRequest("%s", strings.TrimPrefix(err.Error(), "--"))
	}
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 1e6 {
			return "", nil, badRequest("page %q: want a number from 1", clip(p))
		}
		page = n
	}
	list, err := h.cfg.Runs.List(r.Context(), repo, f)
	if err != nil {
		return "", nil, err
	}
	d := runsData{Title: "Runs of " + string(repo), Repo: repo, States: runs.StateNames(), State: f.State, Branch: f.Branch, Page: page, Total: len(list)}
	from := (page - 1) * runsPerPage
	if from > len(list) {
		from = len(list)
	}
	to := min(from+runsPerPage, len(list))
	for _, v := range list[from:to] {
		row := runRow{View: v}
		if v.DurationMS != nil {
			row.Duration = formatMS(v.DurationMS)
		}
		d.Runs = append(d.Runs, row)
	}
	pageURL := func(n int) string {
		v := url.Values{}
		if f.State != "" {
			v["state"] = []string{f.State}
		}
		if f.Branch != "" {
			v["branch"] = []string{f.Branch}
		}
		v["page"] = []string{strconv.Itoa(n)}
		return runsURL(repo) + "?" + v.Encode()
	}
	if page > 1 {
		d.Prev = pageURL(page - 1)
	}
	if to < len(list) {
		d.Next = pageURL(page + 1)
	}
	if len(list) > 0 {
		d.Showing = fmt.Sprintf("%d to %d of %d", from+1, to, len(list))
	}
	return "runs", d, nil
}

type nodeRow struct {
	runs.Node
	Pct  int // the bar's width, 1 to 100 (class w<Pct>): its time against the longest node's
	OK   bool
	Time string
}

type runData struct {
	Title     string
	Repo      objects.RepoName
	Run       runs.View
	Nodes     []nodeRow
	Log       string
	LogCut    bool
	Code      *commitInfo
	Data      *commitInfo
	Succeeded bool
}

// runPage shows one run: what it ran, each node's time as a bar and how
// it ended, the tables it wrote, and its log.
func (h *handler) runPage(r *http.Request, repo objects.RepoName, id string) (string, any, error) {
	ctx := r.Context()
	v, err := h.cfg.Runs.Run(ctx, repo, id, r.URL.Query().Get("branch"), true)
	if errors.Is(err, runs.ErrNoRun) {
		return "", nil, notFound("%s", err.Error())
	}
	if err != nil {
		return "", nil, err
	}
	d := runData{Title: "Run " + v.ID, Repo: repo, Run: v, Succeeded: v.State == "succeeded"}
	var longest int64
	for _, n := range v.Nodes {
		longest = max(longest, n.WallMS)
	}
	for _, n := range v.Nodes {
		pct := 100
		if longest > 0 {
			pct = int(n.WallMS * 100 / longest)
		}
		d.Nodes = append(d.Nodes, nodeRow{Node: n, Pct: min(max(pct, 1), 100), OK: n.Result == "ok", Time: formatMS(n.WallMS)})
	}
	if v.Log != nil {
		d.Log = *v.Log
		if len(d.Log) > maxLogBytes {
			d.Log, d.LogCut = d.Log[:maxLogBytes], true
		}
	}
	if c, ok := objects.ParseHash([]byte(v.Code)); ok {
		if ci, err := h.commit(ctx, repo, c); err == nil {
			d.Code = &ci
		}
	}
	if c, ok := objects.ParseHash([]byte(v.Data)); ok {
		if ci, err := h.commit(ctx, repo, c); err == nil {
			d.Data = &ci
		}
	}
	return "run", d, nil
}

// resolve turns a data revision of the URL into a data commit
// (catalog.Resolve: a data branch, a data tag, a commit id, with ~N and
// ^N); a revision that does not parse is 400, one that names nothing 404.
func (h *handler) resolve(ctx context.Context, repo objects.RepoName, rev string) (objects.Hash, error) {
	if rev == "" {
		return objects.ZeroHash, badRequest("no revision: give a data branch, a data tag or a commit id (main, main~1, 6087a41)")
	}
	if len(rev) > refs.MaxRevisionLen {
		return objects.ZeroHash, badRequest("revision longer than %d bytes", refs.MaxRevisionLen)
	}
	c, _, err := h.cfg.Catalog.Resolve(ctx, repo, rev)
	switch {
	case err == nil:
		return c, nil
	case errors.Is(err, refs.ErrBadRevision), errors.Is(err, refs.ErrAmbiguous), errors.Is(err, refs.ErrBadName):
		return objects.ZeroHash, badRequest("revision %q: %s", clip(rev), h.cfg.Catalog.Redact(err.Error()))
	case errors.Is(err, catalog.ErrNoSuchBranch), errors.Is(err, refs.ErrNotFound), errors.Is(err, objects.ErrNotFound):
		msg := strings.TrimPrefix(h.cfg.Catalog.Redact(err.Error()), catalog.ErrNoSuchBranch.Error()+": ")
		return objects.ZeroHash, notFound("%s (the repo page lists the data branches and tags)", msg)
	}
	return objects.ZeroHash, err
}

// tables reads the tables of data commit c; a commit that is not a data
// commit is 404.
func (h *handler) tables(ctx context.Context, repo objects.RepoName, rev string, c objects.Hash) (map[catalog.TableName]catalog.Pointer, error) {
	tabs, err := h.cfg.Catalog.Tables(ctx, repo, c)
	var te *catalog.TreeError
	if errors.As(err, &te) || errors.Is(err, catalog.ErrBadPointer) {
		return nil, notFound("%q is not a data commit (%s)", clip(rev), h.cfg.Catalog.Redact(err.Error()))
	}
	return tabs, err
}

type tableRow struct {
	Name catalog.TableName
	catalog.Pointer
}

type tablesData struct {
	Title  string
	Repo   objects.RepoName
	Rev    string
	Commit *commitInfo
	Tables []tableRow
	More   int
}

// tablesPage lists the tables of a data revision with their row counts.
func (h *handler) tablesPage(r *http.Request, repo objects.RepoName, rev string) (string, any, error) {
	ctx := r.Context()
	c, err := h.resolve(ctx, repo, rev)
	if err != nil {
		return "", nil, err
	}
	tabs, err := h.tables(ctx, repo, rev, c)
	if err != nil {
		return "", nil, err
	}
	d := tablesData{Title: "Tables at " + rev, Repo: repo, Rev: rev}
	if ci, err := h.commit(ctx, repo, c); err == nil {
		d.Commit = &ci
	}
	for _, t := range sortedTables(tabs) {
		if len(d.Tables) == maxList {
			d.More++
			continue
		}
		d.Tables = append(d.Tables, tableRow{Name: t, Pointer: tabs[t]})
	}
	return "tables", d, nil
}

func sortedTables[V any](m map[catalog.TableName]V) []catalog.TableName {
	ts := make([]catalog.TableName, 0, len(m))
	for t := range m {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b catalog.TableName) int { return strings.Compare(a.String(), b.String()) })
	return ts
}

type column struct{ Name, Type string }

type versionRow struct {
	catalog.TableVersion
	Code *commitInfo
}

type tableData struct {
	Title   string
	Repo    objects.RepoName
	Rev     string
	Table   catalog.TableName
	Pointer catalog.Pointer
	Columns []column
	History []versionRow
	Next    string
}

// tablePage shows one table at a data revision: its schema and row
// count, and its history on the revision's first-parent line: each data
// commit that changed its pointer, with the run and the code commit that
// wrote that version (the lineage). ?from=<commit> pages on.
func (h *handler) tablePage(r *http.Request, repo objects.RepoName, arg string) (string, any, error) {
	ctx := r.Context()
	name, rev, _ := strings.Cut(arg, "/")
	t, err := catalog.ParseTableName(name)
	if err != nil {
		return "", nil, badRequest("table %q: want <namespace>.<table>, each of a-z, 0-9 and _", clip(name))
	}
	c, err := h.resolve(ctx, repo, rev)
	if err != nil {
		return "", nil, err
	}
	tabs, err := h.tables(ctx, repo, rev, c)
	if err != nil {
		return "", nil, err
	}
	p, ok := tabs[t]
	if !ok {
		return "", nil, notFound("no table %s at %q (the tables page of %q lists them)", t, clip(rev), clip(rev))
	}
	d := tableData{Title: t.String() + " at " + rev, Repo: repo, Rev: rev, Table: t, Pointer: p, Columns: parseSchema(p.Schema)}
	from := c
	if f := r.URL.Query().Get("from"); f != "" {
		fh, ok := objects.ParseHash([]byte(f))
		if !ok || len(f) != 40 || fh.IsZero() {
			return "", nil, badRequest("from %q: want a full commit id (the next-page link gives one)", clip(f))
		}
		from = fh
	}
	versions, next, err := h.cfg.Catalog.TableHistory(ctx, repo, from, t, historyWalk, historyMax)
	if errors.Is(err, objects.ErrNotFound) {
		return "", nil, notFound("from %s: no such commit in %s", shortID(from), repo)
	}
	var te *catalog.TreeError
	if errors.As(err, &te) {
		return "", nil, notFound("from %s: not a data commit (%s)", shortID(from), te.Reason)
	}
	if err != nil {
		return "", nil, err
	}
	codes := map[objects.Hash]*commitInfo{}
	for _, v := range versions {
		row := versionRow{TableVersion: v}
		if cc := v.Pointer.CodeCommit; !cc.IsZero() {
			if _, seen := codes[cc]; !seen {
				codes[cc] = nil
				if ci, err := h.commit(ctx, repo, cc); err == nil {
					codes[cc] = &ci
				}
			}
			row.Code = codes[cc]
		}
		d.History = append(d.History, row)
	}
	if !next.IsZero() {
		d.Next = tableURL(repo, t, rev) + "?from=" + next.String()
	}
	return "table", d, nil
}

// parseSchema splits a pointer's schema ("id:long,amount:decimal(10, 2)")
// into columns; commas inside brackets belong to the type.
func parseSchema(s string) []column {
	var out []column
	depth, start := 0, 0
	add := func(f string) {
		f = strings.TrimSpace(f)
		if f == "" {
			return
		}
		name, typ, _ := strings.Cut(f, ":")
		out = append(out, column{Name: name, Type: typ})
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '<', '[':
			depth++
		case ')', '>', ']':
			depth--
		case ',':
			if depth == 0 {
				add(s[start:i])
				start = i + 1
			}
		}
	}
	add(s[start:])
	return out
}

type diffRow struct {
	Table         catalog.TableName
	Old, New      catalog.Pointer
	Delta         int64
	SchemaChanged bool
}

type diffData struct {
	Title            string
	Repo             objects.RepoName
	A, B             string
	ACommit, BCommit *commitInfo
	Added            []diffRow
	Removed          []diffRow
	Changed          []diffRow
	Same             int
	More             int
}

// diffPage compares the tables of two data revisions: "<a>..<b>".
func (h *handler) diffPage(r *http.Request, repo objects.RepoName, arg string) (string, any, error) {
	ctx := r.Context()
	a, b, ok := strings.Cut(arg, "..")
	if !ok || a == "" || b == "" {
		return "", nil, badRequest("want /-/diff/<a>..<b>: two data revisions (branches, tags, commit ids), as main~1..main")
	}
	ac, err := h.resolve(ctx, repo, a)
	if err != nil {
		return "", nil, err
	}
	bc, err := h.resolve(ctx, repo, b)
	if err != nil {
		return "", nil, err
	}
	at, err := h.tables(ctx, repo, a, ac)
	if err != nil {
		return "", nil, err
	}
	bt, err := h.tables(ctx, repo, b, bc)
	if err != nil {
		return "", nil, err
	}
	d := diffData{Title: "Diff " + a + ".." + b, Repo: repo, A: a, B: b}
	if ci, err := h.commit(ctx, repo, ac); err == nil {
		d.ACommit = &ci
	}
	if ci, err := h.commit(ctx, repo, bc); err == nil {
		d.BCommit = &ci
	}
	union := map[catalog.TableName]bool{}
	for t := range at {
		union[t] = true
	}
	for t := range bt {
		union[t] = true
	}
	shown := 0
	for _, t := range sortedTables(union) {
		op, inA := at[t]
		np, inB := bt[t]
		row := diffRow{Table: t, Old: op, New: np, Delta: np.Rows - op.Rows, SchemaChanged: inA && inB && op.Schema != np.Schema}
		if inA && inB && string(op.Marshal()) == string(np.Marshal()) {
			d.Same++
			continue
		}
		if shown == maxList {
			d.More++
			continue
		}
		shown++
		switch {
		case !inA:
			d.Added = append(d.Added, row)
		case !inB:
			d.Removed = append(d.Removed, row)
		default:
			d.Changed = append(d.Changed, row)
		}
	}
	return "diff", d, nil
}
