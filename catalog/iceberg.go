package catalog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// CatalogType is the iceberg-go catalog type of IcebergCatalog.
const CatalogType icebergcat.Type = "weir"

// IcebergCatalog is iceberg-go's catalog.Catalog (and TransactionalCatalog)
// over one repo at one data revision. At a branch every write is one data
// commit and one compare-and-swap of refs/data/<branch>; at a data tag or a
// commit it is read-only and writes fail with ErrReadOnly.
//
// Namespaces may be nested, up to MaxNamespaceDepth levels of [a-z0-9_]+
// (see JoinNamespace); a namespace's parent must exist before it is
// created, and a namespace with tables or child namespaces is not dropped.
type IcebergCatalog struct {
	c        *Catalog
	repo     objects.RepoName
	area     Area // the repo's part of the warehouse
	rev      string
	ref      refs.Name    // writable branch ref, or "" when read-only
	at       objects.Hash // the commit of a read-only view
	identity string
}

var (
	_ icebergcat.Catalog              = (*IcebergCatalog)(nil)
	_ icebergcat.TransactionalCatalog = (*IcebergCatalog)(nil)
)

// Iceberg returns the Iceberg catalog of repo at rev: a branch name (read
// and write), a data tag or a commit (read-only): any revision Resolve
// takes, such as main~1 or a short id (a short id that is also the name of
// a branch a first write would create is that branch). A branch that has no
// data ref yet is created by its first write if the repo has a code branch
// of that name or no data branch at all. identity names the writer in the
// commits it makes ("" for anonymous).
func (c *Catalog) Iceberg(ctx context.Context, repo objects.RepoName, rev, identity string) (ic *IcebergCatalog, err error) {
	a, err := c.area(repo)
	if err != nil {
		return nil, err
	}
	ic = &IcebergCatalog{c: c, repo: repo, area: a, rev: rev, identity: identity}
	h, ref, err := c.Resolve(ctx, repo, rev)
	switch {
	case err == nil && (ref != "" || !c.abbreviation(ctx, repo, rev)):
		ic.ref, ic.at = ref, h
		return ic, nil
	case err == nil:
		// rev is a unique commit prefix but may also be a branch a first
		// write creates: that reading wins, else the commit (read-only).
		abbrev := h
		defer func() {
			if ic == nil && errors.Is(err, ErrNoSuchBranch) {
				ic = &IcebergCatalog{c: c, repo: repo, area: a, rev: rev, identity: identity, at: abbrev}
				err = nil
			}
		}()
		err = fmt.Errorf("%w: %q", ErrNoSuchBranch, rev)
	case !errors.Is(err, ErrNoSuchBranch):
		return nil, err
	}
	if _, perr := parseHash(rev); perr == nil {
		return nil, err
	}
	if _, herr := c.refs.Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+rev)); herr == nil {
		ic.ref = DataRef(rev)
		return ic, nil
	}
	data, lerr := c.refs.List(ctx, repo, refs.DataPrefix)
	if lerr != nil {
		return nil, lerr
	}
	if len(data) == 0 {
		ic.ref = DataRef(rev)
		return ic, nil
	}
	return nil, err
}

// ReadOnly reports whether the view is a tag or a commit.
func (ic *IcebergCatalog) ReadOnly() bool { return ic.ref == "" }

// Repo returns the view's repo.
func (ic *IcebergCatalog) Repo() objects.RepoName { return ic.repo }

// Identity returns who the view writes as ("" for anonymous).
func (ic *IcebergCatalog) Identity() string { return ic.identity }

// Rev returns the revision the view was opened at.
func (ic *IcebergCatalog) Rev() string { return ic.rev }

// Head returns the data commit the view currently sees.
func (ic *IcebergCatalog) Head(ctx context.Context) (objects.Hash, error) {
	if ic.ref == "" {
		return ic.at, nil
	}
	h, err := ic.c.refs.Resolve(ctx, ic.repo, ic.ref)
	if errors.Is(err, refs.ErrNotFound) {
		return objects.ZeroHash, nil
	}
	return h, err
}

func (ic *IcebergCatalog) current(ctx context.Context) (*dataState, error) {
	h, err := ic.Head(ctx)
	if err != nil {
		return nil, err
	}
	return ic.c.state(ctx, ic.repo, h)
}

// CatalogType implements catalog.Catalog.
func (ic *IcebergCatalog) CatalogType() icebergcat.Type { return CatalogType }

