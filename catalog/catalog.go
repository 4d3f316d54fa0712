package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	icebergcat "github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/uuid"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// Errors.
var (
	// ErrReadOnly: the view is a data tag or a commit, not a branch.
	ErrReadOnly = errors.New("catalog: read-only view (a tag or a commit, not a branch)")
	// ErrNoSuchBranch: refs/data/<branch> does not exist.
	ErrNoSuchBranch = errors.New("catalog: no such data branch")
	// ErrBranchExists: the branch to create already has a data ref.
	ErrBranchExists = errors.New("catalog: data branch already exists")
	// ErrForgedPointer: a pushed data tree holds a blob the server never wrote.
	ErrForgedPointer = errors.New("catalog: table pointer was not written by this server")
	// ErrUnpublished: a data tree holds a pointer the server wrote but
	// never published (a failed run's).
	ErrUnpublished = errors.New("catalog: table pointer was never published")
	// ErrBadWrite: a TableWrite is not usable (no files, bad mode, schema mismatch).
	ErrBadWrite = errors.New("catalog: bad table write")
)

// ConflictError is a merge that changed nothing because both sides changed
// the same tables (or namespaces) differently since their merge base.
type ConflictError struct {
	From, Into string
	Tables     []string // "ns.table" or "namespace ns", sorted
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("catalog: merge %s into %s: both sides changed %s; nothing was merged (rewrite one side or revert a change, then merge again)",
		e.From, e.Into, strings.Join(e.Tables, ", "))
}

// Catalog is the table catalog of every repo in one objects.Store.
type Catalog struct {
	objs *objects.Store
	refs refs.Store
	wh   Warehouse
	log  *slog.Logger

	casRetries atomic.Int64 // data ref CAS attempts lost to a concurrent writer
	rebases    atomic.Int64 // appends rebased onto a newer snapshot (rebase.go)
	metas      metaCache
	lists      fileCache[[]iceberg.ManifestFile] // manifest lists (rebase.go)
	manifests  fileCache[fileCounts]             // what each manifest's live entries hold (counts.go)
	snapTotals fileCache[fileCounts]             // what each manifest list's manifests hold (counts.go)
	avroLens   avroLengths                       // manifests avro.go rewrote: their lengths before and after
	raw        rawCache                          // JSON of metadata written lately
	committers sync.Map                          // repo NUL data ref -> *committer (committer.go)
	indexed    sync.Map                          // repo -> struct{}: its published index is complete (publish.go)
	indexMu    sync.Mutex                        // held while a repo's index is backfilled
}

// Rebases returns how many appends this catalog applied on top of a newer
// snapshot than the one the client wrote them against, instead of
// refusing them with CommitFailed (for benchmarks and metrics).
func (c *Catalog) Rebases() int64 { return c.rebases.Load() }

// CASRetries returns how many times a write of this catalog lost the
// compare-and-swap of a data ref to a concurrent writer and was rebuilt on
// the new head (for benchmarks and metrics).
func (c *Catalog) CASRetries() int64 { return c.casRetries.Load() }

// Option configures a Catalog.
type Option func(*Catalog)

// WithLogger sets the catalog's logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Catalog) { c.log = l } }

