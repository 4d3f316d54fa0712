package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/weir-dev/weir/kv"
	"github.com/weir-dev/weir/objects"
)

// What garbage collection (package gc) needs of the catalog: which files
// of a repo's part of the warehouse the table pointers it keeps name, the
// files that part holds (with their age), removing one, and dropping the
// catalog's records ('w' keys) of blobs the collection deletes.
//
// Every file is reached through the repo's Area (invariant 9): listing
// walks the area's own os.Root (locally) or its key prefix (S3), and a
// removal resolves its name against the area like any other location.

// WarehouseFile is one file of a repo's part of the warehouse.
type WarehouseFile struct {
	Name  string    // relative to the repo's part: "sales/orders/data/x.parquet"
	Bytes int64     // its size
	Time  time.Time // the later of its modification and (locally) status change: a file hard-linked into the warehouse is as young as the link
}

// fileLister is the optional ability of an Area to list and remove files.
type fileLister interface {
	walk(ctx context.Context, fn func(WarehouseFile) error) error
	remove(ctx context.Context, name string) error
}

// WarehouseFiles calls fn for every regular file in repo's part of the
// warehouse (symlinks and other special files are not listed).
func (c *Catalog) WarehouseFiles(ctx context.Context, repo objects.RepoName, fn func(WarehouseFile) error) error {
	a, err := c.area(repo)
	if err != nil {
		return err
	}
	l, ok := a.(fileLister)
	if !ok {
		return fmt.Errorf("catalog: warehouse %T cannot list files", a)
	}
	return l.walk(ctx, fn)
}

// RemoveWarehouseFile removes the file name (relative to repo's part of
// the warehouse, as WarehouseFiles gives it). A file already gone is not
// an error.
func (c *Catalog) RemoveWarehouseFile(ctx context.Context, repo objects.RepoName, name string) error {
	a, err := c.area(repo)
	if err != nil {
		return err
	}
	l, ok := a.(fileLister)
	if !ok {
		return fmt.Errorf("catalog: warehouse %T cannot remove files", a)
	}
	if _, err := a.Resolve(a.Prefix() + "/" + name); err != nil {
		return err
	}
	return l.remove(ctx, name)
}

func (a *localArea) walk(ctx context.Context, fn func(WarehouseFile) error) error {
	r, err := a.open(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing written yet
	}
	if err != nil {
		return err
	}
	defer r.Close()
	return fs.WalkDir(r.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := r.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		t := fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if ct := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); ct.After(t) {
				t = ct
			}
		}
		return fn(WarehouseFile{Name: p, Bytes: fi.Size(), Time: t})
	})
}

func (a *localArea) remove(_ context.Context, name string) error {
	r, err := a.open(false)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (a *s3Area) walk(ctx context.Context, fn func(WarehouseFile) error) error {
	base := strings.Join(a.p.segs, "/") + "/"
	pg := s3.NewListObjectsV2Paginator(a.w.client, &s3.ListObjectsV2Input{Bucket: aws.String(a.w.cfg.Bucket), Prefix: aws.String(base)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("catalog: list %s: %w", a.Prefix(), err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), base)
			if name == "" || strings.HasSuffix(name, "/") {
				continue
			}
			if _, err := a.Resolve(a.Prefix() + "/" + name); err != nil {
				continue // a key no location can name: not the catalog's
			}
			if err := fn(WarehouseFile{Name: name, Bytes: aws.ToInt64(o.Size), Time: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *s3Area) remove(ctx context.Context, name string) error {
	k, err := a.key(a.Prefix() + "/" + name)
	if err != nil {
		return err
	}
	_, err = a.w.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(a.w.cfg.Bucket), Key: aws.String(k)})
	return err
}

// FileSet is a set of files of one repo's part of the warehouse, by name
// relative to it, with what Reference has read already.
type FileSet struct {
	c     *Catalog
	repo  objects.RepoName
	a     Area
	fs    icebergio.IO
	Names map[string]struct{}
	read  map[string]bool // metadata files, manifest lists and manifests already followed
}

// NewFileSet returns an empty set of repo's files.
func (c *Catalog) NewFileSet(ctx context.Context, repo objects.RepoName) (*FileSet, error) {
	a, err := c.area(repo)
	if err != nil {
		return nil, err
	}
	io, err := a.IO(ctx)
	if err != nil {
		return nil, err
	}
	return &FileSet{c: c, repo: repo, a: a, fs: io, Names: map[string]struct{}{}, read: map[string]bool{}}, nil
}

// add adds loc if it is in the repo's part; it reports whether it is.
func (s *FileSet) add(loc string) bool {
	rel, err := s.a.Resolve(loc)
	if err != nil {
		return false // not this repo's file: never ours to keep or delete
	}
	s.Names[rel] = struct{}{}
	return true
}

// AddPointer adds every file the table pointer blob h names: its
// metadata file, the metadata files its metadata log lists, its
// statistics files, and for every snapshot the metadata holds, the
// manifest list, its manifests and every data and delete file they list
// (deleted entries too). A blob that is not a pointer adds nothing; a
// file that cannot be read is an error (the caller must then delete
// nothing of the repo's warehouse).
func (s *FileSet) AddPointer(ctx context.Context, h objects.Hash) error {
	p, err := s.c.readPointer(ctx, s.repo, h)
	if errors.Is(err, ErrBadPointer) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pointer %s: %w", h, err)
	}
	return s.AddMetadata(ctx, p.MetadataLocation)
}

// AddMetadata adds the metadata file at loc and everything it names (see
// AddPointer).
func (s *FileSet) AddMetadata(ctx context.Context, loc string) error {
	if s.read[loc] || !s.add(loc) {
		return nil
	}
	meta, err := s.c.readMetadata(ctx, s.a, loc)
	if err != nil {
		return fmt.Errorf("metadata %s: %w", s.c.Redact(loc), err)
	}
	s.read[loc] = true
	for e := range meta.PreviousFiles() {
		s.add(e.MetadataFile)
	}
	for st := range meta.Statistics() {
		s.add(st.StatisticsPath)
	}
	for st := range meta.PartitionStatistics() {
		s.add(st.StatisticsPath)
	}
	for _, snap := range meta.Snapshots() {
		if err := s.AddManifestList(ctx, snap.ManifestList); err != nil {
			return err
		}
	}
	return nil
}

// AddManifestList adds a manifest list, its manifests and their files.
func (s *FileSet) AddManifestList(ctx context.Context, loc string) error {
	if loc == "" || s.read[loc] || !s.add(loc) {
		return nil
	}
	list, err := s.c.readManifestList(s.a, s.fs, loc)
	if err != nil {
		return fmt.Errorf("manifest list %s: %w", s.c.Redact(loc), err)
	}
	s.read[loc] = true
	for _, m := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.addManifest(m); err != nil {
			return err
		}
	}
	return nil
}