func tableName(ident table.Identifier) (TableName, error) {
	if len(ident) < 2 {
		return TableName{}, fmt.Errorf("%w: table identifier %q must be a namespace and a table name", ErrBadName, strings.Join(ident, "."))
	}
	ns, err := JoinNamespace(ident[:len(ident)-1])
	if err != nil {
		return TableName{}, err
	}
	t := TableName{Namespace: ns, Name: ident[len(ident)-1]}
	if err := ValidateName(t.Name); err != nil {
		return t, fmt.Errorf("table name: %w", err)
	}
	return t, nil
}

func namespaceName(ns table.Identifier) (string, error) { return JoinNamespace(ns) }

// hasParent reports whether the parent of ns, if it has one, is in st.
func hasParent(st *dataState, ns string) (string, bool) {
	p, nested := NamespaceParent(ns)
	if !nested {
		return "", true
	}
	_, ok := st.namespaces[p]
	return p, ok
}

func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "iceberg-" + hex.EncodeToString(b[:])
}

// createArgs checks the arguments of a table creation (CreateTable,
// StageCreateTable) and returns the table's name, its options and its
// location: the one asked for (trailing slashes dropped), which must
// resolve in the repo's area, else the default under the repo.
func (ic *IcebergCatalog) createArgs(ident table.Identifier, schema *iceberg.Schema, opts []icebergcat.CreateTableOpt) (TableName, icebergcat.CreateTableCfg, string, error) {
	cfg := icebergcat.NewCreateTableCfg()
	t, err := tableName(ident)
	if err != nil {
		return t, cfg, "", err
	}
	if ic.ReadOnly() {
		return t, cfg, "", fmt.Errorf("%w: %q of %s; write to a branch", ErrReadOnly, ic.rev, ic.repo)
	}
	if schema == nil {
		return t, cfg, "", fmt.Errorf("%w: create table %s without a schema", ErrBadUpdate, t)
	}
	for _, o := range opts {
		o(&cfg)
	}
	loc := tableLocation(ic.area, t)
	if cfg.Location != "" {
		loc = strings.TrimRight(cfg.Location, "/")
		if _, err := ic.area.Resolve(loc); err != nil {
			return t, cfg, "", fmt.Errorf("%w: table %s: %w (leave the location out and the server places the table in its repo's folder)", ErrBadUpdate, t, err)
		}
	}
	return t, cfg, loc, nil
}

// CreateTable implements catalog.Catalog.
func (ic *IcebergCatalog) CreateTable(ctx context.Context, ident table.Identifier, schema *iceberg.Schema, opts ...icebergcat.CreateTableOpt) (*table.Table, error) {
	t, cfg, loc, err := ic.createArgs(ident, schema, opts)
	if err != nil {
		return nil, err
	}
	var meta table.Metadata
	var mloc, ptrLine string
	_, err = ic.advance(ctx, func(st *dataState, attempt int) (string, []string, error) {
		if _, ok := st.namespaces[t.Namespace]; !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, t.Namespace)
		}
		if _, ok := st.tables[t]; ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrTableAlreadyExists, t)
		}
		if attempt == 0 {
			base, err := table.NewMetadata(schema, cfg.PartitionSpec, cfg.SortOrder, loc, cfg.Properties)
			if err != nil {
				return "", nil, fmt.Errorf("%w: %v", ErrBadUpdate, err)
			}
			if meta, mloc, err = ic.c.stageMetadata(ctx, ic.area, t, base, "", nil); err != nil {
				return "", nil, err
			}
		}
		h, err := ic.c.putPointer(ctx, ic.repo, pointerFor(t, meta, mloc, "", objects.ZeroHash))
		if err != nil {
			return "", nil, err
		}
		st.tables[t] = h
		ptrLine = "create table " + t.String()
		return "weir: " + ptrLine, []string{ptrLine}, nil
	})
	if err != nil {
		return nil, err
	}
	return table.New(ident, meta, mloc, ic.c.fsFunc(ic.area), ic), nil
}

// stagedTable is one table's change inside a commit: validated and written
// on the first attempt, re-published unchanged on retries.
type stagedTable struct {
	t       TableName
	orig    objects.Hash // pointer blob the change was made against (ZeroHash: created)
	ptr     objects.Hash
	meta    table.Metadata
	loc     string
	summary string
	syncs   []*fileSync // as stagedMeta.syncs
}