// New returns a catalog over objs and rs whose files live in wh.
func New(objs *objects.Store, rs refs.Store, wh Warehouse, opts ...Option) *Catalog {
	c := &Catalog{objs: objs, refs: rs, wh: wh, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Warehouse returns the catalog's warehouse.
func (c *Catalog) Warehouse() Warehouse { return c.wh }

// DataRef returns refs/data/<branch>.
func DataRef(branch string) refs.Name { return refs.Name(refs.DataPrefix + branch) }

// TagRef returns refs/tags/data/<tag>, where data tags live.
func TagRef(tag string) refs.Name { return refs.Name(refs.TagsPrefix + "data/" + tag) }

// tableLocation is where table t lives by default in the area of its repo.
func tableLocation(a Area, t TableName) string {
	return a.Prefix() + "/" + t.Namespace + "/" + t.Name
}

// area is repo's part of the warehouse: the only way the catalog reaches
// the repo's files (invariant 9).
func (c *Catalog) area(repo objects.RepoName) (Area, error) {
	return c.wh.Area(repoSegment(repo))
}

// Redact returns msg without the server's own paths: the warehouse's
// root (and, for a local warehouse, its folder; for S3, the download
// cache) are cut, so that locations read relative to the warehouse
// ("team@demo/sales/orders/metadata/..."). Every error a client sees
// (REST error bodies, weir query) goes through it; logs keep the detail.
func (c *Catalog) Redact(msg string) string {
	cut := []string{c.wh.Root() + "/"}
	if sp, ok := c.wh.(interface{ serverPaths() []string }); ok {
		cut = append(cut, sp.serverPaths()...)
	}
	for _, p := range cut {
		if len(p) > 1 {
			msg = strings.ReplaceAll(msg, p, "")
		}
	}
	return msg
}

func wKey(repo objects.RepoName, h objects.Hash) []byte {
	k := make([]byte, 0, 2+len(repo)+20)
	k = append(k, 'w')
	k = append(k, repo...)
	k = append(k, 0)
	return append(k, h[:]...)
}

// putBlob stores a blob the server wrote into a data tree and records it
// as honest ('w' key).
func (c *Catalog) putBlob(ctx context.Context, repo objects.RepoName, kind byte, data []byte) (objects.Hash, error) {
	h, err := c.objs.Put(ctx, repo, plumbing.BlobObject, data)
	if err != nil {
		return objects.ZeroHash, err
	}
	if err := c.objs.DB().Set(wKey(repo, h), []byte{kind}, kv.NoSync); err != nil {
		return objects.ZeroHash, fmt.Errorf("catalog: record pointer: %w", err)
	}
	return h, nil
}

func (c *Catalog) putPointer(ctx context.Context, repo objects.RepoName, p Pointer) (objects.Hash, error) {
	return c.putBlob(ctx, repo, 'p', p.Marshal())
}

func (c *Catalog) putNamespace(ctx context.Context, repo objects.RepoName, ns string, props map[string]string) (objects.Hash, error) {
	return c.putBlob(ctx, repo, 'n', marshalNamespace(ns, props))
}

func (c *Catalog) state(ctx context.Context, repo objects.RepoName, h objects.Hash) (*dataState, error) {
	return readState(ctx, repoObjects{c.objs, repo}, h)
}

func (c *Catalog) readPointer(ctx context.Context, repo objects.RepoName, h objects.Hash) (Pointer, error) {
	return readPointerFrom(ctx, repoObjects{c.objs, repo}, h)
}

func readPointerFrom(ctx context.Context, r objectReader, h objects.Hash) (Pointer, error) {
	data, err := getObject(ctx, r, h, plumbing.BlobObject)
	if err != nil {
		return Pointer{}, err
	}
	return ParsePointer(data)
}

func (c *Catalog) readNamespace(ctx context.Context, repo objects.RepoName, ns string, h objects.Hash) (map[string]string, error) {
	data, err := getObject(ctx, repoObjects{c.objs, repo}, h, plumbing.BlobObject)
	if err != nil {
		return nil, err
	}
	return parseNamespace(ns, data)
}

// Tables returns every table of a data commit with its pointer. ZeroHash
// is the empty data commit.
func (c *Catalog) Tables(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash) (map[TableName]Pointer, error) {
	return c.tablesFrom(ctx, repoObjects{c.objs, repo}, repo, dataCommit)
}

func (c *Catalog) tablesFrom(ctx context.Context, r objectReader, repo objects.RepoName, dataCommit objects.Hash) (map[TableName]Pointer, error) {
	st, err := readState(ctx, r, dataCommit)
	if err != nil {
		return nil, err
	}
	out := make(map[TableName]Pointer, len(st.tables))
	for t, h := range st.tables {
		p, err := readPointerFrom(ctx, r, h)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t, err)
		}
		out[t] = p
	}
	return out, nil
}

