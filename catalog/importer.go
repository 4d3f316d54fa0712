package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// WriteBranch writes a data commit on top of refs/data/<branch> and moves
// the branch to it with a compare-and-swap (creating the branch if it has
// no data yet). If the branch moves meanwhile it rebuilds on the new head,
// at most maxRetries times. The code commit defaults to refs/heads/<branch>.
func (c *Catalog) WriteBranch(ctx context.Context, repo objects.RepoName, branch string, writes []TableWrite, info CommitInfo) (objects.Hash, error) {
	if info.CodeCommit.IsZero() {
		if h, err := c.refs.Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+branch)); err == nil {
			info.CodeCommit = h
		}
	}
	for range maxRetries {
		head, err := c.refs.Resolve(ctx, repo, DataRef(branch))
		if errors.Is(err, refs.ErrNotFound) {
			head, err = objects.ZeroHash, nil
		}
		if err != nil {
			return objects.ZeroHash, err
		}
		next, err := c.WriteDataCommit(ctx, repo, head, writes, info)
		if err != nil {
			return objects.ZeroHash, err
		}
		if err := c.Publish(ctx, repo, head, next); err != nil {
			return objects.ZeroHash, err
		}
		err = c.refs.Update(ctx, repo, []refs.Update{{Name: DataRef(branch), Old: head, New: next}}, nil, "weir: write "+branch)
		if errors.Is(err, refs.ErrStale) {
			c.casRetries.Add(1)
			continue
		}
		if err != nil {
			return objects.ZeroHash, err
		}
		return next, nil
	}
	return objects.ZeroHash, fmt.Errorf("write %s: %w", DataRef(branch), refs.ErrStale)
}

// FetchSource makes src available as a local Parquet file in dir: a local
// .parquet file as is, a local .csv file converted (types inferred, header
// row required), an s3://bucket/key of either downloaded first with s3c.
func FetchSource(ctx context.Context, src, dir string, s3c *s3.Client) (string, error) {
	if strings.HasPrefix(src, "s3://") {
		if s3c == nil {
			return "", fmt.Errorf("catalog: %s: no S3 client configured", src)
		}
		u, err := url.Parse(src)
		if err != nil || u.Host == "" || len(u.Path) < 2 {
			return "", fmt.Errorf("catalog: bad S3 URL %q (want s3://bucket/key)", src)
		}
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Host), Key: aws.String(strings.TrimPrefix(u.Path, "/"))})
		if err != nil {
			return "", fmt.Errorf("catalog: download %s: %w", src, err)
		}
		defer out.Body.Close()
		local := filepath.Join(dir, "download"+filepath.Ext(u.Path))
		f, err := os.Create(local)
		if err != nil {
			return "", err
		}
		if _, err := io.Copy(f, out.Body); err != nil {
			f.Close()
			return "", err
		}
		if err := f.Close(); err != nil {
			return "", err
		}
		src = local
	}
	switch strings.ToLower(filepath.Ext(src)) {
	case ".parquet":
		if _, err := parquetSchema(src); err != nil {
			return "", fmt.Errorf("catalog: %s is not a readable Parquet file: %w", src, err)
		}
		// A private copy: the warehouse may hard-link it, and the user's
		// file may be rewritten in place later.
		dst := filepath.Join(dir, "import-"+filepath.Base(src))
		if strings.HasPrefix(src, dir+string(filepath.Separator)) {
			return src, nil
		}
		return dst, copyFile(src, dst)
	case ".csv":
		return csvToParquet(src, filepath.Join(dir, strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))+".parquet"))
	default:
		return "", fmt.Errorf("catalog: %s: unsupported file type (want .parquet or .csv)", src)
	}
}

func csvToParquet(src, dst string) (string, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	rdr := csv.NewInferringReader(in, csv.WithHeader(true), csv.WithChunk(64<<10), csv.WithNullReader(true, ""))
	defer rdr.Release()
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer out.Close()
	var w *pqarrow.FileWriter
	rows := 0
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if w == nil {
			if w, err = pqarrow.NewFileWriter(rec.Schema(), out, nil, pqarrow.DefaultWriterProps()); err != nil {
				return "", err
			}
		}
		if err := w.Write(rec); err != nil {
			return "", err
		}
		rows += int(rec.NumRows())
	}
	if err := rdr.Err(); err != nil {
		return "", fmt.Errorf("catalog: read CSV %s: %w", src, err)
	}
	if w == nil {
		return "", fmt.Errorf("catalog: CSV %s has no rows", src)
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	return dst, nil
}