// stage validates reqs against the table in st and prepares the updated
// metadata, which the committer writes if it is still current when the
// state is published (setTable). A missing table may be created only
// under an assert-create requirement.
func (ic *IcebergCatalog) stage(ctx context.Context, st *dataState, t TableName, reqs []table.Requirement, updates []table.Update) (*stagedTable, error) {
	s := &stagedTable{t: t}
	var (
		base    table.Metadata
		baseLoc string
		oldRows int64
	)
	if sm, ok := st.stagedFor(t); ok {
		// An earlier write of this batch: its metadata is not written yet.
		s.orig, base, baseLoc = sm.ptr, sm.meta, sm.loc
		s.syncs = slices.Clip(sm.syncs)
	} else if h, ok := st.tables[t]; ok {
		tbl, _, err := ic.c.loadTable(ctx, ic.repo, t, h, ic)
		if err != nil {
			return nil, err
		}
		s.orig, base, baseLoc = h, tbl.Metadata(), tbl.MetadataLocation()
	} else {
		create := slices.ContainsFunc(reqs, func(r table.Requirement) bool { return r.GetType() == "assert-create" })
		if !create {
			return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchTable, t)
		}
		if _, ok := st.namespaces[t.Namespace]; !ok {
			return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, t.Namespace)
		}
	}
	for _, r := range reqs {
		if err := r.Validate(base); err != nil {
			// A fast append whose branch moved is applied on top of the
			// new snapshot, as the client's own retry would (rebase.go).
			nreqs, nupdates, listSync, ok, rerr := ic.c.rebaseAppend(ctx, ic.area, base, reqs, updates)
			if rerr != nil {
				return nil, rerr
			}
			if !ok {
				return nil, fmt.Errorf("%w: table %s: %v", table.ErrCommitFailed, t, err)
			}
			ic.c.rebases.Add(1)
			reqs, updates = nreqs, nupdates
			s.syncs = append(s.syncs, listSync)
			break
		}
	}
	if base != nil {
		// Counted from the manifests, not from the pointer: a pointer
		// written before counts came from manifests may hold a summary's.
		n, err := ic.c.currentCounts(ctx, ic.area, base)
		if err != nil {
			return nil, fmt.Errorf("table %s: count rows: %w", t, err)
		}
		oldRows = n.rows
	}
	// Every new snapshot's summary says what its manifests hold (counts.go).
	seen := manifestFiles{}
	updates, err := ic.c.trueSummaries(ctx, ic.area, t, base, updates, seen)
	if err != nil {
		return nil, err
	}
	meta, loc, err := ic.c.prepareMetadata(ic.area, t, base, baseLoc, updates)
	if err != nil {
		return nil, err
	}
	if err := ic.c.checkNewSnapshots(ctx, ic.area, t, base, meta, seen); err != nil {
		return nil, err
	}
	p, err := ic.c.pointer(ctx, ic.area, t, meta, loc, "", objects.ZeroHash)
	if err != nil {
		return nil, err
	}
	ptr, err := ic.c.putPointer(ctx, ic.repo, p)
	if err != nil {
		return nil, err
	}
	s.ptr, s.meta, s.loc = ptr, meta, loc
	s.summary = describe(t, meta, base == nil, oldRows, p.Rows)
	return s, nil
}

// checkNewSnapshots reads the manifest list of every snapshot meta has and
// base has not (a client's, or one the server rebased) and refuses the
// commit if the list, a manifest it names, or a file named by a manifest
// that snapshot added, is outside the area a: a commit names no file
// outside its repo's part of the warehouse. A list or manifest that cannot
// be read is the client's error too (ErrBadUpdate). A manifest in seen
// (read by countSnapshot for the same write) is not read again.
func (c *Catalog) checkNewSnapshots(ctx context.Context, a Area, t TableName, base, meta table.Metadata, seen manifestFiles) error {
	known := map[int64]bool{}
	if base != nil {
		for _, s := range base.Snapshots() {
			known[s.SnapshotID] = true
		}
	}
	var fs icebergio.IO
	for _, snap := range meta.Snapshots() {
		if known[snap.SnapshotID] {
			continue
		}
		bad := func(what string, err error) error {
			return fmt.Errorf("%w: table %s: snapshot %d: %s: %w", ErrBadUpdate, t, snap.SnapshotID, what, err)
		}
		if fs == nil {
			var err error
			if fs, err = a.IO(ctx); err != nil {
				return err
			}
		}
		list, err := c.readManifestList(a, fs, snap.ManifestList)
		if err != nil {
			return bad("manifest list", err)
		}
		for _, m := range list {
			if _, err := a.Resolve(m.FilePath()); err != nil {
				return bad("manifest", err)
			}
			if m.SnapshotID() != snap.SnapshotID {
				continue // added by an earlier snapshot, checked then
			}
			files, ok := seen[m.FilePath()]
			if !ok {
				entries, err := m.FetchEntries(fs, false)
				if err != nil {
					return bad("manifest", err)
				}
				for _, e := range entries {
					files = append(files, e.DataFile().FilePath())
				}
			}
			for _, f := range files {
				if _, err := a.Resolve(f); err != nil {
					return bad("data file", err)
				}
			}
		}
	}
	return nil
}