// loadTable opens the Iceberg table a pointer blob names.
func (c *Catalog) loadTable(ctx context.Context, repo objects.RepoName, t TableName, h objects.Hash, cat table.CatalogIO) (*table.Table, Pointer, error) {
	return c.loadTableFrom(ctx, repoObjects{c.objs, repo}, repo, t, h, cat)
}

// loadTableFrom is loadTable reading the pointer from r; the table's
// files are read in repo's area.
func (c *Catalog) loadTableFrom(ctx context.Context, r objectReader, repo objects.RepoName, t TableName, h objects.Hash, cat table.CatalogIO) (*table.Table, Pointer, error) {
	a, err := c.area(repo)
	if err != nil {
		return nil, Pointer{}, err
	}
	p, err := readPointerFrom(ctx, r, h)
	if err != nil {
		return nil, Pointer{}, fmt.Errorf("table %s: %w", t, err)
	}
	meta, err := c.readMetadata(ctx, a, p.MetadataLocation)
	if err != nil {
		return nil, Pointer{}, fmt.Errorf("table %s: read metadata: %w", t, err)
	}
	return table.New(t.Identifier(), meta, p.MetadataLocation, c.fsFunc(a), cat), p, nil
}

// ReadTableFiles returns local paths of the Parquet data files of table t's
// current snapshot at dataCommit, downloading them from S3 into the cache
// when the warehouse is remote.
func (c *Catalog) ReadTableFiles(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash, t TableName) ([]string, error) {
	return c.readTableFilesFrom(ctx, repoObjects{c.objs, repo}, repo, dataCommit, t)
}

func (c *Catalog) readTableFilesFrom(ctx context.Context, r objectReader, repo objects.RepoName, dataCommit objects.Hash, t TableName) ([]string, error) {
	files, err := c.tableFilesFrom(ctx, r, repo, dataCommit, t)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out, nil
}

// TableFile is one data file of a table, as TableFiles returns it.
type TableFile struct {
	Path string // a local path with the file's content (see Area.Local)
	Name string // the file's location relative to the repo's part of the warehouse: what a client may be shown
}

// TableFiles is ReadTableFiles with each file's repo-relative name, for
// answers that must not show the server's paths (weir query). Every data
// file must be in the repo's own part of the warehouse: one elsewhere is
// refused, naming the table.
func (c *Catalog) TableFiles(ctx context.Context, repo objects.RepoName, dataCommit objects.Hash, t TableName) ([]TableFile, error) {
	return c.tableFilesFrom(ctx, repoObjects{c.objs, repo}, repo, dataCommit, t)
}

func (c *Catalog) tableFilesFrom(ctx context.Context, r objectReader, repo objects.RepoName, dataCommit objects.Hash, t TableName) ([]TableFile, error) {
	st, err := readState(ctx, r, dataCommit)
	if err != nil {
		return nil, err
	}
	h, ok := st.tables[t]
	if !ok {
		return nil, fmt.Errorf("%w: %s", icebergcat.ErrNoSuchTable, t)
	}
	a, err := c.area(repo)
	if err != nil {
		return nil, err
	}
	tbl, _, err := c.loadTableFrom(ctx, r, repo, t, h, nil)
	if err != nil {
		return nil, err
	}
	locs, err := dataFiles(ctx, tbl)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t, err)
	}
	out := make([]TableFile, 0, len(locs))
	for _, l := range locs {
		rel, err := a.Resolve(l)
		if err != nil {
			return nil, fmt.Errorf("table %s: refusing to read a data file: %w", t, err)
		}
		p, err := a.Local(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("table %s: data file %s: %w", t, rel, err)
		}
		out = append(out, TableFile{Path: p, Name: rel})
	}
	return out, nil
}

// dataFiles lists the data files of tbl's current snapshot.
func dataFiles(ctx context.Context, tbl *table.Table) ([]string, error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(tasks))
	for _, tk := range tasks {
		out = append(out, tk.File.FilePath())
	}
	sort.Strings(out)
	return out, nil
}

