package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/weir-dev/weir/objects"
)

// ErrExists: a file the S3 endpoint would write is already there (the
// endpoint never overwrites a file: Iceberg files are immutable).
var ErrExists = errors.New("catalog: file exists")

// LocalArea is a repo's folder of a LocalWarehouse as the S3 endpoint
// (catalog/s3) sees it: files named by rel, a path below the folder that
// LocalWarehouse.Bucket returned, each reached through the folder's
// os.Root. It adds to Area what serving a bucket needs: open by
// name, list, add a new file, remove.
type LocalArea struct{ a *localArea }

// Seg is the area's folder name (the repo's first key segment).
func (l *LocalArea) Seg() string { return l.a.seg }

// Open opens the regular file rel for reading.
func (l *LocalArea) Open(rel string) (*os.File, fs.FileInfo, error) {
	r, err := l.a.open(false)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, nil, escapes(rel, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrNotExist}
	}
	return f, fi, nil
}

// Stat returns what Open would open, without opening it.
func (l *LocalArea) Stat(rel string) (fs.FileInfo, error) {
	f, fi, err := l.Open(rel)
	if err != nil {
		return nil, err
	}
	f.Close()
	return fi, nil
}

// AddNew makes the complete local file src (a staging file of the
// endpoint, outside the warehouse) the file rel: a hard link, else a
// copy into the folder that is then linked; either way the name appears
// only with its whole content, and never replaces a file (ErrExists).
func (l *LocalArea) AddNew(src, rel string) error { return l.a.place(src, rel, false) }

// Remove removes the file rel.
func (l *LocalArea) Remove(rel string) error {
	r, err := l.a.open(false)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Remove(rel)
}

// FileInfo is one file of a listing: its path below the area's folder.
type FileInfo struct {
	Rel string
	fs.FileInfo
}

// Walk calls fn for every regular file below the folder dir of the area
// ("" for the whole area), in no particular order, until fn returns an
// error (returned). A missing dir has no files.
func (l *LocalArea) Walk(dir string, fn func(FileInfo) error) error {
	r, err := l.a.open(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	start := "."
	if dir != "" {
		start = dir
	}
	err = fs.WalkDir(r.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".weir-tmp") {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		return fn(FileInfo{Rel: p, FileInfo: fi})
	})
	return err
}

// RepoArea returns the folder seg (one repo's, see repoSegment) as the S3
// endpoint sees it, for listing from its top.
func (w *LocalWarehouse) RepoArea(seg string) (*LocalArea, error) {
	a, err := w.Area(seg)
	if err != nil {
		return nil, err
	}
	return &LocalArea{a.(*localArea)}, nil
}

// escapes turns os.Root's refusal of a name that leads out of the folder
// (a symlink, "..") into ErrOutsideRepo; other errors are returned as
// they are.
func escapes(rel string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent" {
		return fmt.Errorf("%w: %s leads out of this repo's folder", ErrOutsideRepo, rel)
	}
	return err
}

// S3Key returns the bucket key of location, a folder or file of repo's
// area named s3://weir/..., without a trailing '/'; ok is false for a
// location under the file:// name (the S3 endpoint serves it too, but a
// reader elsewhere cannot follow the file:// locations its metadata
// holds) and for one outside repo's area.
func (w *LocalWarehouse) S3Key(repo objects.RepoName, location string) (key string, ok bool) {
	a, err := w.Area(repoSegment(repo))
	if err != nil || !strings.HasPrefix(location, "s3://"+LocalBucket+"/") {
		return "", false
	}
	rel, err := a.Resolve(location)
	if err != nil {
		return "", false
	}
	return repoSegment(repo) + "/" + rel, true
}