func (s *FileSet) addManifest(m iceberg.ManifestFile) error {
	loc := m.FilePath()
	if s.read[loc] || !s.add(loc) {
		return nil
	}
	entries, err := m.FetchEntries(s.fs, false)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", s.c.Redact(loc), err)
	}
	s.read[loc] = true
	for _, e := range entries {
		s.add(e.DataFile().FilePath())
	}
	return nil
}

// AddYoung adds what a file younger than the grace period names, when it
// is a metadata file or a manifest list: a REST commit or a run writes
// them before the pointer that names them, and they may name older files
// (an append keeps the table's manifests). A file that cannot be read is
// skipped: it may be half written.
func (s *FileSet) AddYoung(ctx context.Context, name string) {
	loc := s.a.Prefix() + "/" + name
	base := path.Base(name)
	switch {
	case strings.HasSuffix(base, ".metadata.json"):
		_ = s.AddMetadata(ctx, loc)
	case strings.HasPrefix(base, "snap-") && strings.HasSuffix(base, ".avro"):
		_ = s.AddManifestList(ctx, loc)
	}
}

// PointerBlobs returns the blobs of repo the catalog recorded as table
// pointers it wrote ('w' keys of kind 'p'), published or not.
func (c *Catalog) PointerBlobs(ctx context.Context, repo objects.RepoName) ([]objects.Hash, error) {
	lo := append(append([]byte{'w'}, repo...), 0)
	it, err := c.objs.DB().NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return nil, err
	}
	var out []objects.Hash
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := it.Value()
		if err != nil {
			it.Close()
			return nil, err
		}
		if len(k) != len(lo)+20 || len(v) == 0 || v[0] != 'p' {
			continue
		}
		var h objects.Hash
		copy(h[:], k[len(lo):])
		out = append(out, h)
	}
	return out, it.Close()
}

// ForgetBlobs adds to w the deletion of the catalog's records of the
// blobs in doomed (a collection deletes the blobs in the same batch): a
// pointer collected is no longer published, so a client that pushes it
// back later is refused like any unknown pointer (its files may be gone).
func (c *Catalog) ForgetBlobs(w kv.Writer, repo objects.RepoName, doomed map[objects.Hash]int64) (int, error) {
	lo := append(append([]byte{'w'}, repo...), 0)
	it, err := c.objs.DB().NewIter(lo, kv.PrefixEnd(lo))
	if err != nil {
		return 0, err
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(lo)+20 {
			continue
		}
		var h objects.Hash
		copy(h[:], k[len(lo):])
		if _, ok := doomed[h]; !ok {
			continue
		}
		if err := w.Delete(bytes.Clone(k)); err != nil {
			it.Close()
			return n, err
		}
		n++
	}
	return n, it.Close()
}

// IndexPublished makes sure repo's index of published pointers is
// complete: built, for a repo older than the index, from the reflogs of
// its data refs. A collection calls it before it expires any reflog.
func (c *Catalog) IndexPublished(ctx context.Context, repo objects.RepoName) error {
	return c.ensureIndex(ctx, repo)
}

// TablesTree returns the blobs at tables/<ns>/<table> of the tree of
// commit h, whatever else the tree holds (none when it has no tables/
// folder): the pointer blobs of a data commit. A code commit that has a
// tables/ folder of its own only makes a collection read a few blobs that
// are not pointers.
func TablesTree(ctx context.Context, s *objects.Store, repo objects.RepoName, h objects.Hash) ([]objects.Hash, error) {
	r := repoObjects{s, repo}
	c, err := readCommit(ctx, r, h)
	if err != nil {
		return nil, err
	}
	root, err := readTree(ctx, r, c.TreeHash)
	if err != nil {
		return nil, err
	}
	var out []objects.Hash
	for _, e := range root {
		if e.Name != "tables" || e.Mode != filemode.Dir {
			continue
		}
		nss, err := readTree(ctx, r, e.Hash)
		if err != nil {
			return nil, err
		}
		for _, ns := range nss {
			if ns.Mode != filemode.Dir {
				continue
			}
			ts, err := readTree(ctx, r, ns.Hash)
			if err != nil {
				return nil, err
			}
			for _, t := range ts {
				if t.Mode == filemode.Regular {
					out = append(out, t.Hash)
				}
			}
		}
	}
	return out, nil
}