// TableWrite is one node output: Parquet files for one table.
type TableWrite struct {
	Table TableName
	Files []string // Parquet files a node wrote (local paths)
	Mode  string   // "replace" (default) or "append"
}

// CommitInfo is the lineage a data commit records (invariant 7).
type CommitInfo struct {
	RunID, Message string
	CodeCommit     objects.Hash
}

// Write modes.
const (
	ModeReplace = "replace"
	ModeAppend  = "append"
)

// WriteDataCommit turns node outputs into Iceberg snapshots (one per table)
// and returns a new data commit whose parent is base. It moves no ref.
// Every file is in the warehouse and every metadata file written before the
// commit object exists, so whoever publishes the commit publishes whole
// tables (invariant 2). It is StageTable for each write, then CommitStaged.
func (c *Catalog) WriteDataCommit(ctx context.Context, repo objects.RepoName, base objects.Hash, writes []TableWrite, info CommitInfo) (objects.Hash, error) {
	seen := map[TableName]bool{}
	staged := make([]*StagedTable, 0, len(writes))
	for _, w := range writes {
		if seen[w.Table] {
			return objects.ZeroHash, fmt.Errorf("%w: table %s written twice in one commit", ErrBadWrite, w.Table)
		}
		seen[w.Table] = true
		s, err := c.StageTable(ctx, repo, base, w, info)
		if err != nil {
			return objects.ZeroHash, err
		}
		staged = append(staged, s)
	}
	return c.CommitStaged(ctx, repo, base, staged, info)
}

// commitState writes st as a commit with the given parents (ZeroHash
// parents are dropped) and lineage trailers.
func (c *Catalog) commitState(ctx context.Context, repo objects.RepoName, st *dataState, parents []objects.Hash, subject, run string, code objects.Hash, changes []string) (objects.Hash, error) {
	w := repoObjects{c.objs, repo}
	tree, err := writeTree(ctx, w, st)
	if err != nil {
		return objects.ZeroHash, err
	}
	var ps []objects.Hash
	for _, p := range parents {
		if !p.IsZero() {
			ps = append(ps, p)
		}
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(subject, "\n"))
	b.WriteString("\n\n")
	if len(changes) > 1 {
		for _, ch := range changes {
			b.WriteString("- " + ch + "\n")
		}
		b.WriteString("\n")
	}
	if run != "" {
		b.WriteString("Run: " + run + "\n")
	}
	if !code.IsZero() {
		b.WriteString("Code-Commit: " + code.String() + "\n")
	}
	for _, ch := range changes {
		b.WriteString("Table-Changes: " + ch + "\n")
	}
	return writeCommit(ctx, w, tree, ps, b.String())
}