func describe(t TableName, meta table.Metadata, created bool, oldRows, rows int64) string {
	op := "update"
	if snap := meta.CurrentSnapshot(); snap != nil && snap.Summary != nil {
		op = string(snap.Summary.Operation)
	}
	switch {
	case created:
		return fmt.Sprintf("create table %s", t)
	case op == "append" && rows >= oldRows:
		return fmt.Sprintf("append %d rows to %s", rows-oldRows, t)
	default:
		return fmt.Sprintf("%s %s: %d rows (was %d)", op, t, rows, oldRows)
	}
}

// CommitTable implements catalog.Catalog: one data commit, retried on a
// moved branch only while the table itself is unchanged.
func (ic *IcebergCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	t, err := tableName(ident)
	if err != nil {
		return nil, "", err
	}
	var s *stagedTable
	_, final, err := ic.advanceState(ctx, func(st *dataState, attempt int) (string, []string, error) {
		// Staged against this head; re-staged (requirements checked
		// again, appends rebased) when the table moved under a retry.
		if attempt == 0 || st.tables[t] != s.orig {
			var err error
			if s, err = ic.stage(ctx, st, t, reqs, updates); err != nil {
				return "", nil, err
			}
		}
		if s.orig == s.ptr {
			return "", nil, nil
		}
		st.setTable(t, stagedMeta{s.ptr, s.loc, s.meta, s.syncs})
		return "weir: " + s.summary, []string{s.summary}, nil
	})
	if err != nil {
		return nil, "", err
	}
	// The table as committed: with later writes of the same batch, if any.
	if sm, ok := final.stagedFor(t); ok {
		return sm.meta, sm.loc, nil
	}
	return s.meta, s.loc, nil
}

// CommitTransaction implements catalog.TransactionalCatalog: every table
// change lands in one data commit, or none does.
func (ic *IcebergCatalog) CommitTransaction(ctx context.Context, commits []table.TableCommit) error {
	if len(commits) == 0 {
		return icebergcat.ErrEmptyCommitList
	}
	names := make([]TableName, len(commits))
	seen := map[TableName]bool{}
	for i, cm := range commits {
		t, err := tableName(cm.Identifier)
		if err != nil {
			return err
		}
		if seen[t] {
			return fmt.Errorf("%w: table %s appears twice in one transaction", ErrBadUpdate, t)
		}
		seen[t], names[i] = true, t
	}
	staged := make([]*stagedTable, len(commits))
	_, err := ic.advance(ctx, func(st *dataState, attempt int) (string, []string, error) {
		// Each table is staged against this head; on a retry, tables that
		// moved are staged again (requirements re-checked, appends
		// rebased). Every table lands in the one commit, or none does.
		for i, cm := range commits {
			if staged[i] != nil && st.tables[names[i]] == staged[i].orig {
				continue
			}
			s, err := ic.stage(ctx, st, names[i], cm.Requirements, cm.Updates)
			if err != nil {
				return "", nil, err
			}
			staged[i] = s
		}
		var changes []string
		for _, s := range staged {
			st.setTable(s.t, stagedMeta{s.ptr, s.loc, s.meta, s.syncs})
			changes = append(changes, s.summary)
		}
		return fmt.Sprintf("weir: transaction on %d tables", len(staged)), changes, nil
	})
	return err
}

// LoadTable implements catalog.Catalog.
func (ic *IcebergCatalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	t, err := tableName(ident)
	if err != nil {
		return nil, err
	}
	st, err := ic.current(ctx)
	if err != nil {
		return nil, err
	}
	h, ok := st.tables[t]
	if !ok {
		return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchTable, t)
	}
	tbl, _, err := ic.c.loadTable(ctx, ic.repo, t, h, ic)
	return tbl, err
}

