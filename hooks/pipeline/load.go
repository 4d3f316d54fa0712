package pipeline

import (
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// ErrNoPipeline is returned by Load for a commit without a pipeline
// (no weir.toml, models/, seeds/ or expectations/): a plain Git commit.
var ErrNoPipeline = errors.New("pipeline: commit has no pipeline")

// Load reads the pipeline files of commit from s (the push's quarantine
// storer) and parses them. It returns ErrNoPipeline for a commit without
// a pipeline.
func Load(s storer.EncodedObjectStorer, commit plumbing.Hash) (*Pipeline, error) {
	files, err := ReadFiles(s, commit)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, ErrNoPipeline
	}
	return Parse(files)
}

// ReadFiles returns the pipeline files of commit (see IsPipelinePath),
// path -> content. Symlinks and submodules inside pipeline dirs are refused.
func ReadFiles(s storer.EncodedObjectStorer, commit plumbing.Hash) (map[string][]byte, error) {
	c, err := object.GetCommit(s, commit)
	if err != nil {
		return nil, fmt.Errorf("pipeline: read commit %s: %w", commit, err)
	}
	root, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("pipeline: read tree of %s: %w", commit, err)
	}
	files := map[string][]byte{}
	total := 0
	for _, e := range root.Entries {
		if !IsPipelinePath(e.Name) && !IsPipelinePath(e.Name+"/x") {
			continue
		}
		if e.Name == ConfigFile {
			if e.Mode != filemode.Regular && e.Mode != filemode.Executable {
				return nil, fmt.Errorf("%s: must be a regular file", e.Name)
			}
		} else if e.Mode != filemode.Dir {
			return nil, fmt.Errorf("%s: must be a directory", e.Name)
		}
		if e.Mode == filemode.Dir {
			sub, err := object.GetTree(s, e.Hash)
			if err != nil {
				return nil, fmt.Errorf("pipeline: read %s: %w", e.Name, err)
			}
			w := object.NewTreeWalker(sub, true, nil)
			for {
				name, te, err := w.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					w.Close()
					return nil, fmt.Errorf("pipeline: walk %s: %w", e.Name, err)
				}
				p := e.Name + "/" + name
				switch te.Mode {
				case filemode.Dir:
					continue
				case filemode.Regular, filemode.Executable:
				default:
					w.Close()
					return nil, fmt.Errorf("%s: symlinks and submodules are not allowed in a pipeline", p)
				}
				if len(files) >= 4*MaxNodes {
					w.Close()
					return nil, fmt.Errorf("pipeline: more than %d files", 4*MaxNodes)
				}
				data, err := readBlob(s, te.Hash, MaxSeedBytes)
				if err != nil {
					w.Close()
					return nil, fmt.Errorf("%s: %w", p, err)
				}
				total += len(data)
				if total > maxTotalSource {
					w.Close()
					return nil, fmt.Errorf("pipeline: files add up to more than %d bytes", maxTotalSource)
				}
				files[p] = data
			}
			w.Close()
			continue
		}
		data, err := readBlob(s, e.Hash, MaxCodeBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name, err)
		}
		files[e.Name] = data
	}
	return files, nil
}

func readBlob(s storer.EncodedObjectStorer, h plumbing.Hash, max int64) ([]byte, error) {
	b, err := object.GetBlob(s, h)
	if err != nil {
		return nil, err
	}
	if b.Size > max {
		return nil, fmt.Errorf("file is larger than %d bytes", max)
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, max+1))
}