// writeTable makes one snapshot of w.Table and points st at it. It returns a
// one-line description of the change.
func (c *Catalog) writeTable(ctx context.Context, repo objects.RepoName, st *dataState, w TableWrite, info CommitInfo) (string, error) {
	mode := w.Mode
	if mode == "" {
		mode = ModeReplace
	}
	if mode != ModeReplace && mode != ModeAppend {
		return "", fmt.Errorf("%w: mode %q (want replace or append)", ErrBadWrite, mode)
	}
	if len(w.Files) == 0 && mode == ModeAppend {
		return "", fmt.Errorf("%w: append with no files", ErrBadWrite)
	}
	ident := table.Identifier(w.Table.Identifier())
	var fileSchema *iceberg.Schema
	if len(w.Files) > 0 {
		var err error
		if fileSchema, err = parquetSchema(w.Files[0]); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrBadWrite, w.Files[0], err)
		}
	}
	a, err := c.area(repo)
	if err != nil {
		return "", err
	}
	sc := &stagingCatalog{c: c, repo: repo, area: a, t: w.Table}
	var (
		cur     *table.Table
		oldRows int64
	)
	if h, ok := st.tables[w.Table]; ok {
		tbl, _, err := c.loadTable(ctx, repo, w.Table, h, sc)
		if err != nil {
			return "", err
		}
		n, err := c.currentCounts(ctx, a, tbl.Metadata())
		if err != nil {
			return "", fmt.Errorf("table %s: count rows: %w", w.Table, err)
		}
		cur, oldRows = tbl, n.rows
	}
	if cur != nil && fileSchema != nil && schemaString(fileSchema) != schemaString(cur.Schema()) {
		if mode == ModeAppend {
			return "", fmt.Errorf("%w: files have schema %s, table has %s", ErrBadWrite, schemaString(fileSchema), schemaString(cur.Schema()))
		}
		// A replace with a new schema starts a new Iceberg table history in
		// the same location; the old one stays reachable through Git history.
		meta, err := table.NewMetadata(fileSchema, iceberg.UnpartitionedSpec, table.UnsortedSortOrder, cur.Location(), nil)
		if err != nil {
			return "", err
		}
		cur = table.New(ident, meta, cur.MetadataLocation(), c.fsFunc(a), sc)
	}
	if cur == nil {
		if fileSchema == nil {
			return "", fmt.Errorf("%w: new table with no files (cannot know its schema)", ErrBadWrite)
		}
		meta, err := table.NewMetadata(fileSchema, iceberg.UnpartitionedSpec, table.UnsortedSortOrder, tableLocation(a, w.Table), nil)
		if err != nil {
			return "", err
		}
		cur = table.New(ident, meta, "", c.fsFunc(a), sc)
	}
	sc.current = cur
	locs := make([]string, 0, len(w.Files))
	for _, f := range w.Files {
		loc := cur.Location() + "/data/" + uuid.NewString() + ".parquet"
		// The file in the table carries the table's field ids (parquetids.go).
		src, err := c.withTableIDs(ctx, f, cur.Schema())
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrBadWrite, filepath.Base(f), err)
		}
		err = a.Upload(ctx, src, loc)
		if src != f {
			os.Remove(src)
		}
		if err != nil {
			return "", err
		}
		locs = append(locs, loc)
	}
	props := iceberg.Properties{}
	if info.RunID != "" {
		props["weir.run"] = info.RunID
	}
	tx := cur.NewTransaction()
	existing, err := dataFiles(ctx, cur)
	if err != nil {
		return "", err
	}
	switch {
	case mode == ModeAppend || len(existing) == 0:
		if len(locs) > 0 {
			err = tx.AddFiles(ctx, locs, props, false)
		}
	case len(locs) == 0:
		err = tx.Delete(ctx, iceberg.AlwaysTrue{}, props)
	default:
		err = tx.ReplaceDataFiles(ctx, existing, locs, props)
	}
	if err != nil {
		return "", err
	}
	next, err := tx.Commit(ctx)
	if err != nil {
		return "", err
	}
	if next.MetadataLocation() == "" || next.MetadataLocation() == cur.MetadataLocation() {
		// Nothing to snapshot (replace of an empty table with nothing):
		// still write the metadata so the table exists.
		meta, loc, err := c.stageMetadata(ctx, a, w.Table, cur.Metadata(), cur.MetadataLocation(), nil)
		if err != nil {
			return "", err
		}
		next = table.New(ident, meta, loc, c.fsFunc(a), nil)
	}
	p, err := c.pointer(ctx, a, w.Table, next.Metadata(), next.MetadataLocation(), info.RunID, info.CodeCommit)
	if err != nil {
		return "", err
	}
	h, err := c.putPointer(ctx, repo, p)
	if err != nil {
		return "", err
	}
	st.tables[w.Table] = h
	if err := c.ensureNamespace(ctx, repo, st, w.Table.Namespace); err != nil {
		return "", err
	}
	switch mode {
	case ModeAppend:
		return fmt.Sprintf("append %d rows to %s", p.Rows-oldRows, w.Table), nil
	default:
		return fmt.Sprintf("replace %s: %d rows (was %d)", w.Table, p.Rows, oldRows), nil
	}
}