// CheckTableExists implements catalog.Catalog.
func (ic *IcebergCatalog) CheckTableExists(ctx context.Context, ident table.Identifier) (bool, error) {
	t, err := tableName(ident)
	if err != nil {
		return false, err
	}
	st, err := ic.current(ctx)
	if err != nil {
		return false, err
	}
	_, ok := st.tables[t]
	return ok, nil
}

// ListTables implements catalog.Catalog.
func (ic *IcebergCatalog) ListTables(ctx context.Context, namespace table.Identifier) iter.Seq2[table.Identifier, error] {
	return func(yield func(table.Identifier, error) bool) {
		ns, err := namespaceName(namespace)
		if err != nil {
			yield(nil, err)
			return
		}
		st, err := ic.current(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		if _, ok := st.namespaces[ns]; !ok {
			yield(nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, ns))
			return
		}
		var names []string
		for t := range st.tables {
			if t.Namespace == ns {
				names = append(names, t.Name)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			if !yield(TableName{ns, n}.Identifier(), nil) {
				return
			}
		}
	}
}

// DropTable implements catalog.Catalog. The table's files stay in the
// warehouse: older data commits still point at them.
func (ic *IcebergCatalog) DropTable(ctx context.Context, ident table.Identifier) error {
	t, err := tableName(ident)
	if err != nil {
		return err
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		if _, ok := st.tables[t]; !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchTable, t)
		}
		delete(st.tables, t)
		return "weir: drop table " + t.String(), []string{"drop " + t.String()}, nil
	})
	return err
}

// RenameTable implements catalog.Catalog. The table keeps its warehouse
// location; only its pointer moves.
func (ic *IcebergCatalog) RenameTable(ctx context.Context, from, to table.Identifier) (*table.Table, error) {
	ft, err := tableName(from)
	if err != nil {
		return nil, err
	}
	tt, err := tableName(to)
	if err != nil {
		return nil, err
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		h, ok := st.tables[ft]
		if !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchTable, ft)
		}
		if _, ok := st.namespaces[tt.Namespace]; !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, tt.Namespace)
		}
		if _, ok := st.tables[tt]; ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrTableAlreadyExists, tt)
		}
		p, err := ic.c.readPointer(ctx, ic.repo, h)
		if err != nil {
			return "", nil, err
		}
		p.Table = tt
		nh, err := ic.c.putPointer(ctx, ic.repo, p)
		if err != nil {
			return "", nil, err
		}
		delete(st.tables, ft)
		st.tables[tt] = nh
		line := "rename " + ft.String() + " to " + tt.String()
		return "weir: " + line, []string{line}, nil
	})
	if err != nil {
		return nil, err
	}
	return ic.LoadTable(ctx, to)
}

// ListNamespaces implements catalog.Catalog: the top-level namespaces, or
// with a parent the namespaces directly in it, each as its full list of
// levels.
func (ic *IcebergCatalog) ListNamespaces(ctx context.Context, parent table.Identifier) ([]table.Identifier, error) {
	st, err := ic.current(ctx)
	if err != nil {
		return nil, err
	}
	var pns string
	if len(parent) > 0 {
		if pns, err = namespaceName(parent); err != nil {
			return nil, err
		}
		if _, ok := st.namespaces[pns]; !ok {
			return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, pns)
		}
	}
	out := []table.Identifier{}
	for _, ns := range slices.Sorted(maps.Keys(st.namespaces)) {
		if p, _ := NamespaceParent(ns); p == pns {
			out = append(out, NamespaceLevels(ns))
		}
	}
	return out, nil
}

// CreateNamespace implements catalog.Catalog.
func (ic *IcebergCatalog) CreateNamespace(ctx context.Context, namespace table.Identifier, props iceberg.Properties) error {
	ns, err := namespaceName(namespace)
	if err != nil {
		return err
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		if _, ok := st.namespaces[ns]; ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNamespaceAlreadyExists, ns)
		}
		if p, ok := hasParent(st, ns); !ok {
			return "", nil, fmt.Errorf("%w: %s, the parent of %s (create it first)", icebergcat.ErrNoSuchNamespace, p, ns)
		}
		h, err := ic.c.putNamespace(ctx, ic.repo, ns, props)
		if err != nil {
			return "", nil, err
		}
		st.namespaces[ns] = h
		return "weir: create namespace " + ns, nil, nil
	})
	return err
}