// ensureNamespace creates ns, and the namespaces it is in, where they are
// missing from st.
func (c *Catalog) ensureNamespace(ctx context.Context, repo objects.RepoName, st *dataState, ns string) error {
	if _, ok := st.namespaces[ns]; ok {
		return nil
	}
	if p, nested := NamespaceParent(ns); nested {
		if err := c.ensureNamespace(ctx, repo, st, p); err != nil {
			return err
		}
	}
	h, err := c.putNamespace(ctx, repo, ns, nil)
	if err != nil {
		return err
	}
	st.namespaces[ns] = h
	return nil
}

// parquetSchema reads a Parquet file's schema as an Iceberg schema with
// fresh field IDs.
func parquetSchema(p string) (*iceberg.Schema, error) {
	rdr, err := file.OpenParquetFile(p, false)
	if err != nil {
		return nil, err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	as, err := fr.Schema()
	if err != nil {
		return nil, err
	}
	return table.ArrowSchemaToIcebergWithFreshIDs(as, true)
}

// stagingCatalog is the table.CatalogIO of WriteDataCommit: a commit
// writes the new metadata file and remembers it, and moves no ref.
type stagingCatalog struct {
	c       *Catalog
	repo    objects.RepoName
	area    Area
	t       TableName
	current *table.Table
}

func (s *stagingCatalog) LoadTable(context.Context, table.Identifier) (*table.Table, error) {
	return s.current, nil
}

func (s *stagingCatalog) CommitTable(ctx context.Context, _ table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	for _, r := range reqs {
		if err := r.Validate(s.current.Metadata()); err != nil {
			return nil, "", fmt.Errorf("%w: %v", table.ErrCommitFailed, err)
		}
	}
	updates, err := s.c.trueSummaries(ctx, s.area, s.t, s.current.Metadata(), updates, nil)
	if err != nil {
		return nil, "", err
	}
	meta, loc, err := s.c.stageMetadata(ctx, s.area, s.t, s.current.Metadata(), s.current.MetadataLocation(), updates)
	if err != nil {
		return nil, "", err
	}
	s.current = table.New(s.current.Identifier(), meta, loc, s.c.fsFunc(s.area), s)
	return meta, loc, nil
}

var metadataVersionRE = regexp.MustCompile(`^(\d+)-[0-9a-fA-F-]+\.metadata\.json$`)

// stageMetadata applies updates to base (nil base: a new table) and writes
// the result as the next metadata file of t. It refuses locations outside
// the area (the repo's part of the warehouse).
func (c *Catalog) stageMetadata(ctx context.Context, a Area, t TableName, base table.Metadata, baseLoc string, updates []table.Update) (table.Metadata, string, error) {
	meta, loc, err := c.prepareMetadata(a, t, base, baseLoc, updates)
	if err != nil {
		return nil, "", err
	}
	if err := c.writeMetadata(ctx, a, loc, meta); err != nil {
		return nil, "", err
	}
	return meta, loc, nil
}

// prepareMetadata is stageMetadata without writing the file: it returns
// the next metadata of t and the location it is to be written to, and
// caches it there so that loads of that location within this process see
// it before it is written. The table's location and the manifest list of
// every snapshot base does not have must resolve in the area a: a commit
// may name no file outside its repo's part of the warehouse.
func (c *Catalog) prepareMetadata(a Area, t TableName, base table.Metadata, baseLoc string, updates []table.Update) (table.Metadata, string, error) {
	var meta table.Metadata
	var err error
	if base == nil {
		// A table created by its updates (an assert-create commit): they
		// build it from nothing, so it holds only the schemas, specs and
		// orders they add.
		meta, err = newMetadataFrom(updates)
	} else {
		meta, err = table.UpdateTableMetadata(base, updates, baseLoc)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadUpdate, err)
	}
	if meta.Location() == "" {
		return nil, "", fmt.Errorf("%w: table %s has no location", ErrBadUpdate, t)
	}
	if err := checkReferences(a, base, meta); err != nil {
		return nil, "", fmt.Errorf("%w: table %s: %w", ErrBadUpdate, t, err)
	}
	version := 0
	if baseLoc != "" {
		m := metadataVersionRE.FindStringSubmatch(path.Base(baseLoc))
		if m == nil {
			return nil, "", fmt.Errorf("catalog: table %s: unrecognised metadata file name %q", t, baseLoc)
		}
		v, _ := strconv.Atoi(m[1])
		version = v + 1
	}
	loc := fmt.Sprintf("%s/metadata/%05d-%s.metadata.json", meta.Location(), version, uuid.NewString())
	c.metas.put(loc, meta)
	return meta, loc, nil
}