// DropNamespace implements catalog.Catalog: only an empty namespace, with
// no tables and no namespaces in it.
func (ic *IcebergCatalog) DropNamespace(ctx context.Context, namespace table.Identifier) error {
	ns, err := namespaceName(namespace)
	if err != nil {
		return err
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		if _, ok := st.namespaces[ns]; !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, ns)
		}
		for t := range st.tables {
			if t.Namespace == ns {
				return "", nil, fmt.Errorf("%w: %s has table %s", icebergcat.ErrNamespaceNotEmpty, ns, t)
			}
		}
		for child := range st.namespaces {
			if p, _ := NamespaceParent(child); p == ns {
				return "", nil, fmt.Errorf("%w: %s has namespace %s", icebergcat.ErrNamespaceNotEmpty, ns, child)
			}
		}
		delete(st.namespaces, ns)
		return "weir: drop namespace " + ns, nil, nil
	})
	return err
}

// CheckNamespaceExists implements catalog.Catalog.
func (ic *IcebergCatalog) CheckNamespaceExists(ctx context.Context, namespace table.Identifier) (bool, error) {
	ns, err := namespaceName(namespace)
	if err != nil {
		return false, err
	}
	st, err := ic.current(ctx)
	if err != nil {
		return false, err
	}
	_, ok := st.namespaces[ns]
	return ok, nil
}

// LoadNamespaceProperties implements catalog.Catalog.
func (ic *IcebergCatalog) LoadNamespaceProperties(ctx context.Context, namespace table.Identifier) (iceberg.Properties, error) {
	ns, err := namespaceName(namespace)
	if err != nil {
		return nil, err
	}
	st, err := ic.current(ctx)
	if err != nil {
		return nil, err
	}
	h, ok := st.namespaces[ns]
	if !ok {
		return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, ns)
	}
	props, err := ic.c.readNamespace(ctx, ic.repo, ns, h)
	return iceberg.Properties(props), err
}

// UpdateNamespaceProperties implements catalog.Catalog.
func (ic *IcebergCatalog) UpdateNamespaceProperties(ctx context.Context, namespace table.Identifier, removals []string, updates iceberg.Properties) (icebergcat.PropertiesUpdateSummary, error) {
	var sum icebergcat.PropertiesUpdateSummary
	ns, err := namespaceName(namespace)
	if err != nil {
		return sum, err
	}
	for _, k := range removals {
		if _, ok := updates[k]; ok {
			return sum, fmt.Errorf("%w: property %q is both removed and updated", ErrBadUpdate, k)
		}
	}
	_, err = ic.advance(ctx, func(st *dataState, _ int) (string, []string, error) {
		h, ok := st.namespaces[ns]
		if !ok {
			return "", nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchNamespace, ns)
		}
		props, err := ic.c.readNamespace(ctx, ic.repo, ns, h)
		if err != nil {
			return "", nil, err
		}
		sum = icebergcat.PropertiesUpdateSummary{Removed: []string{}, Updated: []string{}, Missing: []string{}}
		for _, k := range removals {
			if _, ok := props[k]; ok {
				delete(props, k)
				sum.Removed = append(sum.Removed, k)
			} else {
				sum.Missing = append(sum.Missing, k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(updates)) {
			if v, ok := props[k]; !ok || v != updates[k] {
				props[k] = updates[k]
				sum.Updated = append(sum.Updated, k)
			}
		}
		nh, err := ic.c.putNamespace(ctx, ic.repo, ns, props)
		if err != nil {
			return "", nil, err
		}
		if nh == h {
			return "", nil, nil
		}
		st.namespaces[ns] = nh
		return "weir: update properties of namespace " + ns + " (" + strconv.Itoa(len(sum.Updated)) + " set, " + strconv.Itoa(len(sum.Removed)) + " removed)", nil, nil
	})
	return sum, err
}

// abbreviation reports whether rev resolved only as a short commit id
// (no data tag of that name, no suffix, not 40 hex digits).
func (c *Catalog) abbreviation(ctx context.Context, repo objects.RepoName, rev string) bool {
	if len(rev) >= 40 || strings.ContainsAny(rev, "^~") {
		return false
	}
	_, err := c.refs.Resolve(ctx, repo, TagRef(rev))
	return err != nil
}