// checkReferences checks that every file or folder meta names, that the
// server or an Iceberg writer may write or read, resolves in the area a:
// the table's location, the write.data.path and write.metadata.path
// properties, statistics files, and the manifest list of every snapshot
// base does not have (those of base were checked when they were added).
// checkNewSnapshots looks inside the new manifest lists.
func checkReferences(a Area, base, meta table.Metadata) error {
	if _, err := a.Resolve(meta.Location()); err != nil {
		return err
	}
	for _, k := range []string{table.WriteDataPathKey, table.WriteMetadataPathKey} {
		if v, ok := meta.Properties()[k]; ok {
			if _, err := a.Resolve(strings.TrimRight(v, "/")); err != nil {
				return fmt.Errorf("property %s: %w", k, err)
			}
		}
	}
	for s := range meta.Statistics() {
		if _, err := a.Resolve(s.StatisticsPath); err != nil {
			return fmt.Errorf("statistics of snapshot %d: %w", s.SnapshotID, err)
		}
	}
	for s := range meta.PartitionStatistics() {
		if _, err := a.Resolve(s.StatisticsPath); err != nil {
			return fmt.Errorf("partition statistics of snapshot %d: %w", s.SnapshotID, err)
		}
	}
	known := map[int64]bool{}
	if base != nil {
		for _, snap := range base.Snapshots() {
			known[snap.SnapshotID] = true
		}
	}
	for _, snap := range meta.Snapshots() {
		if known[snap.SnapshotID] {
			continue
		}
		if _, err := a.Resolve(snap.ManifestList); err != nil {
			return fmt.Errorf("manifest list of snapshot %d: %w", snap.SnapshotID, err)
		}
	}
	return nil
}

// newMetadataFrom builds a table's first metadata from updates alone, in
// the format version an upgrade-format-version update names (default 2).
func newMetadataFrom(updates []table.Update) (table.Metadata, error) {
	version := 2
	for _, u := range updates {
		var w struct {
			Action        string `json:"action"`
			FormatVersion int    `json:"format-version"`
		}
		if toWire(u, &w) && w.Action == "upgrade-format-version" && w.FormatVersion > 0 {
			version = w.FormatVersion
		}
	}
	b, err := table.NewMetadataBuilder(version)
	if err != nil {
		return nil, err
	}
	for _, u := range updates {
		if err := u.Apply(b); err != nil {
			return nil, err
		}
	}
	return b.Build()
}

// writeMetadata writes meta to loc in the area a, durably.
func (c *Catalog) writeMetadata(ctx context.Context, a Area, loc string, meta table.Metadata) error {
	if err := c.writeMetadataUnsynced(ctx, a, loc, meta); err != nil {
		return err
	}
	return a.SyncFile(ctx, loc)
}

// writeMetadataUnsynced writes meta to loc in the area a; the caller
// syncs it (a.SyncFile) before anything that names it is published.
func (c *Catalog) writeMetadataUnsynced(ctx context.Context, a Area, loc string, meta table.Metadata) error {
	fs, err := a.IO(ctx)
	if err != nil {
		return err
	}
	wfs, ok := fs.(icebergio.WriteFileIO)
	if !ok {
		return errors.New("catalog: warehouse IO cannot write")
	}
	data, err := jsonMarshal(meta)
	if err != nil {
		return err
	}
	if err := wfs.WriteFile(loc, data); err != nil {
		return fmt.Errorf("catalog: write metadata: %w", err)
	}
	c.raw.put(loc, data)
	return nil
}

// Refs returns the catalog's ref store.
func (c *Catalog) Refs() refs.Store { return c.refs }
